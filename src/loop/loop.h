/*
 * The loop module: libuv plumbing that knows sockets and threads but nothing
 * of HTTP. It offers
 *   - connections (async DNS, TCP connect with a timeout, reads delivered to
 *     an owner with explicit start/stop for flow control, writes);
 *   - a keep-alive pool of connections per (scheme, host, port) with a
 *     per-host limit and an idle timeout;
 *   - delays (backoffs) without a uv handle each, and a stop that aborts
 *     everything in flight.
 * CPU work goes to the libuv thread pool directly (uv_queue_work).
 *
 * TLS sits between the connection's socket and its owner (tls.c): the owner only
 * ever sees loop_conn_read_start/stop, loop_conn_write and the on_read
 * callback, so a TLS layer can transform bytes underneath without the HTTP
 * code changing.
 */
#ifndef LOOP_LOOP_H
#define LOOP_LOOP_H

#include "common/queue.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define LOOP_HOST_MAX 256
#define LOOP_READ_BUF_SIZE (256 * 1024)

struct loop_ctx;
struct loop_conn;

/*
 * TLS settings for the connections to one registry (or to the hosts its
 * redirects and token realm lead to): trusted CAs, an optional client
 * certificate, and whether the server's certificate is verified at all.
 */
struct loop_tls_opts {
    bool insecure_skip_verify;   /* --tls-verify=false */
    bool no_system_cas;          /* trust only ca_files/ca_dirs (tests) */
    const char *const *ca_files; /* extra PEM CA bundles */
    size_t n_ca_files;
    const char *client_cert; /* PEM certificate, or NULL */
    const char *client_key;  /* PEM key for client_cert */
};

struct loop_tls_config {
    void *ssl_ctx; /* SSL_CTX *, owned */
    bool verify;
    unsigned refs;
};

/*
 * Builds a TLS configuration: TLS 1.2 or 1.3, the system CA store (unless
 * no_system_cas) plus ca_files, a client certificate if given. Returns NULL
 * with a message naming the file and the reason in err.
 */
struct loop_tls_config *loop_tls_config_new(const struct loop_tls_opts *opts, char *err,
                                            size_t errlen);
void loop_tls_config_ref(struct loop_tls_config *cfg);
void loop_tls_config_unref(struct loop_tls_config *cfg);

/* What a connection's current owner (an HTTP exchange) is told. */
struct loop_conn_owner {
    /* Bytes received; data stays valid until the next loop_conn_read_start. */
    void (*on_read)(struct loop_conn *c, const char *data, size_t len);
    /* The write started by loop_conn_write finished (status 0) or failed. */
    void (*on_write)(struct loop_conn *c, int status);
    /* End of stream (UV_EOF), a read error, or a timeout (UV_ETIMEDOUT). */
    void (*on_error)(struct loop_conn *c, int err);
};

enum loop_conn_state {
    LOOP_CONN_RESOLVING = 1,
    LOOP_CONN_CONNECTING,
    LOOP_CONN_IDLE,   /* in the pool, waiting for reuse */
    LOOP_CONN_ACTIVE, /* lent to an owner */
    LOOP_CONN_CLOSING,
};

struct loop_host;

struct loop_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;  /* connect timeout, then owner's read timeout, then idle timeout */
    uv_idle_t deliver; /* TLS: hands decrypted bytes over outside the caller's stack */
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    uv_write_t write_req;
    enum loop_conn_state state;
    struct loop_host *host; /* not owned; NULL once closing */
    struct loop_ctx *ctx;   /* not owned */
    struct queue link;      /* in host->idle or host->all */
    struct queue all_link;
    struct addrinfo *addrs; /* owned until connected */
    struct addrinfo *next_addr;
    const struct loop_conn_owner *owner;
    void *owner_data;
    char *rbuf;                /* owned, LOOP_READ_BUF_SIZE bytes */
    bool reading;              /* the owner wants bytes (loop_conn_read_start) */
    bool sock_reading;         /* uv_read_start is in effect on the socket */
    bool writing;              /* write_req is in flight */
    bool gai_pending;          /* gai has not called back yet */
    struct loop_conn_req *req; /* the request this connection is being set up for */
    unsigned uses;             /* exchanges completed on this connection */
    unsigned n_handles;        /* handles still open; memory is freed when it drops to 0 */
    uint64_t timeout_ms;
    /* TLS (NULL for plain TCP). */
    struct loop_tls_config *tls; /* a reference */
    void *ssl;                   /* SSL *, owned */
    void *rbio, *wbio;           /* memory BIOs owned by ssl: ciphertext in, ciphertext out */
    char *pbuf;                  /* owned: decrypted bytes handed to the owner */
    bool handshaking;
    bool owner_write_pending; /* an owner write is being flushed */
    bool aborted;             /* loop_ctx_abort told its owner */
    unsigned flushes;         /* ciphertext writes in flight */
};

/* A request for a connection, queued while the host is at its limit. */
struct loop_conn_req;
typedef void (*loop_conn_cb)(struct loop_conn_req *req, struct loop_conn *c, int err);

struct loop_conn_req {
    struct queue link;
    loop_conn_cb cb;
    struct loop_host *host;
    struct loop_conn *pending; /* a connection being set up for this request */
    bool queued;
    /* Why a connection could not be made (TLS verification, ...), when cb got an error. */
    char detail[512];
};

struct loop_host {
    struct queue link; /* in ctx->hosts */
    struct loop_ctx *ctx;
    char scheme[8];
    char host[LOOP_HOST_MAX]; /* without brackets for IPv6 */
    int port;
    struct loop_tls_config *tls; /* a reference; NULL for plain TCP */
    unsigned n_conns;            /* connecting + active + idle */
    struct queue idle;
    struct queue waiters;
    struct queue all;
};

/* A callback after a delay, without a uv handle of its own (retries, backoff). */
struct loop_delay;
typedef void (*loop_delay_cb)(struct loop_delay *d);
struct loop_delay {
    struct queue link; /* in ctx->delays, by due time */
    uint64_t due;      /* loop time, ms */
    loop_delay_cb cb;
    bool armed;
};

#define LOOP_MAX_HOST_LIMITS 64

struct loop_ctx {
    uv_loop_t *uv; /* not owned */
    struct queue hosts;
    struct queue delays;
    uv_timer_t *delay_timer; /* owned, created on first use, freed in its close callback */
    unsigned max_conns_per_host;
    /* Hosts with a limit of their own (a registry's max-concurrency setting). */
    struct loop_host_limit {
        char host[LOOP_HOST_MAX];
        int port;
        unsigned max;
    } limits[LOOP_MAX_HOST_LIMITS];
    size_t n_limits;
    uint64_t connect_timeout_ms;
    uint64_t pool_idle_ms;
    bool closing;
    struct loop_delay abort_delay; /* loop_ctx_abort's, outside its caller's stack */
};

void loop_ctx_init(struct loop_ctx *ctx, uv_loop_t *uv);
/*
 * Limits the connections to host:port (any scheme) to max, instead of
 * max_conns_per_host. Returns 0, or UV_ENOSPC past LOOP_MAX_HOST_LIMITS hosts.
 */
int loop_set_host_limit(struct loop_ctx *ctx, const char *host, int port, unsigned max);
/*
 * Stops the pool: idle connections close now, lent ones when released, and no
 * new ones are made. Safe to call from any callback.
 */
void loop_ctx_close(struct loop_ctx *ctx);
/*
 * Stops everything at once (a clean stop on a signal): closes the pool as
 * loop_ctx_close does and, on the next turn of the loop, ends every
 * connection attempt and request waiting for a connection with
 * UV_ECANCELED, and tells the owner of every lent connection
 * (on_error(UV_ECANCELED)), so each exchange in flight completes at once.
 */
void loop_ctx_abort(struct loop_ctx *ctx);
/* Frees the host table, closing whatever is left; call once the loop has stopped. */
void loop_ctx_dispose(struct loop_ctx *ctx);

/*
 * Calls cb after ms milliseconds (d is embedded in its owner). Once the
 * context is closing, pending and new delays fire at once, so nothing waits
 * out a backoff during shutdown.
 */
void loop_delay_start(struct loop_ctx *ctx, struct loop_delay *d, uint64_t ms, loop_delay_cb cb);
/* Withdraws a pending delay; cb will not run. */
void loop_delay_cancel(struct loop_delay *d);

/*
 * Asks for a connection to scheme://host:port ("https" connections use tls,
 * which must then be non-NULL; the pool keeps connections of different TLS
 * configurations apart): an idle one from the pool, a
 * new one, or the next to be released once the host is at its limit.
 * req->cb runs exactly once, possibly before this function returns, with a
 * connection lent to the caller (release it with loop_conn_release) or an
 * error. Returns 0, or an error without calling cb.
 */
int loop_conn_acquire(struct loop_ctx *ctx, const char *scheme, const char *host, int port,
                      struct loop_tls_config *tls, struct loop_conn_req *req, loop_conn_cb cb);
/* Withdraws a request that has not completed yet; cb will not run. */
void loop_conn_req_cancel(struct loop_conn_req *req);

/* Makes owner the connection's owner (after acquire) until release. */
void loop_conn_set_owner(struct loop_conn *c, const struct loop_conn_owner *owner, void *data);
/*
 * Gives a connection back: to the pool when reusable (the exchange ended
 * cleanly and the server keeps it alive), otherwise it is closed. The
 * owner's callbacks are not called again.
 */
void loop_conn_release(struct loop_conn *c, bool reusable);

int loop_conn_read_start(struct loop_conn *c);
void loop_conn_read_stop(struct loop_conn *c);

/*
 * Writes bufs; the owner's on_write runs once when done. One write at a time.
 * The bytes must stay valid until on_write or until the connection is
 * released (a released connection's pending write is abandoned with it).
 */
int loop_conn_write(struct loop_conn *c, const uv_buf_t *bufs, unsigned n);

/*
 * Arms (or with 0 disarms) the owner's inactivity timer: on_error(UV_ETIMEDOUT)
 * if it expires. Each call restarts it; the HTTP layer re-arms it on progress.
 */
void loop_conn_set_timeout(struct loop_conn *c, uint64_t ms);

/* True if host (no port, no brackets) is localhost, 127.0.0.0/8 or ::1. */
bool loop_host_is_loopback(const char *host);

#endif
