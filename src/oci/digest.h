/*
 * Content digests: strict parsing ("sha256:" + 64 lowercase hex, "sha512:" +
 * 128 lowercase hex; nothing else) and streaming computation/verification.
 */
#ifndef OCI_DIGEST_H
#define OCI_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum oci_digest_alg {
    OCI_DIGEST_SHA256 = 1,
    OCI_DIGEST_SHA512,
};

/* "sha512:" + 128 hex + NUL */
#define OCI_DIGEST_MAX 136

struct oci_digest {
    enum oci_digest_alg alg;
    char str[OCI_DIGEST_MAX]; /* canonical "alg:hex", NUL-terminated */
};

/*
 * Parses s (exactly len bytes, need not be NUL-terminated) into out.
 * Returns 0, or OCISYNC_EDIGEST for anything but a well-formed sha256/sha512
 * digest: unknown algorithm, uppercase or non-hex characters, wrong length,
 * empty, embedded NUL, path characters. On error out is zeroed.
 */
int oci_digest_parse(const char *s, size_t len, struct oci_digest *out);
/* Same for a NUL-terminated string (NULL is rejected; at most OCI_DIGEST_MAX bytes are read). */
int oci_digest_parse_str(const char *s, struct oci_digest *out);
/* The lowercase hex part of d ("abc..."), pointing into d->str. */
const char *oci_digest_hex(const struct oci_digest *d);
bool oci_digest_equal(const struct oci_digest *a, const struct oci_digest *b);

/*
 * A streaming hasher. Init with an algorithm, update with data in order,
 * finish into a struct oci_digest. Uses OpenSSL's EVP interface.
 * n_bytes counts what was hashed and stays readable after final.
 */
struct oci_hasher {
    void *md_ctx; /* EVP_MD_CTX *, owned */
    enum oci_digest_alg alg;
    uint64_t n_bytes;
};

/* Returns 0, UV_EINVAL for an unknown alg, UV_ENOMEM or UV_EIO; h is zeroed first. */
int oci_hasher_init(struct oci_hasher *h, enum oci_digest_alg alg);
/*
 * Hashes len bytes of data. If OpenSSL fails, the hasher is released and the
 * failure surfaces from oci_hasher_final, so no partial digest is produced.
 */
void oci_hasher_update(struct oci_hasher *h, const void *data, size_t len);
/*
 * Writes the digest into out and releases the hasher's resources, even on
 * error. Returns 0, or UV_EINVAL if h was not initialised (or was already
 * finished, or an update failed), UV_EIO if OpenSSL failed.
 */
int oci_hasher_final(struct oci_hasher *h, struct oci_digest *out);
/* Releases a hasher without finishing it (safe on a zeroed or finished hasher). */
void oci_hasher_dispose(struct oci_hasher *h);

/* One-shot digest of a buffer; data may be NULL only if len is 0. */
int oci_digest_buffer(enum oci_digest_alg alg, const void *data, size_t len,
                      struct oci_digest *out);

#endif
