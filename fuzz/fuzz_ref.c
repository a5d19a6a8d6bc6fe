/*
 * libFuzzer target for oci_ref_parse (src/oci/ref.c). Besides looking for
 * memory errors it checks the parser's promises: a failure leaves the output
 * zeroed and writes a printable message; a success fits its buffers and its
 * canonical form parses back to the same reference.
 */
#include "ocisync.h"
#include "oci/ref.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s < 0x20 || *s >= 0x7f)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_ref r, again;
    char err[512], buf[1024];
    char *s = malloc(size + 1);
    int rc, n;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    rc = oci_ref_parse(s, &r, err, sizeof(err));
    if (rc != 0) {
        static const struct oci_ref zero;
        if (rc != OCISYNC_EREF && rc != OCISYNC_EDIGEST)
            abort();
        if (memcmp(&r, &zero, sizeof(r)) != 0)
            abort();
        if (strncmp(err, "invalid reference \"", 19) != 0)
            abort();
        check_printable(err);
        goto out;
    }
    if (err[0] != '\0')
        abort();
    if (strnlen(r.registry, sizeof(r.registry)) == sizeof(r.registry) ||
        strnlen(r.repository, sizeof(r.repository)) == sizeof(r.repository) ||
        strnlen(r.tag, sizeof(r.tag)) == sizeof(r.tag))
        abort();
    if (strlen(r.registry) + 1 + strlen(r.repository) > 255)
        abort();
    if (r.tag[0] == '\0' && !r.has_digest)
        abort();
    (void)oci_ref_is_loopback(&r);
    (void)strlen(oci_ref_api_host(&r));
    (void)strlen(oci_ref_target(&r));

    n = oci_ref_format(&r, buf, sizeof(buf));
    if (n < 0 || (size_t)n >= sizeof(buf))
        abort();
    if (oci_ref_parse(buf, &again, NULL, 0) != 0)
        abort();
    if (strcmp(again.registry, r.registry) != 0 || strcmp(again.repository, r.repository) != 0 ||
        strcmp(again.tag, r.tag) != 0 || again.has_digest != r.has_digest ||
        strcmp(again.digest.str, r.digest.str) != 0)
        abort();
out:
    free(s);
    return 0;
}
