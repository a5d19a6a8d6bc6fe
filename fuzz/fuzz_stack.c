/*
 * libFuzzer target for the layer stack reader: the input is a layer (plain
 * tar, gzip or zstd by its first bytes), added twice to a stack (so that
 * replacements, whiteouts and opaque directories meet what they replace),
 * then a few paths are looked up and resolved.
 */
#include "oci/stack.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {"", "a", "a/b", "bin", "etc/passwd", "x/../y", "/usr/bin"};
    struct oci_stack *s = NULL;
    char path[64], err[512], out[4200];
    int fd = memfd_create("layer", 0);

    if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (oci_stack_new(&s) != 0)
        abort();
    for (int i = 0; i < 2; i++)
        (void)oci_stack_add_blob(s, path, NULL, err, sizeof(err));
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        (void)oci_stack_lookup(s, paths[i]);
        (void)oci_stack_resolve(s, paths[i], true, out, sizeof(out));
        (void)oci_stack_resolve(s, paths[i], false, out, sizeof(out));
    }
    oci_stack_free(s);
    close(fd);
    return 0;
}
