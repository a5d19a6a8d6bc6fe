/*
 * libFuzzer target for proto_auth_challenge_parse and proto_auth_token_parse
 * (src/proto/auth.c), which read a registry's WWW-Authenticate header and a
 * token server's JSON body. It checks the contracts callers rely on: only the
 * documented error codes, a cleared result on failure, NUL-terminated fields
 * free of control characters, a realm for every Bearer result, a token that
 * is safe to put in a header, and the same answer when parsed twice. The
 * input also goes through the base64 decoder and, when it decodes, back
 * through the encoder.
 */
#include "ocisync.h"
#include "proto/auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void check_field(const char *f, size_t cap)
{
    size_t n = strnlen(f, cap);

    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)f[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            abort();
    }
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

static void fuzz_challenge(const char *data, size_t size)
{
    struct proto_auth_challenge a, b;
    int ra, rb;

    ra = proto_auth_challenge_parse(data, size, &a);
    if (ra != 0 && ra != OCISYNC_EHTTP && ra != OCISYNC_ETOOBIG)
        abort();
    if (ra != 0) {
        if (!all_zero(&a, sizeof(a)))
            abort();
    } else {
        if (a.scheme != PROTO_AUTH_NONE && a.scheme != PROTO_AUTH_BASIC &&
            a.scheme != PROTO_AUTH_BEARER)
            abort();
        check_field(a.realm, sizeof(a.realm));
        check_field(a.service, sizeof(a.service));
        check_field(a.scope, sizeof(a.scope));
        check_field(a.error, sizeof(a.error));
        if (a.scheme == PROTO_AUTH_BEARER && a.realm[0] == '\0')
            abort();
        if (a.scheme == PROTO_AUTH_NONE && !all_zero(&a, sizeof(a)))
            abort();
    }
    rb = proto_auth_challenge_parse(data, size, &b);
    if (ra != rb || memcmp(&a, &b, sizeof(a)) != 0)
        abort();
}

static void fuzz_token(const char *data, size_t size)
{
    struct proto_auth_token t;
    int rc = proto_auth_token_parse(data, size, &t);

    if (rc != 0) {
        if (rc != OCISYNC_EJSON && rc != OCISYNC_ETOOBIG && rc != UV_ENOMEM)
            abort();
        if (t.token != NULL || t.refresh_token != NULL || t.expires_in != 0 || t.issued_at != 0)
            abort();
        return;
    }
    if (t.token == NULL || t.token[0] == '\0' || strlen(t.token) > PROTO_AUTH_MAX_TOKEN)
        abort();
    for (const char *p = t.token; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            abort();
    }
    if (t.refresh_token != NULL && t.refresh_token[0] == '\0')
        abort();
    if (t.expires_in < 60)
        abort();
    proto_auth_token_dispose(&t);
    if (t.token != NULL || t.refresh_token != NULL)
        abort();
}

static void fuzz_base64(const char *data, size_t size)
{
    unsigned char *out = malloc(size + 1);
    ssize_t n;
    char *enc;

    if (out == NULL)
        return;
    n = proto_base64_decode(data, size, out, size);
    if (n < -1 || n > (ssize_t)size)
        abort();
    if (n >= 0) {
        /* A decoded input re-encodes to a string of the padded length. */
        enc = proto_base64_encode(out, (size_t)n);
        if (enc == NULL || strlen(enc) != ((size_t)n + 2) / 3 * 4 || strlen(enc) < size ||
            strlen(enc) > size + 2)
            abort();
        if (proto_base64_decode(enc, strlen(enc), out, (size_t)n) != n)
            abort();
        free(enc);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so any read past size is caught by ASan. */
    char *s = malloc(size ? size : 1);

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    fuzz_challenge(s, size);
    fuzz_token(s, size);
    fuzz_base64(s, size);
    free(s);
    return 0;
}
