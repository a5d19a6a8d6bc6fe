/*
 * Where registry credentials come from: command-line flags, environment
 * variables, auth files (Docker's config.json, containers' auth.json,
 * Kubernetes' .dockerconfigjson) and docker-credential-* helpers; and adding
 * and removing auth-file entries for `ocisync login` and `logout`.
 *
 * The rules follow docker/cli and containers/image so that a file written by
 * `docker login` or `podman login` works unchanged. Buffers that held a secret
 * are wiped before they are freed, and no message quotes file content that
 * could hold one: JSON errors give a line and a column, never the text.
 */
#define _GNU_SOURCE

#include "proto/auth.h"
#include "proto/internal.h"

#include "common/log.h"
#include "common/json_depth.h"
#include "common/msg.h"
#include "common/sysio.h"
#include "ocisync.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The largest auth file we read; real ones are a few KiB. */
#define AUTHFILE_MAX (4 * 1024 * 1024)
/*
 * Auth files nest three levels (file, "auths", entry). jansson recurses once
 * per level when parsing and again when freeing, so deeper input is refused
 * before it gets there.
 */
#define AUTHFILE_MAX_DEPTH 64
/* A user name, password or token from a flag, a variable, a file or a helper. */
#define CRED_FIELD_MAX PROTO_AUTH_MAX_TOKEN
/* A registry name: host[:port], perhaps followed by a namespace path. */
#define REGISTRY_MAX 1024
/* What a credential helper may print on stdout, and how much of stderr we keep. */
#define HELPER_OUT_MAX (64 * 1024)
#define HELPER_ERR_MAX 4096
/*
 * How long proto_cred_lookup waits for a helper. Helpers that ask a cloud
 * provider for a token take seconds; a minute only guards against one that
 * hangs forever.
 */
#define HELPER_TIMEOUT_MS 60000
/* How many characters of a helper's own error line a message quotes. */
#define QUOTE_MAX 200

/* Docker stores and asks helpers for Docker Hub's credentials under its v1 index URL. */
#define DOCKER_HUB_KEY "https://index.docker.io/v1/"
/* What every docker-credential-helpers program prints when it has nothing for a registry. */
#define NOT_FOUND_MESSAGE "credentials not found in native keychain"

/* Frees a buffer that may have held a secret, wiping it first. */
static void wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

static void wipe_free_str(char *s)
{
    if (s != NULL)
        wipe_free(s, strlen(s));
}

/* ---------------------------------------------------------------------------------------------
 * Base64. auth.c has the general versions; these keep the credential code
 * self-contained and strict in the way auth files need.
 */

/* Standard base64 with padding, malloc'ed; NULL on allocation failure. */
static char *b64_encode(const void *data, size_t len)
{
    char *out;

    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/*
 * Decodes standard base64, padding optional, into a malloc'ed buffer with a
 * NUL after the data. EVP_DecodeBlock skips whitespace and wants whole
 * quads, so the input is checked and padded here first. Returns the length,
 * -1 for malformed input or -2 when out of memory.
 */
static ssize_t b64_decode(const char *s, size_t len, unsigned char **out)
{
    size_t data = len, pad, padded;
    char *tmp = NULL;
    unsigned char *buf = NULL;
    ssize_t ret = -1;
    int n;

    *out = NULL;
    while (data > 0 && s[data - 1] == '=')
        data--;
    pad = len - data;
    if (pad > 2 || (pad > 0 && len % 4 != 0) || data % 4 == 1 || len > (size_t)INT_MAX / 2)
        return -1;
    for (size_t i = 0; i < data; i++) {
        if (!b64_char((unsigned char)s[i]))
            return -1;
    }
    padded = (data + 3) / 4 * 4;
    tmp = malloc(padded + 1);
    buf = malloc(padded / 4 * 3 + 1);
    if (tmp == NULL || buf == NULL) {
        ret = -2;
        goto out;
    }
    memcpy(tmp, s, data);
    memset(tmp + data, '=', padded - data);
    tmp[padded] = '\0';
    n = EVP_DecodeBlock(buf, (const unsigned char *)tmp, (int)padded);
    if (n < 0)
        goto out;
    /* EVP_DecodeBlock counts the zero bytes that padding stands for. */
    n -= (int)(padded - data);
    /* Bits left over in the last character must be zero (RFC 4648 3.5), as Go insists. */
    if (data % 4 != 0) {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned v = (unsigned)(strchr(alphabet, s[data - 1]) - alphabet);
        if ((data % 4 == 2 && (v & 0x0f) != 0) || (data % 4 == 3 && (v & 0x03) != 0))
            goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    ret = n;
out:
    wipe_free(tmp, padded + 1);
    wipe_free(buf, padded / 4 * 3 + 1);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */

/* An environment variable, with an empty value counting as unset. */
static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Tokens go into an HTTP header as they are, so only visible ASCII may pass. */
static bool header_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    }
    return true;
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    }
    return false;
}

static int check_registry(const char *registry, char *err, size_t errlen)
{
    if (registry == NULL || registry[0] == '\0') {
        ocisync__errf(err, errlen, "no registry given for credentials");
        return OCISYNC_EUSAGE;
    }
    if (strlen(registry) > REGISTRY_MAX || has_control(registry) || strchr(registry, ' ') != NULL) {
        ocisync__errf(err, errlen, "invalid registry name for credentials");
        return OCISYNC_EUSAGE;
    }
    return 0;
}

static int cred_set(struct proto_cred *out, enum proto_cred_kind kind, const char *user,
                    const char *secret, const char *source)
{
    char *u = NULL, *s = NULL;

    if (user != NULL && (u = strdup(user)) == NULL)
        return UV_ENOMEM;
    if ((s = strdup(secret)) == NULL) {
        wipe_free_str(u);
        return UV_ENOMEM;
    }
    out->kind = kind;
    out->username = u;
    out->secret = s;
    snprintf(out->source, sizeof(out->source), "%s", source);
    return 0;
}

void proto_cred_dispose(struct proto_cred *c)
{
    if (c == NULL)
        return;
    wipe_free_str(c->username);
    wipe_free_str(c->secret);
    memset(c, 0, sizeof(*c));
}

static int home_dir(char *buf, size_t len)
{
    const char *home = env_get("HOME");
    struct passwd pw, *res = NULL;
    char pwbuf[4096];

    if (home == NULL) {
        if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL ||
            res->pw_dir == NULL || res->pw_dir[0] == '\0')
            return UV_ENOENT;
        home = res->pw_dir;
    }
    if ((size_t)snprintf(buf, len, "%s", home) >= len)
        return OCISYNC_ETOOBIG;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Matching registries against auth-file keys
 */

/* docker.io is also known by its index and API host names; all three are one registry. */
static bool is_docker_hub(const char *h, size_t n)
{
    return (n == 9 && memcmp(h, "docker.io", 9) == 0) ||
           (n == 15 && memcmp(h, "index.docker.io", 15) == 0) ||
           (n == 20 && memcmp(h, "registry-1.docker.io", 20) == 0);
}

static bool same_registry(const char *a, size_t an, const char *b, size_t bn)
{
    if (is_docker_hub(a, an) && is_docker_hub(b, bn))
        return true;
    return an == bn && memcmp(a, b, an) == 0;
}

/* Paths that old Docker versions put after the host in keys, naming no namespace. */
static bool is_api_path(const char *p)
{
    return strcmp(p, "/") == 0 || strcmp(p, "/v1") == 0 || strcmp(p, "/v1/") == 0 ||
           strcmp(p, "/v2") == 0 || strcmp(p, "/v2/") == 0;
}

/*
 * If key names a whole registry, in any spelling Docker has written
 * ("host", "https://host", "http://host/v1/", "host/v1/"), finds its host.
 * With a scheme, any path is dropped, as both docker/cli and containers/image
 * do. Without one, a path other than an API path makes the key a namespace
 * ("quay.io/team", a containers/image extension), which never stands for the
 * whole registry: credentials meant for one team must not reach the others.
 */
static bool key_host(const char *key, const char **host, size_t *hostlen)
{
    const char *p = key, *slash;
    bool scheme = false;

    if (strncasecmp(p, "https://", 8) == 0) {
        p += 8;
        scheme = true;
    } else if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
        scheme = true;
    }
    slash = strchr(p, '/');
    if (slash != NULL && !scheme && !is_api_path(slash))
        return false;
    *host = p;
    *hostlen = slash != NULL ? (size_t)(slash - p) : strlen(p);
    return *hostlen > 0;
}

/*
 * The registry a key in a legacy ~/.dockercfg names: there every key is a
 * registry, written as an API URL ("https://host/v1/") or a bare host, so
 * the scheme and any path are dropped, as containers/image does.
 */
static bool legacy_key_host(const char *key, const char **host, size_t *hostlen)
{
    const char *p = key;

    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    *host = p;
    *hostlen = strcspn(p, "/");
    return *hostlen > 0;
}

/*
 * Finds obj's entry for registry (host[:port], perhaps followed by a
 * repository path), as containers/image does: the exact key first; then,
 * for a registry with a path, each shorter namespace down to the bare host,
 * so the longest key that is a whole-component prefix wins ("host/team"
 * matches "host/team/app/sub", never "host/teamwork"); then, in file order,
 * the first key naming the same registry in another spelling. A legacy
 * file (~/.dockercfg) has registry keys only. *key_out receives the key
 * that matched.
 */
static json_t *find_entry(json_t *obj, const char *registry, bool legacy, const char **key_out)
{
    char buf[REGISTRY_MAX + 1];
    size_t hostlen = strcspn(registry, "/");
    const char *key, *h;
    size_t hn;
    json_t *v;
    void *it;

    snprintf(buf, sizeof(buf), "%.*s", legacy ? (int)hostlen : (int)strlen(registry), registry);
    for (;;) {
        it = json_object_iter_at(obj, buf);
        if (it != NULL) {
            *key_out = json_object_iter_key(it);
            return json_object_iter_value(it);
        }
        char *slash = strrchr(buf, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
    }
    json_object_foreach(obj, key, v)
    {
        bool named = legacy ? legacy_key_host(key, &h, &hn) : key_host(key, &h, &hn);
        if (named && same_registry(h, hn, registry, hostlen)) {
            *key_out = key;
            return v;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing auth files
 */

static bool all_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    }
    return true;
}

/*
 * jansson's messages quote the text near the error ("invalid token near
 * 'dXNlcjpw'"), which in an auth file is likely a secret; keep only the
 * description and point at the position instead.
 */
static int json_fail(const json_error_t *je, const char *path, char *err, size_t errlen)
{
    static const char *const cuts[] = {" near", " '", " 0x", "\\u"};
    char text[JSON_ERROR_TEXT_LENGTH];

    snprintf(text, sizeof(text), "%s", je->text);
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        char *p = strstr(text, cuts[i]);
        if (p != NULL)
            *p = '\0';
    }
    ocisync__errf(err, errlen, "%s: invalid JSON at line %d, column %d: %s", path, je->line,
                  je->column, text[0] != '\0' ? text : "malformed string");
    return OCISYNC_EJSON;
}

/* Parses an auth file's text into its top-level object, wiping nothing: the caller owns json. */
static int load_json(const char *json, size_t len, const char *path, json_t **root, char *err,
                     size_t errlen)
{
    json_error_t je;

    *root = NULL;
    if (len > AUTHFILE_MAX) {
        ocisync__errf(err, errlen, "%s: larger than %d bytes", path, AUTHFILE_MAX);
        return OCISYNC_ETOOBIG;
    }
    if (all_space(json, len)) {
        /* docker/cli reads an empty config.json as an empty configuration. */
        *root = json_object();
        return *root != NULL ? 0 : UV_ENOMEM;
    }
    if (ocisync__json_too_deep(json, len, AUTHFILE_MAX_DEPTH)) {
        ocisync__errf(err, errlen, "%s: invalid JSON: nested more than %d levels deep", path,
                      AUTHFILE_MAX_DEPTH);
        return OCISYNC_EJSON;
    }
    *root = json_loadb(json, len, 0, &je);
    if (*root == NULL)
        return json_fail(&je, path, err, errlen);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        ocisync__errf(err, errlen, "%s: invalid JSON: the top level is not an object", path);
        return OCISYNC_EJSON;
    }
    return 0;
}

/*
 * The object under name in root, or NULL when it is absent or null;
 * OCISYNC_EJSON if it is something else.
 */
static int get_object(json_t *root, const char *name, const char *path, json_t **out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(root, name);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        ocisync__errf(err, errlen, "%s: \"%s\" is not an object", path, name);
        return OCISYNC_EJSON;
    }
    *out = v;
    return 0;
}

/* A string field of an "auths" entry; absent, null and "" all give NULL. */
static int entry_string(json_t *entry, const char *field, const char *path, const char *key,
                        const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(entry, field);
    struct ocisync__clipped ck;

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        ocisync__errf(err, errlen, "%s: \"%s\" of the \"auths\" entry \"%s\" is not a string", path,
                      field, ocisync__clip(key, QUOTE_MAX, &ck));
        return OCISYNC_EJSON;
    }
    if (json_string_length(v) > CRED_FIELD_MAX) {
        ocisync__errf(err, errlen,
                      "%s: \"%s\" of the \"auths\" entry \"%s\" is longer than %d bytes", path,
                      field, ocisync__clip(key, QUOTE_MAX, &ck), CRED_FIELD_MAX);
        return OCISYNC_ETOOBIG;
    }
    /* A NUL inside would silently cut the value short. */
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        ocisync__errf(err, errlen, "%s: \"%s\" of the \"auths\" entry \"%s\" contains a NUL byte",
                      path, field, ocisync__clip(key, QUOTE_MAX, &ck));
        return OCISYNC_EJSON;
    }
    if (json_string_length(v) > 0)
        *out = json_string_value(v);
    return 0;
}

/*
 * Turns an "auths" entry into credentials. Docker's precedence: a registry
 * token is used as it is, an identity token means the OAuth2 refresh flow,
 * otherwise "auth" (base64 "user:password") or, when "auth" is empty, the
 * plain "username" and "password" fields docker/cli and kubectl also
 * accept. An entry with none of these (Docker writes {} next to a
 * credsStore) leaves out->kind PROTO_CRED_NONE.
 */
static int entry_cred(json_t *entry, const char *path, const char *key, struct proto_cred *out,
                      char *err, size_t errlen)
{
    const char *auth, *identity, *regtoken, *user_field, *pass_field;
    const char *user = NULL, *pass = NULL;
    unsigned char *decoded = NULL;
    ssize_t n = 0;
    struct ocisync__clipped ck;
    char *colon;
    int r;

    if (!json_is_object(entry)) {
        ocisync__errf(err, errlen, "%s: the \"auths\" entry \"%s\" is not an object", path,
                      ocisync__clip(key, QUOTE_MAX, &ck));
        return OCISYNC_EJSON;
    }
    if ((r = entry_string(entry, "auth", path, key, &auth, err, errlen)) != 0 ||
        (r = entry_string(entry, "identitytoken", path, key, &identity, err, errlen)) != 0 ||
        (r = entry_string(entry, "registrytoken", path, key, &regtoken, err, errlen)) != 0 ||
        (r = entry_string(entry, "username", path, key, &user_field, err, errlen)) != 0 ||
        (r = entry_string(entry, "password", path, key, &pass_field, err, errlen)) != 0)
        return r;

    if (regtoken != NULL) {
        if (!header_safe(regtoken)) {
            ocisync__errf(
                err, errlen,
                "%s: \"registrytoken\" of the \"auths\" entry \"%s\" contains characters not "
                "allowed in an HTTP header",
                path, ocisync__clip(key, QUOTE_MAX, &ck));
            return OCISYNC_EJSON;
        }
        return cred_set(out, PROTO_CRED_REGISTRY_TOKEN, NULL, regtoken, path);
    }

    if (auth != NULL) {
        n = b64_decode(auth, strlen(auth), &decoded);
        if (n == -2)
            return UV_ENOMEM;
        if (n < 0) {
            ocisync__errf(err, errlen,
                          "%s: \"auth\" of the \"auths\" entry \"%s\" is not valid base64", path,
                          ocisync__clip(key, QUOTE_MAX, &ck));
            r = OCISYNC_EJSON;
            goto out;
        }
        colon = memchr(decoded, ':', (size_t)n);
        if (colon == NULL) {
            ocisync__errf(err, errlen,
                          "%s: \"auth\" of the \"auths\" entry \"%s\" is not base64 of "
                          "\"username:password\" (no ':')",
                          path, ocisync__clip(key, QUOTE_MAX, &ck));
            r = OCISYNC_EJSON;
            goto out;
        }
        *colon = '\0';
        user = (const char *)decoded;
        pass = colon + 1;
        /* docker/cli and containers/image both trim NULs around the password. */
        {
            char *p = colon + 1, *end = (char *)decoded + n;
            while (p < end && *p == '\0')
                p++;
            while (end > p && end[-1] == '\0')
                end--;
            *end = '\0';
            pass = p;
            if (strlen(user) != (size_t)(colon - (char *)decoded) ||
                strlen(pass) != (size_t)(end - p)) {
                ocisync__errf(err, errlen,
                              "%s: \"auth\" of the \"auths\" entry \"%s\" contains a NUL byte",
                              path, ocisync__clip(key, QUOTE_MAX, &ck));
                r = OCISYNC_EJSON;
                goto out;
            }
        }
        if (user[0] == '\0' && identity == NULL) {
            ocisync__errf(err, errlen,
                          "%s: \"auth\" of the \"auths\" entry \"%s\" has an empty username", path,
                          ocisync__clip(key, QUOTE_MAX, &ck));
            r = OCISYNC_EJSON;
            goto out;
        }
    } else if (user_field != NULL) {
        /* Basic authentication cannot carry a ':' in the username (RFC 7617). */
        if (strchr(user_field, ':') != NULL) {
            ocisync__errf(err, errlen,
                          "%s: \"username\" of the \"auths\" entry \"%s\" contains ':'", path,
                          ocisync__clip(key, QUOTE_MAX, &ck));
            return OCISYNC_EJSON;
        }
        user = user_field;
        pass = pass_field != NULL ? pass_field : "";
    }

    if (identity != NULL)
        r = cred_set(out, PROTO_CRED_IDENTITY, user != NULL && user[0] != '\0' ? user : "<token>",
                     identity, path);
    else if (user != NULL)
        r = cred_set(out, PROTO_CRED_BASIC, user, pass, path);
    else
        r = 0;
out:
    if (decoded != NULL)
        wipe_free(decoded, (size_t)(n > 0 ? n : 0) + 1);
    return r;
}

/*
 * docker-credential-<name> is looked up on PATH, so a name with a slash
 * could run any program; allow what real helper names use.
 */
static bool valid_helper_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n >= PROTO__CRED_HELPER_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '+'))
            return false;
    }
    return true;
}

static int use_helper(json_t *v, const char *what, const char *key, const char *path,
                      struct proto__authfile_match *out, char *err, size_t errlen)
{
    struct ocisync__clipped ck;

    if (!json_is_string(v) || !valid_helper_name(json_string_value(v))) {
        ocisync__errf(err, errlen, "%s: %s%s%s is not a valid credential helper name", path, what,
                      key != NULL ? " for " : "",
                      key != NULL ? ocisync__clip(key, QUOTE_MAX, &ck) : "");
        return OCISYNC_EJSON;
    }
    out->use = PROTO__AUTHFILE_HELPER;
    snprintf(out->helper, sizeof(out->helper), "%s", json_string_value(v));
    snprintf(out->key, sizeof(out->key), "%s", key != NULL ? key : "");
    return 0;
}

int proto__cred_parse_authfile(const char *json, size_t len, const char *path, const char *registry,
                               bool legacy, struct proto__authfile_match *out, char *err,
                               size_t errlen)
{
    json_t *root = NULL, *helpers, *auths, *store, *v;
    char host[REGISTRY_MAX + 1];
    const char *key = NULL;
    bool skip_store = false;
    int r;

    memset(out, 0, sizeof(*out));
    if ((r = check_registry(registry, err, errlen)) != 0)
        return r;
    if ((r = load_json(json, len, path, &root, err, errlen)) != 0)
        return r;
    if (legacy) {
        /* ~/.dockercfg is the "auths" object itself, without helpers. */
        if ((v = find_entry(root, registry, true, &key)) != NULL) {
            r = entry_cred(v, path, key, &out->cred, err, errlen);
            if (r == 0 && out->cred.kind != PROTO_CRED_NONE) {
                out->use = PROTO__AUTHFILE_CRED;
                snprintf(out->key, sizeof(out->key), "%s", key);
            }
        }
        goto out;
    }

    /*
     * credHelpers are per registry host, never per namespace (neither Docker
     * nor containers/image passes a namespace to a helper).
     */
    snprintf(host, sizeof(host), "%.*s", (int)strcspn(registry, "/"), registry);
    if ((r = get_object(root, "credHelpers", path, &helpers, err, errlen)) != 0)
        goto out;
    if (helpers != NULL && (v = find_entry(helpers, host, false, &key)) != NULL) {
        /*
         * docker/cli reads an empty helper name as "this registry uses the
         * file itself", which also keeps credsStore out of it.
         */
        if (!(json_is_string(v) && json_string_length(v) == 0)) {
            r = use_helper(v, "\"credHelpers\"", key, path, out, err, errlen);
            goto out;
        }
        skip_store = true;
    }

    if ((r = get_object(root, "auths", path, &auths, err, errlen)) != 0)
        goto out;
    if (auths != NULL && (v = find_entry(auths, registry, false, &key)) != NULL) {
        r = entry_cred(v, path, key, &out->cred, err, errlen);
        if (r != 0)
            goto out;
        if (out->cred.kind != PROTO_CRED_NONE) {
            out->use = PROTO__AUTHFILE_CRED;
            snprintf(out->key, sizeof(out->key), "%s", key);
            goto out;
        }
    }

    store = json_object_get(root, "credsStore");
    if (!skip_store && store != NULL && !json_is_null(store) &&
        !(json_is_string(store) && json_string_length(store) == 0))
        r = use_helper(store, "\"credsStore\"", NULL, path, out, err, errlen);
out:
    json_decref(root);
    if (r != 0) {
        proto_cred_dispose(&out->cred);
        memset(out, 0, sizeof(*out));
    }
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Reading files
 */

/*
 * Reads path into a malloc'ed, NUL-terminated buffer of at most cap bytes.
 * Returns UV_ENOENT (without a message) when the file or a directory on the
 * way does not exist; any other failure is an error naming the file.
 */
static int read_file(const char *path, size_t cap, char **buf_out, size_t *len_out, char *err,
                     size_t errlen)
{
    size_t len = 0, size = 0;
    char *buf = NULL, *nb;
    struct stat st;
    ssize_t n;
    int fd, r = 0;

    *buf_out = NULL;
    *len_out = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return UV_ENOENT;
        r = uv_translate_sys_error(errno);
        ocisync__errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return r;
    }
    /* The size is only a first guess: process substitution gives a pipe. */
    size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size < cap
               ? (size_t)st.st_size + 1
               : 4096;
    for (;;) {
        if (len == size || buf == NULL) {
            size_t ns = buf == NULL ? size : size * 2;
            if (ns > cap + 1)
                ns = cap + 1;
            nb = malloc(ns + 1);
            if (nb == NULL) {
                r = UV_ENOMEM;
                goto out;
            }
            if (buf != NULL)
                memcpy(nb, buf, len);
            wipe_free(buf, size + 1);
            buf = nb;
            size = ns;
        }
        n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = uv_translate_sys_error(errno);
            ocisync__errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > cap) {
            ocisync__errf(err, errlen, "%s: larger than %zu bytes", path, cap);
            r = OCISYNC_ETOOBIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
out:
    wipe_free(buf, size + 1);
    close(fd);
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Credential helpers: the docker-credential-helpers protocol. "get" reads the
 * server URL on stdin and prints {"ServerURL","Username","Secret"} on
 * stdout; on failure it prints the error on stdout and exits 1.
 */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Finds docker-credential-<helper> on PATH, as execvp would, but skipping
 * empty (current directory) entries: a credential helper is never run from
 * wherever the user happens to be.
 */
static int find_helper(const char *helper, char *buf, size_t len)
{
    const char *path = env_get("PATH"), *p, *end;
    struct stat st;

    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
        end = strchrnul(p, ':');
        if (end == p)
            continue;
        if ((size_t)snprintf(buf, len, "%.*s/docker-credential-%s", (int)(end - p), p, helper) >=
            len)
            continue;
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
            return 0;
    }
    return UV_ENOENT;
}

/* A pipe with both ends close-on-exec and above the standard descriptors. */
static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return uv_translate_sys_error(errno);
    for (int i = 0; i < 2; i++) {
        /*
         * If our own stdin/stdout/stderr were closed, the pipe may have taken
         * their numbers, and the child's dup2 onto 0..2 would clobber one end.
         */
        if (fds[i] <= 2) {
            int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            int e = errno;
            close(fds[i]);
            fds[i] = fd;
            if (fd < 0) {
                close(fds[1 - i]);
                fds[0] = fds[1] = -1;
                return uv_translate_sys_error(e);
            }
        }
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

struct helper_run {
    char *out; /* owned, wiped: stdout, NUL-terminated, at most HELPER_OUT_MAX bytes */
    size_t out_len;
    char errout[HELPER_ERR_MAX + 1]; /* the start of stderr, NUL-terminated */
    size_t err_len;
    int status; /* from waitpid */
};

/* Reads what is there on fd into buf (up to room bytes); -1 at end of file or on error. */
static ssize_t drain(int fd, char *buf, size_t room)
{
    char scratch[4096];
    ssize_t n;

    do
        n = room > 0 ? read(fd, buf, room) : read(fd, scratch, sizeof(scratch));
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n <= 0)
        return -1;
    /* Past the room we keep, reading on only stops the child blocking on a full pipe. */
    return room > 0 ? n : 0;
}

/*
 * Runs exe with "get", input on stdin, collecting stdout and stderr until
 * both close and the child exits, all within timeout_ms; a child that takes
 * longer or prints more than HELPER_OUT_MAX is killed.
 */
static int run_helper(const char *exe, const char *name, const char *input, int timeout_ms,
                      struct helper_run *run, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    char *argv[] = {(char *)exe, (char *)"get", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false, reaped = false;
    sigset_t mask, def;
    int64_t deadline;
    pid_t pid = -1;
    size_t in_len = strlen(input);
    int r, rc;

    memset(run, 0, sizeof(*run));
    if ((r = make_pipe(in)) != 0 || (r = make_pipe(outp)) != 0 || (r = make_pipe(errp)) != 0) {
        ocisync__errf(err, errlen, "docker-credential-%s: cannot create a pipe", name);
        goto out;
    }
    /*
     * The input (at most REGISTRY_MAX bytes) fits in an empty pipe's buffer,
     * so it is written before the child exists: we never block on a helper
     * that does not read, nor get SIGPIPE from one that exits early. Like
     * docker, no newline follows it.
     */
    while (in_len > 0) {
        ssize_t n = write(in[1], input, in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = uv_translate_sys_error(errno);
            ocisync__errf(err, errlen, "docker-credential-%s: cannot write its input", name);
            goto out;
        }
        input += n;
        in_len -= (size_t)n;
    }
    close_fd(&in[1]);

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        goto spawn_failed;
    fa_init = true;
    if ((rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, outp[1], 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, errp[1], 2)) != 0)
        goto spawn_failed;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* An embedding program may hold descriptors without close-on-exec. */
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0)
        goto spawn_failed;
#endif
    if ((rc = posix_spawnattr_init(&attr)) != 0)
        goto spawn_failed;
    attr_init = true;
    /*
     * Ignored signals stay ignored across exec; a helper (often a shell
     * script) must see SIGPIPE and friends as usual, and no blocked mask.
     */
    sigemptyset(&mask);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGQUIT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGCHLD);
    if ((rc = posix_spawnattr_setsigmask(&attr, &mask)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&attr, &def)) != 0 ||
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0)
        goto spawn_failed;
    if ((rc = posix_spawn(&pid, exe, &fa, &attr, argv, environ)) != 0) {
        pid = -1;
        goto spawn_failed;
    }
    close_fd(&in[0]);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);

    run->out = malloc(HELPER_OUT_MAX + 2);
    if (run->out == NULL) {
        r = UV_ENOMEM;
        goto out;
    }
    deadline = now_ms() + timeout_ms;
    while (outp[0] >= 0 || errp[0] >= 0) {
        struct pollfd pfd[2];
        int nfd = 0;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            goto timed_out;
        if (outp[0] >= 0)
            pfd[nfd++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
        if (errp[0] >= 0)
            pfd[nfd++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
        if (poll(pfd, (nfds_t)nfd, (int)(left > INT_MAX ? INT_MAX : left)) < 0) {
            if (errno == EINTR)
                continue;
            r = uv_translate_sys_error(errno);
            ocisync__errf(err, errlen, "docker-credential-%s: poll failed", name);
            goto out;
        }
        for (int i = 0; i < nfd; i++) {
            ssize_t n;
            if (pfd[i].revents == 0)
                continue;
            if (pfd[i].fd == outp[0]) {
                /* One byte more than the cap tells "too much" from "exactly the cap". */
                n = drain(outp[0], run->out + run->out_len, HELPER_OUT_MAX + 1 - run->out_len);
                if (n < 0) {
                    close_fd(&outp[0]);
                    continue;
                }
                run->out_len += (size_t)n;
                if (run->out_len > HELPER_OUT_MAX) {
                    ocisync__errf(err, errlen,
                                  "docker-credential-%s get printed more than %d bytes", name,
                                  HELPER_OUT_MAX);
                    r = OCISYNC_ETOOBIG;
                    goto out;
                }
            } else {
                n = drain(errp[0], run->errout + run->err_len, HELPER_ERR_MAX - run->err_len);
                if (n < 0) {
                    close_fd(&errp[0]);
                    continue;
                }
                run->err_len += (size_t)n;
            }
        }
    }
    /* Both pipes closed; the child may still be on its way out. */
    for (;;) {
        pid_t w = waitpid(pid, &run->status, WNOHANG);
        if (w == pid) {
            reaped = true;
            break;
        }
        if (w < 0 && errno != EINTR) {
            r = uv_translate_sys_error(errno);
            ocisync__errf(err, errlen, "docker-credential-%s: cannot wait for it: %s", name,
                          strerror(errno));
            goto out;
        }
        if (now_ms() >= deadline)
            goto timed_out;
        nanosleep(&(struct timespec){.tv_nsec = 2 * 1000 * 1000}, NULL);
    }
    run->out[run->out_len] = '\0';
    run->errout[run->err_len] = '\0';
    r = 0;
    goto out;

timed_out:
    ocisync__errf(err, errlen, "docker-credential-%s get did not finish within %d ms", name,
                  timeout_ms);
    r = OCISYNC_ETIMEOUT;
    goto out;
spawn_failed:
    r = uv_translate_sys_error(rc);
    ocisync__errf(err, errlen, "cannot run %s: %s", exe, strerror(rc));
out:
    if (pid > 0 && !reaped) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    if (r != 0) {
        wipe_free(run->out, HELPER_OUT_MAX + 2);
        run->out = NULL;
    }
    return r;
}

/* s with surrounding whitespace removed, in place. */
static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    *end = '\0';
    return s;
}

/* The first line of s (trimmed, in place), or NULL if s is blank. */
static char *first_line(char *s)
{
    s = trim(s);
    if (*s == '\0')
        return NULL;
    s[strcspn(s, "\r\n")] = '\0';
    return s;
}

/* Reads {"Username": ..., "Secret": ...} from a helper's output. */
static int parse_helper_output(const char *name, struct helper_run *run, struct proto_cred *out,
                               char *err, size_t errlen)
{
    json_t *root = NULL, *u, *s;
    json_error_t je;
    char source[PROTO__CRED_HELPER_NAME_MAX + 32];
    int r = 0;

    snprintf(source, sizeof(source), "docker-credential-%s", name);
    /* The output holds the secret: a parse error names the helper, never the text. */
    root = json_loadb(run->out, run->out_len, JSON_DISABLE_EOF_CHECK, &je);
    if (root == NULL || !json_is_object(root)) {
        ocisync__errf(err, errlen, "%s get printed something other than a JSON object", source);
        r = OCISYNC_EUNAUTHORIZED;
        goto out;
    }
    u = json_object_get(root, "Username");
    s = json_object_get(root, "Secret");
    if ((u != NULL && !json_is_string(u)) || (s != NULL && !json_is_string(s))) {
        ocisync__errf(err, errlen,
                      "%s get printed a \"Username\" or \"Secret\" that is not a string", source);
        r = OCISYNC_EUNAUTHORIZED;
        goto out;
    }
    const char *user = u != NULL ? json_string_value(u) : "";
    const char *secret = s != NULL ? json_string_value(s) : "";
    if ((u != NULL && strlen(user) != json_string_length(u)) ||
        (s != NULL && strlen(secret) != json_string_length(s))) {
        ocisync__errf(err, errlen, "%s get printed a \"Username\" or \"Secret\" with a NUL byte",
                      source);
        r = OCISYNC_EUNAUTHORIZED;
        goto out;
    }
    if (user[0] == '\0' && secret[0] == '\0')
        goto out; /* nothing stored: anonymous */
    if (strcmp(user, "<token>") != 0 && strchr(user, ':') != NULL) {
        ocisync__errf(err, errlen, "%s get printed a \"Username\" containing ':'", source);
        r = OCISYNC_EUNAUTHORIZED;
        goto out;
    }
    if (strcmp(user, "<token>") == 0)
        r = cred_set(out, PROTO_CRED_IDENTITY, "<token>", secret, source);
    else
        r = cred_set(out, PROTO_CRED_BASIC, user, secret, source);
out:
    json_decref(root);
    return r;
}

int proto_cred_helper_get(const char *helper, const char *registry, int timeout_ms,
                          struct proto_cred *out, char *err, size_t errlen)
{
    char exe[PATH_MAX];
    struct helper_run run = {0};
    struct ocisync__clipped cl;
    char *line;
    int r;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (helper == NULL || !valid_helper_name(helper)) {
        ocisync__errf(err, errlen, "invalid credential helper name");
        return OCISYNC_EUSAGE;
    }
    if ((r = check_registry(registry, err, errlen)) != 0)
        return r;
    if (timeout_ms <= 0)
        timeout_ms = HELPER_TIMEOUT_MS;
    if (find_helper(helper, exe, sizeof(exe)) != 0) {
        ocisync__errf(err, errlen, "credential helper docker-credential-%s not found in $PATH",
                      helper);
        return UV_ENOENT;
    }
    LOG_DEBUG("credentials: running %s get for %s", exe, registry);
    if ((r = run_helper(exe, helper, registry, timeout_ms, &run, err, errlen)) != 0)
        goto out;

    if (WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) {
        r = parse_helper_output(helper, &run, out, err, errlen);
        goto out;
    }
    /* Helpers print their errors on stdout; some also or instead on stderr. */
    if (strcmp(trim(run.out), NOT_FOUND_MESSAGE) == 0 ||
        strcmp(trim(run.errout), NOT_FOUND_MESSAGE) == 0) {
        LOG_DEBUG("credentials: docker-credential-%s has none for %s", helper, registry);
        r = 0;
        goto out;
    }
    line = first_line(run.out);
    if (line == NULL)
        line = first_line(run.errout);
    if (WIFEXITED(run.status))
        ocisync__errf(err, errlen,
                      "credential helper docker-credential-%s get for %s exited with %d%s%s",
                      helper, registry, WEXITSTATUS(run.status), line != NULL ? ": " : "",
                      line != NULL ? ocisync__clip(line, QUOTE_MAX, &cl) : "");
    else
        ocisync__errf(err, errlen,
                      "credential helper docker-credential-%s get for %s was killed by "
                      "signal %d",
                      helper, registry, WIFSIGNALED(run.status) ? WTERMSIG(run.status) : 0);
    r = OCISYNC_EUNAUTHORIZED;
out:
    wipe_free(run.out, HELPER_OUT_MAX + 2);
    OPENSSL_cleanse(run.errout, sizeof(run.errout));
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Lookup
 */

/*
 * The flags a query's values came from, for messages. The query does not
 * carry them, so they follow the per-side variable prefix.
 */
static void flag_names(const char *env_side, const char **creds, const char **token)
{
    size_t n = env_side != NULL ? strlen(env_side) : 0;

    if (n >= 5 && strcmp(env_side + n - 5, "_PULL") == 0) {
        *creds = "--src-creds";
        *token = "--src-registry-token";
    } else if (n >= 5 && strcmp(env_side + n - 5, "_PUSH") == 0) {
        *creds = "--dest-creds";
        *token = "--dest-registry-token";
    } else {
        *creds = "--creds";
        *token = "--registry-token";
    }
}

static int from_flags(const struct proto_cred_query *q, struct proto_cred *out, char *err,
                      size_t errlen)
{
    const char *creds_flag, *token_flag, *colon;
    char *user = NULL;
    int r;

    flag_names(q->env_side, &creds_flag, &token_flag);
    if (q->creds != NULL && q->registry_token != NULL) {
        ocisync__errf(err, errlen, "%s and %s cannot be used together", creds_flag, token_flag);
        return OCISYNC_EUSAGE;
    }
    if (q->registry_token != NULL) {
        if (q->registry_token[0] == '\0' || strlen(q->registry_token) > CRED_FIELD_MAX ||
            !header_safe(q->registry_token)) {
            ocisync__errf(err, errlen,
                          "%s must be a non-empty token of at most %d visible ASCII characters",
                          token_flag, CRED_FIELD_MAX);
            return OCISYNC_EUSAGE;
        }
        return cred_set(out, PROTO_CRED_REGISTRY_TOKEN, NULL, q->registry_token, token_flag);
    }
    if (q->creds == NULL)
        return 0;
    /* The value is a secret: messages describe it, never quote it. */
    colon = strchr(q->creds, ':');
    if (colon == NULL) {
        ocisync__errf(err, errlen, "%s must be USERNAME:PASSWORD (no ':' found)", creds_flag);
        return OCISYNC_EUSAGE;
    }
    if (colon == q->creds) {
        ocisync__errf(err, errlen, "%s has an empty username", creds_flag);
        return OCISYNC_EUSAGE;
    }
    if (strlen(q->creds) > 2 * CRED_FIELD_MAX) {
        ocisync__errf(err, errlen, "%s is too long", creds_flag);
        return OCISYNC_EUSAGE;
    }
    user = strndup(q->creds, (size_t)(colon - q->creds));
    if (user == NULL)
        return UV_ENOMEM;
    r = cred_set(out, PROTO_CRED_BASIC, user, colon + 1, creds_flag);
    wipe_free_str(user);
    return r;
}

/* <prefix>_USERNAME / _PASSWORD / _TOKEN; nothing set leaves out empty. */
static int from_env_prefix(const char *prefix, struct proto_cred *out, char *err, size_t errlen)
{
    char un[96], pn[96], tn[96], source[100];
    const char *u, *p, *t;

    snprintf(un, sizeof(un), "%s_USERNAME", prefix);
    snprintf(pn, sizeof(pn), "%s_PASSWORD", prefix);
    snprintf(tn, sizeof(tn), "%s_TOKEN", prefix);
    u = env_get(un);
    p = env_get(pn);
    t = env_get(tn);
    if (u == NULL && p == NULL && t == NULL)
        return 0;
    if (t != NULL && (u != NULL || p != NULL)) {
        ocisync__errf(err, errlen, "$%s and $%s cannot both be set", tn, u != NULL ? un : pn);
        return OCISYNC_EUSAGE;
    }
    if (t != NULL) {
        if (strlen(t) > CRED_FIELD_MAX || !header_safe(t)) {
            ocisync__errf(err, errlen, "$%s must be a token of at most %d visible ASCII characters",
                          tn, CRED_FIELD_MAX);
            return OCISYNC_EUSAGE;
        }
        snprintf(source, sizeof(source), "$%s", tn);
        return cred_set(out, PROTO_CRED_REGISTRY_TOKEN, NULL, t, source);
    }
    if (u != NULL && p == NULL) {
        ocisync__errf(err, errlen, "$%s is set but $%s is not", un, pn);
        return OCISYNC_EUSAGE;
    }
    if (p != NULL && u == NULL) {
        ocisync__errf(err, errlen, "$%s is set but $%s is not", pn, un);
        return OCISYNC_EUSAGE;
    }
    /* Basic authentication cannot carry a ':' in the username (RFC 7617). */
    if (strchr(u, ':') != NULL || strlen(u) > CRED_FIELD_MAX || strlen(p) > CRED_FIELD_MAX) {
        ocisync__errf(err, errlen,
                      "$%s must not contain ':' and both $%s and $%s must be at most %d bytes", un,
                      un, pn, CRED_FIELD_MAX);
        return OCISYNC_EUSAGE;
    }
    snprintf(source, sizeof(source), "$%s", un);
    return cred_set(out, PROTO_CRED_BASIC, u, p, source);
}

static int from_env(const struct proto_cred_query *q, struct proto_cred *out, char *err,
                    size_t errlen)
{
    int r;

    if (q->env_side != NULL) {
        if (strlen(q->env_side) > 64) {
            ocisync__errf(err, errlen, "environment prefix too long");
            return OCISYNC_EUSAGE;
        }
        if ((r = from_env_prefix(q->env_side, out, err, errlen)) != 0 ||
            out->kind != PROTO_CRED_NONE)
            return r;
    }
    return from_env_prefix("OCISYNC", out, err, errlen);
}

/*
 * Asks a helper for host's credentials. For Docker Hub it asks first under
 * Docker's key (what `docker login` stored), then under "docker.io" (what
 * `podman login` stores).
 */
static int ask_helper(const char *helper, const char *host, struct proto_cred *out, char *err,
                      size_t errlen)
{
    int r;

    if (!is_docker_hub(host, strlen(host)))
        return proto_cred_helper_get(helper, host, HELPER_TIMEOUT_MS, out, err, errlen);
    r = proto_cred_helper_get(helper, DOCKER_HUB_KEY, HELPER_TIMEOUT_MS, out, err, errlen);
    if (r != 0 || out->kind != PROTO_CRED_NONE)
        return r;
    return proto_cred_helper_get(helper, "docker.io", HELPER_TIMEOUT_MS, out, err, errlen);
}

const char *proto__run_containers = "/run/containers";

/* One file in the order auth files are read. */
struct auth_path {
    char path[PATH_MAX];
    bool legacy; /* ~/.dockercfg: top-level keys are registries */
    bool must;   /* named with --authfile: it must exist */
};

#define AUTH_PATHS_MAX 4

static bool add_path(struct auth_path *paths, size_t *n, bool legacy, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool add_path(struct auth_path *paths, size_t *n, bool legacy, const char *fmt, ...)
{
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(paths[*n].path, sizeof(paths[*n].path), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(paths[*n].path))
        return false;
    paths[*n].legacy = legacy;
    paths[*n].must = false;
    (*n)++;
    return true;
}

/*
 * The primary auth file, as containers/image picks it: --authfile, else
 * $REGISTRY_AUTH_FILE (skopeo's and podman's default for --authfile), both
 * "given by the user"; else $XDG_RUNTIME_DIR/containers/auth.json, else
 * /run/containers/$UID/auth.json (root's podman without a session). Returns
 * UV_ENOENT when XDG_RUNTIME_DIR names a directory that does not exist, as
 * containers/image refuses it.
 */
static int primary_path(const char *authfile, char *buf, size_t len, bool *given)
{
    struct stat st;
    const char *v;
    size_t n;

    *given = true;
    if (authfile != NULL && authfile[0] != '\0')
        n = (size_t)snprintf(buf, len, "%s", authfile);
    else if ((v = env_get("REGISTRY_AUTH_FILE")) != NULL)
        n = (size_t)snprintf(buf, len, "%s", v);
    else if ((v = env_get("XDG_RUNTIME_DIR")) != NULL) {
        *given = false;
        n = (size_t)snprintf(buf, len, "%s/containers/auth.json", v);
        if (n < len && stat(v, &st) != 0 && errno == ENOENT)
            return UV_ENOENT;
    } else {
        *given = false;
        n = (size_t)snprintf(buf, len, "%s/%u/auth.json", proto__run_containers,
                             (unsigned)getuid());
    }
    return n < len ? 0 : OCISYNC_ETOOBIG;
}

/*
 * The auth files to read, in containers/image's order (getAuthFilePaths,
 * as vendored in skopeo 1.9.3): the primary file (--authfile or
 * $REGISTRY_AUTH_FILE replacing $XDG_RUNTIME_DIR's); then the read-only
 * $XDG_CONFIG_HOME/containers/auth.json (~/.config/...),
 * $DOCKER_CONFIG/config.json (~/.docker/config.json) and ~/.dockercfg.
 */
static void auth_paths(const char *authfile, struct auth_path *paths, size_t *n)
{
    char home[PATH_MAX];
    const char *v;
    bool given = false, have_home;
    int r;

    *n = 0;
    r = primary_path(authfile, paths[0].path, sizeof(paths[0].path), &given);
    if (r == 0) {
        paths[0].legacy = false;
        paths[0].must = authfile != NULL && authfile[0] != '\0';
        (*n)++;
    } else if (r == UV_ENOENT) {
        LOG_DEBUG("credentials: $XDG_RUNTIME_DIR (%s) does not exist; its auth.json is skipped",
                  env_get("XDG_RUNTIME_DIR"));
    }
    /*
     * skopeo 1.9.3's containers/image reads the other files after the one
     * the user named, too (later versions stop there); ocisync does as the
     * skopeo it stands in for.
     */
    have_home = home_dir(home, sizeof(home)) == 0;
    if ((v = env_get("XDG_CONFIG_HOME")) != NULL)
        add_path(paths, n, false, "%s/containers/auth.json", v);
    else if (have_home)
        add_path(paths, n, false, "%s/.config/containers/auth.json", home);
    if ((v = env_get("DOCKER_CONFIG")) != NULL)
        add_path(paths, n, false, "%s/config.json", v);
    else if (have_home)
        add_path(paths, n, false, "%s/.docker/config.json", home);
    if (have_home)
        add_path(paths, n, true, "%s/.dockercfg", home);
}

/* Whether an "auths" key that matched names a namespace rather than the whole registry. */
static bool namespace_key(const char *key, bool legacy)
{
    const char *h;
    size_t hn;

    return !legacy && key[0] != '\0' && !key_host(key, &h, &hn);
}

/*
 * Reads the auth files in order, falling through to the next one when a
 * file has nothing for the registry, as containers/image does; a
 * credential helper that knows nothing of it also falls through. With
 * scope_only, no helper runs: out->scope alone is filled, with the
 * namespace key a lookup would use (a helper's credentials hold for the
 * whole registry, but one that knows nothing would let a later file's
 * namespace key win, so the walk goes on past it).
 */
static int from_files(const struct proto_cred_query *q, bool scope_only, struct proto_cred *out,
                      char *err, size_t errlen)
{
    struct auth_path paths[AUTH_PATHS_MAX];
    char key[REGISTRY_MAX + 1], host[REGISTRY_MAX + 1];
    struct proto__authfile_match m;
    size_t n, len = 0;
    char *buf = NULL;
    int r = 0;

    if (q->repository != NULL && q->repository[0] != '\0')
        snprintf(key, sizeof(key), "%s/%s", q->registry, q->repository);
    else
        snprintf(key, sizeof(key), "%s", q->registry);
    snprintf(host, sizeof(host), "%.*s", (int)strcspn(q->registry, "/"), q->registry);
    auth_paths(q->authfile, paths, &n);
    for (size_t i = 0; i < n; i++) {
        const char *path = paths[i].path;
        r = read_file(path, AUTHFILE_MAX, &buf, &len, err, errlen);
        if (r == UV_ENOENT && paths[i].must) {
            /* A file the user named must exist: a typo must not go anonymous. */
            snprintf(err, errlen, "auth file %s (--authfile) does not exist", path);
            return OCISYNC_EUSAGE;
        }
        if (r == UV_ENOENT) {
            r = 0;
            continue;
        }
        if (r != 0)
            return r;
        r = proto__cred_parse_authfile(buf, len, path, key, paths[i].legacy, &m, err, errlen);
        wipe_free(buf, len + 1);
        buf = NULL;
        if (r != 0)
            return r;
        switch (m.use) {
        case PROTO__AUTHFILE_CRED:
            LOG_DEBUG("credentials for %s: \"auths\" entry \"%s\" in %s", key, m.key, path);
            if (scope_only) {
                proto_cred_dispose(&m.cred);
            } else {
                *out = m.cred;
                snprintf(out->source, sizeof(out->source), "%s", path);
            }
            if (namespace_key(m.key, paths[i].legacy))
                snprintf(out->scope, sizeof(out->scope), "%s", m.key);
            return 0;
        case PROTO__AUTHFILE_HELPER:
            if (scope_only)
                continue;
            LOG_DEBUG("credentials for %s: docker-credential-%s, named in %s", key, m.helper, path);
            r = ask_helper(m.helper, host, out, err, errlen);
            if (r != 0 || out->kind != PROTO_CRED_NONE)
                return r;
            LOG_DEBUG("credentials for %s: docker-credential-%s has none", key, m.helper);
            continue;
        case PROTO__AUTHFILE_NOTHING:
            LOG_DEBUG("credentials for %s: none in %s", key, path);
            continue;
        }
    }
    return 0;
}

int proto_cred_lookup(const struct proto_cred_query *q, struct proto_cred *out, char *err,
                      size_t errlen)
{
    int r;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (q == NULL) {
        ocisync__errf(err, errlen, "no credential query");
        return OCISYNC_EUSAGE;
    }
    if ((r = check_registry(q->registry, err, errlen)) != 0)
        return r;
    if ((r = from_flags(q, out, err, errlen)) != 0 || out->kind != PROTO_CRED_NONE)
        goto out;
    if ((r = from_env(q, out, err, errlen)) != 0 || out->kind != PROTO_CRED_NONE)
        goto out;
    r = from_files(q, false, out, err, errlen);
out:
    if (r != 0)
        proto_cred_dispose(out);
    else if (out->kind != PROTO_CRED_NONE)
        LOG_DEBUG("credentials for %s from %s", q->registry, out->source);
    return r;
}

int proto_cred_scope(const struct proto_cred_query *q, char *scope, size_t len, char *err,
                     size_t errlen)
{
    struct proto_cred c;
    int r;

    memset(&c, 0, sizeof(c));
    if (len > 0)
        scope[0] = '\0';
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (q == NULL) {
        ocisync__errf(err, errlen, "no credential query");
        return OCISYNC_EUSAGE;
    }
    if ((r = check_registry(q->registry, err, errlen)) != 0)
        return r;
    if ((r = from_flags(q, &c, err, errlen)) != 0 || c.kind != PROTO_CRED_NONE)
        goto out;
    if ((r = from_env(q, &c, err, errlen)) != 0 || c.kind != PROTO_CRED_NONE)
        goto out;
    r = from_files(q, true, &c, err, errlen);
    if (r == 0 && (size_t)snprintf(scope, len, "%s", c.scope) >= len)
        r = OCISYNC_ETOOBIG;
out:
    proto_cred_dispose(&c);
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Writing auth files
 */

int proto_cred_default_authfile(const char *authfile, char *buf, size_t len)
{
    bool given;

    return primary_path(authfile, buf, len, &given);
}

int proto_cred_find_file(const char *authfile, const char *registry, char *path, size_t len,
                         char *err, size_t errlen)
{
    struct auth_path paths[AUTH_PATHS_MAX];
    struct proto__authfile_match m;
    size_t n, flen = 0;
    char *buf = NULL;
    int r;

    if (len > 0)
        path[0] = '\0';
    if ((r = check_registry(registry, err, errlen)) != 0)
        return r;
    auth_paths(authfile, paths, &n);
    for (size_t i = 0; i < n; i++) {
        r = read_file(paths[i].path, AUTHFILE_MAX, &buf, &flen, err, errlen);
        if (r == UV_ENOENT)
            continue;
        if (r != 0)
            return r;
        r = proto__cred_parse_authfile(buf, flen, paths[i].path, registry, paths[i].legacy, &m, err,
                                       errlen);
        wipe_free(buf, flen + 1);
        buf = NULL;
        if (r != 0)
            return r;
        proto_cred_dispose(&m.cred);
        if (m.use != PROTO__AUTHFILE_NOTHING) {
            snprintf(path, len, "%s", paths[i].path);
            return 0;
        }
    }
    return OCISYNC_ENOTFOUND;
}

/* The existing file's top-level object, or a new {} when there is no file. */
static int load_for_edit(const char *path, json_t **root, bool *existed, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int r;

    *root = NULL;
    *existed = false;
    r = read_file(path, AUTHFILE_MAX, &buf, &len, err, errlen);
    if (r == UV_ENOENT) {
        *root = json_object();
        return *root != NULL ? 0 : UV_ENOMEM;
    }
    if (r != 0)
        return r;
    *existed = true;
    r = load_json(buf, len, path, root, err, errlen);
    wipe_free(buf, len + 1);
    return r;
}

/* Creates the directories leading to path that do not exist, mode 0700 (podman's choice). */
static int make_parents(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;
    char *slash;

    if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir)) {
        ocisync__errf(err, errlen, "%s: path too long", path);
        return OCISYNC_ETOOBIG;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            ocisync__errf(err, errlen, "cannot create directory %s: %s", dir, strerror(e));
            return uv_translate_sys_error(e);
        }
        *p = c;
        if (c == '\0')
            break;
    }
    return 0;
}

/*
 * Replaces path with root's JSON: written to a temporary file beside it
 * (mode 0600, synced) and renamed over, so readers see the old file or the
 * new one and a crash never leaves half a file.
 */
static int write_atomic(const char *path, json_t *root, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int fd = -1, r, dfd;

    if ((r = make_parents(path, err, errlen)) != 0)
        return r;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
        ocisync__errf(err, errlen, "%s: path too long", path);
        return OCISYNC_ETOOBIG;
    }
    text = json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        ocisync__errf(err, errlen, "%s: cannot serialise the new contents", path);
        return UV_ENOMEM;
    }
    len = strlen(text);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = uv_translate_sys_error(errno);
        ocisync__errf(err, errlen, "cannot create a temporary file beside %s: %s", path,
                      strerror(errno));
        tmp[0] = '\0';
        goto out;
    }
    /* mkstemp already uses 0600, but say it: the file holds passwords. */
    if (fchmod(fd, 0600) != 0 || (r = ocisync__write_full(fd, text, len)) != 0 ||
        (r = ocisync__write_full(fd, "\n", 1)) != 0 || fsync(fd) != 0) {
        if (r == 0)
            r = uv_translate_sys_error(errno);
        ocisync__errf(err, errlen, "cannot write %s: %s", tmp, uv_strerror(r));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        r = uv_translate_sys_error(errno);
        ocisync__errf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        r = uv_translate_sys_error(errno);
        ocisync__errf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    /* Make the rename itself durable; failing to is not worth an error. */
    {
        char dir[PATH_MAX];
        char *slash;
        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), ".");
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlink(tmp);
    wipe_free(text, len);
    return r;
}

static int check_store_registry(const char *registry, char *err, size_t errlen)
{
    int r = check_registry(registry, err, errlen);
    if (r == 0 && strlen(registry) >= 256) {
        ocisync__errf(err, errlen, "registry name longer than 255 characters");
        r = OCISYNC_EUSAGE;
    }
    return r;
}

int proto_cred_store(const char *path, const char *registry, const char *user, const char *password,
                     char *err, size_t errlen)
{
    json_t *root = NULL, *auths, *entry = NULL;
    char *plain = NULL, *b64 = NULL;
    size_t plain_len = 0;
    bool existed;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || path[0] == '\0') {
        ocisync__errf(err, errlen, "no auth file given");
        return OCISYNC_EUSAGE;
    }
    if ((r = check_store_registry(registry, err, errlen)) != 0)
        return r;
    if (user == NULL || user[0] == '\0' || strchr(user, ':') != NULL || password == NULL ||
        strlen(user) > CRED_FIELD_MAX || strlen(password) > CRED_FIELD_MAX) {
        ocisync__errf(
            err, errlen,
            "credentials for %s: the username must be non-empty and without ':', and both "
            "username and password at most %d bytes",
            registry, CRED_FIELD_MAX);
        return OCISYNC_EUSAGE;
    }
    if ((r = load_for_edit(path, &root, &existed, err, errlen)) != 0)
        goto out;
    if ((r = get_object(root, "auths", path, &auths, err, errlen)) != 0)
        goto out;
    if (auths == NULL) {
        auths = json_object();
        if (auths == NULL || json_object_set_new(root, "auths", auths) != 0) {
            r = UV_ENOMEM;
            goto out;
        }
    }
    plain_len = strlen(user) + 1 + strlen(password);
    plain = malloc(plain_len + 1);
    if (plain == NULL) {
        r = UV_ENOMEM;
        goto out;
    }
    snprintf(plain, plain_len + 1, "%s:%s", user, password);
    b64 = b64_encode(plain, plain_len);
    /*
     * The entry is replaced as a whole, as podman does: a stale
     * "identitytoken" would otherwise win over the new password.
     */
    entry = json_pack("{ss}", "auth", b64 != NULL ? b64 : "");
    if (b64 == NULL || entry == NULL || json_object_set_new(auths, registry, entry) != 0) {
        r = UV_ENOMEM;
        goto out;
    }
    r = write_atomic(path, root, err, errlen);
    if (r == 0)
        LOG_DEBUG("credentials for %s stored in %s", registry, path);
out:
    wipe_free(plain, plain_len + 1);
    wipe_free_str(b64);
    json_decref(root);
    return r;
}

int proto_cred_erase(const char *path, const char *registry, char *err, size_t errlen)
{
    json_t *root = NULL, *auths = NULL, *v;
    size_t hostlen, removed = 0;
    const char *key, *h;
    bool existed;
    void *tmp;
    size_t hn;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || path[0] == '\0') {
        ocisync__errf(err, errlen, "no auth file given");
        return OCISYNC_EUSAGE;
    }
    if ((r = check_store_registry(registry, err, errlen)) != 0)
        return r;
    if ((r = load_for_edit(path, &root, &existed, err, errlen)) != 0)
        goto out;
    if ((r = get_object(root, "auths", path, &auths, err, errlen)) != 0)
        goto out;
    /*
     * Besides the exact key, remove the other spellings of the same registry
     * ("https://index.docker.io/v1/" for docker.io): lookup would still find
     * them, and a logout that leaves one logged in is worse than none.
     * Namespace keys are only ever removed by name.
     */
    hostlen = strchr(registry, '/') == NULL ? strlen(registry) : 0;
    if (auths != NULL) {
        json_object_foreach_safe(auths, tmp, key, v)
        {
            if (strcmp(key, registry) == 0 || (hostlen > 0 && key_host(key, &h, &hn) &&
                                               same_registry(h, hn, registry, hostlen))) {
                json_object_del(auths, key);
                removed++;
            }
        }
    }
    if (removed == 0) {
        ocisync__errf(err, errlen, "no credentials for %s in %s", registry, path);
        r = OCISYNC_ENOTFOUND;
        goto out;
    }
    r = write_atomic(path, root, err, errlen);
    if (r == 0)
        LOG_DEBUG("credentials for %s removed from %s", registry, path);
out:
    json_decref(root);
    return r;
}
