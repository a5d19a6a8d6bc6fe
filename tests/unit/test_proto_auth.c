/*
 * WWW-Authenticate challenges (real registries' headers, RFC 7235 list
 * syntax, hostile and truncated values), token-server responses, base64
 * (RFC 4648 vectors), Basic credentials and query escaping.
 *
 * Inputs are copied into exactly-sized heap buffers without a NUL, so that a
 * parser reading past the length it was given trips AddressSanitizer.
 */
#include "test.h"

#include "ocisync.h"
#include "proto/auth.h"

#define HUB                                                                                        \
    "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","                \
    "scope=\"repository:library/alpine:pull\""
#define GHCR                                                                                       \
    "Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:o/a:pull\","    \
    "error=\"insufficient_scope\""
#define MULTI "Basic realm=\"x\", Bearer realm=\"y\",service=\"z\""

/* A heap copy of len bytes of s with nothing after them. */
static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);

    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(p, s, len);
    return p;
}

static int parse_n(const char *s, size_t len, struct proto_auth_challenge *c)
{
    char *p = exact_copy(s, len);
    int rc;

    /* Garbage first, so a failed parse must clear it. */
    memset(c, 0x5a, sizeof(*c));
    rc = proto_auth_challenge_parse(p, len, c);
    free(p);
    return rc;
}

static int parse(const char *s, struct proto_auth_challenge *c)
{
    return parse_n(s, strlen(s), c);
}

static int is_cleared(const struct proto_auth_challenge *c)
{
    return c->scheme == PROTO_AUTH_NONE && c->realm[0] == '\0' && c->service[0] == '\0' &&
           c->scope[0] == '\0' && c->error[0] == '\0';
}

/* Expects s to be rejected with rc and the output cleared. */
static void expect_bad(const char *s, size_t len, int rc)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse_n(s, len, &c), rc);
    CHECK(is_cleared(&c));
}

#define EXPECT_BAD(lit, rc) expect_bad(lit, sizeof(lit) - 1, rc)

/* A string of n copies of ch, malloc'ed. */
static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        exit(2);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

TEST(challenge_docker_hub)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse(HUB, &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BEARER);
    CHECK_STR(c.realm, "https://auth.docker.io/token");
    CHECK_STR(c.service, "registry.docker.io");
    CHECK_STR(c.scope, "repository:library/alpine:pull");
    CHECK_STR(c.error, "");
}

TEST(challenge_basic)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse("Basic realm=\"Registry Realm\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    CHECK_STR(c.realm, "Registry Realm");
    CHECK_STR(c.service, "");
    CHECK_STR(c.scope, "");

    /* A Basic challenge needs nothing: no realm, or a token68 (both seen in the wild). */
    CHECK_INT(parse("Basic", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    CHECK_STR(c.realm, "");
    CHECK_INT(parse("Basic dXNlcjpwYXNz==", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    CHECK_STR(c.realm, "");
    CHECK_INT(parse("Basic realm=registry", &c), 0);
    CHECK_STR(c.realm, "registry");
}

TEST(challenge_ghcr_error)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse(GHCR, &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BEARER);
    CHECK_STR(c.realm, "https://ghcr.io/token");
    CHECK_STR(c.service, "ghcr.io");
    CHECK_STR(c.scope, "repository:o/a:pull");
    CHECK_STR(c.error, "insufficient_scope");

    /* Several scopes in one parameter stay as sent. */
    CHECK_INT(parse("Bearer realm=\"r\",scope=\"repository:a:pull repository:b:pull,push\"", &c),
              0);
    CHECK_STR(c.scope, "repository:a:pull repository:b:pull,push");
}

TEST(challenge_multi_prefers_bearer)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse(MULTI, &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BEARER);
    CHECK_STR(c.realm, "y");
    CHECK_STR(c.service, "z");

    CHECK_INT(parse("Bearer realm=\"y\", Basic realm=\"x\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BEARER);
    CHECK_STR(c.realm, "y");

    /* The first of two Bearer challenges wins, and nothing leaks from the second. */
    CHECK_INT(parse("Bearer realm=\"a\",service=\"s\", Bearer realm=\"b\",scope=\"x\"", &c), 0);
    CHECK_STR(c.realm, "a");
    CHECK_STR(c.service, "s");
    CHECK_STR(c.scope, "");

    CHECK_INT(parse("Basic realm=\"first\", Basic realm=\"second\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    CHECK_STR(c.realm, "first");

    /* RFC 7235 §4.1's example: an unknown scheme with params, then Basic. */
    CHECK_INT(parse("Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic "
                    "realm=\"simple\"",
                    &c),
              0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    CHECK_STR(c.realm, "simple");

    CHECK_INT(parse("Negotiate, Basic realm=\"b\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    CHECK_STR(c.realm, "b");
    CHECK_INT(parse("Negotiate abc+/==, NTLM", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_NONE);
    CHECK_INT(parse("", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_NONE);
    CHECK(is_cleared(&c));
    CHECK_INT(parse(" , ,", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_NONE);
}

TEST(challenge_case_insensitive)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse("bearer realm=\"https://r/t\",service=\"s\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BEARER);
    CHECK_STR(c.realm, "https://r/t");
    CHECK_INT(parse("BEARER REALM=\"R\",Service=\"S\",SCOPE=\"X\",Error=\"E\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BEARER);
    /* Names are case-insensitive; values are not. */
    CHECK_STR(c.realm, "R");
    CHECK_STR(c.service, "S");
    CHECK_STR(c.scope, "X");
    CHECK_STR(c.error, "E");
    CHECK_INT(parse("bAsIc realm=\"x\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_BASIC);
    /* A scheme that only starts like a known one is unknown. */
    CHECK_INT(parse("Bearerx realm=\"x\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_NONE);
    CHECK_INT(parse("Bear realm=\"x\"", &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_NONE);
}

TEST(challenge_whitespace_and_empty_elements)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse("Bearer realm = \"r\" , service= s ,scope =\"x\"", &c), 0);
    CHECK_STR(c.realm, "r");
    CHECK_STR(c.service, "s");
    CHECK_STR(c.scope, "x");
    CHECK_INT(parse("Bearer\trealm\t=\t\"r\"\t", &c), 0);
    CHECK_STR(c.realm, "r");
    CHECK_INT(parse("  ,, Bearer  realm=\"r\",,  ,service=\"s\", ,", &c), 0);
    CHECK_STR(c.realm, "r");
    CHECK_STR(c.service, "s");
    /* Whitespace inside a quoted value is kept. */
    CHECK_INT(parse("Bearer realm=\" r \t\"", &c), 0);
    CHECK_STR(c.realm, " r \t");
}

TEST(challenge_escapes_and_unknown_params)
{
    struct proto_auth_challenge c;

    CHECK_INT(parse("Bearer realm=\"a\\\"b\\\\c\",service=\"s\\x\"", &c), 0);
    CHECK_STR(c.realm, "a\"b\\c");
    CHECK_STR(c.service, "sx");
    CHECK_INT(parse("Bearer realm=\"a,b=c\",service=\"d\"", &c), 0);
    CHECK_STR(c.realm, "a,b=c");
    CHECK_STR(c.service, "d");
    CHECK_INT(parse("Bearer foo=\"bar\",realm=\"r\",charset=UTF-8,x=\"\\\"\"", &c), 0);
    CHECK_STR(c.realm, "r");
    CHECK_STR(c.service, "");
    /* Unknown params may repeat; only the ones we keep may not. */
    CHECK_INT(parse("Bearer realm=\"r\",foo=1,foo=2", &c), 0);
    CHECK_STR(c.realm, "r");
    /* obs-text in a quoted string is allowed by RFC 9110 and kept as bytes. */
    CHECK_INT(parse("Basic realm=\"caf\xc3\xa9\"", &c), 0);
    CHECK_STR(c.realm, "caf\xc3\xa9");
    CHECK_INT(parse("Bearer realm=\"\",realm2=\"x\"", &c), OCISYNC_EHTTP);
}

TEST(challenge_hostile)
{
    EXPECT_BAD("Bearer realm=\"https://a\r\nX-Evil: 1\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"https://a\"\r\n", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"a\nb\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"a\0b\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"ab\"\0", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"a\x01\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"a\x7f\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"a\\\x01\"", OCISYNC_EHTTP);
    EXPECT_BAD("Basic realm=\"x\", Negotiate \x1b", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"unterminated", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"ends in escape\\", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"ends in escape\\\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"r\",service=\"s", OCISYNC_EHTTP);
    /* Bearer needs a non-empty realm, in every Bearer challenge. */
    EXPECT_BAD("Bearer", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer ", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer service=\"s\",scope=\"x\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer abc==", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer ,realm=\"r\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"r\", Bearer service=\"s\"", OCISYNC_EHTTP);
    /* Grammar errors. */
    EXPECT_BAD("Bearer realm=\"a\",realm=\"b\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"a\",REALM=\"a\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"r\" service=\"s\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"r\"x", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=,service=s", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"r\",=\"x\"", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=\"r\",service=a b", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer=\"r\"", OCISYNC_EHTTP);
    EXPECT_BAD("Basic/abc", OCISYNC_EHTTP);
    EXPECT_BAD("=Bearer", OCISYNC_EHTTP);
    EXPECT_BAD("\"Bearer\" realm=\"r\"", OCISYNC_EHTTP);
    EXPECT_BAD("Basic foo bar", OCISYNC_EHTTP);
    EXPECT_BAD("Basic realm=caf\xc3\xa9", OCISYNC_EHTTP);
    EXPECT_BAD("Bearer realm=<r>", OCISYNC_EHTTP);
}

TEST(challenge_limits)
{
    struct proto_auth_challenge c;
    char *big = repeat('a', PROTO_AUTH_MAX_HEADER + 16), *s;
    size_t n;

    s = malloc(PROTO_AUTH_MAX_HEADER + 64);
    if (s == NULL)
        exit(2);

    /* The longest realm that fits, and one byte more. */
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=\"%.*s\"",
                         PROTO_AUTH_FIELD_MAX - 1, big);
    CHECK_INT(parse_n(s, n, &c), 0);
    CHECK_INT(strlen(c.realm), PROTO_AUTH_FIELD_MAX - 1);
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=\"%.*s\"",
                         PROTO_AUTH_FIELD_MAX, big);
    expect_bad(s, n, OCISYNC_ETOOBIG);
    /* Unquoted too, and escapes count after decoding. */
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=r,scope=%.*s",
                         PROTO_AUTH_FIELD_MAX, big);
    expect_bad(s, n, OCISYNC_ETOOBIG);
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=r,service=\"\\a%.*s\"",
                         PROTO_AUTH_FIELD_MAX - 2, big);
    CHECK_INT(parse_n(s, n, &c), 0);
    CHECK_INT(strlen(c.service), PROTO_AUTH_FIELD_MAX - 1);

    /* error is only 64 bytes. */
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=r,error=\"%.*s\"", 63, big);
    CHECK_INT(parse_n(s, n, &c), 0);
    CHECK_INT(strlen(c.error), 63);
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=r,error=\"%.*s\"", 64, big);
    expect_bad(s, n, OCISYNC_ETOOBIG);

    /* A field too big is an error even in the challenge that would not be chosen. */
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Basic realm=\"%.*s\", Bearer realm=r",
                         PROTO_AUTH_FIELD_MAX, big);
    expect_bad(s, n, OCISYNC_ETOOBIG);
    /* Unknown params and schemes are not stored, so only the header cap applies. */
    n = (size_t)snprintf(s, PROTO_AUTH_MAX_HEADER + 64, "Bearer realm=r,x=\"%.*s\"",
                         PROTO_AUTH_MAX_HEADER - 19, big);
    CHECK_INT(n, PROTO_AUTH_MAX_HEADER);
    CHECK_INT(parse_n(s, n, &c), 0);
    CHECK_STR(c.realm, "r");

    /* The whole value: exactly the cap is fine, one more byte is not. */
    memcpy(s, "Negotiate ", 10);
    memset(s + 10, 'a', PROTO_AUTH_MAX_HEADER - 10);
    CHECK_INT(parse_n(s, PROTO_AUTH_MAX_HEADER, &c), 0);
    CHECK_INT(c.scheme, PROTO_AUTH_NONE);
    s[PROTO_AUTH_MAX_HEADER] = 'a';
    expect_bad(s, PROTO_AUTH_MAX_HEADER + 1, OCISYNC_ETOOBIG);
    expect_bad(big, PROTO_AUTH_MAX_HEADER + 16, OCISYNC_ETOOBIG);

    /* NULL is an error unless it is empty. */
    memset(&c, 0x5a, sizeof(c));
    CHECK_INT(proto_auth_challenge_parse(NULL, 3, &c), OCISYNC_EHTTP);
    CHECK(is_cleared(&c));
    CHECK_INT(proto_auth_challenge_parse(NULL, 0, &c), 0);
    CHECK(is_cleared(&c));
    free(s);
    free(big);
}

/*
 * Every prefix of s parses to 0 or OCISYNC_EHTTP, and a success holds each
 * field either empty or exactly as in the whole value (of the same scheme).
 * Returns how many prefixes (including s itself) parsed.
 */
static int check_prefixes(const char *s, const struct proto_auth_challenge *bearer,
                          const struct proto_auth_challenge *basic)
{
    struct proto_auth_challenge c;
    const struct proto_auth_challenge *want;
    size_t len = strlen(s);
    int ok = 0, rc;

    for (size_t n = 0; n <= len; n++) {
        rc = parse_n(s, n, &c);
        if (rc != 0) {
            CHECK_INT(rc, OCISYNC_EHTTP);
            CHECK(is_cleared(&c));
            continue;
        }
        ok++;
        if (c.scheme == PROTO_AUTH_NONE) {
            CHECK(is_cleared(&c));
            continue;
        }
        want = c.scheme == PROTO_AUTH_BEARER ? bearer : basic;
        CHECK(want != NULL);
        if (want == NULL)
            continue;
        /* A Basic prefix may be cut to a token68 ("Basic realm"), which has no realm. */
        if (c.scheme == PROTO_AUTH_BEARER)
            CHECK_STR(c.realm, want->realm);
        else
            CHECK(c.realm[0] == '\0' || strcmp(c.realm, want->realm) == 0);
        CHECK(c.service[0] == '\0' || strcmp(c.service, want->service) == 0);
        CHECK(c.scope[0] == '\0' || strcmp(c.scope, want->scope) == 0);
        CHECK(c.error[0] == '\0' || strcmp(c.error, want->error) == 0);
    }
    return ok;
}

TEST(challenge_truncated)
{
    struct proto_auth_challenge full, basic;

    CHECK_INT(parse(HUB, &full), 0);
    /*
     * 23 prefixes parse: the empty one, "B" to "Beare" (an unknown scheme),
     * each value's closing quote, the comma after the first two, and
     * "service" / "scope" cut to a bare token, which is then the next
     * challenge's (unknown) scheme.
     */
    CHECK_INT(check_prefixes(HUB, &full, NULL), 1 + 5 + 3 + 2 + 7 + 5);

    CHECK_INT(parse(GHCR, &full), 0);
    CHECK_INT(check_prefixes(GHCR, &full, NULL), 1 + 5 + 4 + 3 + 7 + 5 + 5);

    CHECK_INT(parse(MULTI, &full), 0);
    CHECK_INT(parse("Basic realm=\"x\"", &basic), 0);
    CHECK(check_prefixes(MULTI, &full, &basic) > 0);

    /*
     * "", "B" to "Basic", "Basic ", then "Basic r" to "Basic realm=", which
     * are token68 credentials, and the whole.
     */
    CHECK_INT(parse("Basic realm=\"Registry Realm\"", &basic), 0);
    CHECK_INT(check_prefixes("Basic realm=\"Registry Realm\"", NULL, &basic), 1 + 5 + 1 + 6 + 1);
}

/* ------------------------------------------------------------------------------------------ */

static int token_n(const char *s, size_t len, struct proto_auth_token *t)
{
    char *p = exact_copy(s, len);
    int rc;

    rc = proto_auth_token_parse(p, len, t);
    free(p);
    return rc;
}

static int token(const char *s, struct proto_auth_token *t)
{
    return token_n(s, strlen(s), t);
}

static int is_token_cleared(const struct proto_auth_token *t)
{
    return t->token == NULL && t->refresh_token == NULL && t->expires_in == 0 && t->issued_at == 0;
}

static void expect_bad_token(const char *s, int rc)
{
    struct proto_auth_token t;

    CHECK_INT(token(s, &t), rc);
    CHECK(is_token_cleared(&t));
    proto_auth_token_dispose(&t);
}

TEST(token_variants)
{
    struct proto_auth_token t;

    CHECK_INT(token("{\"token\":\"abc.def-ghi\",\"expires_in\":300,"
                    "\"issued_at\":\"2009-11-10T23:00:00Z\"}",
                    &t),
              0);
    CHECK_STR(t.token, "abc.def-ghi");
    CHECK(t.refresh_token == NULL);
    CHECK_INT(t.expires_in, 300);
    CHECK_INT(t.issued_at, 1257894000);
    proto_auth_token_dispose(&t);
    CHECK(is_token_cleared(&t));
    /* Disposing twice is harmless. */
    proto_auth_token_dispose(&t);
    proto_auth_token_dispose(NULL);

    CHECK_INT(token("{\"access_token\":\"xyz\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
                    "\"scope\":\"repository:a:pull\"}",
                    &t),
              0);
    CHECK_STR(t.token, "xyz");
    CHECK_INT(t.expires_in, 3600);
    CHECK_INT(t.issued_at, 0);
    proto_auth_token_dispose(&t);

    CHECK_INT(token("{\"access_token\":\"second\",\"token\":\"first\"}", &t), 0);
    CHECK_STR(t.token, "first");
    proto_auth_token_dispose(&t);
    /* Go clients read "" and null as absent, so access_token fills in. */
    CHECK_INT(token("{\"token\":\"\",\"access_token\":\"second\"}", &t), 0);
    CHECK_STR(t.token, "second");
    proto_auth_token_dispose(&t);
    CHECK_INT(token("{\"token\":null,\"access_token\":\"second\"}", &t), 0);
    CHECK_STR(t.token, "second");
    proto_auth_token_dispose(&t);

    CHECK_INT(token("{\"token\":\"t\",\"refresh_token\":\"r-1\",\"other\":[1,{\"a\":null}]}", &t),
              0);
    CHECK_STR(t.token, "t");
    CHECK_STR(t.refresh_token, "r-1");
    proto_auth_token_dispose(&t);
    CHECK_INT(token("{\"token\":\"t\",\"refresh_token\":\"\"}", &t), 0);
    CHECK(t.refresh_token == NULL);
    proto_auth_token_dispose(&t);

    /* Whitespace around the JSON is fine. */
    CHECK_INT(token(" \n{ \"token\" : \"t\" }\n", &t), 0);
    CHECK_STR(t.token, "t");
    proto_auth_token_dispose(&t);
}

static int64_t expires_of(const char *json)
{
    struct proto_auth_token t;
    int64_t e;

    if (token(json, &t) != 0)
        return -999;
    e = t.expires_in;
    proto_auth_token_dispose(&t);
    return e;
}

TEST(token_expires_in)
{
    CHECK_INT(expires_of("{\"token\":\"t\"}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":null}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":0}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":10}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":-5}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":-9223372036854775808}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":60}"), 60);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":61}"), 61);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":86400}"), 86400);
    /* Capped at a year, so a caller's now + expires_in cannot overflow. */
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":31536000}"), 31536000);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":31536001}"), 31536000);
    CHECK_INT(expires_of("{\"token\":\"t\",\"expires_in\":9223372036854775807}"), 31536000);

    expect_bad_token("{\"token\":\"t\",\"expires_in\":\"300\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"expires_in\":300.5}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"expires_in\":3e2}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"expires_in\":true}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"expires_in\":[]}", OCISYNC_EJSON);
    /* Past int64: jansson refuses the number. */
    expect_bad_token("{\"token\":\"t\",\"expires_in\":9223372036854775808}", OCISYNC_EJSON);
}

static int64_t issued_of(const char *ts)
{
    struct proto_auth_token t;
    char json[256];
    int64_t v;

    snprintf(json, sizeof(json), "{\"token\":\"t\",\"issued_at\":\"%s\"}", ts);
    if (token(json, &t) != 0)
        return -999;
    v = t.issued_at;
    proto_auth_token_dispose(&t);
    return v;
}

TEST(token_issued_at)
{
    struct proto_auth_token t;

    CHECK_INT(issued_of("2009-11-10T23:00:00Z"), 1257894000);
    CHECK_INT(issued_of("2009-11-10T23:00:00.5Z"), 1257894000);
    CHECK_INT(issued_of("2009-11-10T23:00:00.123456789Z"), 1257894000);
    CHECK_INT(issued_of("2009-11-10t23:00:00z"), 1257894000);
    CHECK_INT(issued_of("2009-11-10T23:00:00+00:00"), 1257894000);
    CHECK_INT(issued_of("2009-11-10T23:00:00-00:00"), 1257894000);
    CHECK_INT(issued_of("2009-11-11T00:00:00+01:00"), 1257894000);
    CHECK_INT(issued_of("2009-11-10T17:30:00.999-05:30"), 1257894000);
    CHECK_INT(issued_of("1970-01-01T00:00:01Z"), 1);
    CHECK_INT(issued_of("1969-12-31T23:59:59Z"), -1);
    CHECK_INT(issued_of("2000-02-29T12:00:00Z"), 951825600);
    CHECK_INT(issued_of("2038-01-19T03:14:08Z"), 2147483648LL);
    CHECK_INT(issued_of("2016-12-31T23:59:60Z"), 1483228800);
    CHECK_INT(issued_of("9999-12-31T23:59:59Z"), 253402300799LL);
    CHECK_INT(issued_of("0000-01-01T00:00:00Z"), -62167219200LL);

    /* Anything else leaves issued_at 0 and the token still usable. */
    CHECK_INT(issued_of("2001-02-29T00:00:00Z"), 0);
    CHECK_INT(issued_of("2009-04-31T00:00:00Z"), 0);
    CHECK_INT(issued_of("2009-13-10T23:00:00Z"), 0);
    CHECK_INT(issued_of("2009-00-10T23:00:00Z"), 0);
    CHECK_INT(issued_of("2009-11-00T23:00:00Z"), 0);
    CHECK_INT(issued_of("2009-11-10T24:00:00Z"), 0);
    CHECK_INT(issued_of("2009-11-10T23:60:00Z"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:61Z"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:00+24:00"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:00+01:60"), 0);
    CHECK_INT(issued_of("2009-11-10 23:00:00Z"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:00"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:00.Z"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:00Zjunk"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00:00+0100"), 0);
    CHECK_INT(issued_of("2009-11-10T23:00Z"), 0);
    CHECK_INT(issued_of("2009-11-10"), 0);
    CHECK_INT(issued_of("09-11-10T23:00:00Z"), 0);
    CHECK_INT(issued_of("+2009-11-10T23:00:00Z"), 0);
    CHECK_INT(issued_of(""), 0);
    CHECK_INT(token("{\"token\":\"t\",\"issued_at\":1257894000}", &t), 0);
    CHECK_INT(t.issued_at, 0);
    proto_auth_token_dispose(&t);
}

TEST(token_invalid)
{
    expect_bad_token("{\"token\":\"a b\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"ab\\n\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"ab\\r\\nX-Evil: 1\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"a\\tb\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"a\\u007fb\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"caf\\u00e9\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"a\\u0000b\"}", OCISYNC_EJSON);
    /* A bad preferred token is not rescued by a good access_token. */
    expect_bad_token("{\"token\":\" \",\"access_token\":\"good\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"refresh_token\":\"r r\"}", OCISYNC_EJSON);

    expect_bad_token("{}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":null,\"access_token\":null}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":42}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":[\"t\"]}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"access_token\":1}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",\"refresh_token\":{}}", OCISYNC_EJSON);

    expect_bad_token("{\"token\":\"a\",\"token\":\"b\"}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"a\",\"expires_in\":1,\"expires_in\":2}", OCISYNC_EJSON);

    expect_bad_token("", OCISYNC_EJSON);
    expect_bad_token("[]", OCISYNC_EJSON);
    expect_bad_token("[{\"token\":\"t\"}]", OCISYNC_EJSON);
    expect_bad_token("\"t\"", OCISYNC_EJSON);
    expect_bad_token("42", OCISYNC_EJSON);
    expect_bad_token("null", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\"} {}", OCISYNC_EJSON);
    expect_bad_token("{\"token\":\"t\",}", OCISYNC_EJSON);

    struct proto_auth_token t;
    memset(&t, 0x5a, sizeof(t));
    CHECK_INT(proto_auth_token_parse(NULL, 0, &t), OCISYNC_EJSON);
    CHECK(is_token_cleared(&t));
}

TEST(token_limits)
{
    struct proto_auth_token t;
    size_t cap = PROTO_AUTH_MAX_TOKEN_BODY + 64, n;
    char *body = malloc(cap), *tok = repeat('A', PROTO_AUTH_MAX_TOKEN + 1);

    if (body == NULL)
        exit(2);
    n = (size_t)snprintf(body, cap, "{\"token\":\"%.*s\"}", PROTO_AUTH_MAX_TOKEN, tok);
    CHECK_INT(token_n(body, n, &t), 0);
    CHECK_INT(t.token ? strlen(t.token) : 0, PROTO_AUTH_MAX_TOKEN);
    proto_auth_token_dispose(&t);
    n = (size_t)snprintf(body, cap, "{\"token\":\"%s\"}", tok);
    CHECK_INT(token_n(body, n, &t), OCISYNC_ETOOBIG);
    CHECK(is_token_cleared(&t));
    n = (size_t)snprintf(body, cap, "{\"token\":\"t\",\"refresh_token\":\"%s\"}", tok);
    CHECK_INT(token_n(body, n, &t), OCISYNC_ETOOBIG);
    CHECK(is_token_cleared(&t));

    /* A valid body padded to exactly the cap, then one byte over. */
    n = (size_t)snprintf(body, cap, "{\"token\":\"t\"}");
    memset(body + n, ' ', PROTO_AUTH_MAX_TOKEN_BODY - n);
    CHECK_INT(token_n(body, PROTO_AUTH_MAX_TOKEN_BODY, &t), 0);
    CHECK_STR(t.token, "t");
    proto_auth_token_dispose(&t);
    body[PROTO_AUTH_MAX_TOKEN_BODY] = ' ';
    CHECK_INT(token_n(body, PROTO_AUTH_MAX_TOKEN_BODY + 1, &t), OCISYNC_ETOOBIG);
    CHECK(is_token_cleared(&t));
    free(body);
    free(tok);
}

TEST(token_truncated)
{
    static const char body[] = "{\"token\":\"eyJhbGciOiJFUzI1NiJ9.e30.sig\",\"access_token\":"
                               "\"eyJhbGciOiJFUzI1NiJ9.e30.sig\",\"expires_in\":300,"
                               "\"issued_at\":\"2023-05-01T10:20:30.123456789Z\","
                               "\"refresh_token\":\"r\"}";
    struct proto_auth_token t;
    size_t len = sizeof(body) - 1;
    int failed = 0;

    for (size_t n = 0; n < len; n++) {
        int rc = token_n(body, n, &t);
        failed += rc == OCISYNC_EJSON && is_token_cleared(&t);
        proto_auth_token_dispose(&t);
    }
    CHECK_INT(failed, len);
    CHECK_INT(token_n(body, len, &t), 0);
    CHECK_STR(t.token, "eyJhbGciOiJFUzI1NiJ9.e30.sig");
    CHECK_STR(t.refresh_token, "r");
    CHECK_INT(t.expires_in, 300);
    CHECK_INT(t.issued_at, 1682936430);
    proto_auth_token_dispose(&t);
}

/* ------------------------------------------------------------------------------------------ */

static const struct {
    const char *plain, *b64, *unpadded;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

/* Decodes s into a buffer of cap bytes guarded by canaries; returns the length or -1. */
static ssize_t decode(const char *s, size_t len, size_t cap, unsigned char *out)
{
    unsigned char buf[300];
    char *p = exact_copy(s, len);
    ssize_t n;

    if (cap > sizeof(buf) - 2)
        exit(2);
    memset(buf, 0xa5, sizeof(buf));
    n = proto_base64_decode(p, len, buf + 1, cap);
    free(p);
    CHECK_INT(buf[0], 0xa5);
    CHECK_INT(buf[cap + 1], 0xa5);
    if (n > 0 && out != NULL)
        memcpy(out, buf + 1, (size_t)n);
    return n;
}

TEST(base64_rfc4648)
{
    unsigned char out[16];

    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *plain = rfc4648[i].plain;
        size_t pl = strlen(plain);
        char *enc = proto_base64_encode(plain, pl);

        CHECK_STR(enc, rfc4648[i].b64);
        free(enc);
        memset(out, 0, sizeof(out));
        CHECK_INT(decode(rfc4648[i].b64, strlen(rfc4648[i].b64), pl, out), pl);
        CHECK(memcmp(out, plain, pl) == 0);
        memset(out, 0, sizeof(out));
        CHECK_INT(decode(rfc4648[i].unpadded, strlen(rfc4648[i].unpadded), pl, out), pl);
        CHECK(memcmp(out, plain, pl) == 0);
        /* One byte of room short fails without writing. */
        if (pl > 0)
            CHECK_INT(decode(rfc4648[i].b64, strlen(rfc4648[i].b64), pl - 1, out), -1);
    }
    CHECK_INT(proto_base64_decode(NULL, 0, NULL, 0), 0);
    CHECK_INT(proto_base64_decode("", 0, NULL, 0), 0);
}

TEST(base64_round_trip)
{
    unsigned char data[256], out[256];
    char *enc;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= sizeof(data); len++) {
        enc = proto_base64_encode(data, len);
        CHECK(enc != NULL);
        if (enc == NULL)
            continue;
        CHECK_INT(strlen(enc), (len + 2) / 3 * 4);
        CHECK_INT(decode(enc, strlen(enc), len, out), len);
        CHECK(memcmp(out, data, len) == 0);
        free(enc);
    }
    enc = proto_base64_encode("\xfb\xff\xbf", 3);
    CHECK_STR(enc, "+/+/");
    free(enc);
    enc = proto_base64_encode(NULL, 0);
    CHECK_STR(enc, "");
    free(enc);
}

TEST(base64_decode_errors)
{
    unsigned char out[32];

    /* Impossible lengths and broken padding. */
    CHECK_INT(decode("Z", 1, 32, out), -1);
    CHECK_INT(decode("Zm9vY", 5, 32, out), -1);
    CHECK_INT(decode("Z===", 4, 32, out), -1);
    CHECK_INT(decode("Zg=", 3, 32, out), -1);
    CHECK_INT(decode("Zg===", 5, 32, out), -1);
    CHECK_INT(decode("Zm8==", 5, 32, out), -1);
    CHECK_INT(decode("=", 1, 32, out), -1);
    CHECK_INT(decode("==", 2, 32, out), -1);
    CHECK_INT(decode("====", 4, 32, out), -1);
    CHECK_INT(decode("=Zg=", 4, 32, out), -1);
    CHECK_INT(decode("Zg==Zg==", 8, 32, out), -1);
    CHECK_INT(decode("Zm=v", 4, 32, out), -1);
    /* Characters outside the alphabet, whitespace and the URL-safe alphabet included. */
    CHECK_INT(decode("Zm9v!", 5, 32, out), -1);
    CHECK_INT(decode("Zm 9v", 5, 32, out), -1);
    CHECK_INT(decode("Zm9v\n", 5, 32, out), -1);
    CHECK_INT(decode("Zm9v\0\0\0\0", 8, 32, out), -1);
    CHECK_INT(decode("Zm9\xc3", 4, 32, out), -1);
    CHECK_INT(decode("-_-_", 4, 32, out), -1);
    CHECK_INT(proto_base64_decode(NULL, 4, out, 32), -1);
    /* Unused low bits are ignored, as Go's StdEncoding does. */
    CHECK_INT(decode("Zh==", 4, 32, out), 1);
    CHECK_INT(out[0], 'f');
}

TEST(basic_header)
{
    char *h;

    h = proto_auth_basic_header("user", "pass");
    CHECK_STR(h, "Basic dXNlcjpwYXNz");
    free(h);
    /* RFC 7617 §2's example. */
    h = proto_auth_basic_header("Aladdin", "open sesame");
    CHECK_STR(h, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    free(h);
    h = proto_auth_basic_header("", "");
    CHECK_STR(h, "Basic Og==");
    free(h);
    h = proto_auth_basic_header(NULL, NULL);
    CHECK_STR(h, "Basic Og==");
    free(h);
    /* The password may hold ':' (only the first one splits). */
    h = proto_auth_basic_header("u", "p:w");
    CHECK_STR(h, "Basic dTpwOnc=");
    free(h);
    h = proto_auth_basic_header("test", "123\xc2\xa3");
    CHECK_STR(h, "Basic dGVzdDoxMjPCow==");
    free(h);
}

TEST(query_escape)
{
    char *e;

    e = proto_url_query_escape("repository:a/b:pull,push");
    CHECK_STR(e, "repository%3Aa%2Fb%3Apull%2Cpush");
    free(e);
    e = proto_url_query_escape("AZaz09-._~");
    CHECK_STR(e, "AZaz09-._~");
    free(e);
    e = proto_url_query_escape("a b+c%d&e=f?g#h");
    CHECK_STR(e, "a%20b%2Bc%25d%26e%3Df%3Fg%23h");
    free(e);
    e = proto_url_query_escape("caf\xc3\xa9\x01\x7f\xff");
    CHECK_STR(e, "caf%C3%A9%01%7F%FF");
    free(e);
    e = proto_url_query_escape("");
    CHECK_STR(e, "");
    free(e);
    CHECK(proto_url_query_escape(NULL) == NULL);
}

TEST_MAIN(T(challenge_docker_hub), T(challenge_basic), T(challenge_ghcr_error),
          T(challenge_multi_prefers_bearer), T(challenge_case_insensitive),
          T(challenge_whitespace_and_empty_elements), T(challenge_escapes_and_unknown_params),
          T(challenge_hostile), T(challenge_limits), T(challenge_truncated), T(token_variants),
          T(token_expires_in), T(token_issued_at), T(token_invalid), T(token_limits),
          T(token_truncated), T(base64_rfc4648), T(base64_round_trip), T(base64_decode_errors),
          T(basic_header), T(query_escape))
