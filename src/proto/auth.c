/*
 * WWW-Authenticate challenges, token-server responses, Basic credentials,
 * base64 and query escaping. Everything here parses bytes a registry or a
 * token server sent, so every input is length-delimited, capped, and read
 * through a cursor; nothing here logs, because the inputs carry secrets.
 */
#include "proto/auth.h"

#include "ocisync.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

/* Docker's minimum token lifetime: shorter or missing "expires_in" values are raised to it. */
#define TOKEN_MIN_EXPIRES 60
/*
 * A token server may claim any lifetime up to INT64_MAX seconds. Callers add
 * expires_in to a clock reading, so it is capped at a year, which is "never
 * expires" for any copy and cannot overflow that sum.
 */
#define TOKEN_MAX_EXPIRES (365 * 24 * 3600)

/* ------------------------------------------------------------------------------------------ */
/* A read cursor over length-delimited wire bytes */

/*
 * All parsing below goes through this cursor, so no byte past len is ever
 * read: header values and JSON strings arrive without a trailing NUL we could
 * rely on.
 */
struct cursor {
    const char *buf; /* borrowed; not NUL-terminated */
    size_t len;
    size_t pos;
};

/* A run of bytes inside a cursor's buffer, as cur_span returns it. */
struct span {
    const char *p; /* borrowed from the cursor's buffer */
    size_t len;
};

static int cur_eof(const struct cursor *c)
{
    return c->pos >= c->len;
}

/* The next byte as 0..255, or -1 at the end. */
static int cur_peek(const struct cursor *c)
{
    return cur_eof(c) ? -1 : (unsigned char)c->buf[c->pos];
}

static int cur_take(struct cursor *c)
{
    int ch = cur_peek(c);

    if (ch >= 0)
        c->pos++;
    return ch;
}

/* Consumes ch if it is next; returns whether it did. */
static int cur_accept(struct cursor *c, int ch)
{
    if (cur_eof(c) || cur_peek(c) != ch)
        return 0;
    c->pos++;
    return 1;
}

/* Consumes the longest run of bytes that pred accepts. */
static struct span cur_span(struct cursor *c, int (*pred)(int))
{
    struct span s = {c->buf + c->pos, 0};

    while (!cur_eof(c) && pred(cur_peek(c))) {
        c->pos++;
        s.len++;
    }
    return s;
}

static int is_ows(int ch)
{
    return ch == ' ' || ch == '\t';
}

/* Skips optional whitespace (RFC 9110 OWS / BWS) and says how much there was. */
static size_t cur_skip_ows(struct cursor *c)
{
    return cur_span(c, is_ows).len;
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_alpha(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Reads exactly n decimal digits into *val. */
static int cur_digits(struct cursor *c, int n, int *val)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit(cur_peek(c)))
            return 0;
        v = v * 10 + (cur_take(c) - '0');
    }
    *val = v;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* WWW-Authenticate */

/* RFC 9110 §5.6.2 tchar. */
static int is_tchar(int ch)
{
    return is_alpha(ch) || is_digit(ch) || (ch > 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* RFC 9110 §11.2 token68 characters, before its trailing '=' padding. */
static int is_token68(int ch)
{
    return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
           ch == '+' || ch == '/';
}

/*
 * Control characters (other than HTAB) are never valid in a field value.
 * Rejecting them before parsing means no CR, LF or NUL can reach a realm
 * that is later used to build a request or an error message, whatever the
 * grammar below would have made of them.
 */
static int is_ctl(int ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

static int span_eq_ci(struct span s, const char *lit)
{
    return strlen(lit) == s.len && strncasecmp(s.p, lit, s.len) == 0;
}

/* Skips the separators of a #list: commas, whitespace and the empty elements they make. */
static void skip_list_separators(struct cursor *c)
{
    for (;;) {
        cur_skip_ows(c);
        if (!cur_accept(c, ','))
            return;
    }
}

/*
 * Consumes a token68 credential if one is next and is the whole challenge
 * body (followed by the end or a comma). "realm=x" also starts like a token68
 * ("realm="), so anything else following rewinds and leaves the cursor for
 * the auth-param parser.
 */
static int cur_token68(struct cursor *c)
{
    size_t mark = c->pos;

    if (cur_span(c, is_token68).len == 0)
        goto no;
    while (cur_accept(c, '='))
        ;
    cur_skip_ows(c);
    if (cur_eof(c) || cur_peek(c) == ',')
        return 1;
no:
    c->pos = mark;
    return 0;
}

/*
 * Reads an auth-param value, a token or a quoted-string, into dst (cap bytes
 * with the NUL), or only checks its syntax when dst is NULL.
 */
static int read_value(struct cursor *c, char *dst, size_t cap)
{
    struct span tok;
    size_t n = 0;
    int ch;

    if (!cur_accept(c, '"')) {
        tok = cur_span(c, is_tchar);
        if (tok.len == 0)
            return OCISYNC_EHTTP;
        if (dst == NULL)
            return 0;
        if (tok.len >= cap)
            return OCISYNC_ETOOBIG;
        memcpy(dst, tok.p, tok.len);
        dst[tok.len] = '\0';
        return 0;
    }
    for (;;) {
        ch = cur_take(c);
        if (ch == '"')
            break;
        /* A quoted-pair stands for the byte after the backslash, whatever it is. */
        if (ch == '\\')
            ch = cur_take(c);
        if (ch < 0 || is_ctl(ch))
            return OCISYNC_EHTTP;
        if (dst != NULL) {
            if (n + 1 >= cap)
                return OCISYNC_ETOOBIG;
            dst[n++] = (char)ch;
        }
    }
    if (dst != NULL)
        dst[n] = '\0';
    return 0;
}

/* Which parameters of a challenge we keep, so that a repeated one can be rejected. */
enum {
    PARAM_REALM = 1,
    PARAM_SERVICE = 2,
    PARAM_SCOPE = 4,
    PARAM_ERROR = 8,
};

/* Where the parameter called name goes in ch, or NULL for a parameter we ignore. */
static char *param_field(struct proto_auth_challenge *ch, struct span name, size_t *cap,
                         unsigned *bit)
{
    if (ch->scheme == PROTO_AUTH_NONE)
        return NULL;
    if (span_eq_ci(name, "realm")) {
        *bit = PARAM_REALM;
        *cap = sizeof(ch->realm);
        return ch->realm;
    }
    if (span_eq_ci(name, "service")) {
        *bit = PARAM_SERVICE;
        *cap = sizeof(ch->service);
        return ch->service;
    }
    if (span_eq_ci(name, "scope")) {
        *bit = PARAM_SCOPE;
        *cap = sizeof(ch->scope);
        return ch->scope;
    }
    if (span_eq_ci(name, "error")) {
        *bit = PARAM_ERROR;
        *cap = sizeof(ch->error);
        return ch->error;
    }
    return NULL;
}

/*
 * Reads the comma-separated auth-params of one challenge. A comma may also
 * end the challenge: a token after it that is not followed by '=' is the
 * next challenge's scheme, so the cursor is left on that token. Trailing
 * separators are consumed either way.
 */
static int parse_params(struct cursor *c, struct proto_auth_challenge *ch)
{
    unsigned seen = 0, bit = 0;
    size_t cap = 0, mark;
    struct span name;
    char *dst;
    int rc;

    for (int first = 1;; first = 0) {
        mark = c->pos;
        name = cur_span(c, is_tchar);
        if (name.len == 0)
            return OCISYNC_EHTTP;
        cur_skip_ows(c);
        if (!cur_accept(c, '=')) {
            if (first)
                return OCISYNC_EHTTP;
            c->pos = mark;
            return 0;
        }
        cur_skip_ows(c);
        dst = param_field(ch, name, &cap, &bit);
        /*
         * RFC 9110 allows each parameter once per challenge; two realms
         * would leave it to chance where credentials are sent.
         */
        if (dst != NULL && (seen & bit))
            return OCISYNC_EHTTP;
        if (dst != NULL)
            seen |= bit;
        rc = read_value(c, dst, cap);
        if (rc != 0)
            return rc;
        cur_skip_ows(c);
        if (cur_eof(c))
            return 0;
        if (!cur_accept(c, ','))
            return OCISYNC_EHTTP;
        skip_list_separators(c);
        if (cur_eof(c))
            return 0;
    }
}

/* Parses one challenge at the cursor into ch, consuming the separators after it. */
static int parse_challenge(struct cursor *c, struct proto_auth_challenge *ch)
{
    struct span scheme;
    size_t ws;
    int rc = 0;

    memset(ch, 0, sizeof(*ch));
    scheme = cur_span(c, is_tchar);
    if (scheme.len == 0)
        return OCISYNC_EHTTP;
    if (span_eq_ci(scheme, "bearer"))
        ch->scheme = PROTO_AUTH_BEARER;
    else if (span_eq_ci(scheme, "basic"))
        ch->scheme = PROTO_AUTH_BASIC;

    ws = cur_skip_ows(c);
    if (cur_eof(c) || cur_peek(c) == ',' || (ws > 0 && cur_token68(c))) {
        /* No parameters, or a token68, which neither Basic nor Bearer challenges use. */
        if (!cur_eof(c) && !cur_accept(c, ','))
            return OCISYNC_EHTTP;
        skip_list_separators(c);
    } else if (ws == 0) {
        /* Something glued to the scheme, as in "Bearer=x" or "Basic/x". */
        return OCISYNC_EHTTP;
    } else {
        rc = parse_params(c, ch);
        if (rc != 0)
            return rc;
    }
    /* The realm is where credentials go; a Bearer challenge without one cannot be answered. */
    if (ch->scheme == PROTO_AUTH_BEARER && ch->realm[0] == '\0')
        return OCISYNC_EHTTP;
    return 0;
}

/*
 * Beyond the header's contract: a value with no Basic or Bearer challenge
 * (empty, or only unknown schemes such as Negotiate) returns 0 with
 * out->scheme PROTO_AUTH_NONE. The whole value must be well formed, including
 * challenges that are not chosen; every Bearer challenge needs a non-empty
 * realm, and a repeated realm, service, scope or error is malformed. On
 * failure *out is zeroed.
 */
int proto_auth_challenge_parse(const char *value, size_t len, struct proto_auth_challenge *out)
{
    struct proto_auth_challenge best, cur;
    struct cursor c = {value, len, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&best, 0, sizeof(best));
    if (len > PROTO_AUTH_MAX_HEADER) {
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    if (value == NULL && len > 0) {
        rc = OCISYNC_EHTTP;
        goto out;
    }
    while (!cur_eof(&c)) {
        if (is_ctl(cur_take(&c))) {
            rc = OCISYNC_EHTTP;
            goto out;
        }
    }

    c.pos = 0;
    skip_list_separators(&c);
    while (!cur_eof(&c)) {
        rc = parse_challenge(&c, &cur);
        if (rc != 0)
            goto out;
        /* The first Bearer challenge wins; else the first Basic one. */
        if (cur.scheme == PROTO_AUTH_BEARER && best.scheme != PROTO_AUTH_BEARER)
            best = cur;
        else if (cur.scheme == PROTO_AUTH_BASIC && best.scheme == PROTO_AUTH_NONE)
            best = cur;
    }
    *out = best;
    rc = 0;
out:
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Token responses */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/*
 * Parses an RFC 3339 date-time ("2009-11-10T23:00:00Z", with optional
 * fractional seconds, which are dropped, and a "Z" or "+hh:mm" offset) into
 * unix seconds. The time zone is taken from the string, never from the
 * environment, so the result is the same on every machine.
 */
static int parse_rfc3339(const char *s, size_t len, int64_t *out)
{
    struct cursor c = {s, len, 0};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, ch;

    if (!cur_digits(&c, 4, &y) || !cur_accept(&c, '-') || !cur_digits(&c, 2, &mo) ||
        !cur_accept(&c, '-') || !cur_digits(&c, 2, &d))
        return -1;
    ch = cur_take(&c);
    if (ch != 'T' && ch != 't')
        return -1;
    if (!cur_digits(&c, 2, &h) || !cur_accept(&c, ':') || !cur_digits(&c, 2, &mi) ||
        !cur_accept(&c, ':') || !cur_digits(&c, 2, &sec))
        return -1;
    if (cur_accept(&c, '.') && cur_span(&c, is_digit).len == 0)
        return -1;
    ch = cur_take(&c);
    if (ch == '+' || ch == '-') {
        sign = ch == '+' ? 1 : -1;
        if (!cur_digits(&c, 2, &oh) || !cur_accept(&c, ':') || !cur_digits(&c, 2, &om))
            return -1;
    } else if (ch != 'Z' && ch != 'z') {
        return -1;
    }
    if (!cur_eof(&c))
        return -1;
    /* Second 60 is a leap second, which RFC 3339 allows; it counts as the next second. */
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 ||
        oh > 23 || om > 59)
        return -1;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
           sign * (oh * 3600 + om * 60);
    return 0;
}

/*
 * Reads an optional string member: absent, null and "" all leave *s NULL
 * (Go clients, whose zero value is "", treat them alike); any other non-string
 * type is malformed.
 */
static int get_opt_string(const json_t *obj, const char *key, const char **s, size_t *n)
{
    const json_t *v = json_object_get(obj, key);

    *s = NULL;
    *n = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return OCISYNC_EJSON;
    if (json_string_length(v) > 0) {
        *s = json_string_value(v);
        *n = json_string_length(v);
    }
    return 0;
}

/*
 * A token goes into an Authorization header (and a refresh token into a form
 * body or an auth file), so it must be one run of visible ASCII: a space, CR
 * or LF in it would split or forge a header.
 */
static int copy_token(const char *s, size_t n, char **dst)
{
    if (n > PROTO_AUTH_MAX_TOKEN)
        return OCISYNC_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return OCISYNC_EJSON;
    }
    *dst = malloc(n + 1);
    if (*dst == NULL)
        return UV_ENOMEM;
    memcpy(*dst, s, n);
    (*dst)[n] = '\0';
    return 0;
}

/*
 * Beyond the header's contract: an "expires_in" that is not an integer (a
 * string, a real) is OCISYNC_EJSON, as it is for docker and containers/image;
 * one over a year is capped at a year. An "issued_at" that is missing, not a
 * string or not RFC 3339 leaves issued_at 0. "refresh_token" must pass the
 * same checks as the token. UV_ENOMEM is possible. On failure *out is zeroed.
 */
int proto_auth_token_parse(const char *body, size_t len, struct proto_auth_token *out)
{
    const char *tok, *access, *refresh, *issued;
    size_t tok_len, access_len, refresh_len, issued_len;
    json_t *root = NULL, *v;
    json_error_t jerr;
    json_int_t exp;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > PROTO_AUTH_MAX_TOKEN_BODY) {
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    if (body == NULL) {
        rc = OCISYNC_EJSON;
        goto out;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = json_error_code(&jerr) == json_error_out_of_memory ? UV_ENOMEM : OCISYNC_EJSON;
        goto out;
    }
    if (!json_is_object(root)) {
        rc = OCISYNC_EJSON;
        goto out;
    }

    /* Both names are type-checked even though only one is used, as a Go client would. */
    if ((rc = get_opt_string(root, "token", &tok, &tok_len)) != 0 ||
        (rc = get_opt_string(root, "access_token", &access, &access_len)) != 0 ||
        (rc = get_opt_string(root, "refresh_token", &refresh, &refresh_len)) != 0)
        goto out;
    if (tok == NULL) {
        tok = access;
        tok_len = access_len;
    }
    if (tok == NULL) {
        rc = OCISYNC_EJSON;
        goto out;
    }
    rc = copy_token(tok, tok_len, &out->token);
    if (rc != 0)
        goto out;
    if (refresh != NULL) {
        rc = copy_token(refresh, refresh_len, &out->refresh_token);
        if (rc != 0)
            goto out;
    }

    out->expires_in = TOKEN_MIN_EXPIRES;
    v = json_object_get(root, "expires_in");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            rc = OCISYNC_EJSON;
            goto out;
        }
        exp = json_integer_value(v);
        if (exp > TOKEN_MAX_EXPIRES)
            out->expires_in = TOKEN_MAX_EXPIRES;
        else if (exp > TOKEN_MIN_EXPIRES)
            out->expires_in = (int64_t)exp;
    }

    if (get_opt_string(root, "issued_at", &issued, &issued_len) == 0 && issued != NULL &&
        parse_rfc3339(issued, issued_len, &out->issued_at) != 0)
        out->issued_at = 0;
    rc = 0;
out:
    if (rc != 0)
        proto_auth_token_dispose(out);
    json_decref(root);
    return rc;
}

/* Overwrites a secret before its memory goes back to the allocator. */
static void free_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void proto_auth_token_dispose(struct proto_auth_token *t)
{
    if (t == NULL)
        return;
    free_secret(t->token);
    free_secret(t->refresh_token);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------------------------------ */
/* Basic credentials, base64 and query escaping */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of a base64 character, or -1. */
static int b64_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

char *proto_base64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    size_t groups = len / 3 + (len % 3 != 0), o = 0, i = 0;
    uint32_t v;
    char *out;

    if (groups > (SIZE_MAX - 1) / 4)
        return NULL;
    out = malloc(groups * 4 + 1);
    if (out == NULL)
        return NULL;
    for (; i + 3 <= len; i += 3) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/*
 * Padding is optional but, when present, must complete the last quartet
 * ("Zg==" and "Zg" are accepted, "Zg=" is not). Unused low bits of the last
 * character are ignored, as Go's base64.StdEncoding (which writes docker's
 * auth files) ignores them.
 */
ssize_t proto_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    size_t data_len = len, rem, need, o = 0;
    uint32_t acc = 0;
    int bits = 0, v;

    if (s == NULL)
        return len == 0 ? 0 : -1;
    if (len % 4 == 0) {
        for (int pad = 0; pad < 2 && data_len > 0 && s[data_len - 1] == '='; pad++)
            data_len--;
    }
    /* A lone character in the last quartet carries only 6 bits: no whole byte. */
    rem = data_len % 4;
    if (rem == 1)
        return -1;
    need = data_len / 4 * 3 + (rem == 0 ? 0 : rem - 1);
    if (need > cap || need > (size_t)SSIZE_MAX)
        return -1;
    for (size_t i = 0; i < data_len; i++) {
        v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (ssize_t)o;
}

/*
 * Beyond the header's contract: a NULL user or password counts as empty. A
 * user containing ':' cannot be represented (RFC 7617) and is encoded as
 * given; the server will split at its first ':'.
 */
char *proto_auth_basic_header(const char *user, const char *password)
{
    static const char prefix[] = "Basic ";
    size_t ul, pl, el;
    char *pair = NULL, *enc = NULL, *hdr = NULL;

    user = user != NULL ? user : "";
    password = password != NULL ? password : "";
    ul = strlen(user);
    pl = strlen(password);
    if (pl > SIZE_MAX - 2 - ul)
        goto out;
    pair = malloc(ul + pl + 2);
    if (pair == NULL)
        goto out;
    memcpy(pair, user, ul);
    pair[ul] = ':';
    memcpy(pair + ul + 1, password, pl + 1);
    enc = proto_base64_encode(pair, ul + 1 + pl);
    if (enc == NULL)
        goto out;
    el = strlen(enc);
    hdr = malloc(sizeof(prefix) + el);
    if (hdr == NULL)
        goto out;
    memcpy(hdr, prefix, sizeof(prefix) - 1);
    memcpy(hdr + sizeof(prefix) - 1, enc, el + 1);
out:
    free_secret(pair);
    free_secret(enc);
    return hdr;
}

/* RFC 3986 unreserved characters, the only ones a query value may carry as they are. */
static int is_unreserved(int ch)
{
    return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Beyond the header's contract: NULL for a NULL s as well as on allocation failure. */
char *proto_url_query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len, o = 0;
    unsigned char ch;
    char *out;

    if (s == NULL)
        return NULL;
    len = strlen(s);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        ch = (unsigned char)s[i];
        if (is_unreserved(ch)) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return out;
}
