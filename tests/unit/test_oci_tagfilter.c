/*
 * Tag selection for sync: semantic versions as Masterminds/semver (skopeo's
 * images-by-semver) reads them, semver 2.0.0 precedence, Masterminds v3
 * ranges, Go-syntax regular expressions translated to POSIX, and the filter
 * that combines them with latest N.
 */
#include "test.h"

#include "ocisync.h"
#include "oci/tagfilter.h"

#include <stdbool.h>
#include <uv.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------------------------
 * Versions
 */

struct good_version {
    const char *s;
    uint64_t major, minor, patch;
    const char *pre;
};

static const struct good_version good_versions[] = {
    {"1.2.3", 1, 2, 3, ""},
    {"v1.2.3", 1, 2, 3, ""},
    {"1.2", 1, 2, 0, ""},
    {"v1.2", 1, 2, 0, ""},
    {"3", 3, 0, 0, ""},
    {"v3", 3, 0, 0, ""},
    {"0.0.0", 0, 0, 0, ""},
    {"3.20.0-rc1", 3, 20, 0, "rc1"},
    {"1.2.3-rc.1", 1, 2, 3, "rc.1"},
    {"1.2.3-rc.1+build.5", 1, 2, 3, "rc.1"},
    {"1.2.3+build", 1, 2, 3, ""},
    {"1.2.3+build-7.x", 1, 2, 3, ""},
    {"1.2-beta", 1, 2, 0, "beta"},
    {"2-alpine", 2, 0, 0, "alpine"},
    {"1.25.3-alpine3.18", 1, 25, 3, "alpine3.18"},
    {"1.0.0-alpha-1", 1, 0, 0, "alpha-1"},
    {"1.0.0-0", 1, 0, 0, "0"},
    {"1.0.0-x.7.z.92", 1, 0, 0, "x.7.z.92"},
    {"1.0.0--", 1, 0, 0, "-"},
    {"1.0.0-0a", 1, 0, 0, "0a"}, /* alphanumeric, so a leading zero is fine */
    /* Leading zeros in the numbers are coerced, as Masterminds' NewVersion does. */
    {"01.2", 1, 2, 0, ""},
    {"2024.01.15", 2024, 1, 15, ""},
    {"v007", 7, 0, 0, ""},
    {"20240329", 20240329, 0, 0, ""},
    {"18446744073709551615.18446744073709551615.18446744073709551615", UINT64_MAX, UINT64_MAX,
     UINT64_MAX, ""},
};

static const char *const bad_versions[] = {
    "",
    "v",
    "latest",
    "edge",
    "stable",
    "V1.2.3",
    "vv1",
    "1.2.3.4",
    "1.2.3.4.5",
    "1..2",
    "1.",
    "1.2.",
    ".1",
    "-1",
    "+1",
    "1.2.3-",
    "1.2.3-a..b",
    "1.2.3-a.",
    "1.2.3-.a",
    "1.2.3+",
    "1.2.3+a..b",
    "1.2.3-rc.1+",
    "1.2.3-01",
    "1.2.3-rc.01",
    "1.2.3_4",
    "1.2.3 ",
    " 1.2.3",
    "1.2.x",
    "1.*",
    "*",
    "1.2.3-rc_1",
    "1.2.3-\xc3\xa9",
    "18446744073709551616",
    "1.18446744073709551616",
    "1.2.99999999999999999999",
    "1.2.3\n",
    "sha256-abc",
};

TEST(version_parse_good)
{
    for (size_t i = 0; i < N_OF(good_versions); i++) {
        const struct good_version *g = &good_versions[i];
        struct oci_semver v;
        int rc = oci_semver_parse(g->s, &v);
        if (rc != 0)
            fprintf(stderr, "version \"%s\" refused\n", g->s);
        CHECK_INT(rc, 0);
        CHECK(v.major == g->major);
        CHECK(v.minor == g->minor);
        CHECK(v.patch == g->patch);
        CHECK_STR(v.pre, g->pre);
    }
}

TEST(version_parse_bad)
{
    struct oci_semver v;
    char buf[512];

    for (size_t i = 0; i < N_OF(bad_versions); i++) {
        memset(&v, 0x5a, sizeof(v));
        int rc = oci_semver_parse(bad_versions[i], &v);
        if (rc != OCISYNC_EUSAGE)
            fprintf(stderr, "version \"%s\" accepted\n", bad_versions[i]);
        CHECK_INT(rc, OCISYNC_EUSAGE);
        CHECK(v.major == 0 && v.minor == 0 && v.patch == 0 && v.pre[0] == '\0');
    }
    CHECK_INT(oci_semver_parse(NULL, &v), OCISYNC_EUSAGE);

    /* A prerelease of 127 bytes fits; 128 does not. */
    memcpy(buf, "1.0.0-", 6);
    memset(buf + 6, 'a', 127);
    buf[6 + 127] = '\0';
    CHECK_INT(oci_semver_parse(buf, &v), 0);
    CHECK_INT(strlen(v.pre), 127);
    buf[6 + 127] = 'a';
    buf[6 + 128] = '\0';
    CHECK_INT(oci_semver_parse(buf, &v), OCISYNC_EUSAGE);

    /* Long input is refused without being scanned to its end. */
    memset(buf, '1', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    CHECK_INT(oci_semver_parse(buf, &v), OCISYNC_EUSAGE);
    memcpy(buf, "1.0.0+", 6);
    memset(buf + 6, 'b', sizeof(buf) - 7);
    CHECK_INT(oci_semver_parse(buf, &v), OCISYNC_EUSAGE);
}

static int cmp_str(const char *a, const char *b)
{
    struct oci_semver va, vb;

    if (oci_semver_parse(a, &va) != 0 || oci_semver_parse(b, &vb) != 0) {
        fprintf(stderr, "cannot parse \"%s\" or \"%s\"\n", a, b);
        return 99;
    }
    return oci_semver_cmp(&va, &vb);
}

/* Each list is in strictly increasing precedence; every pair is checked both ways. */
static void check_chain(const char *const *chain, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int want = (i > j) - (i < j);
            int got = cmp_str(chain[i], chain[j]);
            if (got != want)
                fprintf(stderr, "cmp(\"%s\", \"%s\") = %d, want %d\n", chain[i], chain[j], got,
                        want);
            CHECK_INT(got, want);
        }
    }
}

TEST(version_precedence)
{
    /* The example chain of semver.org, section 11. */
    static const char *const spec[] = {
        "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
        "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
    };
    static const char *const numbers[] = {
        "0.0.0", "0.0.1",  "0.1.0", "0.9.9",  "1.0.0",    "1.0.1",
        "1.2.0", "1.10.0", "2.0.0", "10.0.0", "20240329", "18446744073709551615.0.0",
    };
    static const char *const pre[] = {
        "1.0.0-0",
        "1.0.0-1",
        "1.0.0-9",
        "1.0.0-10",
        "1.0.0-99999999999999999999", /* past 2^64: compared as digits */
        "1.0.0-100000000000000000000",
        "1.0.0-0a", /* alphanumeric: above every number */
        "1.0.0-A",
        "1.0.0-Z",
        "1.0.0-a",
        "1.0.0-a.0",
        "1.0.0-a.a",
        "1.0.0-aa",
        "1.0.0-b",
        "1.0.0-rc.2",
        "1.0.0-rc.10",
        "1.0.0",
        "1.0.1-0",
        "1.0.1",
    };

    check_chain(spec, N_OF(spec));
    check_chain(numbers, N_OF(numbers));
    check_chain(pre, N_OF(pre));

    /* Spellings of one version are equal: "v", missing parts, leading zeros, build metadata. */
    CHECK_INT(cmp_str("v1.2.0", "1.2.0"), 0);
    CHECK_INT(cmp_str("1.2", "1.2.0"), 0);
    CHECK_INT(cmp_str("3", "3.0.0"), 0);
    CHECK_INT(cmp_str("2024.01.15", "2024.1.15"), 0);
    CHECK_INT(cmp_str("1.0.0+a", "1.0.0+b"), 0);
    CHECK_INT(cmp_str("1.0.0-rc.1+a", "1.0.0-rc.1"), 0);
    CHECK_INT(cmp_str("3.20.0-rc1", "3.20"), -1);
    CHECK_INT(cmp_str("3.9.6", "3.18"), -1);

    /* A hand-filled numeric identifier with leading zeros still compares by value. */
    struct oci_semver a = {1, 0, 0, "007"}, b = {1, 0, 0, "7"}, c = {1, 0, 0, "10"};
    CHECK_INT(oci_semver_cmp(&a, &b), 0);
    CHECK_INT(oci_semver_cmp(&a, &c), -1);
}

/* ---------------------------------------------------------------------------------------------
 * Ranges
 */

struct match_case {
    const char *range;
    const char *version;
    bool want;
};

static const struct match_case match_cases[] = {
    /* Equality, bare or with "=". */
    {"=1.2.3", "1.2.3", true},
    {"=1.2.3", "v1.2.3", true},
    {"=1.2.3", "1.2.3+build.1", true},
    {"=1.2.3", "1.2.4", false},
    {"=1.2.3", "1.2.3-rc1", false},
    {"1.2.3", "1.2.3", true},
    {"1.2.3", "1.2.2", false},
    {"v1.2.3", "1.2.3", true},
    {"= 1.2.3", "1.2.3", true},
    {"!=1.2.3", "1.2.3", false},
    {"!=1.2.3", "1.2.4", true},
    {"!=1.2.3", "0.1.0", true},
    {"!=1.2.3", "1.2.4-rc1", false}, /* no prerelease in the range */
    /* Ordering. */
    {">1.2.3", "1.2.4", true},
    {">1.2.3", "2.0.0", true},
    {">1.2.3", "1.2.3", false},
    {">1.2.3", "1.2.2", false},
    {"<1.2.3", "1.2.2", true},
    {"<1.2.3", "0.0.1", true},
    {"<1.2.3", "1.2.3", false},
    {"<1.2.3", "1.2.3-rc1", false},
    {">=1.2.3", "1.2.3", true},
    {">=1.2.3", "1.3.0", true},
    {">=1.2.3", "1.2.2", false},
    {"=>1.2.3", "1.2.3", true},
    {"=>1.2.3", "1.2.2", false},
    {"<=1.2.3", "1.2.3", true},
    {"<=1.2.3", "1.2.4", false},
    {"=<1.2.3", "1.2.3", true},
    {"=<1.2.3", "1.2.4", false},
    {">= 1.2.3", "1.2.3", true},
    {">=\t1.2.3", "1.2.2", false},
    /* X-ranges: wildcards and missing parts. */
    {"1.2.x", "1.2.0", true},
    {"1.2.x", "1.2.99", true},
    {"1.2.x", "1.3.0", false},
    {"1.2.x", "1.1.9", false},
    {"1.2.*", "1.2.7", true},
    {"1.2.X", "1.2.7", true},
    {"1.2.X", "1.20.0", false},
    {"1.*", "1.0.0", true},
    {"1.*", "1.99.0", true},
    {"1.*", "2.0.0", false},
    {"1.x.x", "1.5.5", true},
    {"1.x.x", "0.5.5", false},
    {"*", "0.0.1", true},
    {"*", "99.0.0", true},
    {"*", "1.0.0-rc1", false},
    {"x", "3.0.0", true},
    {"1.2", "1.2.5", true},
    {"1.2", "1.3.0", false},
    {"1", "1.9.9", true},
    {"1", "2.0.0", false},
    {"1", "0.9.0", false},
    {"=1.x", "1.4.0", true},
    {">1.2", "1.2.9", false},
    {">1.2", "1.3.0", true},
    {">1", "1.9.0", false},
    {">1", "2.0.0", true},
    {">1.x", "2.0.0", true},
    {">*", "1.0.0", false},
    {">=1.2", "1.2.0", true},
    {">=1.2", "1.1.9", false},
    {"<=1.2", "1.2.9", true},
    {"<=1.2", "1.3.0", false},
    {"<=1", "1.99.0", true},
    {"<=1", "2.0.0", false},
    {"<=*", "99.0.0", true},
    {"<1.2", "1.1.9", true},
    {"<1.2", "1.2.0", false},
    {"<1", "0.99.0", true},
    {"<1", "1.0.0", false},
    {"!=1.x", "1.5.0", false},
    {"!=1.x", "2.0.0", true},
    {"!=1.x", "0.9.0", true},
    {"!=1.2", "1.2.7", false},
    {"!=1.2", "1.3.0", true},
    /* Tilde. */
    {"~1.2.3", "1.2.3", true},
    {"~1.2.3", "1.2.9", true},
    {"~1.2.3", "1.3.0", false},
    {"~1.2.3", "1.2.2", false},
    {"~>1.2.3", "1.2.9", true},
    {"~>1.2.3", "1.3.0", false},
    {"~1.2", "1.2.0", true},
    {"~1.2", "1.2.9", true},
    {"~1.2", "1.3.0", false},
    {"~1.2", "1.1.0", false},
    {"~1", "1.0.0", true},
    {"~1", "1.9.0", true},
    {"~1", "2.0.0", false},
    {"~1.x", "1.9.0", true},
    {"~*", "5.0.0", true},
    {"~ 1.2", "1.2.4", true},
    /* Caret. */
    {"^1.2.3", "1.2.3", true},
    {"^1.2.3", "1.9.9", true},
    {"^1.2.3", "2.0.0", false},
    {"^1.2.3", "1.2.2", false},
    {"^1.2", "1.2.0", true},
    {"^1.2", "1.9.0", true},
    {"^1.2", "2.0.0", false},
    {"^1.2", "1.1.0", false},
    {"^1", "1.9.9", true},
    {"^1", "2.0.0", false},
    {"^0.2.3", "0.2.3", true},
    {"^0.2.3", "0.2.9", true},
    {"^0.2.3", "0.3.0", false},
    {"^0.2.3", "0.2.2", false},
    {"^0.2", "0.2.9", true},
    {"^0.2", "0.3.0", false},
    {"^0.0.3", "0.0.3", true},
    {"^0.0.3", "0.0.4", false},
    {"^0.0.3", "0.0.2", false},
    {"^0.0", "0.0.9", true},
    {"^0.0", "0.1.0", false},
    {"^0", "0.9.9", true},
    {"^0", "1.0.0", false},
    {"^*", "7.0.0", true},
    /* Hyphen ranges. */
    {"1.2 - 1.4.5", "1.2.0", true},
    {"1.2 - 1.4.5", "1.3.7", true},
    {"1.2 - 1.4.5", "1.4.5", true},
    {"1.2 - 1.4.5", "1.4.6", false},
    {"1.2 - 1.4.5", "1.1.9", false},
    {"1.2.3 - 2", "2.9.9", true},
    {"1.2.3 - 2", "3.0.0", false},
    {"1.2.3 - 2", "1.2.2", false},
    {"1.2 - 1.4", "1.4.9", true},
    {"1.2 - 1.4", "1.5.0", false},
    {"1.2  -  1.4", "1.3.0", true},
    {"1.2 - 1.4 || 3", "3.1.0", true},
    {"1.2 - 1.4, !=1.3.0", "1.3.0", false},
    /* AND with commas or spaces. */
    {">=1.2, <2", "1.5.0", true},
    {">=1.2, <2", "2.0.0", false},
    {">=1.2, <2", "1.1.0", false},
    {">=1.2 <2", "1.5.0", true},
    {">=1.2 <2", "2.0.0", false},
    {">= 1.2 , < 2", "1.9.9", true},
    {">=1.2,<2", "1.9.9", true},
    {">1.0 <3.0 !=2.5.0", "2.5.0", false},
    {">1.0 <3.0 !=2.5.0", "2.5.1", true},
    {"  >=1.2   <2  ", "1.5.0", true},
    /* OR. */
    {"<1.2 || >=2", "1.1.0", true},
    {"<1.2 || >=2", "1.5.0", false},
    {"<1.2 || >=2", "2.3.0", true},
    {"1.2.x || 1.4.x", "1.3.0", false},
    {"1.2.x || 1.4.x", "1.4.2", true},
    {"^1.2 || ~0.5", "0.5.3", true},
    {"^1.2 || ~0.5", "0.6.0", false},
    {">=1.2, <1.3||>=2.0, <2.1", "2.0.5", true},
    {">=1.2, <1.3||>=2.0, <2.1", "1.5.0", false},
    /* Prereleases only where an alternative asks for them. */
    {">=1.2.0", "1.3.0-rc1", false},
    {">=1.2.0-0", "1.3.0-rc1", true},
    {">=1.2.0-0", "1.2.0-rc1", true},
    {">=1.2.0-0", "1.1.0-rc1", false},
    {">=1.2.0-0", "1.1.0", false},
    {">=1.2.0-0 <2", "1.9.0-beta", true},
    {">=1.2.0-0 <2", "2.0.0-rc1", true},
    {">=1.2.0-0 <2", "2.0.0", false},
    {"<2 || >=3.0.0-beta", "2.5.0-rc1", false},
    {"<2 || >=3.0.0-beta", "3.1.0-rc1", true},
    {"<2 || >=3.0.0-beta", "1.5.0", true},
    {"~1.2.0-0", "1.2.5-rc1", true},
    {"~1.2.0-0", "1.3.0-rc1", false}, /* the next minor's prereleases stay out */
    {"^1.2.3-beta.2", "1.2.3-beta.4", true},
    {"^1.2.3-beta.2", "1.2.3-alpha", false},
    {"^1.2.3-beta.2", "1.2.3", true},
    {"^1.2.3-beta.2", "2.0.0-rc1", false},
    {"1.2.3-rc1", "1.2.3-rc1", true},
    {"1.2.3-rc1", "1.2.3-rc2", false},
    {"1.2.3-rc1+build", "1.2.3-rc1", true},
    {"1.2-1.4", "1.2.0-1.4", true}, /* a prerelease "1.4", not a range */
    {"1.2-1.4", "1.4.0", false},
    {"1.2.3 - 1.4.0-rc.1", "1.3.0-beta", true},
    {"1.2.3 - 1.4.0-rc.1", "1.4.0-rc.2", false},
    {">=1.0.0", "1.0.0-rc1", false},
    /* Numbers at the top of the range. */
    {"~18446744073709551615", "18446744073709551615.5.0", true},
    {">18446744073709551615", "18446744073709551615.99.0", false},
    {"^18446744073709551615.0.0", "18446744073709551615.3.0", true},
    {"~1.18446744073709551615", "1.18446744073709551615.7", true},
    {"~1.18446744073709551615", "2.0.0", false}, /* the end moves up to 2.0.0-0 */
    {"=0.18446744073709551615", "1.0.0", false},
    {"^0.0.18446744073709551615", "0.1.0", false},
    {">=20240101", "20240329", true},
    /* Bare wildcards under an operator, and Masterminds' "~0.0.0". */
    {"!=*", "1.0.0", false},
    {">*", "0.0.0", false},
    {"~0.0.0", "5.0.0", true},
    {"~0.0.0-0", "0.0.0-rc1", true},
    {"~0.0", "0.1.0", false},
    /* "!=1.x" leaves out 1.x prereleases too, where the group admits them. */
    {"!=1.x >=0.0.0-0", "1.2.0-rc1", false},
    {"!=1.x >=0.0.0-0", "2.0.0-rc1", true},
    {"<=2024.01", "2024.1.15", true},
};

TEST(range_match)
{
    for (size_t i = 0; i < N_OF(match_cases); i++) {
        const struct match_case *mc = &match_cases[i];
        struct oci_semver_range r;
        struct oci_semver v;
        char err[256];
        int rc = oci_semver_range_parse(mc->range, &r, err, sizeof(err));

        if (rc != 0)
            fprintf(stderr, "range \"%s\" refused: %s\n", mc->range, err);
        CHECK_INT(rc, 0);
        CHECK_STR(err, "");
        CHECK_INT(oci_semver_parse(mc->version, &v), 0);
        bool got = oci_semver_range_match(&r, &v);
        if (got != mc->want)
            fprintf(stderr, "range \"%s\" version \"%s\": got %d, want %d\n", mc->range,
                    mc->version, got, mc->want);
        CHECK(got == mc->want);
        oci_semver_range_free(&r);
        CHECK(r.terms == NULL && r.n_terms == 0);
        oci_semver_range_free(&r);
    }
}

struct bad_range {
    const char *range;
    int rc;
    const char *msg; /* the whole message, "semver range ..." */
};

static const struct bad_range bad_ranges[] = {
    {"", OCISYNC_EUSAGE, "semver range \"\": it is empty"},
    {"   ", OCISYNC_EUSAGE, "semver range \"   \": it is empty"},
    {">= 1.x.y", OCISYNC_EUSAGE,
     "semver range \">= 1.x.y\": \"1.x.y\" is not a version: a dot is not followed by a number "
     "or wildcard"},
    {"latest", OCISYNC_EUSAGE,
     "semver range \"latest\": \"latest\" is not a version: it does not start with a number"},
    {"1.2.3.4", OCISYNC_EUSAGE,
     "semver range \"1.2.3.4\": \"1.2.3.4\" is not a version: it has more than three numbers"},
    {"1.x.3", OCISYNC_EUSAGE,
     "semver range \"1.x.3\": \"1.x.3\" is not a version: a number follows a wildcard"},
    {">=", OCISYNC_EUSAGE, "semver range \">=\": no version after \">=\""},
    {">= ", OCISYNC_EUSAGE, "semver range \">= \": no version after \">=\""},
    {"1.2 ||", OCISYNC_EUSAGE, "semver range \"1.2 ||\": an alternative of \"||\" is empty"},
    {"|| 1.2", OCISYNC_EUSAGE, "semver range \"|| 1.2\": an alternative of \"||\" is empty"},
    {"1.2 || || 2", OCISYNC_EUSAGE,
     "semver range \"1.2 || || 2\": an alternative of \"||\" is empty"},
    {"1.2 | 1.3", OCISYNC_EUSAGE, "semver range \"1.2 | 1.3\": unexpected \"|\""},
    {"1 ||| 2", OCISYNC_EUSAGE, "semver range \"1 ||| 2\": unexpected \"|\""},
    {">=1.2,,<2", OCISYNC_EUSAGE, "semver range \">=1.2,,<2\": unexpected \",\""},
    {">=1.2,", OCISYNC_EUSAGE, "semver range \">=1.2,\": a comma is not followed by a comparison"},
    {",>=1.2", OCISYNC_EUSAGE, "semver range \",>=1.2\": unexpected \",\""},
    {">=1.2<2", OCISYNC_EUSAGE, "semver range \">=1.2<2\": unexpected \"<\" after \">=1.2\""},
    {"==1.2", OCISYNC_EUSAGE, "semver range \"==1.2\": unexpected \"=\" after \"=\""},
    {"~=1.2", OCISYNC_EUSAGE, "semver range \"~=1.2\": unexpected \"=\" after \"~\""},
    {"!1.2", OCISYNC_EUSAGE, "semver range \"!1.2\": unexpected \"!\""},
    {">1.2 - 1.4", OCISYNC_EUSAGE,
     "semver range \">1.2 - 1.4\": a hyphen range takes bare versions, not \">\" before one"},
    {"1.2 - ", OCISYNC_EUSAGE, "semver range \"1.2 - \": no version after \"-\""},
    {"1.2 - >=1.4", OCISYNC_EUSAGE, "semver range \"1.2 - >=1.4\": unexpected \">\" after \"-\""},
    {"1.2.3-01", OCISYNC_EUSAGE,
     "semver range \"1.2.3-01\": \"1.2.3-01\" is not a version: a numeric prerelease identifier "
     "has a leading zero"},
    {">18446744073709551616", OCISYNC_EUSAGE,
     "semver range \">18446744073709551616\": \"18446744073709551616\" is not a version: a "
     "number is larger than 2^64-1"},
    {"v", OCISYNC_EUSAGE,
     "semver range \"v\": \"v\" is not a version: it does not start with a number"},
    {"1.2.3 foo", OCISYNC_EUSAGE,
     "semver range \"1.2.3 foo\": \"foo\" is not a version: it does not start with a number"},
    {"(1.2)", OCISYNC_EUSAGE, "semver range \"(1.2)\": unexpected \"(\""},
};

TEST(range_bad)
{
    struct oci_semver_range r;
    char err[512];

    for (size_t i = 0; i < N_OF(bad_ranges); i++) {
        const struct bad_range *b = &bad_ranges[i];
        memset(err, 'x', sizeof(err));
        err[sizeof(err) - 1] = '\0';
        int rc = oci_semver_range_parse(b->range, &r, err, sizeof(err));
        if (rc != b->rc)
            fprintf(stderr, "range \"%s\" gave %d: %s\n", b->range, rc, err);
        CHECK_INT(rc, b->rc);
        CHECK_STR(err, b->msg);
        CHECK(r.terms == NULL && r.n_terms == 0);
        oci_semver_range_free(&r);
    }

    CHECK_INT(oci_semver_range_parse(NULL, &r, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "semver range \"\": no range given");
    /* No error buffer is fine too. */
    CHECK_INT(oci_semver_range_parse("nope", &r, NULL, 0), OCISYNC_EUSAGE);
    CHECK_INT(oci_semver_range_parse("1.2", &r, NULL, 0), 0);
    oci_semver_range_free(&r);
    /* A short buffer gets a cut, terminated message. */
    CHECK_INT(oci_semver_range_parse("latest", &r, err, 10), OCISYNC_EUSAGE);
    CHECK_STR(err, "semver ra");
}

TEST(range_limits)
{
    struct oci_semver_range r;
    struct oci_semver v;
    char big[OCI_SEMVER_RANGE_MAX + 64], err[512];
    size_t n = 0;

    /* OCI_SEMVER_RANGE_MAX_TERMS comparisons are fine, one more is not. */
    for (int i = 0; i < OCI_SEMVER_RANGE_MAX_TERMS; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s>%d", i ? " " : "", i % 10);
    CHECK_INT(oci_semver_range_parse(big, &r, err, sizeof(err)), 0);
    CHECK_INT(r.n_terms, OCI_SEMVER_RANGE_MAX_TERMS);
    CHECK_INT(oci_semver_parse("10.0.0", &v), 0);
    CHECK(oci_semver_range_match(&r, &v));
    oci_semver_range_free(&r);
    snprintf(big + n, sizeof(big) - n, " >1");
    CHECK_INT(oci_semver_range_parse(big, &r, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "more than 128 comparisons") != NULL);
    CHECK(r.terms == NULL);
    /* Each end of a hyphen range counts. */
    n = 0;
    for (int i = 0; i < OCI_SEMVER_RANGE_MAX_TERMS / 2; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s1 - 2", i ? " || " : "");
    CHECK_INT(oci_semver_range_parse(big, &r, err, sizeof(err)), 0);
    oci_semver_range_free(&r);
    snprintf(big + n, sizeof(big) - n, " || 3");
    CHECK_INT(oci_semver_range_parse(big, &r, err, sizeof(err)), OCISYNC_ETOOBIG);

    /* Length: exactly the cap parses, one byte more does not. */
    memset(big, ' ', OCI_SEMVER_RANGE_MAX);
    big[0] = '1';
    big[OCI_SEMVER_RANGE_MAX] = '\0';
    CHECK_INT(oci_semver_range_parse(big, &r, err, sizeof(err)), 0);
    oci_semver_range_free(&r);
    big[OCI_SEMVER_RANGE_MAX] = ' ';
    big[OCI_SEMVER_RANGE_MAX + 1] = '\0';
    CHECK_INT(oci_semver_range_parse(big, &r, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "longer than 1024 bytes") != NULL);

    /* NULL and empty ranges match nothing. */
    memset(&r, 0, sizeof(r));
    CHECK(!oci_semver_range_match(&r, &v));
    CHECK(!oci_semver_range_match(NULL, &v));
}

/* ---------------------------------------------------------------------------------------------
 * Tag filters
 */

#define LIST(...) ((const char *const[]){__VA_ARGS__})

/*
 * Runs a filter over tags and compares the selection with want, a
 * space-separated list of tags in the expected order.
 */
static void expect_sel(const struct oci_tagfilter_spec *spec, const char *const *tags, size_t n,
                       const char *want, int line)
{
    struct oci_tagfilter f;
    size_t sel[64], n_sel = 99;
    char err[512], got[1024];
    size_t o = 0;
    int rc;

    rc = oci_tagfilter_init(&f, spec, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "line %d: filter refused: %s\n", line, err);
    CHECK_INT(rc, 0);
    if (rc != 0)
        return;
    CHECK(n <= 64);
    CHECK_INT(oci_tagfilter_apply(&f, tags, n, sel, &n_sel), 0);
    got[0] = '\0';
    for (size_t i = 0; i < n_sel && o < sizeof(got); i++) {
        CHECK(sel[i] < n);
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", i ? " " : "",
                              sel[i] < n ? tags[sel[i]] : "?");
    }
    if (strcmp(got, want) != 0)
        fprintf(stderr, "line %d: selected \"%s\", want \"%s\"\n", line, got, want);
    CHECK_STR(got, want);
    oci_tagfilter_free(&f);
    CHECK(f.include == NULL && f.exclude == NULL && !f.has_semver);
}

#define EXPECT(spec, tags, want) expect_sel(&(spec), tags, N_OF(tags), want, __LINE__)

/* Tags as Docker Hub lists them for alpine, shuffled. */
static const char *const alpine[] = {
    "3.18.0", "3.18",   "3.19.1", "3.20",   "3.20.0-rc1", "edge",    "latest",
    "3.9.6",  "3.19",   "3.20.0", "3.9",    "3",          "3.18.6",  "20240329",
    "3.7",    "3.19.0", "3.20.3", "3.10.9", "3.21.0_rc1", "3.17.10", "v3.20.3",
};

TEST(filter_regex)
{
    static const char *const tags[] = {"1.0", "2.0-alpine", "1.0-alpine", "2.0", "latest", "edge"};
    struct oci_tagfilter_spec spec;

    /* No rules: everything, in byte order. */
    memset(&spec, 0, sizeof(spec));
    EXPECT(spec, tags, "1.0 1.0-alpine 2.0 2.0-alpine edge latest");

    spec = (struct oci_tagfilter_spec){.include_regex = LIST("^1\\."), .n_include = 1};
    EXPECT(spec, tags, "1.0 1.0-alpine");
    spec = (struct oci_tagfilter_spec){.exclude_regex = LIST("alpine"), .n_exclude = 1};
    EXPECT(spec, tags, "1.0 2.0 edge latest");
    /* Include any of several, then exclude any of several. */
    spec = (struct oci_tagfilter_spec){.include_regex = LIST("^1\\.", "^l"),
                                       .n_include = 2,
                                       .exclude_regex = LIST("alpine", "^x"),
                                       .n_exclude = 2};
    EXPECT(spec, tags, "1.0 latest");
    /* An exclude beats an include. */
    spec = (struct oci_tagfilter_spec){.include_regex = LIST("alpine"),
                                       .n_include = 1,
                                       .exclude_regex = LIST("alpine$"),
                                       .n_exclude = 1};
    EXPECT(spec, tags, "");
    /* An empty include pattern matches everything, as in Go. */
    spec = (struct oci_tagfilter_spec){.include_regex = LIST(""), .n_include = 1};
    EXPECT(spec, tags, "1.0 1.0-alpine 2.0 2.0-alpine edge latest");
}

TEST(filter_anchoring)
{
    static const char *const tags[] = {"13.1", "3.1", "3.18", "v3.1", "341"};
    struct oci_tagfilter_spec spec = {0};

    /* Unanchored, like Go's MatchString: "3\.1" is found inside "13.1". */
    spec.include_regex = LIST("3\\.1");
    spec.n_include = 1;
    EXPECT(spec, tags, "13.1 3.1 3.18 v3.1");
    spec.include_regex = LIST("^3\\.1");
    EXPECT(spec, tags, "3.1 3.18");
    spec.include_regex = LIST("^3\\.1$");
    EXPECT(spec, tags, "3.1");
    spec.include_regex = LIST("\\A3\\.1\\z");
    EXPECT(spec, tags, "3.1");
    /* An unescaped dot is any character. */
    spec.include_regex = LIST("^3.1$");
    EXPECT(spec, tags, "3.1 341");
    spec.include_regex = LIST("^v?3\\.1$");
    EXPECT(spec, tags, "3.1 v3.1");
}

TEST(filter_go_syntax)
{
    static const char *const tags[] = {
        "3.18", "3.18.0", "edge", "v1.2", "1.2", "a_b", "a-b", "a b", "x]",
        "x^",   "x-",     "x\\",  "a{2}", "aa",  "a{",  "}",   "x{",
    };
    struct oci_tagfilter_spec spec = {.n_include = 1};

    /* Perl classes outside brackets. */
    spec.include_regex = LIST("^\\d+\\.\\d+$");
    EXPECT(spec, tags, "1.2 3.18");
    spec.include_regex = LIST("^\\D+$");
    EXPECT(spec, tags, "a b a-b a_b aa a{ edge x- x\\ x] x^ x{ }");
    spec.include_regex = LIST("^\\w+$");
    EXPECT(spec, tags, "a_b aa edge");
    spec.include_regex = LIST("\\W");
    EXPECT(spec, tags, "1.2 3.18 3.18.0 a b a-b a{ a{2} v1.2 x- x\\ x] x^ x{ }");
    spec.include_regex = LIST("\\s");
    EXPECT(spec, tags, "a b");
    spec.include_regex = LIST("^\\S+$");
    EXPECT(spec, tags, "1.2 3.18 3.18.0 a-b a_b aa a{ a{2} edge v1.2 x- x\\ x] x^ x{ }");
    /* ... and inside them, with escaped punctuation and ranges. */
    spec.include_regex = LIST("^[\\d.]+$");
    EXPECT(spec, tags, "1.2 3.18 3.18.0");
    spec.include_regex = LIST("^[v\\d.]+$");
    EXPECT(spec, tags, "1.2 3.18 3.18.0 v1.2");
    spec.include_regex = LIST("^[\\w\\-]+$");
    EXPECT(spec, tags, "a-b a_b aa edge x-");
    spec.include_regex = LIST("^a[\\s_]b$");
    EXPECT(spec, tags, "a b a_b");
    spec.include_regex = LIST("^[^\\d]+$");
    EXPECT(spec, tags, "a b a-b a_b aa a{ edge x- x\\ x] x^ x{ }");
    spec.include_regex = LIST("^[\\D]+$");
    EXPECT(spec, tags, "a b a-b a_b aa a{ edge x- x\\ x] x^ x{ }");
    spec.include_regex = LIST("^[[:digit:].]+$");
    EXPECT(spec, tags, "1.2 3.18 3.18.0");
    spec.include_regex = LIST("^[[:^digit:]]+$");
    EXPECT(spec, tags, "a b a-b a_b aa a{ edge x- x\\ x] x^ x{ }");
    spec.include_regex = LIST("^[a-g]+$");
    EXPECT(spec, tags, "aa edge");
    /* POSIX brackets treat '\' as a member; Go's escapes must keep their meaning. */
    spec.include_regex = LIST("^x[\\]\\^]$");
    EXPECT(spec, tags, "x] x^");
    spec.include_regex = LIST("^x[\\\\]$");
    EXPECT(spec, tags, "x\\");
    spec.include_regex = LIST("^x[]]$");
    EXPECT(spec, tags, "x]");
    spec.include_regex = LIST("^x[-^]$");
    EXPECT(spec, tags, "x- x^");
    spec.include_regex = LIST("^x[^^-]$");
    EXPECT(spec, tags, "x\\ x] x{");
    spec.include_regex = LIST("^x[\\-]$");
    EXPECT(spec, tags, "x-");
    spec.include_regex = LIST("^x[[]$|^a[{]");
    EXPECT(spec, tags, "a{ a{2}");
    /* Groups: non-capturing and named ones become plain groups. */
    spec.include_regex = LIST("^(?:v)?1\\.2$");
    EXPECT(spec, tags, "1.2 v1.2");
    spec.include_regex = LIST("^(?P<prefix>v)1\\.2$");
    EXPECT(spec, tags, "v1.2");
    spec.include_regex = LIST("^(?<n>\\d+)\\.(18)$");
    EXPECT(spec, tags, "3.18");
    /* Lazy quantifiers select the same tags. */
    spec.include_regex = LIST("^\\d+?\\.\\d*?\\.??\\d{1,2}?$");
    EXPECT(spec, tags, "1.2 3.18 3.18.0");
    /* Repetitions, and braces that are not one (literal in Go). */
    spec.include_regex = LIST("^a{2}$");
    EXPECT(spec, tags, "aa");
    spec.include_regex = LIST("^a{1,}$|^a\\{2\\}$");
    EXPECT(spec, tags, "aa a{2}");
    spec.include_regex = LIST("^a{$");
    EXPECT(spec, tags, "a{");
    spec.include_regex = LIST("^a{,2}");
    EXPECT(spec, tags, "");
    spec.include_regex = LIST("^}$");
    EXPECT(spec, tags, "}");
    spec.include_regex = LIST("^x{$");
    EXPECT(spec, tags, "x{");
    spec.include_regex = LIST("^(edge|latest)$");
    EXPECT(spec, tags, "edge");
    spec.include_regex = LIST("^a\\tb$|^a\\ b$");
    EXPECT(spec, tags, "a b");
    /* Anchors in groups that match at most once, and repeated groups outside anchors. */
    spec.include_regex = LIST("(^|\\.)18$");
    EXPECT(spec, tags, "3.18");
    spec.include_regex = LIST("^(v)?1\\.2$|(^a){1}_");
    EXPECT(spec, tags, "1.2 a_b v1.2");
    spec.include_regex = LIST("^\\d+(\\.\\d+){2}$");
    EXPECT(spec, tags, "3.18.0");
}

TEST(filter_semver)
{
    struct oci_tagfilter_spec spec = {0};

    /* Non-versions and prereleases are out; highest version first, ties by bytes. */
    spec.semver = ">=3.19";
    EXPECT(spec, alpine, "20240329 3.20.3 v3.20.3 3.20 3.20.0 3.19.1 3.19 3.19.0");
    spec.semver = "~3.20";
    EXPECT(spec, alpine, "3.20.3 v3.20.3 3.20 3.20.0");
    spec.semver = "3.18.x || 3.9";
    EXPECT(spec, alpine, "3.18.6 3.18 3.18.0 3.9.6 3.9");
    spec.semver = ">=3.20.0-0 <4";
    EXPECT(spec, alpine, "3.20.3 v3.20.3 3.20 3.20.0 3.20.0-rc1");
    spec.semver = "*";
    spec.include_regex = LIST("^3\\.\\d+$");
    spec.n_include = 1;
    EXPECT(spec, alpine, "3.20 3.19 3.18 3.9 3.7");
}

TEST(filter_latest)
{
    struct oci_tagfilter_spec spec = {0};

    /*
     * Without a range every version counts, a date tag included: the reason
     * to pair latest with a range.
     */
    spec.latest = 3;
    EXPECT(spec, alpine, "20240329 3.20.3 v3.20.3");
    spec.latest = 1;
    EXPECT(spec, alpine, "20240329");
    spec.latest = 100;
    EXPECT(spec, alpine,
           "20240329 3.20.3 v3.20.3 3.20 3.20.0 3.20.0-rc1 3.19.1 3.19 3.19.0 3.18.6 3.18 3.18.0 "
           "3.17.10 3.10.9 3.9.6 3.9 3.7 3");
    /* Ties among the N: "3.20" and "3.20.0" are one version; bytes decide. */
    spec.latest = 4;
    spec.semver = "<2000";
    EXPECT(spec, alpine, "3.20.3 v3.20.3 3.20 3.20.0");
    spec.latest = 3;
    EXPECT(spec, alpine, "3.20.3 v3.20.3 3.20");

    /* semver + latest + exclude: the two newest x.y.z releases of 3.18 and up. */
    spec = (struct oci_tagfilter_spec){.semver = ">=3.18 <2000",
                                       .latest = 2,
                                       .exclude_regex = LIST("^v", "^\\d+\\.\\d+$"),
                                       .n_exclude = 2};
    EXPECT(spec, alpine, "3.20.3 3.20.0");
    spec.latest = 5;
    EXPECT(spec, alpine, "3.20.3 3.20.0 3.19.1 3.19.0 3.18.6");
    /* Regexes narrow before latest counts. */
    spec = (struct oci_tagfilter_spec){
        .include_regex = LIST("^3\\.1\\d\\."), .n_include = 1, .latest = 2};
    EXPECT(spec, alpine, "3.19.1 3.19.0");
    /* latest 0 is no limit; a latest over non-versions only selects nothing. */
    static const char *const words[] = {"edge", "latest", "stable"};
    spec = (struct oci_tagfilter_spec){.latest = 0};
    EXPECT(spec, words, "edge latest stable");
    spec.latest = 2;
    EXPECT(spec, words, "");
}

TEST(filter_apply_edges)
{
    static const char *const dups[] = {"1.0", "b", NULL, "1.0", "a", "v1.0"};
    struct oci_tagfilter_spec spec = {0};
    struct oci_tagfilter f;
    size_t sel[8], n_sel = 99;
    char err[256];

    /* NULL tags are skipped; an exact duplicate is ordered by index. */
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(oci_tagfilter_apply(&f, dups, N_OF(dups), sel, &n_sel), 0);
    CHECK_INT(n_sel, 5);
    CHECK_INT(sel[0], 0);
    CHECK_INT(sel[1], 3);
    CHECK_INT(sel[2], 4);
    CHECK_INT(sel[3], 1);
    CHECK_INT(sel[4], 5);
    oci_tagfilter_free(&f);

    spec.latest = 2;
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    CHECK_INT(oci_tagfilter_apply(&f, dups, N_OF(dups), sel, &n_sel), 0);
    CHECK_INT(n_sel, 2);
    CHECK_INT(sel[0], 0);
    CHECK_INT(sel[1], 3);
    /* No tags, and bad arguments. */
    CHECK_INT(oci_tagfilter_apply(&f, NULL, 0, NULL, &n_sel), 0);
    CHECK_INT(n_sel, 0);
    CHECK_INT(oci_tagfilter_apply(&f, NULL, 1, sel, &n_sel), UV_EINVAL);
    CHECK_INT(oci_tagfilter_apply(&f, dups, 1, NULL, &n_sel), UV_EINVAL);
    CHECK_INT(oci_tagfilter_apply(&f, dups, 1, sel, NULL), UV_EINVAL);
    CHECK_INT(oci_tagfilter_apply(NULL, dups, 1, sel, &n_sel), UV_EINVAL);
    oci_tagfilter_free(&f);
    oci_tagfilter_free(&f);
    oci_tagfilter_free(NULL);

    /* A big list: every tag seen once, sorted by version. */
    enum { BIG = 5000 };
    char(*names)[16] = malloc(BIG * sizeof(*names));
    const char **tags = malloc(BIG * sizeof(*tags));
    size_t *bsel = malloc(BIG * sizeof(*bsel));
    for (size_t i = 0; i < BIG; i++) {
        snprintf(names[i], sizeof(names[i]), "1.%zu.%zu", (i * 7919) % BIG, i % 3);
        tags[i] = names[i];
    }
    spec = (struct oci_tagfilter_spec){.semver = ">=1.10 <1.20"};
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    CHECK_INT(oci_tagfilter_apply(&f, tags, BIG, bsel, &n_sel), 0);
    CHECK_INT(n_sel, 10);
    CHECK(strncmp(tags[bsel[0]], "1.19.", 5) == 0);
    CHECK(strncmp(tags[bsel[9]], "1.10.", 5) == 0);
    for (size_t i = 1; i < n_sel; i++)
        CHECK(strcmp(tags[bsel[i - 1]], tags[bsel[i]]) > 0);
    oci_tagfilter_free(&f);
    free(names);
    free(tags);
    free(bsel);
}

struct bad_filter {
    const char *include; /* or NULL */
    const char *exclude; /* or NULL */
    const char *semver;  /* or NULL */
    int rc;
    const char *msg;
};

static const struct bad_filter bad_filters[] = {
    {"(?i)alpine", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(?i)alpine\": flags and special groups \"(?i)\" are not supported"},
    {"(?i:a)", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(?i:a)\": flags and special groups \"(?i:\" are not supported"},
    {"(?=a)", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(?=a)\": flags and special groups \"(?=a)\" are not supported"},
    {"(?P<>a)", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(?P<>a)\": a named group (?P<name>...) is malformed"},
    {NULL, "\\balpine\\b", NULL, OCISYNC_EUSAGE,
     "exclude regex \"\\balpine\\b\": word boundaries (\\b) have no POSIX equivalent"},
    {"\\Bx", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"\\Bx\": word boundaries (\\B) have no POSIX equivalent"},
    {"\\pL", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"\\pL\": Unicode classes (\\p) are not supported"},
    {"\\x41", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"\\x41\": hex escapes (\\x) are not supported; write the character"},
    {"\\Q.\\E", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"\\Q.\\E\": \\Q...\\E quoting is not supported; escape each character"},
    {"(a)\\1", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(a)\\1\": octal escapes and backreferences (\\1) are not supported"},
    {"\\y", NULL, NULL, OCISYNC_EUSAGE, "include regex \"\\y\": \\y is not a supported escape"},
    {"a\\", NULL, NULL, OCISYNC_EUSAGE, "include regex \"a\\\": it ends with a backslash"},
    {"a(", NULL, NULL, OCISYNC_EUSAGE, "include regex \"a(\": a ( is not closed"},
    {"a)", NULL, NULL, OCISYNC_EUSAGE, "include regex \"a)\": a ) has no matching ("},
    {"[a", NULL, NULL, OCISYNC_EUSAGE, "include regex \"[a\": a [ is not closed"},
    {"[]", NULL, NULL, OCISYNC_EUSAGE, "include regex \"[]\": a [ is not closed"},
    {"[z-a]", NULL, NULL, OCISYNC_EUSAGE, "include regex \"[z-a]\": the range z-a is reversed"},
    {"[\\d-z]", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"[\\d-z]\": a range cannot start at a class (\\d)"},
    {"[a-\\w]", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"[a-\\w]\": a range cannot end at a class (\\w)"},
    {"[[:alpha:]-z]", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"[[:alpha:]-z]\": a range cannot start at a class ([:alpha:])"},
    {"[[:foo:]]", NULL, NULL, OCISYNC_EUSAGE, "include regex \"[[:foo:]]\": unknown class [:foo:]"},
    {"[\\A]", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"[\\A]\": \\A is only allowed outside brackets"},
    {"a**", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a**\": a quantifier (*) follows another one"},
    {"a+*", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a+*\": a quantifier (*) follows another one"},
    {"a{2}{3}", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a{2}{3}\": a quantifier ({) follows another one"},
    {"a*??", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a*??\": a quantifier (?) follows another one"},
    {"*a", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"*a\": a quantifier (*) has nothing to repeat"},
    {"(+a)", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(+a)\": a quantifier (+) has nothing to repeat"},
    {"a|?", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a|?\": a quantifier (?) has nothing to repeat"},
    {"^*", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"^*\": a quantifier (*) has nothing to repeat"},
    {"a{1001}", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a{1001}\": the repetition {1001} is invalid (at most 1000, min <= max)"},
    {"a{3,2}", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"a{3,2}\": the repetition {3,2} is invalid (at most 1000, min <= max)"},
    {"((a{100}){100}){100}", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"((a{100}){100}){100}\": its repetitions are too large (more than 20000 "
     "copies)"},
    /* glibc finds "(^a){2}" and "(^a)+$" in "aa"; Go does not. */
    {"(^a){2}", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(^a){2}\": a group with ^ or $ inside may not repeat (POSIX regexec gets "
     "it wrong); move the anchor out of the group"},
    {"((^|\\.)\\d+)+$", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"((^|\\.)\\d+)+$\": a group with ^ or $ inside may not repeat (POSIX "
     "regexec gets it wrong); move the anchor out of the group"},
    {"(a$)*", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(a$)*\": a group with ^ or $ inside may not repeat (POSIX regexec gets it "
     "wrong); move the anchor out of the group"},
    {"(x(\\Aa)){1,2}", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"(x(\\Aa)){1,2}\": a group with ^ or $ inside may not repeat (POSIX regexec "
     "gets it wrong); move the anchor out of the group"},
    {"caf\xc3\xa9", NULL, NULL, OCISYNC_EUSAGE,
     "include regex \"caf??\": it has a non-ASCII character (tags are ASCII)"},
    {NULL, NULL, ">= 1.x.y", OCISYNC_EUSAGE,
     "semver range \">= 1.x.y\": \"1.x.y\" is not a version: a dot is not followed by a number "
     "or wildcard"},
};

TEST(filter_bad)
{
    struct oci_tagfilter_spec spec;
    struct oci_tagfilter f;
    char err[512];

    for (size_t i = 0; i < N_OF(bad_filters); i++) {
        const struct bad_filter *b = &bad_filters[i];
        /* A good expression first, so a failure has something to release. */
        const char *inc[] = {"^v", b->include}, *exc[] = {"x", b->exclude};
        memset(&spec, 0, sizeof(spec));
        spec.include_regex = inc;
        spec.n_include = b->include ? 2 : 1;
        spec.exclude_regex = exc;
        spec.n_exclude = b->exclude ? 2 : 1;
        spec.semver = b->semver;
        memset(&f, 0x5a, sizeof(f));
        int rc = oci_tagfilter_init(&f, &spec, err, sizeof(err));
        if (rc != b->rc)
            fprintf(stderr, "filter %zu gave %d: %s\n", i, rc, err);
        CHECK_INT(rc, b->rc);
        CHECK_STR(err, b->msg);
        CHECK(f.include == NULL && f.n_include == 0 && f.exclude == NULL && f.n_exclude == 0);
        CHECK(!f.has_semver && f.semver.terms == NULL);
        oci_tagfilter_free(&f);
    }
}

TEST(filter_limits)
{
    struct oci_tagfilter_spec spec = {0};
    struct oci_tagfilter f;
    const char *many[OCI_TAGFILTER_MAX_REGEXES + 1];
    char re[OCI_TAGFILTER_REGEX_MAX + 2], err[512];

    /* The longest expression is fine, one byte more is not. */
    memset(re, 'a', OCI_TAGFILTER_REGEX_MAX);
    re[OCI_TAGFILTER_REGEX_MAX] = '\0';
    spec.include_regex = LIST(re);
    spec.n_include = 1;
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    oci_tagfilter_free(&f);
    re[OCI_TAGFILTER_REGEX_MAX] = 'a';
    re[OCI_TAGFILTER_REGEX_MAX + 1] = '\0';
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "include regex \"aaaa") != NULL);
    CHECK(strstr(err, "...\": longer than 1024 bytes") != NULL);

    /*
     * Translation growth: \W lists 63 characters in POSIX, so 200 of them make
     * 13 KB, fine, and a whole expression of them passes the 16 KiB cap.
     */
    memset(re, 0, sizeof(re));
    for (size_t i = 0; i < 200; i++)
        memcpy(re + 2 * i, "\\W", 2);
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    oci_tagfilter_free(&f);
    for (size_t i = 0; i + 1 < OCI_TAGFILTER_REGEX_MAX; i += 2)
        memcpy(re + i, "\\W", 2);
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "too large once translated to POSIX") != NULL);
    for (size_t i = 0; i + 3 < OCI_TAGFILTER_REGEX_MAX; i += 4)
        memcpy(re + i, "[\\w]", 4);
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_ETOOBIG);

    /* Groups nested too deep. */
    memset(re, 0, sizeof(re));
    memset(re, '(', 101);
    memset(re + 101, ')', 101);
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "nested more than 100 deep") != NULL);
    re[100] = 'a';
    memset(re + 101, ')', 100);
    re[201] = '\0';
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    oci_tagfilter_free(&f);

    /* How many expressions. */
    for (size_t i = 0; i < N_OF(many); i++)
        many[i] = "a";
    spec =
        (struct oci_tagfilter_spec){.exclude_regex = many, .n_exclude = OCI_TAGFILTER_MAX_REGEXES};
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), 0);
    CHECK_INT(f.n_exclude, OCI_TAGFILTER_MAX_REGEXES);
    oci_tagfilter_free(&f);
    spec.n_exclude++;
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK_STR(err, "more than 64 exclude regexes");

    /* Missing pieces. */
    CHECK_INT(oci_tagfilter_init(&f, NULL, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "no tag filter given");
    spec = (struct oci_tagfilter_spec){.n_include = 1};
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "include regexes are missing (NULL list)");
    spec = (struct oci_tagfilter_spec){.include_regex = LIST(NULL), .n_include = 1};
    CHECK_INT(oci_tagfilter_init(&f, &spec, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "include regex is missing (NULL)");
    CHECK_INT(oci_tagfilter_init(&f, &spec, NULL, 0), OCISYNC_EUSAGE);
}

TEST_MAIN(T(version_parse_good), T(version_parse_bad), T(version_precedence), T(range_match),
          T(range_bad), T(range_limits), T(filter_regex), T(filter_anchoring), T(filter_go_syntax),
          T(filter_semver), T(filter_latest), T(filter_apply_edges), T(filter_bad),
          T(filter_limits))
