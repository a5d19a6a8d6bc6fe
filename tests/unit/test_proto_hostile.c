/*
 * The HTTP client and the registry layer against hostile servers: answers
 * that never end (a status line, interim responses, a trickle, a body to
 * drain), redirects that fish for credentials, manifests that are not what
 * was asked for, and a stop that must not wait for any of them. Each case
 * is one in-process server handler (tests/unit/test_http_srv.h); a case
 * that hangs is ended by the watchdog and fails.
 */
#include "test_http_srv.h"

#include "proto/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* A server that writes a head, then a tail again and again, on a timer */

#define DRIP_MAX 4

struct drip {
    uv_timer_t t;
    struct srv *s;
    struct srv_conn *c;
    const char *head; /* written first (borrowed) */
    const char *tail; /* then this, every every_ms, until the client goes away (borrowed) */
    size_t tail_len;
    uint64_t every_ms;
    uint64_t written;
};

static struct drip drips[DRIP_MAX];
static int n_drips;
/* The drip the next matching request starts (set by the test before the run). */
static struct drip drip_plan;

static bool conn_open(struct srv *s, struct srv_conn *c)
{
    struct queue *q;
    queue_foreach(q, &s->conns)
    {
        if (container_of(q, struct srv_conn, link) == c)
            return true;
    }
    return false;
}

static void on_drip(uv_timer_t *t)
{
    struct drip *d = t->data;
    if (d->s->stopped || !conn_open(d->s, d->c) || d->c->closing) {
        uv_timer_stop(t);
        return;
    }
    srv_send_ex(d->c, d->tail, d->tail_len, true, false);
    d->written += d->tail_len;
}

/* Starts the planned drip on c (the timer is the environment's, closed at its end). */
static void drip_start(struct srv *s, struct srv_conn *c)
{
    struct env *e = s->data;
    struct drip *d = &drips[n_drips++];
    *d = drip_plan;
    d->s = s;
    d->c = c;
    env_timer(e, &d->t, d);
    if (d->head != NULL)
        srv_send_ex(c, d->head, strlen(d->head), true, false);
    uv_timer_start(&d->t, on_drip, d->every_ms, d->every_ms);
}

static void h_drip(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    (void)q;
    drip_start(s, c);
}

static void plan_drip(const char *head, const char *tail, size_t tail_len, uint64_t every_ms)
{
    memset(&drip_plan, 0, sizeof(drip_plan));
    drip_plan.head = head;
    drip_plan.tail = tail;
    drip_plan.tail_len = tail_len;
    drip_plan.every_ms = every_ms;
}

/* 16 KiB of one byte, or of one string repeated. */
static char flood[16 * 1024];
static size_t flood_len;

static const char *fill_flood(const char *unit)
{
    size_t n = strlen(unit);
    flood_len = 0;
    while (flood_len + n <= sizeof(flood)) {
        memcpy(flood + flood_len, unit, n);
        flood_len += n;
    }
    return flood;
}

/* Runs one GET against h and returns the finished request (in *x). */
static void one_get(struct env *e, struct xreq *x, srv_handler h, const char *path)
{
    CHECK_INT(srv_start(&e->srv, &e->loop, h, e), 0);
    e->expect_done = 1;
    x_init(e, x, "GET", srv_url(&e->srv, path));
    x_start(x);
    env_run(e);
    CHECK_INT(x->done, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Answers that never end */

/* A GET answered by head, then unit again and again, as fast as it is read: a cap ends it. */
static void flood_refused(const char *head, const char *unit)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    n_drips = 0;
    fill_flood(unit);
    plan_drip(head, flood, flood_len, 1);
    one_get(&e, &x, h_drip, "/v2/");
    CHECK_INT(x.err, OCISYNC_ETOOBIG);
    CHECK(x.done_at - x.started_at < 1500);
    env_free(&e);
}

TEST(status_line_without_end)
{
    flood_refused("HTTP/1.1 200 ", "A");
}

TEST(interim_responses_without_end)
{
    flood_refused(NULL, "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(header_whitespace_without_end)
{
    flood_refused("HTTP/1.1 200 OK\r\nX-Pad:", " ");
}

/* A header byte every 50 ms never trips the idle timeout (2 s); the deadline (0.5 s) ends it. */
TEST(trickled_headers_meet_the_deadline)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    e.cl.total_timeout_ms = 500;
    n_drips = 0;
    plan_drip("HTTP/1.1 200 OK\r\nX-Slow: ", "a", 1, 50);
    one_get(&e, &x, h_drip, "/v2/app/manifests/latest");
    CHECK_INT(x.err, OCISYNC_ETIMEOUT);
    CHECK(x.done_at - x.started_at >= 450);
    CHECK(x.done_at - x.started_at < 1500);
    CHECK(contains(x.r.error_detail, "no complete answer within"));
    env_free(&e);
}

/* A blob body at 20 bytes/s: not the deadline's business, but under the low-speed limit. */
TEST(trickled_body_is_too_slow)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    e.cl.total_timeout_ms = 300;
    e.cl.low_speed_limit = 1000;
    e.cl.low_speed_time_ms = 600;
    n_drips = 0;
    plan_drip("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", "b", 1, 50);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_drip, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/app/blobs/sha256:slow"));
    x.r.on_body = x_on_body;
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, OCISYNC_ETIMEOUT);
    CHECK(x.body_bytes > 0); /* the body did flow: the deadline did not cut it at 300 ms */
    CHECK(x.done_at - x.started_at >= 600);
    CHECK(x.done_at - x.started_at < 1900);
    CHECK(contains(x.r.error_detail, "below the low-speed limit"));
    env_free(&e);
}

static void h_quarter_mib(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    (void)s;
    (void)q;
    srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", 256u * 1024);
    srv_send_ex(c, big(), 256 * 1024, true, false);
}

/* Time a consumer keeps the body paused is ours, not the server's: it is never "slow". */
TEST(paused_consumer_is_not_slow)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    e.cl.low_speed_limit = 1024 * 1024;
    e.cl.low_speed_time_ms = 100;
    CHECK_INT(srv_start(&e.srv, &e.loop, h_quarter_mib, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/app/blobs/sha256:paced"));
    x.r.on_body = x_on_body;
    x.pause_mode = 1;
    x.resume_ms = 150;
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.body_bytes, 256 * 1024);
    CHECK(x.n_pause >= 2);
    env_free(&e);
}

static const char error_head[] =
    "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
    "32\r\n{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"x\"}]}\r\n";
static char pad_chunk[16 * 1024];

/* One chunk of 16 KiB - 8 spaces, framed. */
static const char *padding_chunk(size_t *len)
{
    size_t data = sizeof(pad_chunk) - 16;
    int n = snprintf(pad_chunk, sizeof(pad_chunk), "%zx\r\n", data);
    memset(pad_chunk + n, ' ', data);
    memcpy(pad_chunk + n + data, "\r\n", 2);
    *len = (size_t)n + data + 2;
    return pad_chunk;
}

/* An error body without end: kept up to 64 KiB, dropped up to 1 MiB, then the exchange ends. */
TEST(error_body_without_end)
{
    struct env e;
    struct xreq x;
    size_t n;
    const char *chunk = padding_chunk(&n);
    env_init(&e);
    n_drips = 0;
    plan_drip(error_head, chunk, n, 1);
    one_get(&e, &x, h_drip, "/v2/app/manifests/missing");
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 404);
    CHECK_INT(x.r.resp_len, PROTO_MAX_ERROR_BODY);
    CHECK(contains(x.r.resp_body, "NAME_UNKNOWN"));
    CHECK(x.r.drained > PROTO_MAX_DRAIN);
    CHECK(x.done_at - x.started_at < 1500);
    env_free(&e);
}

static void h_redirect_forever_body(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    if (strcmp(q->url, "/ok") == 0) {
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine");
        return;
    }
    drip_start(s, c);
}

/* A redirect whose body never ends is followed once its body is given up on. */
TEST(redirect_body_without_end)
{
    struct env e;
    struct xreq x;
    size_t n;
    const char *chunk = padding_chunk(&n);
    env_init(&e);
    n_drips = 0;
    plan_drip("HTTP/1.1 302 Found\r\nLocation: /ok\r\nTransfer-Encoding: chunked\r\n\r\n", chunk, n,
              1);
    one_get(&e, &x, h_redirect_forever_body, "/v2/app/blobs/sha256:moved");
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 200);
    CHECK_STR(x.r.resp_body, "fine");
    CHECK_INT(x.r.redirects, 1);
    env_free(&e);
}

static void h_silent(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    (void)s;
    (void)c;
    (void)q;
}

static void on_abort_timer(uv_timer_t *t)
{
    struct env *e = t->data;
    loop_ctx_abort(&e->ctx);
}

/* A stop ends an exchange in flight and one waiting for a connection, now, not at a timeout. */
TEST(abort_ends_everything_in_flight)
{
    struct env e;
    struct xreq x, y;
    uv_timer_t t;
    env_init(&e);
    e.ctx.max_conns_per_host = 1;
    CHECK_INT(srv_start(&e.srv, &e.loop, h_silent, &e), 0);
    e.expect_done = 2;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/a/manifests/1"));
    x_init(&e, &y, "GET", srv_url(&e.srv, "/v2/b/manifests/1"));
    env_timer(&e, &t, &e);
    x_start(&x);
    x_start(&y);
    uv_timer_start(&t, on_abort_timer, 100, 0);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(y.done, 1);
    CHECK_INT(x.err, UV_ECANCELED);
    CHECK_INT(y.err, UV_ECANCELED);
    CHECK(x.done_at - x.started_at < 600);
    CHECK(y.done_at - y.started_at < 600);
    CHECK_INT(e.srv.n_reqs, 1); /* the waiter never got a connection */
    env_free(&e);
}

TEST(retry_after_is_capped)
{
    struct proto_retry p = {.max_retries = 5,
                            .base_ms = 500,
                            .max_ms = 30000,
                            .retry_after_cap_ms = PROTO_RETRY_AFTER_CAP_MS};
    CHECK_INT(proto_reg_backoff_ms(&p, 0, "2"), 2000);
    CHECK_INT(proto_reg_backoff_ms(&p, 0, "86400"), PROTO_RETRY_AFTER_CAP_MS);
    CHECK_INT(proto_reg_backoff_ms(&p, 0, "999999"), PROTO_RETRY_AFTER_CAP_MS);
    CHECK_INT(proto_reg_backoff_ms(&p, 0, "99999999999999999999999"), PROTO_RETRY_AFTER_CAP_MS);
    CHECK_INT(proto_reg_backoff_ms(&p, 0, "Fri, 01 Jan 9999 00:00:00 GMT"),
              PROTO_RETRY_AFTER_CAP_MS);
}

/* ------------------------------------------------------------------------------------------ */
/* The registry layer: credentials, redirects, digests */

struct op_probe {
    struct env *e;
    struct proto_reg_op op;
    int err;
    int done;
    int status;
    char errmsg[PROTO_REG_ERRMSG_MAX];
};

static void on_probe_done(struct proto_reg_op *op, int err)
{
    struct op_probe *p = op->data;
    p->err = err;
    p->done++;
    p->status = op->http.status;
    snprintf(p->errmsg, sizeof(p->errmsg), "%s", op->errmsg);
    proto_reg_op_dispose(op);
    if (++p->e->n_done == p->e->expect_done)
        env_finish(p->e);
}

static void probe_start(struct op_probe *p, struct env *e)
{
    p->e = e;
    p->op.data = p;
    CHECK_INT(proto_reg_op_start(&p->op, on_probe_done), 0);
}

static void registry_with_creds(struct env *e, struct proto_registry *reg, const char *name)
{
    char hostport[64];
    struct proto_cred cred;
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", e->srv.port);
    CHECK_INT(proto_registry_init(reg, &e->cl, name ? name : hostport, "http", hostport), 0);
    memset(&cred, 0, sizeof(cred));
    cred.kind = PROTO_CRED_BASIC;
    cred.username = strdup("alice");
    cred.secret = strdup("s3cr3t");
    proto_registry_set_cred(reg, &cred);
    /* Learnt from an earlier 401, as a run's second request has it: credentials go at once. */
    reg->auth = PROTO_AUTH_BASIC;
    reg->challenge.scheme = PROTO_AUTH_BASIC;
    snprintf(reg->challenge.realm, sizeof(reg->challenge.realm), "reg");
}

/* How the redirect target answers: 1 Basic, 2 Bearer with a realm of its own. */
static int target_scheme;

/*
 * The registry: 401 without credentials, else a 307 for blobs to srv2 (or,
 * for "local" blobs, to localhost on its own port), and for manifest PUTs.
 */
static void h_fishing(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    struct env *e = s->data;
    if (contains(q->head, "\r\nHost: localhost:")) {
        /* The same server named another way: another origin, with its own challenge. */
        srv_send(c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"lh\"\r\n"
                    "Content-Length: 0\r\n\r\n");
        return;
    }
    if (!contains(q->head, "\r\nAuthorization: Basic ")) {
        srv_send(c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"reg\"\r\n"
                    "Content-Length: 0\r\n\r\n");
        return;
    }
    if (strstr(q->url, "/blobs/sha256:local") != NULL)
        srv_sendf(c, false,
                  "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:%d%s\r\n"
                  "Content-Length: 0\r\n\r\n",
                  s->port, q->url);
    else
        srv_sendf(c, false,
                  "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d%s\r\n"
                  "Content-Length: 0\r\n\r\n",
                  e->srv2.port, q->url);
}

/* The redirect target: asks for credentials of its own. */
static void h_catcher(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    (void)q;
    if (target_scheme == 2)
        srv_sendf(c, false,
                  "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer "
                  "realm=\"http://127.0.0.1:%d/token\",service=\"catcher\"\r\n"
                  "Content-Length: 0\r\n\r\n",
                  s->port);
    else
        srv_send(c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"catcher\"\r\n"
                    "Content-Length: 0\r\n\r\n");
}

static void redirect_fishing(int scheme)
{
    struct env e;
    struct proto_registry reg;
    struct op_probe p;
    env_init(&e);
    target_scheme = scheme;
    CHECK_INT(srv_start(&e.srv, &e.loop, h_fishing, &e), 0);
    CHECK_INT(srv_start(&e.srv2, &e.loop, h_catcher, &e), 0);
    registry_with_creds(&e, &reg, NULL);
    e.expect_done = 1;
    memset(&p, 0, sizeof(p));
    CHECK_INT(proto_reg_blob_get(&p.op, &reg, "app", "sha256:abc"), 0);
    probe_start(&p, &e);
    env_run(&e);
    CHECK_INT(p.done, 1);
    CHECK_INT(p.err, OCISYNC_EUNAUTHORIZED);
    CHECK(contains(p.errmsg, "credentials are never sent to a redirect target"));
    /* The registry got the credentials; its redirect target, never: no request, no token. */
    CHECK_INT(e.srv.n_reqs, 1);
    CHECK(contains(e.srv.reqs[0].head, "\r\nAuthorization: Basic "));
    CHECK(e.srv2.n_reqs >= 1);
    for (int i = 0; i < e.srv2.n_reqs; i++) {
        CHECK(!contains(e.srv2.reqs[i].head, "Authorization"));
        CHECK(strncmp(e.srv2.reqs[i].url, "/token", 6) != 0);
    }
    /* What the registry asks for is still what the registry said, not the target. */
    CHECK_INT(reg.auth, PROTO_AUTH_BASIC);
    CHECK_STR(reg.challenge.realm, "reg");
    proto_registry_dispose(&reg);
    env_free(&e);
}

TEST(redirect_target_basic_challenge_gets_nothing)
{
    redirect_fishing(1);
}

TEST(redirect_target_bearer_challenge_gets_nothing)
{
    redirect_fishing(2);
}

/* 127.0.0.1:PORT redirecting to localhost:PORT: the same socket, another origin. */
TEST(redirect_to_localhost_same_port_gets_nothing)
{
    struct env e;
    struct proto_registry reg;
    struct op_probe p;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_fishing, &e), 0);
    registry_with_creds(&e, &reg, NULL);
    e.expect_done = 1;
    memset(&p, 0, sizeof(p));
    CHECK_INT(proto_reg_blob_get(&p.op, &reg, "app", "sha256:local"), 0);
    probe_start(&p, &e);
    env_run(&e);
    CHECK_INT(p.err, OCISYNC_EUNAUTHORIZED);
    CHECK_INT(e.srv.n_reqs, 2);
    for (int i = 0; i < e.srv.n_reqs; i++) {
        bool to_localhost = contains(e.srv.reqs[i].head, "\r\nHost: localhost:");
        if (to_localhost)
            CHECK(!contains(e.srv.reqs[i].head, "Authorization"));
    }
    CHECK(contains(e.srv.reqs[1].head, "\r\nHost: localhost:"));
    proto_registry_dispose(&reg);
    env_free(&e);
}

TEST(manifest_put_redirect_refused)
{
    struct env e;
    struct proto_registry reg;
    struct op_probe p;
    static const char doc[] = "{\"schemaVersion\":2}";
    env_init(&e);
    target_scheme = 1;
    CHECK_INT(srv_start(&e.srv, &e.loop, h_fishing, &e), 0);
    CHECK_INT(srv_start(&e.srv2, &e.loop, h_catcher, &e), 0);
    registry_with_creds(&e, &reg, NULL);
    e.expect_done = 1;
    memset(&p, 0, sizeof(p));
    CHECK_INT(proto_reg_manifest_put(&p.op, &reg, "app", "v1",
                                     "application/vnd.oci.image.manifest.v1+json", doc,
                                     strlen(doc)),
              0);
    probe_start(&p, &e);
    env_run(&e);
    CHECK_INT(p.err, OCISYNC_EREDIRECT);
    CHECK(contains(p.errmsg, "only pushed to the registry itself"));
    CHECK_INT(e.srv2.n_reqs, 0); /* the manifest went nowhere else */
    proto_registry_dispose(&reg);
    env_free(&e);
}

static char digest_a[80], digest_b[80];

/*
 * Manifests: by digest A the bytes of B; the tag "liar" with B's bytes and
 * A's Docker-Content-Digest; the tag "honest" with B's bytes and B's digest.
 */
static void h_manifests(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    const char *dcd = strstr(q->url, "/honest") != NULL ? digest_b : digest_a;
    (void)s;
    srv_sendf(c, false,
              "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
              "Docker-Content-Digest: %s\r\nContent-Length: 1\r\n\r\nB",
              dcd);
}

TEST(manifest_bytes_must_match_their_digest)
{
    struct env e;
    struct proto_registry reg;
    struct op_probe p[3];
    char hostport[64];
    const char *refs[3] = {digest_a, "liar", "honest"};
    CHECK_INT(proto__digest_of("sha256:", "A", 1, digest_a, sizeof(digest_a)), 0);
    CHECK_INT(proto__digest_of("sha256:", "B", 1, digest_b, sizeof(digest_b)), 0);
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_manifests, &e), 0);
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", e.srv.port);
    CHECK_INT(proto_registry_init(&reg, &e.cl, hostport, "http", hostport), 0);
    e.expect_done = 3;
    memset(p, 0, sizeof(p));
    for (int i = 0; i < 3; i++) {
        CHECK_INT(proto_reg_manifest_get(&p[i].op, &reg, "app", refs[i], false), 0);
        probe_start(&p[i], &e);
    }
    env_run(&e);
    CHECK_INT(p[0].err, OCISYNC_EDIGESTMISMATCH);
    CHECK(contains(p[0].errmsg, digest_b));
    CHECK_INT(p[1].err, OCISYNC_EDIGESTMISMATCH);
    CHECK(contains(p[1].errmsg, "Docker-Content-Digest"));
    CHECK_INT(p[2].err, 0);
    proto_registry_dispose(&reg);
    env_free(&e);
}

TEST(digest_algorithms)
{
    char out[160];
    CHECK(proto__digest_alg(
              "sha256:0000000000000000000000000000000000000000000000000000000000000000") != NULL);
    CHECK(proto__digest_alg(
              "sha256:ABCD000000000000000000000000000000000000000000000000000000000000") == NULL);
    CHECK(proto__digest_alg("sha256:00") == NULL);
    CHECK(proto__digest_alg("latest") == NULL);
    CHECK(proto__digest_alg("md5:00000000000000000000000000000000") == NULL);
    CHECK_INT(proto__digest_of("sha256:", "", 0, out, sizeof(out)), 0);
    CHECK_STR(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_INT(proto__digest_of("sha512:", "", 0, out, 20), OCISYNC_ETOOBIG);
}

TEST_MAIN(T(status_line_without_end), T(interim_responses_without_end),
          T(header_whitespace_without_end), T(trickled_headers_meet_the_deadline),
          T(trickled_body_is_too_slow), T(paused_consumer_is_not_slow), T(error_body_without_end),
          T(redirect_body_without_end), T(abort_ends_everything_in_flight),
          T(retry_after_is_capped), T(redirect_target_basic_challenge_gets_nothing),
          T(redirect_target_bearer_challenge_gets_nothing),
          T(redirect_to_localhost_same_port_gets_nothing), T(manifest_put_redirect_refused),
          T(manifest_bytes_must_match_their_digest), T(digest_algorithms))
