/* ocisync_login / ocisync_logout: check credentials against a registry, keep them in the auth file.
 */
#include "common/log.h"
#include "engine/endpoint.h"

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
 * "https://ghcr.io/v2/" or "index.docker.io" -> "ghcr.io" / "docker.io": the
 * name image references use, which is what auth files are keyed by.
 */
static void normalise_registry(const char *in, char *out, size_t len)
{
    const char *p = in;
    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    snprintf(out, len, "%.*s", (int)strcspn(p, "/"), p);
    if (strcmp(out, "index.docker.io") == 0 || strcmp(out, "registry-1.docker.io") == 0)
        snprintf(out, len, "docker.io");
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
    char name[LOOP_HOST_MAX], path[4096];
    char *creds = NULL;
    int rc;

    normalise_registry(registry, name, sizeof(name));
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
    rc = engine_endpoint_open(&lc->reg, &lc->s.client, name, &o, NULL, NULL, err, errlen);
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
        snprintf(err, errlen,
                 "login to %s: cannot tell where the auth file goes (set HOME or "
                 "--authfile)",
                 name);
        goto out_free;
    }
    rc = proto_cred_store(path, name, user, password, err, errlen);
out_free:
    /* The password is wiped before the memory goes back. */
    memset(creds, 0, strlen(creds));
    free(creds);
    free(lc);
    return rc;
}

int ocisync_logout(const char *registry, const char *authfile, char *err, size_t errlen)
{
    char name[LOOP_HOST_MAX], path[4096];
    int rc;
    normalise_registry(registry, name, sizeof(name));
    rc = proto_cred_default_authfile(authfile, path, sizeof(path));
    if (rc != 0) {
        snprintf(err, errlen, "logout from %s: cannot tell where the auth file is", name);
        return rc;
    }
    return proto_cred_erase(path, name, err, errlen);
}
