/* ocisync_login / ocisync_logout: check credentials against a registry, keep them in the auth file.
 */
#include "common/log.h"
#include "engine/endpoint.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct login_ctx {
    struct engine_session s;
    struct proto_registry reg;
    struct proto_reg_op op;
    int err;
    char *errmsg;
    size_t errlen;
};

/*
 * The auth-file key for what the user named, as podman login writes it:
 * "https://ghcr.io/v2/" or "index.docker.io" -> "ghcr.io" / "docker.io" (a
 * URL names a registry: its path is an API path), while
 * "registry.example/team/app" stays a repository-scoped key. *hostlen is
 * the length of the registry part, the server to check the login against.
 */
static void normalise_key(const char *in, char *out, size_t len, size_t *hostlen)
{
    const char *p = in, *path;
    bool url = false;
    size_t n;

    if (strncasecmp(p, "https://", 8) == 0) {
        p += 8;
        url = true;
    } else if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
        url = true;
    }
    n = strcspn(p, "/");
    path = url || p[n] == '\0' ? "" : p + n;
    /* A trailing slash names no namespace. */
    if (strcmp(path, "/") == 0)
        path = "";
    if ((n == 15 && strncmp(p, "index.docker.io", 15) == 0) ||
        (n == 20 && strncmp(p, "registry-1.docker.io", 20) == 0)) {
        p = "docker.io";
        n = 9;
    }
    snprintf(out, len, "%.*s%s", (int)n, p, path);
    *hostlen = n < len ? n : 0;
}

/* Why there is no auth file to write, into err. */
static void no_file(int rc, const char *what, const char *name, char *err, size_t errlen)
{
    if (rc == UV_ENOENT)
        snprintf(err, errlen,
                 "%s %s: $XDG_RUNTIME_DIR (%s) does not exist: create it, unset it or give "
                 "--authfile",
                 what, name, getenv("XDG_RUNTIME_DIR"));
    else
        snprintf(err, errlen, "%s %s: cannot tell where the auth file goes (give --authfile)", what,
                 name);
}

static void on_ping(struct proto_reg_op *op, int err)
{
    struct login_ctx *lc = container_of(op, struct login_ctx, op);
    lc->err = err;
    if (err != 0)
        snprintf(lc->errmsg, lc->errlen, "%s", op->errmsg);
    proto_reg_op_dispose(op);
    loop_ctx_close(&lc->s.loop);
}

int ocisync_login(const char *registry, const char *user, const char *password,
                  const struct ocisync_registry_opts *reg_opts, const char *authfile, char *err,
                  size_t errlen)
{
    static const struct ocisync_registry_opts defaults;
    static const struct ocisync_copy_opts session_defaults;
    struct ocisync_registry_opts o = reg_opts != NULL ? *reg_opts : defaults;
    struct login_ctx *lc;
    char name[LOOP_HOST_MAX], key[1024], path[4096];
    char *creds = NULL;
    size_t hostlen;
    int rc;

    normalise_key(registry, key, sizeof(key), &hostlen);
    snprintf(name, sizeof(name), "%.*s", (int)hostlen, key);
    if (name[0] == '\0' || user == NULL || user[0] == '\0' || strchr(user, ':') != NULL ||
        password == NULL || password[0] == '\0') {
        snprintf(err, errlen, "login to %s: a username (without ':') and a password are needed",
                 name[0] ? name : registry);
        return OCISYNC_EUSAGE;
    }
    lc = calloc(1, sizeof(*lc));
    creds = malloc(strlen(user) + strlen(password) + 2);
    if (lc == NULL || creds == NULL) {
        free(lc);
        free(creds);
        return UV_ENOMEM;
    }
    sprintf(creds, "%s:%s", user, password);
    /* The credentials being checked are the only ones used: no token, no environment. */
    o.creds = creds;
    o.registry_token = NULL;
    lc->errmsg = err;
    lc->errlen = errlen;
    rc = engine_session_init(&lc->s, &session_defaults);
    if (rc != 0)
        goto out_free;
    rc = engine_endpoint_open(&lc->reg, &lc->s.client, name, NULL, &o, NULL, NULL, err, errlen);
    if (rc == 0)
        rc = proto_reg_ping(&lc->op, &lc->reg);
    if (rc == 0) {
        rc = proto_reg_op_start(&lc->op, on_ping);
        if (rc != 0) {
            snprintf(err, errlen, "%s", lc->op.errmsg);
            proto_reg_op_dispose(&lc->op);
        }
    }
    if (rc == 0) {
        uv_run(&lc->s.uv, UV_RUN_DEFAULT);
        rc = lc->err;
    }
    proto_registry_dispose(&lc->reg);
    engine_session_close(&lc->s);
    if (rc != 0)
        goto out_free;
    rc = proto_cred_default_authfile(authfile, path, sizeof(path));
    if (rc != 0) {
        no_file(rc, "login to", name, err, errlen);
        goto out_free;
    }
    rc = proto_cred_store(path, key, user, password, err, errlen);
out_free:
    /* The password is wiped before the memory goes back. */
    memset(creds, 0, strlen(creds));
    free(creds);
    free(lc);
    return rc;
}

int ocisync_logout(const char *registry, const char *authfile, char *err, size_t errlen)
{
    char key[1024], path[4096], other[4096], why[512];
    size_t hostlen;
    int rc;

    normalise_key(registry, key, sizeof(key), &hostlen);
    rc = proto_cred_default_authfile(authfile, path, sizeof(path));
    if (rc != 0) {
        no_file(rc, "logout from", key, err, errlen);
        return rc;
    }
    rc = proto_cred_erase(path, key, err, errlen);
    /*
     * As podman: the entry may be in a file login does not write (docker's
     * config.json, ~/.config/containers/auth.json); say where, and leave it.
     */
    if (rc == OCISYNC_ENOTFOUND &&
        proto_cred_find_file(authfile, key, other, sizeof(other), why, sizeof(why)) == 0 &&
        strcmp(other, path) != 0)
        snprintf(err, errlen, "%s has credentials for %s, not %s (logout --authfile FILE)", other,
                 key, path);
    return rc;
}
