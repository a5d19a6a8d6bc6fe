/*
 * libFuzzer target for oci_digest_parse and oci_digest_parse_str
 * (src/oci/digest.c). It checks that the length-delimited and NUL-terminated
 * forms agree, that an accepted digest is exactly the input in canonical form,
 * and that a computed digest always parses back.
 */
#include "ocisync.h"
#include "oci/digest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int canonical(const struct oci_digest *d)
{
    size_t n = strnlen(d->str, sizeof(d->str));
    size_t want = d->alg == OCI_DIGEST_SHA256 ? 71 : d->alg == OCI_DIGEST_SHA512 ? 135 : 0;

    if (n != want || strncmp(d->str, d->alg == OCI_DIGEST_SHA256 ? "sha256:" : "sha512:", 7) != 0)
        return 0;
    for (size_t i = 7; i < n; i++) {
        char c = d->str[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return strcmp(oci_digest_hex(d), d->str + 7) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_digest a, b, h;
    char *s = malloc(size + 1);
    int ra, rb;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    ra = oci_digest_parse((const char *)data, size, &a);
    rb = oci_digest_parse_str(s, &b);
    if ((ra != 0 && ra != OCISYNC_EDIGEST) || (rb != 0 && rb != OCISYNC_EDIGEST))
        abort();
    /* Without an embedded NUL both forms see the same bytes. */
    if (memchr(data, 0, size) == NULL && ra != rb)
        abort();
    if (ra == 0) {
        if (!canonical(&a) || strlen(a.str) != size || memcmp(a.str, data, size) != 0)
            abort();
        if (rb != 0 || !oci_digest_equal(&a, &b))
            abort();
    }
    if (rb == 0 && !canonical(&b))
        abort();

    /* Hash the input too: the result must be canonical and parse back. */
    if (oci_digest_buffer(size % 2 ? OCI_DIGEST_SHA512 : OCI_DIGEST_SHA256, data, size, &h) != 0)
        abort();
    if (!canonical(&h) || oci_digest_parse_str(h.str, &a) != 0 || !oci_digest_equal(&a, &h))
        abort();
    free(s);
    return 0;
}
