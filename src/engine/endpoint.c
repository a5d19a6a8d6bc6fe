#include "engine/endpoint.h"

#include "common/log.h"
#include "oci/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CA_FILES 32
#define DEFAULT_CERTS_DIRS "/etc/containers/certs.d:/etc/docker/certs.d"

/* Certificates found for one registry. */
struct certs {
    char *ca[MAX_CA_FILES]; /* owned */
    size_t n_ca;
    char *client_cert; /* owned */
    char *client_key;  /* owned */
    bool found_dir;    /* a certs.d entry exists (so the registry speaks TLS) */
};

static void certs_free(struct certs *c)
{
    for (size_t i = 0; i < c->n_ca; i++)
        free(c->ca[i]);
    free(c->client_cert);
    free(c->client_key);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/*
 * Reads a docker-style certificate directory: *.crt are CAs, NAME.cert with
 * NAME.key a client certificate. A missing directory is not an error when
 * optional (certs.d); a given --cert-dir must exist.
 */
static int scan_dir(const char *dir, bool optional, struct certs *c, char *err, size_t errlen)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    int rc = 0;
    if (n < 0) {
        if (optional && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        snprintf(err, errlen, "cannot read certificate directory %s: %s", dir, strerror(errno));
        return OCISYNC_ETLSCONFIG;
    }
    c->found_dir = true;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (rc == 0 && ends_with(name, ".crt")) {
            if (c->n_ca == MAX_CA_FILES) {
                snprintf(err, errlen, "too many CA files in %s (at most %d)", dir, MAX_CA_FILES);
                rc = OCISYNC_ETLSCONFIG;
            } else if ((c->ca[c->n_ca] = join(dir, name)) != NULL) {
                c->n_ca++;
            }
        } else if (rc == 0 && ends_with(name, ".cert") && c->client_cert == NULL) {
            size_t base = strlen(name) - 5;
            char key[512];
            struct stat st;
            snprintf(key, sizeof(key), "%.*s.key", (int)base, name);
            c->client_cert = join(dir, name);
            c->client_key = join(dir, key);
            if (c->client_key == NULL || stat(c->client_key, &st) != 0) {
                snprintf(err, errlen, "client certificate %s/%s has no matching key %s", dir, name,
                         key);
                rc = OCISYNC_ETLSCONFIG;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int find_certs(const char *registry, const char *cert_dir, struct certs *c, char *err,
                      size_t errlen)
{
    const char *dirs = getenv("OCISYNC_CERTS_DIRS");
    char *copy, *save = NULL;
    int rc = 0;
    if (cert_dir != NULL) {
        rc = scan_dir(cert_dir, false, c, err, errlen);
        if (rc != 0)
            return rc;
    }
    copy = strdup(dirs != NULL && dirs[0] != '\0' ? dirs : DEFAULT_CERTS_DIRS);
    if (copy == NULL)
        return UV_ENOMEM;
    for (char *d = strtok_r(copy, ":", &save); d != NULL && rc == 0;
         d = strtok_r(NULL, ":", &save)) {
        char *sub = join(d, registry);
        if (sub == NULL) {
            rc = UV_ENOMEM;
            break;
        }
        rc = scan_dir(sub, true, c, err, errlen);
        free(sub);
    }
    free(copy);
    return rc;
}

const char *engine_endpoint_api_host(const char *registry)
{
    if (strcmp(registry, "docker.io") == 0)
        return "registry-1.docker.io";
    return registry;
}

/* The host part of a registry name, without port or brackets, into buf. */
static void host_only(const char *registry, char *buf, size_t len)
{
    if (registry[0] == '[') {
        const char *close = strchr(registry, ']');
        size_t n = close != NULL ? (size_t)(close - registry - 1) : strlen(registry);
        snprintf(buf, len, "%.*s", (int)n, registry + 1);
        return;
    }
    snprintf(buf, len, "%.*s", (int)strcspn(registry, ":"), registry);
}

int engine_endpoint_open(struct proto_registry *reg, struct proto_client *cl, const char *registry,
                         const char *repo, const struct ocisync_registry_opts *o,
                         const char *authfile, const char *env_side, char *err, size_t errlen)
{
    struct certs certs;
    struct proto_cred cred;
    struct proto_cred_query q;
    struct loop_tls_config *tls = NULL;
    char host[LOOP_HOST_MAX], why[512];
    const char *scheme;
    bool explicit_tls;
    int rc;

    /* reg is always left in a state proto_registry_dispose accepts. */
    memset(reg, 0, sizeof(*reg));
    queue_init(&reg->waiting);
    memset(&certs, 0, sizeof(certs));
    memset(&cred, 0, sizeof(cred));
    rc = find_certs(registry, o->cert_dir, &certs, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "registry %s: %s", registry, why);
        goto out;
    }
    host_only(registry, host, sizeof(host));
    explicit_tls = o->tls_verify != OCISYNC_TLS_VERIFY_DEFAULT || certs.found_dir;
    switch (o->plain_http) {
    case OCISYNC_PLAIN_HTTP_ALWAYS:
        scheme = "http";
        break;
    case OCISYNC_PLAIN_HTTP_NEVER:
        scheme = "https";
        break;
    default:
        /* As docker: loopback registries speak plain HTTP, unless told about their TLS. */
        scheme = loop_host_is_loopback(host) && !explicit_tls ? "http" : "https";
        break;
    }
    rc = proto_registry_init(reg, cl, registry, scheme, engine_endpoint_api_host(registry));
    if (rc != 0) {
        snprintf(err, errlen, "registry %s: name too long", registry);
        goto out;
    }
    if (strcmp(scheme, "https") == 0) {
        struct loop_tls_opts t;
        memset(&t, 0, sizeof(t));
        t.insecure_skip_verify = o->tls_verify == OCISYNC_TLS_VERIFY_OFF;
        t.ca_files = (const char *const *)certs.ca;
        t.n_ca_files = certs.n_ca;
        t.client_cert = certs.client_cert;
        t.client_key = certs.client_key;
        tls = loop_tls_config_new(&t, why, sizeof(why));
        if (tls == NULL) {
            snprintf(err, errlen, "registry %s: %s", registry, why);
            rc = OCISYNC_ETLSCONFIG;
            goto out;
        }
        proto_registry_set_tls(reg, tls);
        /* As docker's insecure registries: one that does not speak TLS is spoken to in HTTP. */
        reg->http_fallback = t.insecure_skip_verify && o->plain_http != OCISYNC_PLAIN_HTTP_NEVER;
        LOG_DEBUG("registry %s: https, %zu extra CA file(s), client certificate %s, verify %s",
                  registry, certs.n_ca, certs.client_cert ? "yes" : "no",
                  t.insecure_skip_verify ? "off" : "on");
    } else {
        LOG_DEBUG("registry %s: plain http", registry);
    }
    memset(&q, 0, sizeof(q));
    q.registry = registry;
    q.repository = repo;
    q.creds = o->creds;
    q.registry_token = o->registry_token;
    q.authfile = o->authfile != NULL ? o->authfile : authfile;
    q.env_side = env_side;
    if (o->no_creds)
        LOG_DEBUG("registry %s: no credentials (asked for)", registry);
    else
        rc = proto_cred_lookup(&q, &cred, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "registry %s: %s", registry, why);
        goto out;
    }
    if (cred.kind != PROTO_CRED_NONE)
        LOG_DEBUG("registry %s: credentials from %s", registry, cred.source);
    if (o->max_connections > 0) {
        struct proto_url u;
        if (proto_url_parse(reg->base, &u) == 0) {
            rc = loop_set_host_limit(cl->loop, u.host, u.port, o->max_connections);
            proto_url_free(&u);
            if (rc != 0) {
                snprintf(err, errlen, "registry %s: too many registries with a limit", registry);
                goto out;
            }
            LOG_DEBUG("registry %s: at most %u connections", registry, o->max_connections);
        }
    }
    proto_registry_set_cred(reg, &cred);
out:
    loop_tls_config_unref(tls);
    proto_cred_dispose(&cred);
    certs_free(&certs);
    return rc;
}

int engine_endpoint_tls(const char *name, const struct ocisync_registry_opts *o,
                        struct loop_tls_config **out, char *err, size_t errlen)
{
    struct certs certs;
    struct loop_tls_opts t;
    int rc;

    *out = NULL;
    memset(&certs, 0, sizeof(certs));
    rc = find_certs(name, o->cert_dir, &certs, err, errlen);
    if (rc != 0)
        goto out;
    memset(&t, 0, sizeof(t));
    t.insecure_skip_verify = o->tls_verify == OCISYNC_TLS_VERIFY_OFF;
    t.ca_files = (const char *const *)certs.ca;
    t.n_ca_files = certs.n_ca;
    t.client_cert = certs.client_cert;
    t.client_key = certs.client_key;
    *out = loop_tls_config_new(&t, err, errlen);
    if (*out == NULL)
        rc = OCISYNC_ETLSCONFIG;
    else
        LOG_DEBUG("tls %s: %zu extra CA file(s), client certificate %s, verify %s", name,
                  certs.n_ca, certs.client_cert ? "yes" : "no",
                  t.insecure_skip_verify ? "off" : "on");
out:
    certs_free(&certs);
    return rc;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * Options compare by what they say, not where they live: a sync config gives
 * each entry its own copy, and a thousand entries on one registry must share
 * one endpoint (one TLS context, one connection pool).
 */
static bool same_opts(const struct ocisync_registry_opts *a, const struct ocisync_registry_opts *b)
{
    return a == b ||
           (a->plain_http == b->plain_http && a->tls_verify == b->tls_verify &&
            a->max_connections == b->max_connections && same_str(a->cert_dir, b->cert_dir) &&
            same_str(a->creds, b->creds) && same_str(a->registry_token, b->registry_token) &&
            same_str(a->authfile, b->authfile) && a->no_creds == b->no_creds);
}

int engine_endpoint_get(struct engine_endpoint_cache *c, const char *registry, const char *repo,
                        const struct ocisync_registry_opts *o, bool push,
                        struct proto_registry **out, char *err, size_t errlen)
{
    const char *side = push ? "OCISYNC_PUSH" : "OCISYNC_PULL";
    struct proto_cred_query q;
    struct engine_endpoint *ep;
    char scope[sizeof(ep->cred_scope)], why[512];
    int rc;
    *out = NULL;
    /*
     * Credentials scoped to a repository ("podman login host/team/app") must
     * not serve another: the scope, found without running a helper, is part
     * of the endpoint's identity.
     */
    memset(&q, 0, sizeof(q));
    q.registry = registry;
    q.repository = repo;
    q.creds = o->creds;
    q.registry_token = o->registry_token;
    q.authfile = c->authfile;
    q.env_side = side;
    rc = proto_cred_scope(&q, scope, sizeof(scope), why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "registry %s: %s", registry, why);
        return rc;
    }
    for (ep = c->head; ep != NULL; ep = ep->next)
        if (ep->push == push && same_opts(ep->opts, o) && strcmp(ep->reg.name, registry) == 0 &&
            strcmp(ep->cred_scope, scope) == 0)
            break;
    if (ep == NULL) {
        ep = calloc(1, sizeof(*ep));
        if (ep == NULL)
            return UV_ENOMEM;
        if (scope[0] != '\0')
            LOG_DEBUG("registry %s: credentials scoped to %s", registry, scope);
        rc = engine_endpoint_open(&ep->reg, c->client, registry, repo, o, c->authfile, side, err,
                                  errlen);
        if (rc != 0) {
            proto_registry_dispose(&ep->reg);
            free(ep);
            return rc;
        }
        if (c->retry_times != 0)
            ep->reg.retry.max_retries = c->retry_times < 0 ? 0 : (unsigned)c->retry_times;
        if (c->retry_delay_ms != 0)
            ep->reg.retry.base_ms = c->retry_delay_ms;
        ep->opts = o;
        ep->push = push;
        snprintf(ep->cred_scope, sizeof(ep->cred_scope), "%s", scope);
        ep->next = c->head;
        c->head = ep;
    }
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return UV_ENOMEM;
    rc = proto_registry_clone(*out, &ep->reg);
    if (rc != 0) {
        proto_registry_dispose(*out);
        free(*out);
        *out = NULL;
    }
    return rc;
}

void engine_endpoint_learn(struct engine_endpoint_cache *c, const struct proto_registry *reg)
{
    for (struct engine_endpoint *ep = c->head; ep != NULL; ep = ep->next) {
        if (strcmp(ep->reg.name, reg->name) == 0 && ep->reg.http_fallback &&
            strncmp(reg->base, "http://", 7) == 0)
            proto_registry_use_http(&ep->reg);
        if (strcmp(ep->reg.base, reg->base) == 0 && ep->reg.auth == PROTO_AUTH_NONE &&
            reg->auth != PROTO_AUTH_NONE) {
            ep->reg.auth = reg->auth;
            ep->reg.challenge = reg->challenge;
        }
    }
}

void engine_endpoint_cache_dispose(struct engine_endpoint_cache *c)
{
    while (c->head != NULL) {
        struct engine_endpoint *ep = c->head;
        c->head = ep->next;
        proto_registry_dispose(&ep->reg);
        free(ep);
    }
}

static void on_session_stop(struct engine_stop_watch *w)
{
    struct engine_session *s = w->data;
    loop_ctx_abort(&s->loop);
    if (s->on_stop != NULL)
        s->on_stop(s);
}

int engine_session_init(struct engine_session *s, const struct ocisync_copy_opts *o)
{
    int err;
    memset(s, 0, sizeof(*s));
    err = uv_loop_init(&s->uv);
    if (err != 0)
        return err;
    loop_ctx_init(&s->loop, &s->uv);
    proto_client_init(&s->client, &s->loop);
    engine_session_configure(&s->loop, &s->client, &s->endpoints, o);
    if (o->handle_signals)
        engine_stop_watch_start(&s->stop, &s->uv, on_session_stop, s);
    return 0;
}

void engine_session_configure(struct loop_ctx *loop, struct proto_client *cl,
                              struct engine_endpoint_cache *endpoints,
                              const struct ocisync_copy_opts *o)
{
    if (o->connect_timeout)
        loop->connect_timeout_ms = (uint64_t)o->connect_timeout * 1000;
    if (o->idle_timeout)
        proto_client_set_timeout(cl, (uint64_t)o->idle_timeout * 1000);
    if (o->low_speed_limit != 0)
        cl->low_speed_limit = o->low_speed_limit < 0 ? 0 : (uint64_t)o->low_speed_limit;
    if (o->low_speed_time)
        cl->low_speed_time_ms = (uint64_t)o->low_speed_time * 1000;
    endpoints->client = cl;
    endpoints->authfile = o->authfile;
    endpoints->retry_times = o->retry_times;
    endpoints->retry_delay_ms = o->retry_delay_ms;
}

void engine_session_close(struct engine_session *s)
{
    engine_stop_watch_close(&s->stop);
    loop_ctx_close(&s->loop);
    loop_ctx_dispose(&s->loop);
    engine_endpoint_cache_dispose(&s->endpoints);
    proto_client_dispose(&s->client);
    uv_run(&s->uv, UV_RUN_DEFAULT);
    uv_loop_close(&s->uv);
}

struct session_get {
    bool done;
    int err;
};

static void on_got(struct proto_reg_op *op, int err)
{
    struct session_get *g = op->data;
    g->done = true;
    g->err = err;
}

int engine_session_get(struct engine_session *s, struct proto_registry *reg, const char *repo,
                       const char *ref, bool blob, char **out, size_t *len, char *ct, size_t ctlen,
                       char *msg, size_t msglen)
{
    struct proto_reg_op op;
    struct session_get g = {false, 0};
    int err = blob ? proto_reg_blob_get(&op, reg, repo, ref)
                   : proto_reg_manifest_get(&op, reg, repo, ref, false);

    if (err == 0 && blob)
        proto_reg_set_body_max(&op, OCI_MANIFEST_MAX_SIZE);
    op.data = &g;
    if (err == 0)
        err = proto_reg_op_start(&op, on_got);
    if (err == 0) {
        while (!g.done)
            uv_run(&s->uv, UV_RUN_ONCE);
        err = g.err;
    }
    if (err != 0) {
        snprintf(msg, msglen, "%s", op.errmsg[0] ? op.errmsg : ocisync_strerror(err));
    } else {
        const char *c = proto_reg_header(&op, "Content-Type");
        *out = proto_reg_take_body(&op, len);
        if (ct != NULL)
            snprintf(ct, ctlen, "%.*s", c != NULL ? (int)strcspn(c, "; ") : 0, c ? c : "");
    }
    proto_reg_op_dispose(&op);
    return err;
}

int engine_session_run(struct engine_session *s, struct proto_reg_op *op, char *msg, size_t msglen)
{
    struct session_get g = {false, 0};
    int err;
    op->data = &g;
    err = proto_reg_op_start(op, on_got);
    if (err == 0) {
        while (!g.done)
            uv_run(&s->uv, UV_RUN_ONCE);
        err = g.err;
    }
    if (err != 0)
        snprintf(msg, msglen, "%s", op->errmsg[0] ? op->errmsg : ocisync_strerror(err));
    return err;
}
