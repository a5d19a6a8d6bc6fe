#include "oci/digest.h"

#include "ocisync.h"

#include <openssl/evp.h>
#include <string.h>
#include <uv.h>

/* Both supported prefixes, "sha256:" and "sha512:", are this long. */
#define ALG_PREFIX_LEN 7

struct alg_info {
    enum oci_digest_alg alg;
    const char *prefix;
    size_t hex_len;
};

static const struct alg_info algs[] = {
    {OCI_DIGEST_SHA256, "sha256:", 64},
    {OCI_DIGEST_SHA512, "sha512:", 128},
};

static const struct alg_info *find_alg(enum oci_digest_alg alg)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (algs[i].alg == alg)
            return &algs[i];
    }
    return NULL;
}

static const EVP_MD *evp_md(enum oci_digest_alg alg)
{
    switch (alg) {
    case OCI_DIGEST_SHA256:
        return EVP_sha256();
    case OCI_DIGEST_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

/*
 * Only lowercase hex is accepted: the digest string is compared byte for byte
 * with what registries send and is used in URLs and file names, so two
 * spellings of one digest must never both be valid.
 */
static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int oci_digest_parse(const char *s, size_t len, struct oci_digest *out)
{
    const struct alg_info *info = NULL;
    int rc = OCISYNC_EDIGEST;

    memset(out, 0, sizeof(*out));
    if (s == NULL || len < ALG_PREFIX_LEN)
        goto out;
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (memcmp(s, algs[i].prefix, ALG_PREFIX_LEN) == 0) {
            info = &algs[i];
            break;
        }
    }
    /* The exact length check also keeps the copy below within out->str. */
    if (info == NULL || len != ALG_PREFIX_LEN + info->hex_len)
        goto out;
    for (size_t i = ALG_PREFIX_LEN; i < len; i++) {
        if (!is_lower_hex(s[i]))
            goto out;
    }
    memcpy(out->str, s, len);
    out->str[len] = '\0';
    out->alg = info->alg;
    rc = 0;
out:
    return rc;
}

int oci_digest_parse_str(const char *s, struct oci_digest *out)
{
    /*
     * strnlen bounds the scan of a hostile, very long string; anything that
     * reaches OCI_DIGEST_MAX is too long to be a digest and fails the length
     * check in oci_digest_parse, as does NULL (parsed as empty).
     */
    return oci_digest_parse(s ? s : "", s ? strnlen(s, OCI_DIGEST_MAX) : 0, out);
}

const char *oci_digest_hex(const struct oci_digest *d)
{
    const char *colon = memchr(d->str, ':', sizeof(d->str));

    /* A zeroed digest has no colon; give it an empty string, not garbage. */
    if (colon == NULL)
        return d->str + strnlen(d->str, sizeof(d->str) - 1);
    return colon + 1;
}

bool oci_digest_equal(const struct oci_digest *a, const struct oci_digest *b)
{
    if (a == NULL || b == NULL)
        return false;
    return a->alg == b->alg && strncmp(a->str, b->str, sizeof(a->str)) == 0;
}

int oci_hasher_init(struct oci_hasher *h, enum oci_digest_alg alg)
{
    const EVP_MD *md = evp_md(alg);
    EVP_MD_CTX *ctx = NULL;
    int rc;

    memset(h, 0, sizeof(*h));
    if (md == NULL) {
        rc = UV_EINVAL;
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        rc = UV_EIO;
        goto fail_ctx;
    }
    h->md_ctx = ctx;
    h->alg = alg;
    rc = 0;
    goto out;

fail_ctx:
    EVP_MD_CTX_free(ctx);
out:
    return rc;
}

void oci_hasher_update(struct oci_hasher *h, const void *data, size_t len)
{
    if (h->md_ctx == NULL || len == 0)
        return;
    /*
     * update cannot return an error, so a failure is made sticky instead: the
     * context is dropped and oci_hasher_final reports it, which keeps a
     * half-hashed stream from ever producing a digest.
     */
    if (EVP_DigestUpdate(h->md_ctx, data, len) != 1) {
        oci_hasher_dispose(h);
        return;
    }
    h->n_bytes += len;
}

int oci_hasher_final(struct oci_hasher *h, struct oci_digest *out)
{
    static const char hexdigits[] = "0123456789abcdef";
    const struct alg_info *info = find_alg(h->alg);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *p;
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->md_ctx == NULL || info == NULL) {
        rc = UV_EINVAL;
        goto out;
    }
    if (EVP_DigestFinal_ex(h->md_ctx, md, &md_len) != 1 || md_len * 2 != info->hex_len) {
        rc = UV_EIO;
        goto out;
    }
    memcpy(out->str, info->prefix, ALG_PREFIX_LEN);
    p = out->str + ALG_PREFIX_LEN;
    for (unsigned int i = 0; i < md_len; i++) {
        *p++ = hexdigits[md[i] >> 4];
        *p++ = hexdigits[md[i] & 0x0f];
    }
    *p = '\0';
    out->alg = info->alg;
    rc = 0;
out:
    oci_hasher_dispose(h);
    return rc;
}

void oci_hasher_dispose(struct oci_hasher *h)
{
    EVP_MD_CTX_free(h->md_ctx);
    h->md_ctx = NULL;
}

int oci_digest_buffer(enum oci_digest_alg alg, const void *data, size_t len, struct oci_digest *out)
{
    struct oci_hasher h;
    int rc;

    memset(out, 0, sizeof(*out));
    if (data == NULL && len > 0) {
        rc = UV_EINVAL;
        goto out;
    }
    rc = oci_hasher_init(&h, alg);
    if (rc < 0)
        goto out;
    oci_hasher_update(&h, data, len);
    rc = oci_hasher_final(&h, out);
out:
    return rc;
}

int ocisync_digest_check(const char *s)
{
    struct oci_digest d;
    return oci_digest_parse_str(s, &d);
}
