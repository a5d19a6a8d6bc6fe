/*
 * Registry authentication: WWW-Authenticate challenges, token-server
 * responses, Basic credentials, and where credentials come from.
 *
 * Everything here is pure (no I/O but reading files and running credential
 * helpers) so it can be tested and fuzzed on its own; the HTTP exchanges that
 * fetch tokens live in registry.c.
 *
 * Secrets (passwords, tokens) never reach logs or error messages: functions
 * here that format messages name the registry and the source, never values.
 */
#ifndef PROTO_AUTH_H
#define PROTO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_AUTH_MAX_HEADER 8192            /* a WWW-Authenticate value we accept */
#define PROTO_AUTH_MAX_TOKEN 16384            /* a bearer token we accept */
#define PROTO_AUTH_MAX_TOKEN_BODY (64 * 1024) /* a token-server response body */
#define PROTO_AUTH_FIELD_MAX 1024             /* realm, service, scope */

enum proto_auth_scheme {
    PROTO_AUTH_NONE = 0,
    PROTO_AUTH_BASIC,
    PROTO_AUTH_BEARER,
};

struct proto_auth_challenge {
    enum proto_auth_scheme scheme;
    char realm[PROTO_AUTH_FIELD_MAX];
    char service[PROTO_AUTH_FIELD_MAX];
    char scope[PROTO_AUTH_FIELD_MAX]; /* as sent; may hold several space-separated scopes */
    char error[64];                   /* Bearer error="insufficient_scope" etc., if any */
};

/*
 * Parses one WWW-Authenticate header value (RFC 7235 challenges; auth-params
 * as token=token or token="quoted-string" with \-escapes; parameter names
 * case-insensitive; the scheme case-insensitive). If the value lists several
 * challenges, Bearer is preferred over Basic; unknown schemes are skipped.
 * Returns 0, OCISYNC_EHTTP for malformed input (unterminated quotes, missing
 * realm for Bearer, control characters), OCISYNC_ETOOBIG when a field exceeds
 * its buffer or the value exceeds PROTO_AUTH_MAX_HEADER.
 */
int proto_auth_challenge_parse(const char *value, size_t len, struct proto_auth_challenge *out);

struct proto_auth_token {
    char *token;         /* owned; the "token" field, else "access_token" */
    char *refresh_token; /* owned, may be NULL */
    int64_t expires_in;  /* seconds; 60 when absent or < 60, as Docker does */
    int64_t issued_at;   /* unix seconds if "issued_at" parsed (RFC 3339), else 0 */
};

/*
 * Parses a token server's JSON response. The token must be non-empty, at
 * most PROTO_AUTH_MAX_TOKEN bytes, and contain only visible ASCII (it goes
 * into a header). Returns 0, OCISYNC_EJSON, or OCISYNC_ETOOBIG.
 */
int proto_auth_token_parse(const char *body, size_t len, struct proto_auth_token *out);
void proto_auth_token_dispose(struct proto_auth_token *t);

/* "Basic base64(user:password)", malloc'ed; NULL on allocation failure. */
char *proto_auth_basic_header(const char *user, const char *password);

/* Standard base64 (with padding) of data, malloc'ed and NUL-terminated. */
char *proto_base64_encode(const void *data, size_t len);
/* Decodes standard base64 (padding optional, no whitespace). Returns bytes decoded or -1. */
ssize_t proto_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

/*
 * Percent-encodes s for a URL query value (RFC 3986 unreserved characters
 * stay as they are). malloc'ed.
 */
char *proto_url_query_escape(const char *s);

/* ------------------------------------------------------------------------------------------ */
/* Credentials */

enum proto_cred_kind {
    PROTO_CRED_NONE = 0,
    PROTO_CRED_BASIC,    /* username + password */
    PROTO_CRED_IDENTITY, /* an identity (refresh) token for the OAuth2 flow, username "<token>" */
    PROTO_CRED_REGISTRY_TOKEN, /* a bearer token used as it is (--registry-token) */
};

struct proto_cred {
    enum proto_cred_kind kind;
    char *username; /* owned */
    char *secret;   /* owned: password, identity token or registry token */
    /* Where it came from, for messages and --debug: "--src-creds", "$OCISYNC_USERNAME",
     * "/root/.docker/config.json", "docker-credential-pass". Never the secret. */
    char source[256];
    /*
     * The auth-file key when it names a namespace or repository
     * ("registry.example/team/app"): these credentials hold for that part of
     * the registry only. "" for credentials that hold for the whole registry.
     */
    char scope[256];
};

void proto_cred_dispose(struct proto_cred *c);

/* What the caller knows before looking at files (command line and environment). */
struct proto_cred_query {
    const char *registry; /* "docker.io", "ghcr.io", "127.0.0.1:5000" */
    /* "library/alpine", "team/app": picks repository-scoped auth-file keys; NULL for none. */
    const char *repository;
    const char *creds;          /* "user:password" from --src-creds / --dest-creds, or NULL */
    const char *registry_token; /* --src-registry-token / --dest-registry-token, or NULL */
    const char *authfile;       /* --authfile, or NULL */
    /* Environment prefix for per-side variables: "OCISYNC_PULL" or "OCISYNC_PUSH" (then
     * *_USERNAME, *_PASSWORD, *_TOKEN), checked before the generic OCISYNC_*. NULL: generic only.
     */
    const char *env_side;
};

/*
 * Looks up credentials for q->registry, first match wins:
 *   1. q->creds ("user:password"; a missing ':' is an error naming the flag)
 *      and q->registry_token;
 *   2. environment: <env_side>_USERNAME/_PASSWORD/_TOKEN, then OCISYNC_USERNAME /
 *      OCISYNC_PASSWORD / OCISYNC_TOKEN (an empty variable counts as unset; a
 *      username without a password is an error naming the variable);
 *   3. the auth files, in containers/image's order, falling through to the
 *      next file while one has nothing for the registry: q->authfile (which
 *      must exist) or $REGISTRY_AUTH_FILE, else
 *      $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/$UID/auth.json
 *      when XDG_RUNTIME_DIR is unset); then $XDG_CONFIG_HOME/containers/auth.json
 *      (~/.config/...), $DOCKER_CONFIG/config.json (~/.docker/config.json)
 *      and the legacy ~/.dockercfg. In a file: "credHelpers"[host] runs
 *      docker-credential-<name> get; else the "auths" key for
 *      registry/repository, the longest matching namespace, down to the
 *      registry itself, then the registry in any spelling docker wrote
 *      ("https://index.docker.io/v1/" for docker.io, "https://host/v2/");
 *      else "credsStore" (docker's; containers/image ignores it). A helper
 *      with nothing for the registry falls through as well. A Kubernetes
 *      .dockerconfigjson file has the same format.
 * Returns 0 with out->kind PROTO_CRED_NONE when nothing matches (anonymous),
 * 0 with credentials, or an error (OCISYNC_EUSAGE for bad flags/variables,
 * OCISYNC_EJSON for an unreadable auth file, OCISYNC_EUNAUTHORIZED when a
 * credential helper fails) with a message in err naming the source.
 */
int proto_cred_lookup(const struct proto_cred_query *q, struct proto_cred *out, char *err,
                      size_t errlen);

/*
 * The scope (struct proto_cred's) that proto_cred_lookup would give for q,
 * from the same sources, without running a credential helper: endpoints
 * with different scopes cannot share credentials. Into scope.
 */
int proto_cred_scope(const struct proto_cred_query *q, char *scope, size_t len, char *err,
                     size_t errlen);

/*
 * Runs "docker-credential-<helper> get" with the registry on stdin and
 * parses {"Username":..,"Secret":..}; username "<token>" means an identity
 * token. Waits at most timeout_ms. Returns 0 or an error with a message.
 */
int proto_cred_helper_get(const char *helper, const char *registry, int timeout_ms,
                          struct proto_cred *out, char *err, size_t errlen);

/*
 * The auth file `ocisync login` writes, where podman login writes: authfile
 * if given, else $REGISTRY_AUTH_FILE, else
 * ${XDG_RUNTIME_DIR}/containers/auth.json when XDG_RUNTIME_DIR is set, else
 * /run/containers/$UID/auth.json. Into buf. UV_ENOENT when XDG_RUNTIME_DIR
 * names a directory that does not exist.
 */
int proto_cred_default_authfile(const char *authfile, char *buf, size_t len);

/*
 * The first auth file, in proto_cred_lookup's order, with an entry (or a
 * credential helper) for registry (perhaps with a repository path), into
 * path; OCISYNC_ENOTFOUND when none has one. For logout's messages.
 */
int proto_cred_find_file(const char *authfile, const char *registry, char *path, size_t len,
                         char *err, size_t errlen);

/*
 * Adds or replaces auths[registry].auth = base64(user:password) in path,
 * keeping every other key; creates the file and its directory if needed.
 * Written to a temp file with mode 0600 and renamed over, so a crash never
 * leaves half a file.
 */
int proto_cred_store(const char *path, const char *registry, const char *user, const char *password,
                     char *err, size_t errlen);
/* Removes auths[registry]; OCISYNC_ENOTFOUND if it was not there. */
int proto_cred_erase(const char *path, const char *registry, char *err, size_t errlen);

#endif
