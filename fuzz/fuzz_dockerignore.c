/*
 * libFuzzer target for the .dockerignore matcher. Input: the ignore file,
 * then a NUL byte, then paths one a line (at most 64), each asked about
 * with oci_ignore_excluded, oci_ignore_excluded_under (parent state
 * carried down) and oci_ignore_must_descend.
 */
#include "oci/dockerignore.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    struct oci_ignore *ig = NULL;
    char err[256], *paths;
    unsigned char *state, *parent;
    size_t ss;
    int n = 0;

    if (oci_ignore_parse(&ig, (const char *)data, text_len, err, sizeof(err)) != 0)
        return 0;
    ss = oci_ignore_state_size(ig);
    state = calloc(1, ss ? ss : 1);
    parent = calloc(1, ss ? ss : 1);
    paths = malloc(size - text_len + 1);
    if (state == NULL || parent == NULL || paths == NULL)
        abort();
    memcpy(paths, data + text_len, size - text_len);
    paths[size - text_len] = '\0';
    for (char *p = nul ? paths + 1 : paths + (size - text_len); *p != '\0' && n < 64; n++) {
        char *e = strchr(p, '\n');
        if (e != NULL)
            *e = '\0';
        /* Only clean paths are asked about, as the walker gives them. */
        if (p[0] != '\0' && p[0] != '/' && strstr(p, "//") == NULL && strstr(p, "..") == NULL &&
            p[strlen(p) - 1] != '/') {
            (void)oci_ignore_excluded(ig, p);
            (void)oci_ignore_must_descend(ig, p);
            (void)oci_ignore_excluded_under(ig, p, n > 0 ? parent : NULL, state);
            memcpy(parent, state, ss);
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    free(paths);
    free(state);
    free(parent);
    oci_ignore_free(ig);
    return 0;
}
