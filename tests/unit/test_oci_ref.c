/*
 * Image references: docker's normalisation (docker.io, library/, latest), the
 * distribution grammar for registries, repositories, tags and digests, and
 * error messages that name the input.
 */
#include "test.h"

#include "ocisync.h"
#include "oci/ref.h"

#define HEX64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D256 "sha256:" HEX64
#define D512 "sha512:" HEX64 HEX64

struct good {
    const char *in;
    const char *registry;
    const char *repository;
    const char *tag;
    const char *digest; /* NULL for none */
    const char *formatted;
};

static const struct good goods[] = {
    /* Docker Hub shorthand. */
    {"alpine", "docker.io", "library/alpine", "latest", NULL, "docker.io/library/alpine:latest"},
    {"alpine:3.20", "docker.io", "library/alpine", "3.20", NULL, "docker.io/library/alpine:3.20"},
    {"user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest"},
    {"a/b/c/d", "docker.io", "a/b/c/d", "latest", NULL, "docker.io/a/b/c/d:latest"},
    {"docker.io/alpine", "docker.io", "library/alpine", "latest", NULL,
     "docker.io/library/alpine:latest"},
    {"docker.io/library/alpine", "docker.io", "library/alpine", "latest", NULL,
     "docker.io/library/alpine:latest"},
    {"index.docker.io/alpine", "docker.io", "library/alpine", "latest", NULL,
     "docker.io/library/alpine:latest"},
    {"index.docker.io/user/app:v1", "docker.io", "user/app", "v1", NULL, "docker.io/user/app:v1"},
    {"docker.io/library", "docker.io", "library/library", "latest", NULL,
     "docker.io/library/library:latest"},
    /* A port or a scheme-like tag without '/' is still a Docker Hub name. */
    {"localhost", "docker.io", "library/localhost", "latest", NULL,
     "docker.io/library/localhost:latest"},
    {"localhost:5000", "docker.io", "library/localhost", "5000", NULL,
     "docker.io/library/localhost:5000"},
    {"docker:alpine", "docker.io", "library/docker", "alpine", NULL,
     "docker.io/library/docker:alpine"},
    /* docker.io with a port is another registry, and gets no library/. */
    {"docker.io:443/alpine", "docker.io:443", "alpine", "latest", NULL,
     "docker.io:443/alpine:latest"},
    /* Registries. */
    {"localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest"},
    {"localhost:5000/app", "localhost:5000", "app", "latest", NULL, "localhost:5000/app:latest"},
    {"ghcr.io/o/app", "ghcr.io", "o/app", "latest", NULL, "ghcr.io/o/app:latest"},
    {"quay.io/a/b/c:tag", "quay.io", "a/b/c", "tag", NULL, "quay.io/a/b/c:tag"},
    {"127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", NULL, "127.0.0.1:5000/a/b:latest"},
    {"[::1]:5000/app", "[::1]:5000", "app", "latest", NULL, "[::1]:5000/app:latest"},
    {"[::1]/app", "[::1]", "app", "latest", NULL, "[::1]/app:latest"},
    {"[2001:DB8::1]:443/x:y", "[2001:DB8::1]:443", "x", "y", NULL, "[2001:DB8::1]:443/x:y"},
    {"registry:5000/app", "registry:5000", "app", "latest", NULL, "registry:5000/app:latest"},
    {"xn--bcher-kva.example/app", "xn--bcher-kva.example", "app", "latest", NULL,
     "xn--bcher-kva.example/app:latest"},
    {"a-b.c-d.e/f", "a-b.c-d.e", "f", "latest", NULL, "a-b.c-d.e/f:latest"},
    {"1.2.3.4/f", "1.2.3.4", "f", "latest", NULL, "1.2.3.4/f:latest"},
    {"reg.example:0/f", "reg.example:0", "f", "latest", NULL, "reg.example:0/f:latest"},
    /* An uppercase first component is a registry, kept as given. */
    {"Foo/bar", "Foo", "bar", "latest", NULL, "Foo/bar:latest"},
    {"Example.COM/app", "Example.COM", "app", "latest", NULL, "Example.COM/app:latest"},
    {"LOCALHOST/app", "LOCALHOST", "app", "latest", NULL, "LOCALHOST/app:latest"},
    /* Repository separators. */
    {"a_b__c-d---e/f.g9", "docker.io", "a_b__c-d---e/f.g9", "latest", NULL,
     "docker.io/a_b__c-d---e/f.g9:latest"},
    {"0/1", "docker.io", "0/1", "latest", NULL, "docker.io/0/1:latest"},
    /* Tags. */
    {"app:_", "docker.io", "library/app", "_", NULL, "docker.io/library/app:_"},
    {"app:V1.0_rc-1", "docker.io", "library/app", "V1.0_rc-1", NULL,
     "docker.io/library/app:V1.0_rc-1"},
    {"app:1..--..", "docker.io", "library/app", "1..--..", NULL, "docker.io/library/app:1..--.."},
    /* Digests, with and without a tag. */
    {"alpine@" D256, "docker.io", "library/alpine", "", D256, "docker.io/library/alpine@" D256},
    {"ghcr.io/o/app:v1@" D256, "ghcr.io", "o/app", "v1", D256, "ghcr.io/o/app:v1@" D256},
    {"reg:5000/a/b:v1@" D512, "reg:5000", "a/b", "v1", D512, "reg:5000/a/b:v1@" D512},
    {"localhost/a@" D512, "localhost", "a", "", D512, "localhost/a@" D512},
    /* skopeo's transport prefix. */
    {"docker://alpine", "docker.io", "library/alpine", "latest", NULL,
     "docker.io/library/alpine:latest"},
    {"docker://ghcr.io/o/app:v1", "ghcr.io", "o/app", "v1", NULL, "ghcr.io/o/app:v1"},
    {"docker://index.docker.io/library/busybox@" D256, "docker.io", "library/busybox", "", D256,
     "docker.io/library/busybox@" D256},
};

struct bad {
    const char *in;
    int rc;
    const char *why; /* a substring the error message must contain */
};

static const struct bad bads[] = {
    {"", OCISYNC_EREF, "empty"},
    {"docker://", OCISYNC_EREF, "empty"},
    /* Uppercase in the repository, wherever it is. */
    {"Foo/Bar", OCISYNC_EREF, "repository name must be lowercase"},
    {"Alpine", OCISYNC_EREF, "repository name must be lowercase"},
    {"user/App", OCISYNC_EREF, "repository name must be lowercase"},
    {"ghcr.io/Org/app", OCISYNC_EREF, "repository name must be lowercase"},
    {"docker.io/Library/x", OCISYNC_EREF, "repository name must be lowercase"},
    {"localhost/aPp:v1", OCISYNC_EREF, "repository name must be lowercase"},
    /* A bare image ID. */
    {HEX64, OCISYNC_EREF, "image ID"},
    {"docker://" HEX64, OCISYNC_EREF, "image ID"},
    /* Repository grammar. */
    {"foo__bar_", OCISYNC_EREF, "invalid repository name \"foo__bar_\""},
    {"foo___bar", OCISYNC_EREF, "separator"},
    {"foo..bar", OCISYNC_EREF, "separator"},
    {"foo._bar", OCISYNC_EREF, "separator"},
    {"foo.-bar", OCISYNC_EREF, "separator"},
    {"-foo", OCISYNC_EREF, "separator"},
    {"_foo", OCISYNC_EREF, "separator"},
    {".foo", OCISYNC_EREF, "separator"},
    {"foo-", OCISYNC_EREF, "separator"},
    {"foo-/bar", OCISYNC_EREF, "separator"},
    {"foo/", OCISYNC_EREF, "empty"},
    {"/foo", OCISYNC_EREF, "empty"},
    {"foo//bar", OCISYNC_EREF, "empty"},
    {"ghcr.io/", OCISYNC_EREF, "missing"},
    {"ghcr.io/:v1", OCISYNC_EREF, "missing"},
    {"ghcr.io/@" D256, OCISYNC_EREF, "missing"},
    {"docker.io/", OCISYNC_EREF, "missing"},
    {"foo bar", OCISYNC_EREF, "only lowercase"},
    {"foo\tbar", OCISYNC_EREF, "\\x09"},
    {"foo/b\xc3\xa9r", OCISYNC_EREF, "\\xc3\\xa9"},
    {"foo#bar", OCISYNC_EREF, "only lowercase"},
    {"foo/../bar", OCISYNC_EREF, "separator"},
    {"foo\\bar", OCISYNC_EREF, "only lowercase"},
    {"docker:////alpine", OCISYNC_EREF, "empty"},
    {"docker:/alpine", OCISYNC_EREF, "port"},
    /* Registry grammar. */
    {"my_host.com/app", OCISYNC_EREF, "invalid registry \"my_host.com\""},
    {"-foo.com/app", OCISYNC_EREF, "start with '-'"},
    {"foo-.com/app", OCISYNC_EREF, "end with '-'"},
    {"foo..com/app", OCISYNC_EREF, "empty"},
    {".foo.com/app", OCISYNC_EREF, "empty"},
    {"foo.com./app", OCISYNC_EREF, "empty"},
    {"foo.com:/app", OCISYNC_EREF, "port"},
    {"foo.com:abc/app", OCISYNC_EREF, "port"},
    {"foo.com:50a0/app", OCISYNC_EREF, "port"},
    {"foo.com:5000:6000/app", OCISYNC_EREF, "port"},
    {"foo.com:-1/app", OCISYNC_EREF, "port"},
    {":5000/app", OCISYNC_EREF, "empty"},
    {"::1/app", OCISYNC_EREF, "invalid registry"},
    {"[]/app", OCISYNC_EREF, "only lowercase"},
    {"[]:1/app", OCISYNC_EREF, "IPv6"},
    {"[::1/app", OCISYNC_EREF, "IPv6"},
    {"[::1]x/app", OCISYNC_EREF, "invalid registry"},
    {"[::1]:/app", OCISYNC_EREF, "port"},
    {"[fe80::1%eth0]:5000/app", OCISYNC_EREF, "IPv6"},
    {"[::ffff:127.0.0.1]/app", OCISYNC_EREF, "IPv6"},
    {"[::g]/app", OCISYNC_EREF, "IPv6"},
    {"user@host.com/app", OCISYNC_EREF, "invalid registry"},
    {"https://ghcr.io/app", OCISYNC_EREF, "invalid registry \"https:\""},
    {"foo:bar/baz", OCISYNC_EREF, "port"},
    /* Tags. */
    {"alpine:", OCISYNC_EREF, "empty"},
    {"alpine:.x", OCISYNC_EREF, "must start"},
    {"alpine:-x", OCISYNC_EREF, "must start"},
    {"alpine:a:b", OCISYNC_EREF, "invalid tag \"a:b\""},
    {"alpine:a/b", OCISYNC_EREF, "port"},
    {"alpine:a b", OCISYNC_EREF, "invalid tag"},
    {"alpine:v1@", OCISYNC_EDIGEST, "invalid digest \"\""},
    {"alpine:@" D256, OCISYNC_EREF, "empty"},
    /* Digests. */
    {"alpine@", OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@sha256:", OCISYNC_EDIGEST, "invalid digest \"sha256:\""},
    {"alpine@sha256:abc", OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@sha256:" HEX64 "0", OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@SHA256:" HEX64, OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
     OCISYNC_EDIGEST, "lowercase hex"},
    {"alpine@md5:d41d8cd98f00b204e9800998ecf8427e", OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@sha512:" HEX64, OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@sha256:..", OCISYNC_EDIGEST, "invalid digest"},
    {"ghcr.io/a@sha256:../x", OCISYNC_EDIGEST, "invalid digest \"sha256:../x\""},
    {"alpine@sha256:../x", OCISYNC_EREF, "invalid registry"},
    {"alpine@" D256 "@" D256, OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@" D256 ":tag", OCISYNC_EDIGEST, "invalid digest"},
    {"alpine@" D256 "/x", OCISYNC_EREF, "invalid registry"},
};

static int is_zeroed(const struct oci_ref *r)
{
    const unsigned char *p = (const unsigned char *)r;
    for (size_t i = 0; i < sizeof(*r); i++) {
        if (p[i] != 0)
            return 0;
    }
    return 1;
}

static void expect_bad(const char *in, int rc, const char *why)
{
    struct oci_ref r;
    char err[512];
    int got;

    memset(&r, 0x5a, sizeof(r));
    got = oci_ref_parse(in, &r, err, sizeof(err));
    CHECK_INT(got, rc);
    CHECK(is_zeroed(&r));
    CHECK(strncmp(err, "invalid reference \"", 19) == 0);
    if (why != NULL && strstr(err, why) == NULL) {
        fprintf(stderr, "input \"%s\": message \"%s\" lacks \"%s\"\n", in, err, why);
        CHECK(0);
    }
    /* The message quotes the input verbatim when it is printable and short. */
    int printable = strlen(in) < 96;
    for (const char *p = in; *p; p++)
        printable &= *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\';
    if (printable && strstr(err, in) == NULL) {
        fprintf(stderr, "message \"%s\" does not quote \"%s\"\n", err, in);
        CHECK(0);
    }
    /* No control bytes ever reach the message. */
    for (const char *p = err; *p; p++)
        CHECK(*p >= 0x20 && *p < 0x7f);
    /* The same failure without an error buffer. */
    CHECK_INT(oci_ref_parse(in, &r, NULL, 0), rc);
    CHECK_INT(oci_ref_parse(in, &r, err, 0), rc);
}

TEST(good_references)
{
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        const struct good *g = &goods[i];
        struct oci_ref r, again;
        char err[256] = "stale";
        char buf[1024];
        int rc = oci_ref_parse(g->in, &r, err, sizeof(err));

        CHECK_INT(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "input \"%s\": %s\n", g->in, err);
            continue;
        }
        CHECK_STR(err, "");
        CHECK_STR(r.registry, g->registry);
        CHECK_STR(r.repository, g->repository);
        CHECK_STR(r.tag, g->tag);
        CHECK_INT(r.has_digest, g->digest != NULL);
        if (g->digest != NULL) {
            CHECK_STR(r.digest.str, g->digest);
            CHECK_STR(oci_ref_target(&r), g->digest);
        } else {
            CHECK_STR(oci_ref_target(&r), g->tag);
        }
        CHECK_INT(oci_ref_format(&r, buf, sizeof(buf)), strlen(g->formatted));
        CHECK_STR(buf, g->formatted);

        /* The canonical form parses back to the same reference. */
        CHECK_INT(oci_ref_parse(buf, &again, NULL, 0), 0);
        CHECK_STR(again.registry, r.registry);
        CHECK_STR(again.repository, r.repository);
        CHECK_STR(again.tag, r.tag);
        CHECK_INT(again.has_digest, r.has_digest);
        CHECK_STR(again.digest.str, r.digest.str);
    }
}

TEST(bad_references)
{
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
        expect_bad(bads[i].in, bads[i].rc, bads[i].why);
}

TEST(error_messages)
{
    struct oci_ref r;
    char err[512];

    CHECK_INT(oci_ref_parse("Foo/Bar", &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK_STR(err, "invalid reference \"Foo/Bar\": repository name must be lowercase");

    CHECK_INT(oci_ref_parse("ghcr.io/o/app:a:b", &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK_STR(err, "invalid reference \"ghcr.io/o/app:a:b\": invalid tag \"a:b\": a tag may only "
                   "contain letters, digits, '_', '.' and '-'");

    CHECK_INT(oci_ref_parse("alpine@sha256:abc", &r, err, sizeof(err)), OCISYNC_EDIGEST);
    CHECK_STR(err, "invalid reference \"alpine@sha256:abc\": invalid digest \"sha256:abc\": "
                   "expected sha256:<64 lowercase hex digits> or sha512:<128 lowercase hex "
                   "digits>");

    CHECK_INT(oci_ref_parse("docker://my_host.com/app", &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "\"docker://my_host.com/app\"") != NULL);
    CHECK(strstr(err, "invalid registry \"my_host.com\"") != NULL);

    /* Quotes, backslashes and control bytes are escaped, never copied raw. */
    CHECK_INT(oci_ref_parse("a\"b\\c\x1b[2J", &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "\"a\\\"b\\\\c\\x1b[2J\"") != NULL);
    CHECK(strchr(err, '\x1b') == NULL);

    /* A small buffer truncates the message but still terminates it. */
    memset(err, 'x', sizeof(err));
    CHECK_INT(oci_ref_parse("Foo/Bar", &r, err, 10), OCISYNC_EREF);
    CHECK_INT(strlen(err), 9);
    CHECK(err[10] == 'x');
    CHECK_INT(oci_ref_parse("Foo/Bar", &r, err, 1), OCISYNC_EREF);
    CHECK_STR(err, "");

    /* NULL input is an error, not a crash. */
    CHECK_INT(oci_ref_parse(NULL, &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "no reference") != NULL);
    CHECK(is_zeroed(&r));

    /* Success clears a stale message. */
    strcpy(err, "stale");
    CHECK_INT(oci_ref_parse("alpine", &r, err, sizeof(err)), 0);
    CHECK_STR(err, "");
}

TEST(name_length_limit)
{
    /* registry + '/' + repository may be 255 characters, not 256. */
    char in[600], buf[600], err[512];
    struct oci_ref r;

    /* "ghcr.io/" is 8, so a 247-character repository makes exactly 255. */
    memcpy(in, "ghcr.io/", 8);
    memset(in + 8, 'a', 247);
    in[8 + 247] = '\0';
    CHECK_INT(oci_ref_parse(in, &r, err, sizeof(err)), 0);
    CHECK_INT(strlen(r.repository), 247);
    CHECK_INT(oci_ref_format(&r, buf, sizeof(buf)), 255 + 7);
    in[8 + 247] = 'a';
    in[8 + 248] = '\0';
    CHECK_INT(oci_ref_parse(in, &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "256 characters") != NULL);
    CHECK(strstr(err, "255") != NULL);
    /* The quoted input is cut short with "...". */
    CHECK(strstr(err, "...\"") != NULL);

    /* On Docker Hub the implied "docker.io/library/" counts: 18 + 237 = 255. */
    memset(in, 'b', 237);
    in[237] = '\0';
    CHECK_INT(oci_ref_parse(in, &r, NULL, 0), 0);
    CHECK_STR(r.registry, "docker.io");
    CHECK_INT(strlen(r.repository), 245);
    in[237] = 'b';
    in[238] = '\0';
    CHECK_INT(oci_ref_parse(in, &r, NULL, 0), OCISYNC_EREF);

    /* A maximal reference: 255-byte name, 128-byte tag, sha512 digest, prefix. */
    int n = snprintf(in, sizeof(in), "docker://ghcr.io/");
    memset(in + n, 'c', 247);
    n += 247;
    in[n++] = ':';
    memset(in + n, 'T', 128);
    n += 128;
    snprintf(in + n, sizeof(in) - (size_t)n, "@%s", D512);
    CHECK_INT(strlen(in), 9 + 255 + 1 + 128 + 1 + 135);
    CHECK_INT(oci_ref_parse(in, &r, err, sizeof(err)), 0);
    CHECK_INT(strlen(r.tag), 128);
    CHECK_STR(r.digest.str, D512);
    CHECK_INT(oci_ref_format(&r, buf, sizeof(buf)), strlen(in) - 9);
    CHECK_STR(buf, in + 9);

    /* A long host name alone can break the limit too. */
    memset(in, 'h', 250);
    memcpy(in + 250, ".io/abc", 8);
    CHECK_INT(oci_ref_parse(in, &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "characters") != NULL);
}

TEST(tag_length_limit)
{
    char in[300];
    struct oci_ref r;

    memcpy(in, "alpine:", 7);
    memset(in + 7, 'x', 128);
    in[7 + 128] = '\0';
    CHECK_INT(oci_ref_parse(in, &r, NULL, 0), 0);
    CHECK_INT(strlen(r.tag), 128);
    in[7 + 128] = 'x';
    in[7 + 129] = '\0';
    expect_bad(in, OCISYNC_EREF, "128");
}

TEST(overlong_input)
{
    /* Megabytes of input are refused early, whatever they contain. */
    size_t n = 4 << 20;
    char *big = malloc(n + 1);
    struct oci_ref r;
    char err[512];

    memset(big, 'a', n);
    big[n] = '\0';
    CHECK_INT(oci_ref_parse(big, &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "1024 bytes") != NULL);
    CHECK(strlen(err) < 300);
    memcpy(big, "docker://ghcr.io/", 17);
    big[2000] = '\0';
    CHECK_INT(oci_ref_parse(big, &r, err, sizeof(err)), OCISYNC_EREF);
    big[1024] = '\0';
    CHECK_INT(oci_ref_parse(big, &r, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, "characters") != NULL);
    free(big);
}

TEST(truncations)
{
    /* Every prefix of a full reference is either valid or cleanly refused. */
    static const char full[] = "docker://[::1]:5000/a/b-c:v1.2@" D256;
    char in[sizeof(full)], err[512];
    struct oci_ref r;
    int ok = 0;

    for (size_t n = 0; n < sizeof(full); n++) {
        memcpy(in, full, n);
        in[n] = '\0';
        int rc = oci_ref_parse(in, &r, err, sizeof(err));
        CHECK(rc == 0 || rc == OCISYNC_EREF || rc == OCISYNC_EDIGEST);
        if (rc == 0) {
            ok++;
        } else {
            CHECK(strncmp(err, "invalid reference \"", 19) == 0);
            CHECK(is_zeroed(&r));
        }
    }
    /*
     * Valid prefixes: "d" .. "docker" (Docker Hub names); nothing from
     * "docker:" until "docker://[::1]:5000/a"; then "/a/b", "/a/b-c", ":v",
     * ":v1", ":v1.", ":v1.2" (not a dangling '/', '-' or ':'); then only the
     * whole reference once the digest is complete.
     */
    CHECK_INT(oci_ref_parse("docker://[::1]:5000/a/b-c:v", &r, NULL, 0), 0);
    CHECK_INT(oci_ref_parse("docker://[::1]:5000/a/b-c:v1.2@sha256:e3b0", &r, NULL, 0),
              OCISYNC_EDIGEST);
    CHECK_INT(ok, 6 + 8);
}

TEST(api_host)
{
    struct oci_ref r;

    CHECK_INT(oci_ref_parse("alpine", &r, NULL, 0), 0);
    CHECK_STR(oci_ref_api_host(&r), "registry-1.docker.io");
    CHECK_INT(oci_ref_parse("index.docker.io/user/app", &r, NULL, 0), 0);
    CHECK_STR(oci_ref_api_host(&r), "registry-1.docker.io");
    CHECK_INT(oci_ref_parse("docker.io:443/user/app", &r, NULL, 0), 0);
    CHECK_STR(oci_ref_api_host(&r), "docker.io:443");
    CHECK_INT(oci_ref_parse("ghcr.io/o/app", &r, NULL, 0), 0);
    CHECK_STR(oci_ref_api_host(&r), "ghcr.io");
    CHECK_INT(oci_ref_parse("localhost:5000/app", &r, NULL, 0), 0);
    CHECK_STR(oci_ref_api_host(&r), "localhost:5000");
    CHECK_INT(oci_ref_parse("[::1]:5000/app", &r, NULL, 0), 0);
    CHECK_STR(oci_ref_api_host(&r), "[::1]:5000");
}

static int loopback(const char *in)
{
    struct oci_ref r;
    int rc = oci_ref_parse(in, &r, NULL, 0);

    CHECK_INT(rc, 0);
    return rc == 0 && oci_ref_is_loopback(&r);
}

TEST(loopback)
{
    CHECK(loopback("localhost/app"));
    CHECK(loopback("localhost:5000/app"));
    CHECK(loopback("LOCALHOST/app"));
    CHECK(loopback("127.0.0.1/app"));
    CHECK(loopback("127.0.0.1:5000/app"));
    CHECK(loopback("127.255.3.4:1/app"));
    CHECK(loopback("[::1]/app"));
    CHECK(loopback("[::1]:5000/app"));
    CHECK(loopback("[0:0:0:0:0:0:0:1]:5000/app"));

    CHECK(!loopback("alpine"));
    CHECK(!loopback("ghcr.io/o/app"));
    CHECK(!loopback("localhost.example.com/app"));
    CHECK(!loopback("localhostx:5000/app"));
    CHECK(!loopback("127.0.0.1.example.com/app"));
    CHECK(!loopback("128.0.0.1/app"));
    CHECK(!loopback("10.0.0.1:5000/app"));
    CHECK(!loopback("0.0.0.0:5000/app"));
    CHECK(!loopback("0127.0.0.1/app"));
    CHECK(!loopback("127.0.0.256/app"));
    CHECK(!loopback("127.0.0/app"));
    CHECK(!loopback("[::2]/app"));
    CHECK(!loopback("[::]:5000/app"));
    CHECK(!loopback("[2001:db8::1]/app"));
    CHECK(!loopback("[1::1]/app"));
}

TEST(format_and_target)
{
    struct oci_ref r;
    char buf[16];

    /* snprintf semantics: the full length is returned, the output truncated. */
    CHECK_INT(oci_ref_parse("ghcr.io/o/app:v1", &r, NULL, 0), 0);
    CHECK_INT(oci_ref_format(&r, buf, sizeof(buf)), 16);
    CHECK_STR(buf, "ghcr.io/o/app:v");
    CHECK_INT(oci_ref_format(&r, NULL, 0), 16);
    CHECK_STR(oci_ref_target(&r), "v1");

    /* A tag and a digest: the digest is what gets fetched. */
    CHECK_INT(oci_ref_parse("ghcr.io/o/app:v1@" D256, &r, NULL, 0), 0);
    CHECK_STR(oci_ref_target(&r), D256);
    CHECK_STR(r.tag, "v1");

    /* A hand-built reference without tag or digest prints the bare name. */
    memset(&r, 0, sizeof(r));
    strcpy(r.registry, "ghcr.io");
    strcpy(r.repository, "o/app");
    CHECK_INT(oci_ref_format(&r, buf, sizeof(buf)), 13);
    CHECK_STR(buf, "ghcr.io/o/app");
}

TEST_MAIN(T(good_references), T(bad_references), T(error_messages), T(name_length_limit),
          T(tag_length_limit), T(overlong_input), T(truncations), T(api_host), T(loopback),
          T(format_and_target))
