/*
 * From what the user said about a registry (ocisync_registry_opts) to a
 * ready proto_registry: the scheme, the TLS configuration (cert dirs,
 * certs.d, verification), and the credentials.
 */
#ifndef ENGINE_ENDPOINT_H
#define ENGINE_ENDPOINT_H

#include "ocisync.h"
#include "engine/stop.h"
#include "proto/registry.h"

/*
 * Sets up reg for the registry named registry ("docker.io", "host:port"),
 * with the credentials for repo ("team/app", which picks repository-scoped
 * auth-file keys; NULL for the registry as a whole). env_side is
 * "OCISYNC_PULL" or "OCISYNC_PUSH" (credential variables), or NULL. On
 * error err names the registry and the reason.
 */
int engine_endpoint_open(struct proto_registry *reg, struct proto_client *cl, const char *registry,
                         const char *repo, const struct ocisync_registry_opts *o,
                         const char *authfile, const char *env_side, char *err, size_t errlen);

/*
 * A TLS configuration with o's verification and certificates, for a server
 * that is not a registry (a Dockerfile's ADD URL): the system CAs, then
 * o->cert_dir and the entry for name ("host" or "host:port", as certs.d
 * names registries) in each certs.d directory. *out is the caller's
 * reference (loop_tls_config_unref). On error err names the file and reason.
 */
int engine_endpoint_tls(const char *name, const struct ocisync_registry_opts *o,
                        struct loop_tls_config **out, char *err, size_t errlen);

/*
 * The endpoints of a run, configured once each (certificates, TLS context,
 * credentials) and cloned for every image or listing that talks to them, so
 * TLS contexts, pooled connections and learnt challenges are shared.
 */
struct engine_endpoint {
    struct engine_endpoint *next;
    const struct ocisync_registry_opts *opts; /* borrowed: identity of the settings */
    bool push;
    /* The auth-file key its credentials are scoped to ("host/team/app"), "" for the registry. */
    char cred_scope[256];
    struct proto_registry reg;
};

struct engine_endpoint_cache {
    struct engine_endpoint *head; /* owned list */
    struct proto_client *client;
    const char *authfile;
    int retry_times;         /* ocisync_copy_opts semantics: 0 default, < 0 none */
    unsigned retry_delay_ms; /* 0: default */
};

/*
 * A new registry (malloc'ed, set up; release with proto_registry_dispose and
 * free) for registry with options o: a source (push false) or a destination.
 * repo ("team/app", or NULL for the catalog) picks the credentials: one
 * endpoint serves every repository whose credentials have the same scope.
 */
int engine_endpoint_get(struct engine_endpoint_cache *c, const char *registry, const char *repo,
                        const struct ocisync_registry_opts *o, bool push,
                        struct proto_registry **out, char *err, size_t errlen);
/* Keeps the challenge reg learnt for the next clones of its endpoint. */
void engine_endpoint_learn(struct engine_endpoint_cache *c, const struct proto_registry *reg);
void engine_endpoint_cache_dispose(struct engine_endpoint_cache *c);

/*
 * A loop with its connection pool, HTTP client and endpoint cache: what each
 * part that talks to registries on a loop of its own sets up (sync's
 * listings, referrers, a build's base) and takes down.
 */
struct engine_session {
    uv_loop_t uv;
    struct loop_ctx loop;
    struct proto_client client;
    struct engine_endpoint_cache endpoints;
    /*
     * With handle_signals: SIGINT or SIGTERM aborts everything in flight on
     * the loop, then calls on_stop if set (to cancel work of the caller's).
     */
    struct engine_stop_watch stop;
    void (*on_stop)(struct engine_session *s);
    void *data;
};

/* Sets s up with o's auth file, retry and timeout settings. Returns 0 or a libuv error. */
int engine_session_init(struct engine_session *s, const struct ocisync_copy_opts *o);
/*
 * Applies o's network settings (connect and idle timeouts, the deadline and
 * the low-speed limit, auth file, retries) to an initialised loop, client
 * and endpoint cache: every run that talks to registries uses this one.
 */
void engine_session_configure(struct loop_ctx *loop, struct proto_client *cl,
                              struct engine_endpoint_cache *endpoints,
                              const struct ocisync_copy_opts *o);
/* Stops the pool, releases the endpoints and the client, and closes the loop. */
void engine_session_close(struct engine_session *s);

/*
 * One GET from repo of reg, run on s's loop to its end: the manifest ref
 * (blob false) or a small blob (blob true, at most OCI_MANIFEST_MAX_SIZE
 * bytes). *out is malloc'ed (*len bytes); ct, if not NULL, gets the media
 * type the registry gave. On error msg says why (the registry's words).
 * The caller checks the digest.
 */
int engine_session_get(struct engine_session *s, struct proto_registry *reg, const char *repo,
                       const char *ref, bool blob, char **out, size_t *len, char *ct, size_t ctlen,
                       char *msg, size_t msglen);

/*
 * Starts op (prepared by one of proto_reg_*'s constructors) and runs s's
 * loop until it is answered. On error msg says why (the registry's words).
 * The caller reads the answer and disposes op.
 */
int engine_session_run(struct engine_session *s, struct proto_reg_op *op, char *msg, size_t msglen);

/* The host to connect to for a registry name: "registry-1.docker.io" for docker.io. */
const char *engine_endpoint_api_host(const char *registry);

#endif
