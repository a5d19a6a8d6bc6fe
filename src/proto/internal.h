/*
 * Declarations shared between files of src/proto and their unit tests and
 * fuzz targets; nothing outside src/proto includes this.
 */
#ifndef PROTO_INTERNAL_H
#define PROTO_INTERNAL_H

#include "proto/auth.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest <name> in docker-credential-<name> that we run. */
#define PROTO__CRED_HELPER_NAME_MAX 128

/* What an auth file says to do for one registry. */
enum proto__authfile_use {
    PROTO__AUTHFILE_NOTHING = 0, /* no entry for the registry: go anonymous */
    PROTO__AUTHFILE_CRED,        /* an "auths" entry, now in cred */
    PROTO__AUTHFILE_HELPER,      /* run docker-credential-<helper> (credHelpers or credsStore) */
};

struct proto__authfile_match {
    enum proto__authfile_use use;
    struct proto_cred cred; /* PROTO__AUTHFILE_CRED; owned, release with proto_cred_dispose */
    char helper[PROTO__CRED_HELPER_NAME_MAX]; /* PROTO__AUTHFILE_HELPER: the <name> */
    char key[256]; /* the "auths" or "credHelpers" key that matched, for --debug */
};

/*
 * Reads an auth file's contents (Docker config.json, containers auth.json or
 * a Kubernetes .dockerconfigjson) and decides what it says for registry:
 * "credHelpers" first, then "auths", then "credsStore", as
 * proto_cred_lookup describes. path only names the file in messages and in
 * out->cred.source. Empty or all-whitespace content counts as "{}".
 * Returns 0 (out->use says what was found), OCISYNC_EJSON for malformed
 * content or a malformed matching entry, OCISYNC_ETOOBIG for oversized
 * content, OCISYNC_EUSAGE for an unusable registry name. On failure out
 * holds nothing. legacy reads ~/.dockercfg's format: the top-level object
 * is "auths", keyed by registry only, without helpers.
 */
int proto__cred_parse_authfile(const char *json, size_t len, const char *path, const char *registry,
                               bool legacy, struct proto__authfile_match *out, char *err,
                               size_t errlen);

/*
 * Where per-UID auth files live when XDG_RUNTIME_DIR is unset
 * ("/run/containers", then <uid>/auth.json); unit tests point it elsewhere.
 */
extern const char *proto__run_containers;

/*
 * The OpenSSL name of digest's algorithm ("SHA256" for "sha256:<64 hex>",
 * "SHA512" for "sha512:<128 hex>"), or NULL when digest is not one of those,
 * exactly: the registry layer checks content it asked for by digest.
 */
const char *proto__digest_alg(const char *digest);
/*
 * "alg:hex" of data into out, with the algorithm like starts with ("sha256:"
 * or a whole digest). Returns 0, OCISYNC_EDIGEST for an unknown algorithm or
 * OCISYNC_ETOOBIG when out is too short.
 */
int proto__digest_of(const char *like, const void *data, size_t len, char *out, size_t outlen);

#endif
