/*
 * TLS between the socket and the connection's owner, with OpenSSL over
 * memory BIOs inside the event loop: ciphertext from the socket goes into
 * rbio, OpenSSL's output is drained from wbio and written to the socket.
 * Nothing blocks and no thread is involved.
 *
 * The owner sees the same interface as for plain TCP: on_read with
 * plaintext, on_write when its bytes are on their way, read start/stop for
 * flow control. Decrypted bytes wait inside OpenSSL while the owner is
 * paused; resuming hands them over from an idle callback, never from inside
 * the owner's own call.
 */
#include "loop/internal.h"

#include "common/log.h"
#include "ocisync.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flush {
    uv_write_t req;
    struct loop_conn *c;
    bool owner; /* completes an owner's write */
    size_t len;
    char data[];
};

/* ------------------------------------------------------------------------------------------ */
/* Configuration */

static void errq_string(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

struct loop_tls_config *loop_tls_config_new(const struct loop_tls_opts *opts, char *err,
                                            size_t errlen)
{
    struct loop_tls_config *cfg;
    SSL_CTX *ctx;
    char why[256];

    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto fail_ssl;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!opts->no_system_cas && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        errq_string(why, sizeof(why));
        snprintf(err, errlen, "cannot load the system CA certificates: %s", why);
        goto fail_ctx;
    }
    for (size_t i = 0; i < opts->n_ca_files; i++) {
        if (SSL_CTX_load_verify_locations(ctx, opts->ca_files[i], NULL) != 1) {
            errq_string(why, sizeof(why));
            snprintf(err, errlen, "cannot load CA certificates from %s: %s", opts->ca_files[i],
                     why);
            goto fail_ctx;
        }
    }
    if (opts->client_cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, opts->client_cert) != 1) {
            errq_string(why, sizeof(why));
            snprintf(err, errlen, "cannot load client certificate %s: %s", opts->client_cert, why);
            goto fail_ctx;
        }
        if (opts->client_key == NULL ||
            SSL_CTX_use_PrivateKey_file(ctx, opts->client_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            errq_string(why, sizeof(why));
            snprintf(err, errlen, "cannot use client key %s: %s",
                     opts->client_key ? opts->client_key : "(none given)", why);
            goto fail_ctx;
        }
    }
    cfg->verify = !opts->insecure_skip_verify;
    SSL_CTX_set_verify(ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    cfg->ssl_ctx = ctx;
    cfg->refs = 1;
    return cfg;

fail_ctx:
    SSL_CTX_free(ctx);
    free(cfg);
    return NULL;
fail_ssl:
    errq_string(why, sizeof(why));
    snprintf(err, errlen, "cannot set up TLS: %s", why);
    free(cfg);
    return NULL;
}

void loop_tls_config_ref(struct loop_tls_config *cfg)
{
    cfg->refs++;
}

void loop_tls_config_unref(struct loop_tls_config *cfg)
{
    if (cfg == NULL || --cfg->refs > 0)
        return;
    SSL_CTX_free(cfg->ssl_ctx);
    free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Writing ciphertext */

static void on_flushed(uv_write_t *req, int status)
{
    struct flush *f = container_of(req, struct flush, req);
    struct loop_conn *c = f->c;
    bool owner = f->owner;
    free(f);
    c->flushes--;
    if (c->state == LOOP_CONN_CLOSING)
        return;
    if (status != 0 && c->handshaking) {
        loop__conn_failed(c, status, NULL);
        return;
    }
    if (!owner)
        return;
    c->owner_write_pending = false;
    c->writing = false;
    if (c->owner != NULL)
        c->owner->on_write(c, status);
}

/* Sends whatever OpenSSL has produced; owner marks the flush that completes an owner write. */
static int flush(struct loop_conn *c, bool owner)
{
    size_t pending = BIO_ctrl_pending(c->wbio);
    struct flush *f;
    uv_buf_t b;
    int err;
    if (pending == 0) {
        if (owner) {
            /* Nothing to send (an empty write): complete it on the next flush or now. */
            return UV_EINVAL;
        }
        return 0;
    }
    f = malloc(sizeof(*f) + pending);
    if (f == NULL)
        return UV_ENOMEM;
    f->c = c;
    f->owner = owner;
    f->len = (size_t)BIO_read(c->wbio, f->data, (int)pending);
    b = uv_buf_init(f->data, (unsigned)f->len);
    err = uv_write(&f->req, (uv_stream_t *)&c->tcp, &b, 1, on_flushed);
    if (err != 0) {
        free(f);
        return err;
    }
    c->flushes++;
    return 0;
}

int loop__tls_write(struct loop_conn *c, const uv_buf_t *bufs, unsigned n)
{
    int err;
    for (unsigned i = 0; i < n; i++) {
        if (bufs[i].len == 0)
            continue;
        if (SSL_write(c->ssl, bufs[i].base, (int)bufs[i].len) <= 0) {
            ERR_clear_error();
            return OCISYNC_ETLS;
        }
    }
    err = flush(c, true);
    if (err != 0)
        return err;
    c->owner_write_pending = true;
    c->writing = true;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Handshake */

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Words a user can act on, for the verification failures they meet most. */
static void verify_reason(struct loop_conn *c, long res, char *buf, size_t len)
{
    const char *host = c->host != NULL ? c->host->host : "?";
    switch (res) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(buf, len, "certificate signed by unknown authority (give its CA with --cert-dir)");
        break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        snprintf(buf, len, "self-signed certificate that is not trusted");
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        snprintf(buf, len, "certificate has expired");
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(buf, len, "certificate is not yet valid");
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(buf, len, "certificate does not match host %.120s", host);
        break;
    default:
        snprintf(buf, len, "certificate verification failed: %s",
                 X509_verify_cert_error_string(res));
        break;
    }
}

static void handshake_step(struct loop_conn *c)
{
    char why[200], detail[512];
    int rc = SSL_do_handshake(c->ssl);
    int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
    int err = flush(c, false);
    if (err != 0) {
        loop__conn_failed(c, err, NULL);
        return;
    }
    if (rc == 1) {
        c->handshaking = false;
        LOG_DEBUG("conn %p: TLS %s established with %s", (void *)c, SSL_get_version(c->ssl),
                  c->host->host);
        loop__sock_read_stop(c);
        loop__conn_ready(c);
        return;
    }
    if (e == SSL_ERROR_WANT_READ)
        return;
    {
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK && c->tls->verify)
            verify_reason(c, vr, why, sizeof(why));
        else
            errq_string(why, sizeof(why));
    }
    ERR_clear_error();
    snprintf(detail, sizeof(detail), "TLS handshake with %.255s:%d failed: %.200s", c->host->host,
             c->host->port, why);
    loop__conn_failed(c, OCISYNC_ETLS, detail);
}

int loop__tls_start(struct loop_conn *c, const char *host)
{
    SSL *ssl;
    BIO *rbio, *wbio;
    int err;
    ssl = SSL_new(c->tls->ssl_ctx);
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    c->pbuf = malloc(LOOP_READ_BUF_SIZE);
    if (ssl == NULL || rbio == NULL || wbio == NULL || c->pbuf == NULL) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        ERR_clear_error();
        return UV_ENOMEM;
    }
    /* An empty memory BIO reports "retry", not EOF. */
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(ssl, rbio, wbio);
    c->ssl = ssl;
    c->rbio = rbio;
    c->wbio = wbio;
    if (!is_ip_literal(host))
        SSL_set_tlsext_host_name(ssl, host);
    if (c->tls->verify) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip_literal(host))
            X509_VERIFY_PARAM_set1_ip_asc(param, host);
        else
            X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    SSL_set_connect_state(ssl);
    c->handshaking = true;
    err = loop__sock_read_start(c);
    if (err != 0)
        return err;
    handshake_step(c);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading */

/* Hands decrypted bytes to the owner while it wants them. */
static void deliver(struct loop_conn *c)
{
    while (c->reading && c->owner != NULL && c->state == LOOP_CONN_ACTIVE) {
        int n = SSL_read(c->ssl, c->pbuf, LOOP_READ_BUF_SIZE);
        if (n > 0) {
            c->owner->on_read(c, c->pbuf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        /* Post-handshake messages (TLS 1.3 tickets) may want a write. */
        flush(c, false);
        if (e == SSL_ERROR_WANT_READ)
            return;
        loop__sock_read_stop(c);
        c->reading = false;
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->owner->on_error(c, UV_EOF);
        } else {
            char why[256];
            errq_string(why, sizeof(why));
            LOG_DEBUG("conn %p: TLS read failed: %s", (void *)c, why);
            c->owner->on_error(c, OCISYNC_ETLS);
        }
        return;
    }
}

/* An idle pooled connection got bytes: a session ticket is fine, anything else ends it. */
static void idle_input(struct loop_conn *c)
{
    char probe[1];
    int n = SSL_read(c->ssl, probe, sizeof(probe));
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    ERR_clear_error();
    flush(c, false);
    if (n <= 0 && e == SSL_ERROR_WANT_READ)
        return;
    loop__conn_close(c);
}

void loop__tls_on_read(struct loop_conn *c, ssize_t nread, const char *data)
{
    if (nread < 0) {
        if (c->handshaking) {
            char detail[512];
            snprintf(
                detail, sizeof(detail),
                "TLS handshake with %.255s:%d failed: the server closed the connection (%.100s)",
                c->host->host, c->host->port, uv_strerror((int)nread));
            loop__conn_failed(c, OCISYNC_ETLS, detail);
        } else if (c->state == LOOP_CONN_IDLE) {
            loop__conn_close(c);
        } else if (c->owner != NULL) {
            loop__sock_read_stop(c);
            c->reading = false;
            c->owner->on_error(c, (int)nread);
        }
        return;
    }
    BIO_write(c->rbio, data, (int)nread);
    if (c->handshaking) {
        handshake_step(c);
        return;
    }
    if (c->state == LOOP_CONN_IDLE) {
        idle_input(c);
        return;
    }
    if (c->reading)
        deliver(c);
    else
        loop__sock_read_stop(c);
}

static void on_deliver(uv_idle_t *idle)
{
    struct loop_conn *c = idle->data;
    uv_idle_stop(idle);
    if (c->state == LOOP_CONN_ACTIVE)
        deliver(c);
}

void loop__tls_read_start(struct loop_conn *c)
{
    /* Bytes OpenSSL already holds are handed over from the loop, not from the caller's stack. */
    if (SSL_pending(c->ssl) > 0 || BIO_ctrl_pending(c->rbio) > 0)
        uv_idle_start(&c->deliver, on_deliver);
}

void loop__tls_free(struct loop_conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
    free(c->pbuf);
    c->pbuf = NULL;
    loop_tls_config_unref(c->tls);
    c->tls = NULL;
}
