/*
 * engine_fetch_url against servers on loopback: test_http_srv.h's HTTP
 * server on a loop of its own thread (engine_fetch_url blocks the test's),
 * and for HTTPS a small blocking OpenSSL server with a certificate made at
 * start. Also the pure parts: BuildKit's file names and HTTP dates, checked
 * against what Go's url.Parse, path.Base, SafeFileName and http.ParseTime
 * give.
 */
#include "test_http_srv.h"

#include "engine/fetch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAST_MODIFIED "Sun, 06 Nov 1994 08:49:37 GMT"
#define LAST_MODIFIED_T 784111777
#define CHUNKED_SIZE (1024 * 1024)
#define CAP (64u * 1024 * 1024)

static int tls_port; /* the HTTPS server's, for the plain server's redirects to it */

/* ------------------------------------------------------------------------------------------ */
/* The plain HTTP server, on a thread */

static void send_chunked(struct srv_conn *c, size_t total)
{
    const char *b = big();
    srv_send(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < total; off += 64 * 1024) {
        char head[32];
        size_t n = total - off < 64 * 1024 ? total - off : 64 * 1024;
        snprintf(head, sizeof(head), "%zx\r\n", n);
        srv_send(c, head);
        srv_send_ex(c, b + off, n, true, false);
        srv_send(c, "\r\n");
    }
    srv_send(c, "0\r\n\r\n");
}

/* Answers by path (the query ignored). Runs on the server's thread. */
static void handler(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    char path[SRV_URL_MAX];
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(q->url, "?"), q->url);
    if (strcmp(path, "/file.txt") == 0) {
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nLast-Modified: " LAST_MODIFIED
                    "\r\n\r\nhello\n");
    } else if (strcmp(path, "/nodate") == 0) {
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nLast-Modified: yesterday\r\n"
                    "Content-Disposition: attachment; filename=\"other.bin\"\r\n\r\nabc");
    } else if (strcmp(path, "/empty") == 0) {
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(path, "/big") == 0) {
        srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BIG_SIZE);
        srv_send_ex(c, big(), BIG_SIZE, true, false);
    } else if (strcmp(path, "/chunked") == 0) {
        send_chunked(c, CHUNKED_SIZE);
    } else if (strncmp(path, "/r/", 3) == 0) {
        /* A chain down to /r/0, each link another status and another form of Location. */
        static const int codes[] = {301, 302, 303, 307, 308};
        int n = atoi(path + 3);
        if (n == 0)
            srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nend\n");
        else if (n % 3 == 0)
            srv_sendf(c, false,
                      "HTTP/1.1 %d X\r\nLocation: http://127.0.0.1:%d/r/%d\r\n"
                      "Content-Length: 5\r\n\r\nmoved",
                      codes[n % 5], s->port, n - 1);
        else if (n % 3 == 1)
            srv_sendf(c, false, "HTTP/1.1 %d X\r\nLocation: /r/%d\r\nContent-Length: 0\r\n\r\n",
                      codes[n % 5], n - 1);
        else
            srv_sendf(c, false, "HTTP/1.1 %d X\r\nLocation: %d\r\nContent-Length: 0\r\n\r\n",
                      codes[n % 5], n - 1);
    } else if (strcmp(path, "/loop") == 0) {
        srv_send(c, "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(path, "/gone") == 0) {
        srv_send(c, "HTTP/1.1 302 Found\r\nLocation: /missing?sig=secret\r\nContent-Length: "
                    "0\r\n\r\n");
    } else if (strcmp(path, "/ftp") == 0) {
        srv_send(c, "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: "
                    "0\r\n\r\n");
    } else if (strcmp(path, "/tohttps") == 0) {
        srv_sendf(c, false,
                  "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:%d/secure.txt\r\n"
                  "Content-Length: 0\r\n\r\n",
                  tls_port);
    } else if (strcmp(path, "/stall") == 0) {
        /* The head and a few bytes of the body, then nothing. */
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    } else if (strcmp(path, "/silent") == 0) {
        /* No answer at all. */
    } else if (strcmp(path, "/error") == 0) {
        srv_send(c, "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops");
    } else {
        srv_send(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n");
    }
}

/* What every test that downloads starts with. */
static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    if (getenv("OCISYNC_TEST_DEBUG") != NULL)
        ocisync__debug = 1;
    /* No certs.d of this machine's may change what the tests trust. */
    setenv("OCISYNC_CERTS_DIRS", "/nonexistent", 1);
    /* The HTTPS server writes to clients that may have hung up. */
    signal(SIGPIPE, SIG_IGN);
}

static void st_start(struct srv_thread *t)
{
    setup();
    big(); /* made here, before the server's thread reads it */
    srv_thread_start(t, handler);
}

/* Stops the server and its thread; its requests may be read after. */
static void st_stop(struct srv_thread *t)
{
    srv_thread_stop(t);
}

static void st_free(struct srv_thread *t)
{
    srv_free(&t->srv);
}

static const char *url_of(struct srv_thread *t, const char *path)
{
    return srv_url(&t->srv, path);
}

/* ------------------------------------------------------------------------------------------ */
/* The HTTPS server: blocking OpenSSL on a thread, a self-signed certificate for 127.0.0.1 */

static char cert_dir[64]; /* holds ca.crt, the server's certificate */
static X509 *cert;
static EVP_PKEY *key;

static void make_cert(void)
{
    X509_NAME *name;
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    char path[128];
    FILE *fp;
    static const char *const exts[][2] = {
        {"subjectAltName", "IP:127.0.0.1"},
        {"basicConstraints", "critical,CA:TRUE"},
        {"keyUsage", "critical,digitalSignature,keyCertSign"},
    };

    key = EVP_EC_gen("P-256");
    cert = X509_new();
    if (key == NULL || cert == NULL)
        abort();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        ext = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        if (ext == NULL)
            abort();
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert, key, EVP_sha256()) == 0)
        abort();
    snprintf(cert_dir, sizeof(cert_dir), "/tmp/ocisync-fetch-certs-XXXXXX");
    if (mkdtemp(cert_dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/ca.crt", cert_dir);
    fp = fopen(path, "w");
    if (fp == NULL || PEM_write_X509(fp, cert) != 1)
        abort();
    fclose(fp);
}

static void free_cert(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/ca.crt", cert_dir);
    unlink(path);
    rmdir(cert_dir);
    X509_free(cert);
    EVP_PKEY_free(key);
}

struct tls_srv {
    int lfd, port;
    SSL_CTX *ctx;
    uv_thread_t tid;
    atomic_int stop;
    int handshakes, requests; /* read after the join */
};

static void tls_serve(struct tls_srv *t, int fd)
{
    struct timeval tv = {.tv_sec = 2};
    SSL *ssl = SSL_new(t->ctx);
    char req[4096], resp[512];
    size_t n = 0;
    int k;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1)
        goto out;
    t->handshakes++;
    while (n < sizeof(req) - 1 && (k = SSL_read(ssl, req + n, (int)(sizeof(req) - 1 - n))) > 0) {
        n += (size_t)k;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    req[n] = '\0';
    t->requests++;
    if (strncmp(req, "GET /secure.txt ", 16) == 0)
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsecure\n");
    else if (strncmp(req, "GET /tohttp ", 12) == 0)
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/file.txt\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                 *(int *)SSL_CTX_get_app_data(t->ctx));
    else
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    SSL_write(ssl, resp, (int)strlen(resp));
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
}

static void tls_run(void *arg)
{
    struct tls_srv *t = arg;
    while (!atomic_load(&t->stop)) {
        struct pollfd p = {.fd = t->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            int fd = accept(t->lfd, NULL, NULL);
            if (fd >= 0)
                tls_serve(t, fd);
        }
    }
}

/* http_port: where /tohttp sends the client. */
static void tls_start(struct tls_srv *t, int *http_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (cert == NULL) {
        make_cert();
        atexit(free_cert);
    }
    memset(t, 0, sizeof(*t));
    t->ctx = SSL_CTX_new(TLS_server_method());
    CHECK(t->ctx != NULL);
    CHECK_INT(SSL_CTX_use_certificate(t->ctx, cert), 1);
    CHECK_INT(SSL_CTX_use_PrivateKey(t->ctx, key), 1);
    SSL_CTX_set_app_data(t->ctx, http_port);
    t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(t->lfd >= 0);
    CHECK_INT(bind(t->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_INT(listen(t->lfd, 16), 0);
    CHECK_INT(getsockname(t->lfd, (struct sockaddr *)&a, &alen), 0);
    t->port = ntohs(a.sin_port);
    tls_port = t->port;
    CHECK_INT(uv_thread_create(&t->tid, tls_run, t), 0);
}

static void tls_stop(struct tls_srv *t)
{
    atomic_store(&t->stop, 1);
    uv_thread_join(&t->tid);
    close(t->lfd);
    SSL_CTX_free(t->ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

struct dest {
    char dir[64];
    char path[128];
};

static void dest_init(struct dest *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/ocisync-fetch-XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        abort();
    snprintf(d->path, sizeof(d->path), "%s/out", d->dir);
}

/* The names in d's directory, joined by spaces ("" when empty): temp files would show. */
static const char *dest_list(struct dest *d)
{
    static char buf[1024];
    DIR *dir = opendir(d->dir);
    struct dirent *e;
    buf[0] = '\0';
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? " " : "",
                 e->d_name);
    }
    if (dir != NULL)
        closedir(dir);
    return buf;
}

static void dest_free(struct dest *d)
{
    DIR *dir = opendir(d->dir);
    struct dirent *e;
    char p[512];
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", d->dir, e->d_name);
        unlink(p);
    }
    if (dir != NULL)
        closedir(dir);
    rmdir(d->dir);
}

/* The file's content (static buffer, NUL-terminated), or NULL. */
static const char *slurp(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    ssize_t n;
    if (fd < 0)
        return NULL;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return buf;
}

static void write_file(const char *path, const char *s)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        abort();
    fputs(s, fp);
    fclose(fp);
}

static struct ocisync_copy_opts opts(void)
{
    struct ocisync_copy_opts o;
    memset(&o, 0, sizeof(o));
    o.idle_timeout = 5; /* a hang fails the test instead of waiting two minutes */
    return o;
}

static struct oci_digest sha256_of(const void *data, size_t len)
{
    struct oci_digest d;
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, data, len, &d), 0);
    return d;
}

/* A failed fetch: its error, the message's key words, and nothing left in d. */
static void check_failed(struct dest *d, int rc, int want, const char *err, const char *words)
{
    CHECK_STR(ocisync_err_name(rc), ocisync_err_name(want));
    if (!contains(err, words))
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, words);
    CHECK(contains(err, words));
    CHECK_STR(dest_list(d), "");
}

/* ------------------------------------------------------------------------------------------ */
/* Pure parts */

TEST(filename)
{
    /* Each as Go (url.Parse, path.Base, pathutil.SafeFileName) names it; checked with go1.19. */
    static const char *const cases[][2] = {
        {"https://example.com/foo/bar.tar.gz", "bar.tar.gz"},
        {"https://example.com/foo/bar.tar.gz?x=1#f", "bar.tar.gz"},
        {"https://example.com", "__unnamed__"},
        {"https://example.com/", "__unnamed__"},
        {"https://example.com//", "__unnamed__"},
        {"https://example.com/dir/", "dir"},
        {"https://example.com/a%20b.txt", "a b.txt"},
        {"https://example.com/a%2Fb", "b"},
        {"https://example.com/a/b%2F", "b"},
        {"https://example.com/%2F", "__unnamed__"},
        {"https://example.com/%20x%20", "x"},
        {"https://example.com/..", "download"},
        {"https://example.com/a/%2E%2E", "download"},
        {"https://example.com/.", "__unnamed__"},
        {"https://example.com/x%00y", "download"},
        {"https://example.com/%09", "download"},
        {"https://example.com/x%zz", "__unnamed__"},
        {"https://example.com/x%2", "__unnamed__"},
        {"https://example.com/%C2%85x", "x"},
        {"https://example.com/x%E2%80%83", "x"},
        {"https://example.com/x%C2%80y", "download"},
        {"https://example.com/%C3%A9t%C3%A9", "\xc3\xa9t\xc3\xa9"},
        {"https://example.com/?q=/x", "__unnamed__"},
        {"https://example.com?x", "__unnamed__"},
        {"https://example.com/a+b", "a+b"},
        {"https://example.com/x#frag/y", "x"},
        {"http://127.0.0.1:8080/r/9", "9"},
    };
    char name[ENGINE_FETCH_NAME_MAX], url[600];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(engine_fetch_filename(cases[i][0], name), 0);
        if (strcmp(name, cases[i][1]) != 0)
            fprintf(stderr, "%s\n", cases[i][0]);
        CHECK_STR(name, cases[i][1]);
    }
    /* 255 bytes is a name; 256 is not. */
    snprintf(url, sizeof(url), "https://example.com/d/%0255d", 0);
    CHECK_INT(engine_fetch_filename(url, name), 0);
    CHECK_INT(strlen(name), 255);
    snprintf(url, sizeof(url), "https://example.com/d/%0256d", 0);
    CHECK_INT(engine_fetch_filename(url, name), OCISYNC_ETOOBIG);
}

TEST(dates)
{
    /* As Go's http.ParseTime reads them (checked with go1.19); INT64_MIN: refused. */
    static const struct {
        const char *s;
        int64_t t;
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Sun Nov 6 08:49:37 1994", 784111777},
        {"Sun Nov 16 08:49:37 1994", 784975777},
        {"sun, 06 nov 1994 8:49:37 GMT", 784111777},
        {"Sun,  06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sun, 06 Nov 1994 08:49:37.5 GMT", 784111777},
        {"Thu, 29 Feb 2024 00:00:00 GMT", 1709164800},
        {"Wednesday, 01-Jan-70 00:00:00 GMT", 0},
        {"Thursday, 01-Jan-68 00:00:00 GMT", 3092601600},
        {"Mon, 01 Jan 1900 00:00:00 GMT", -2208988800},
        {"Sat, 01 Jan 0001 00:00:00 GMT", -62135596800},
        {"Fri, 30 Feb 2024 00:00:00 GMT", INT64_MIN},
        {"Sun, 06 Nov 1994 08:49:37 UTC", INT64_MIN},
        {"Sun, 6 Nov 1994 08:49:37 GMT", INT64_MIN},
        {"Sun, 06 Nov 1994 24:00:00 GMT", INT64_MIN},
        {"Sun, 06 Nov 1994 08:49:60 GMT", INT64_MIN},
        {"Sun, 06 Nov 1994 08:49:37 GMT x", INT64_MIN},
        {"Sun, 06 Foo 1994 08:49:37 GMT", INT64_MIN},
        {"", INT64_MIN},
        {"garbage", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = -1;
        int rc = engine_fetch_parse_date(cases[i].s, &t);
        if (cases[i].t == INT64_MIN) {
            CHECK_INT(rc, OCISYNC_EUSAGE);
        } else {
            CHECK_INT(rc, 0);
            CHECK_INT(t, cases[i].t);
        }
        if (rc != (cases[i].t == INT64_MIN ? OCISYNC_EUSAGE : 0))
            fprintf(stderr, "date \"%s\"\n", cases[i].s);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Downloads */

TEST(plain)
{
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    struct oci_digest want = sha256_of("hello\n", 6);
    struct stat st;
    char err[1024] = "", url[256];
    int rc;

    st_start(&t);
    dest_init(&d);
    snprintf(url, sizeof(url), "%s", url_of(&t, "/file.txt"));
    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    st_stop(&t);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_STR(slurp(d.path), "hello\n");
    CHECK_STR(res.digest.str, want.str);
    CHECK_INT(res.size, 6);
    CHECK_INT(res.mtime, LAST_MODIFIED_T);
    CHECK_STR(res.final_url, url);
    CHECK_STR(res.filename, "file.txt");
    CHECK_INT(stat(d.path, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0600);
    CHECK_INT(st.st_mtime, LAST_MODIFIED_T);
    CHECK_STR(dest_list(&d), "out");
    /* One GET, with nothing to decode and nothing of anyone's credentials. */
    CHECK_INT(t.srv.n_reqs, 1);
    CHECK_STR(t.srv.reqs[0].method, "GET");
    CHECK(contains(t.srv.reqs[0].head, "Accept-Encoding: identity\r\n"));
    CHECK(!contains(t.srv.reqs[0].head, "Authorization"));
    st_free(&t);
    dest_free(&d);
}

TEST(replace_and_no_date)
{
    /* An existing file is replaced whole; no readable Last-Modified is -1; Content-Disposition
     * does not name anything (Dockerfile ADD names the file after the URL). */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "";
    int rc;

    st_start(&t);
    dest_init(&d);
    write_file(d.path, "an older and longer content");
    rc = engine_fetch_url(url_of(&t, "/nodate"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    st_stop(&t);
    CHECK_INT(rc, 0);
    CHECK_STR(slurp(d.path), "abc");
    CHECK_INT(res.mtime, -1);
    CHECK_STR(res.filename, "nodate");
    CHECK_STR(dest_list(&d), "out");
    st_free(&t);
    dest_free(&d);
}

TEST(empty)
{
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    struct oci_digest want = sha256_of("", 0);
    char err[1024] = "";
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/empty"), &o, d.path, 0, &want, &res, err, sizeof(err));
    st_stop(&t);
    CHECK_INT(rc, 0);
    CHECK_STR(slurp(d.path), "");
    CHECK_INT(res.size, 0);
    CHECK_STR(res.digest.str, want.str);
    st_free(&t);
    dest_free(&d);
}

TEST(big)
{
    /* 8 MiB through the two buffers, and a chunked body: exactly at the cap is allowed. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    struct oci_digest want = sha256_of(big(), BIG_SIZE);
    struct oci_digest want_chunked = sha256_of(big(), CHUNKED_SIZE);
    struct stat st;
    char err[1024] = "";
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/big"), &o, d.path, BIG_SIZE, &want, &res, err, sizeof(err));
    CHECK_INT(rc, 0);
    CHECK_INT(res.size, BIG_SIZE);
    CHECK_STR(res.digest.str, want.str);
    CHECK_INT(stat(d.path, &st), 0);
    CHECK_INT(st.st_size, BIG_SIZE);
    rc = engine_fetch_url(url_of(&t, "/chunked"), &o, d.path, CHUNKED_SIZE, NULL, &res, err,
                          sizeof(err));
    st_stop(&t);
    CHECK_INT(rc, 0);
    CHECK_INT(res.size, CHUNKED_SIZE);
    CHECK_STR(res.digest.str, want_chunked.str);
    CHECK_STR(dest_list(&d), "out");
    st_free(&t);
    dest_free(&d);
}

TEST(redirects)
{
    /* Nine redirects (301, 302, 303, 307, 308; absolute, "/path" and relative Locations) are
     * ten requests, Go's limit: followed. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "", url[256];
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/r/9"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    st_stop(&t);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_STR(slurp(d.path), "end\n");
    CHECK_INT(t.srv.n_reqs, 10);
    snprintf(url, sizeof(url), "%s", url_of(&t, "/r/0"));
    CHECK_STR(res.final_url, url);
    CHECK_STR(res.filename, "9");
    CHECK_INT(res.mtime, -1);
    for (int i = 0; i < t.srv.n_reqs; i++)
        CHECK_STR(t.srv.reqs[i].method, "GET");
    st_free(&t);
    dest_free(&d);
}

TEST(redirect_limits)
{
    /* A tenth redirect in a row is refused, as is a loop, a Location that is not http(s), and
     * a chain that ends in a 404 names where it ended. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "";
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/r/10"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EREDIRECT, err, "stopped after 10 redirects");
    CHECK(contains(err, "/r/10"));
    rc = engine_fetch_url(url_of(&t, "/loop"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EREDIRECT, err, "stopped after 10 redirects");
    rc = engine_fetch_url(url_of(&t, "/ftp"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EREDIRECT, err, "unusable Location");
    rc = engine_fetch_url(url_of(&t, "/gone"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_ENOTFOUND, err, "/gone (redirected to http://127.0.0.1:");
    CHECK(contains(err, "/missing?...): HTTP 404"));
    CHECK(!contains(err, "secret"));
    st_stop(&t);
    CHECK_INT(t.srv.n_reqs, 10 + 10 + 1 + 2);
    st_free(&t);
    dest_free(&d);
}

TEST(status_errors)
{
    /* A 404 or 500 names the URL (without its query) and the status; an existing file stays. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "", want[256];
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/missing?token=secret"), &o, d.path, CAP, NULL, &res, err,
                          sizeof(err));
    snprintf(want, sizeof(want), "%s?...: HTTP 404", url_of(&t, "/missing"));
    check_failed(&d, rc, OCISYNC_ENOTFOUND, err, want);
    CHECK(!contains(err, "secret"));
    write_file(d.path, "old");
    rc = engine_fetch_url(url_of(&t, "/error"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    st_stop(&t);
    CHECK_STR(ocisync_err_name(rc), ocisync_err_name(OCISYNC_EREGISTRY));
    CHECK(contains(err, "/error: HTTP 500"));
    CHECK_STR(slurp(d.path), "old");
    CHECK_STR(dest_list(&d), "out");
    st_free(&t);
    dest_free(&d);
}

TEST(cap)
{
    /* Over the cap: refused on the announced length, or as a chunked body grows past it. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "";
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/big"), &o, d.path, BIG_SIZE - 1, NULL, &res, err,
                          sizeof(err));
    check_failed(&d, rc, OCISYNC_ETOOBIG, err, "announces 8388608 bytes, more than the limit");
    rc = engine_fetch_url(url_of(&t, "/chunked"), &o, d.path, CHUNKED_SIZE - 1, NULL, &res, err,
                          sizeof(err));
    check_failed(&d, rc, OCISYNC_ETOOBIG, err, "larger than the limit of 1048575 bytes");
    rc = engine_fetch_url(url_of(&t, "/file.txt"), &o, d.path, 5, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_ETOOBIG, err, "/file.txt");
    st_stop(&t);
    st_free(&t);
    dest_free(&d);
}

TEST(checksum)
{
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    struct oci_digest good = sha256_of("hello\n", 6), bad = sha256_of("hello", 5), sha512;
    char err[1024] = "", want[512];
    int rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url(url_of(&t, "/file.txt"), &o, d.path, CAP, &good, &res, err, sizeof(err));
    CHECK_INT(rc, 0);
    CHECK_STR(slurp(d.path), "hello\n");
    CHECK_INT(unlink(d.path), 0);
    rc = engine_fetch_url(url_of(&t, "/file.txt"), &o, d.path, CAP, &bad, &res, err, sizeof(err));
    snprintf(want, sizeof(want), "checksum mismatch: got %s, expected %s", good.str, bad.str);
    check_failed(&d, rc, OCISYNC_EDIGESTMISMATCH, err, want);
    /* BuildKit's HTTP source hashes with SHA-256 only. */
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA512, "hello\n", 6, &sha512), 0);
    rc =
        engine_fetch_url(url_of(&t, "/file.txt"), &o, d.path, CAP, &sha512, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EUSAGE, err, "not sha256");
    st_stop(&t);
    CHECK_INT(t.srv.n_reqs, 2);
    st_free(&t);
    dest_free(&d);
}

TEST(write_error)
{
    /* The disk refuses (a file size limit) halfway through an 8 MiB body, while the body is
     * paused for the sink: the download stops there and leaves nothing behind. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    struct rlimit old, lim;
    char err[1024] = "";
    int rc;

    st_start(&t);
    dest_init(&d);
    signal(SIGXFSZ, SIG_IGN);
    CHECK_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1024 * 1024;
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = engine_fetch_url(url_of(&t, "/big"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    check_failed(&d, rc, UV_EFBIG, err, "/big: cannot write the downloaded file");
    st_stop(&t);
    st_free(&t);
    dest_free(&d);
}

TEST(stalls)
{
    /* A server that stops halfway through the body, and one that never answers: each ends at
     * the idle timeout (1 s here). */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "";
    uint64_t t0;
    int rc;

    o.idle_timeout = 1;
    st_start(&t);
    dest_init(&d);
    t0 = uv_hrtime();
    rc = engine_fetch_url(url_of(&t, "/stall"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_ETIMEOUT, err, "/stall: ");
    CHECK(contains(err, "timed out"));
    rc = engine_fetch_url(url_of(&t, "/silent"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_ETIMEOUT, err, "/silent: ");
    CHECK((uv_hrtime() - t0) / 1000000 < 6000);
    st_stop(&t);
    st_free(&t);
    dest_free(&d);
}

TEST(refusals)
{
    /* Refused before any request: other schemes, credentials in the URL, an unwritable
     * destination; and a port nobody listens on names the URL. */
    struct srv_thread t;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "", bad[256], url[256];
    uv_loop_t loop;
    uv_tcp_t tcp;
    struct sockaddr_in a;
    struct sockaddr_storage name;
    int namelen = sizeof(name), rc;

    st_start(&t);
    dest_init(&d);
    rc = engine_fetch_url("ftp://127.0.0.1/x", &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EUSAGE, err, "not an http or https URL");
    snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%d/file.txt", t.srv.port);
    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EUSAGE, err, "credentials in a URL");
    rc =
        engine_fetch_url("http://127.0.0.1:99999/x", &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_EUSAGE, err, "not a valid URL");
    snprintf(bad, sizeof(bad), "%s/no/such/dir/out", d.dir);
    rc = engine_fetch_url(url_of(&t, "/file.txt"), &o, bad, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, UV_ENOENT, err, "cannot create");
    st_stop(&t);
    CHECK_INT(t.srv.n_reqs, 0);
    st_free(&t);

    /* A port that was just free. */
    CHECK_INT(uv_loop_init(&loop), 0);
    uv_tcp_init(&loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &a);
    CHECK_INT(uv_tcp_bind(&tcp, (const struct sockaddr *)&a, 0), 0);
    CHECK_INT(uv_tcp_getsockname(&tcp, (struct sockaddr *)&name, &namelen), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/file.txt",
             ntohs(((struct sockaddr_in *)&name)->sin_port));
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, UV_ECONNREFUSED, err, url);
    dest_free(&d);
}

TEST(https)
{
    /* Verified with the CA from cert_dir, or from the host's certs.d entry; refused without;
     * an https -> http redirect only without verification; http -> https is fine. */
    struct srv_thread t;
    struct tls_srv ts;
    struct dest d;
    struct engine_fetch_result res;
    struct ocisync_copy_opts o = opts();
    char err[1024] = "", url[256], back[256], certsd[128], entry[192], crt[256], src[128];
    int rc;

    st_start(&t);
    tls_start(&ts, &t.srv.port);
    dest_init(&d);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/secure.txt", ts.port);

    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    check_failed(&d, rc, OCISYNC_ETLS, err, url);

    o.src.cert_dir = cert_dir;
    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_STR(slurp(d.path), "secure\n");
    CHECK_STR(res.filename, "secure.txt");

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/tohttp", ts.port);
    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    CHECK_STR(ocisync_err_name(rc), ocisync_err_name(OCISYNC_EREDIRECT));
    CHECK(contains(err, "refused a redirect from HTTPS to plain HTTP"));
    CHECK_STR(slurp(d.path), "secure\n");

    o.src.cert_dir = NULL;
    o.src.tls_verify = OCISYNC_TLS_VERIFY_OFF;
    rc = engine_fetch_url(url, &o, d.path, CAP, NULL, &res, err, sizeof(err));
    CHECK_INT(rc, 0);
    CHECK_STR(slurp(d.path), "hello\n");
    snprintf(back, sizeof(back), "%s", url_of(&t, "/file.txt"));
    CHECK_STR(res.final_url, back);
    CHECK_STR(res.filename, "tohttp");

    /* The host's own certs.d entry ("127.0.0.1:PORT") is trusted too. */
    o.src.tls_verify = OCISYNC_TLS_VERIFY_DEFAULT;
    snprintf(certsd, sizeof(certsd), "%s/certs.d", d.dir);
    snprintf(entry, sizeof(entry), "%s/127.0.0.1:%d", certsd, ts.port);
    snprintf(crt, sizeof(crt), "%s/ca.crt", entry);
    snprintf(src, sizeof(src), "%s/ca.crt", cert_dir);
    CHECK_INT(mkdir(certsd, 0700), 0);
    CHECK_INT(mkdir(entry, 0700), 0);
    CHECK_INT(link(src, crt), 0);
    setenv("OCISYNC_CERTS_DIRS", certsd, 1);
    rc = engine_fetch_url(url_of(&t, "/tohttps"), &o, d.path, CAP, NULL, &res, err, sizeof(err));
    setenv("OCISYNC_CERTS_DIRS", "/nonexistent", 1);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_STR(slurp(d.path), "secure\n");
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/secure.txt", ts.port);
    CHECK_STR(res.final_url, url);
    unlink(crt);
    rmdir(entry);
    rmdir(certsd);

    tls_stop(&ts);
    st_stop(&t);
    CHECK_INT(ts.requests, 4);
    st_free(&t);
    dest_free(&d);
}

TEST_MAIN(T(filename), T(dates), T(plain), T(replace_and_no_date), T(empty), T(big), T(redirects),
          T(redirect_limits), T(status_errors), T(cap), T(checksum), T(write_error), T(stalls),
          T(refusals), T(https))
