/*
 * .dockerignore matching: cases from moby/patternmatcher's own tests
 * (patternmatcher_test.go, ignorefile_test.go) and the filepath.Match tests
 * they borrow, docker's documented examples, and the places where docker
 * differs from a plain glob. Every expectation here was checked against
 * patternmatcher itself (ReadAll, New, then MatchesUsingParentResults along
 * the path, as BuildKit's walk calls it).
 */
#include "test.h"

#include "ocisync.h"
#include "oci/dockerignore.h"

#include <stdbool.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct ex_case {
    const char *text; /* the ignore file */
    const char *path;
    bool excluded;
};

static struct oci_ignore *parse_ok(const char *text)
{
    struct oci_ignore *ig = NULL;
    char err[512];
    int rc = oci_ignore_parse(&ig, text, strlen(text), err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "parse of \"%s\" failed: %s\n", text, err);
    CHECK_INT(rc, 0);
    CHECK_STR(err, "");
    return ig;
}

/*
 * Decides path in one call and again step by step, as a walker keeping one
 * state per directory does; both must agree.
 */
static bool excluded(const struct oci_ignore *ig, const char *path)
{
    static unsigned char st[2][OCI_IGNORE_PATTERNS_MAX / 8];
    char buf[OCI_IGNORE_PATTERN_MAX + 64];
    const unsigned char *parent = NULL;
    size_t len = strlen(path);
    bool one = oci_ignore_excluded(ig, path), walk = false;
    int next = 0;

    CHECK(len < sizeof(buf));
    memcpy(buf, path, len + 1);
    for (size_t k = 0; k <= len; k++) {
        if (k < len && path[k] != '/')
            continue;
        buf[k] = '\0';
        walk = oci_ignore_excluded_under(ig, buf, parent, st[next]);
        buf[k] = path[k];
        parent = st[next];
        next ^= 1;
    }
    CHECK(walk == one);
    return one;
}

static void run_cases(const struct ex_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct oci_ignore *ig = parse_ok(c[i].text);
        bool got = excluded(ig, c[i].path);
        if (got != c[i].excluded)
            fprintf(stderr, "case %zu: \"%s\" on path \"%s\": excluded %d, want %d\n", i, c[i].text,
                    c[i].path, got, c[i].excluded);
        CHECK(got == c[i].excluded);
        oci_ignore_free(ig);
    }
}

/* ---------------------------------------------------------------------------------------------
 * patternmatcher's tests
 */

/* TestMatches (its paths with a trailing '/' left out: callers pass clean paths). */
static const struct ex_case pm_matches[] = {
    {"**", "file", true},
    {"**/", "file", true},
    {"**", "dir/file", true},
    {"**/", "dir/file", true},
    {"**/**", "dir/file", true},
    {"dir/**", "dir/file", true},
    {"dir/**", "dir/dir2/file", true},
    {"**/dir", "dir", true},
    {"**/dir", "dir/file", true},
    {"**/dir2/*", "dir/dir2/file", true},
    {"**/dir2/**", "dir/dir2/dir3/file", true},
    {"**file", "file", true},
    {"**file", "dir/file", true},
    {"**/file", "dir/file", true},
    {"**file", "dir/dir/file", true},
    {"**/file", "dir/dir/file", true},
    {"**/file*", "dir/dir/file", true},
    {"**/file*", "dir/dir/file.txt", true},
    {"**/file*txt", "dir/dir/file.txt", true},
    {"**/file*.txt", "dir/dir/file.txt", true},
    {"**/file*.txt*", "dir/dir/file.txt", true},
    {"**/**/*.txt", "dir/dir/file.txt", true},
    {"**/**/*.txt2", "dir/dir/file.txt", false},
    {"**/*.txt", "file.txt", true},
    {"**/**/*.txt", "file.txt", true},
    {"a**/*.txt", "a/file.txt", true},
    {"a**/*.txt", "a/dir/file.txt", true},
    {"a**/*.txt", "a/dir/dir/file.txt", true},
    {"a/*.txt", "a/dir/file.txt", false},
    {"a/*.txt", "a/file.txt", true},
    {"a/*.txt**", "a/file.txt", true},
    {"a[b-d]e", "ae", false},
    {"a[b-d]e", "ace", true},
    {"a[b-d]e", "aae", false},
    {"a[^b-d]e", "aze", true},
    {".*", ".foo", true},
    {".*", "foo", false},
    {"abc.def", "abcdef", false},
    {"abc.def", "abc.def", true},
    {"abc.def", "abcZdef", false},
    {"abc?def", "abcZdef", true},
    {"abc?def", "abcdef", false},
    {"a\\\\", "a\\", true},
    {"**/foo/bar", "foo/bar", true},
    {"**/foo/bar", "dir/foo/bar", true},
    {"**/foo/bar", "dir/dir2/foo/bar", true},
    {"abc/**", "abc", false},
    {"abc/**", "abc/def", true},
    {"abc/**", "abc/def/ghi", true},
    {"**/.foo", ".foo", true},
    {"**/.foo", "bar.foo", false},
    {"a(b)c/def", "a(b)c/def", true},
    {"a(b)c/def", "a(b)c/xyz", false},
    {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
    {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    {"a\\*b", "a*b", true},
    /* The multi-pattern cases. */
    {"**\n!util/docker/web", "util/docker/web/foo", false},
    {"**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true},
    {"**\n!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
    {"**\n!dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
    /* TestPatternMatches..., TestExclusion... */
    {"*", "fileutils.go", true},
    {"*.go", "fileutils.go", true},
    {"!fileutils.go\n*.go", "fileutils.go", true},
    {"docs\n!docs/README.md", "docs/README.md", false},
    {"docs/\n!docs/README.md", "docs/README.md", false},
    {"docs/*\n!docs/README.md", "docs/README.md", false},
    {"*.go\n!fileutils.go", "fileutils.go", false},
};

TEST(patternmatcher_matches)
{
    run_cases(pm_matches, N_OF(pm_matches));
}

/* The filepath.Match tests patternmatcher borrows (matchTests), through docker's translation. */
static const struct ex_case go_match[] = {
    {"abc", "abc", true},
    {"*", "abc", true},
    {"*c", "abc", true},
    {"a*", "a", true},
    {"a*", "abc", true},
    {"a*", "ab/c", true}, /* "a*" matches the directory "ab" */
    {"a*/b", "abc/b", true},
    {"a*/b", "a/c/b", false},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
    {"a*b?c*x", "abxbbxdbxebxczzx", true},
    {"a*b?c*x", "abxbbxdbxebxczzy", false},
    {"ab[c]", "abc", true},
    {"ab[b-d]", "abc", true},
    {"ab[e-g]", "abc", false},
    {"ab[^c]", "abc", false},
    {"ab[^b-d]", "abc", false},
    {"ab[^e-g]", "abc", true},
    {"a\\*b", "a*b", true},
    {"a\\*b", "ab", false},
    {"a?b",
     "a\xe2\x98\xba"
     "b",
     true},
    {"a[^a]b",
     "a\xe2\x98\xba"
     "b",
     true},
    {"a???b",
     "a\xe2\x98\xba"
     "b",
     false},
    {"a[^a][^a][^a]b",
     "a\xe2\x98\xba"
     "b",
     false},
    {"[a-\xce\xb6]*", "\xce\xb1", true},
    {"*[a-\xce\xb6]", "A", false},
    {"a?b", "a/b", false},
    {"a*b", "a/b", false},
    {"[\\]a]", "]", true},
    {"[\\-]", "-", true},
    {"[x\\-]", "x", true},
    {"[x\\-]", "-", true},
    {"[x\\-]", "z", false},
    {"[\\-x]", "x", true},
    {"[\\-x]", "-", true},
    {"[\\-x]", "a", false},
    {"*x", "xxx", true},
};

TEST(go_match)
{
    run_cases(go_match, N_OF(go_match));
}

/* ---------------------------------------------------------------------------------------------
 * Docker's documented examples and everyday patterns
 */

static const struct ex_case docs[] = {
    /* The .dockerignore example of docker's build reference. */
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temporary.txt", true},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temp", true},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temp/inner", true},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/subdir/temporary.txt", true},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "a/b/c/temp", false},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temporary.txt", false},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempa", true},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temp", false},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempab", false},
    {"**/*.go", "main.go", true},
    {"**/*.go", "cmd/x/main.go", true},
    {"**/*.go", "cmd/x/main.go.txt", false},
    {"*.md\n!README*.md\nREADME-secret.md", "README.md", false},
    {"*.md\n!README*.md\nREADME-secret.md", "README-foo.md", false},
    {"*.md\n!README*.md\nREADME-secret.md", "README-secret.md", true},
    {"*.md\n!README*.md\nREADME-secret.md", "CHANGES.md", true},
    {"*.md\nREADME-secret.md\n!README*.md", "README-secret.md", false},
    {"*.md\n!README.md", "docs/x.md", false}, /* "*.md" is anchored at the root */
    /* Anchoring at the root, and a leading '/'. */
    {"*.log", "a.log", true},
    {"*.log", "src/x.log", false},
    {"**/*.log", "src/x.log", true},
    {"**/*.log", "a.log", true},
    {"/foo", "foo", true},
    {"/foo", "a/foo", false},
    {"/foo/bar", "foo/bar", true},
    /* A directory excludes what is below it; an exception re-includes, with what is below. */
    {"src", "src/a/b", true},
    {"src\n!src/keep", "src/keep", false},
    {"src\n!src/keep", "src/keep/x", false},
    {"src\n!src/keep", "src/other", true},
    {"src\n!src/keep", "srcx", false},
    {"src/\n!src/keep/*", "src/keep/x", false},
    {"src/\n!src/keep/*", "src/keep", true},
    {"a\n!a/b/c", "a/b/c", false},
    {"a\n!a/b/c", "a/b", true},
    {"a\n!a/b/c", "a/b/c/d", false},
    {"*\n!*/keep", "x/keep", false},
    {"*\n!*/keep", "x/lose", true},
    {"**\n!**/*.md", "a/b/c.md", false},
    {"**\n!**/*.md", "a/b/c.txt", true},
    /* "**" at the start, in the middle, at the end. */
    {"**/x", "x", true},
    {"**/x", "a/b/x", true},
    {"**/x", "a/bx", false},
    {"a/**/b", "a/b", true},
    {"a/**/b", "a/x/y/b", true},
    {"a/**/b", "ab", false},
    {"a/**", "a/x", true},
    {"a/**", "a", false},
    {"**", "anything/at/all", true},
};

TEST(docs_examples)
{
    run_cases(docs, N_OF(docs));
}

/* ---------------------------------------------------------------------------------------------
 * How ReadAll and New read lines
 */

static const struct ex_case lines[] = {
    /* '#' starts a comment only as the very first byte of a line. */
    {"# foo", "# foo", false},
    {"  # foo", "# foo", true},
    {"#foo\nbar", "bar", true},
    /* Whitespace (Unicode's) is trimmed, CRLF lines work, blank lines are nothing. */
    {"  foo  \n", "foo", true},
    {"\tfoo\r\n", "foo", true},
    {"\xc2\xa0"
     "foo"
     "\xe3\x80\x80",
     "foo", true},
    {"\n\n \n\t\nfoo", "foo", true},
    {"foo\r\nbar\r\n", "bar", true},
    /* A byte order mark is dropped from the first line only. */
    {"\xef\xbb\xbf"
     "foo",
     "foo", true},
    {"\xef\xbb\xbf# comment\nfoo", "# comment", false},
    {"a\n\xef\xbb\xbf"
     "foo",
     "foo", false},
    /* '!' and the whitespace after it; "!!a" re-includes "!a". */
    {"*\n! keep ", "keep", false},
    {"*\n!!a", "!a", false},
    {"*\n!!a", "a", true},
    /* Cleaning: ReadAll cleans, then New trims and cleans again. */
    {"a/../b", "b", true},
    {"a/../b", "a", false},
    {"./a", "a", true},
    {"a/./b", "a/b", true},
    {"a//b", "a/b", true},
    {"a/", "a/x", true},
    {"../a", "a", false},
    {".", "a", false},
    {"a/..", "a", false},
    {"a /.", "a", true},       /* cleaned to "a ", then trimmed */
    {"/ b", "b", true},        /* "/ b" loses its '/', then " b" its space */
    {"*\n! / b", " b", false}, /* but after '!' the space stays: the exception is " b" */
    {"*\n! / b", "b", true},
    {"/ /", "a", false},         /* cleaned to "/ ", then " ", then nothing */
    {"*\n./!foo", "foo", false}, /* "./!foo" cleans to "!foo": an exception */
};

TEST(readall_lines)
{
    run_cases(lines, N_OF(lines));
}

/* ---------------------------------------------------------------------------------------------
 * Where docker is not a glob
 */

static const struct ex_case quirks[] = {
    /* A backslash escapes in Go's regexp syntax. */
    {"a\\.b", "a.b", true},
    {"a\\.b", "axb", false},
    {"a\\d", "a5", true},
    {"a\\d", "ad", false},
    {"a\\x41", "aA", true},
    {"a\\012b", "a\nb", true},
    {"\\bfoo", "foo", true},
    {"[\\d]x", "7x", true},
    /* Classes are Go's: no '!' negation, POSIX names, and a negated class crosses '/'. */
    {"[a-c]x", "bx", true},
    {"[!a]x", "!x", true},
    {"[!a]x", "bx", false},
    {"[^a]x", "bx", true},
    {"[^a]x", "ax", false},
    {"[[:digit:]]x", "5x", true},
    {"[[:digit:]]x", ":x", false},
    {"a[^x]b", "a/b", true},
    {"[*]", "]", true}, /* "[*]" is "[[^/]*]": a class of '[', '^', '/', any times, then ']' */
    {"[*]", "*", false},
    /* '^' outside a class anchors: "^a*" is "^^a[^/]*$". */
    {"^a*", "abc", true},
    {"^a*", "^abc", false},
    {"^a", "^a", true}, /* no wildcard: compared as written */
    /* '|', '{' and '}' reach the expression unescaped. */
    {"*.js|*.ts", "a.jsx", true},
    {"*.js|*.ts", "deep/down/x.ts", true},
    {"*.js|*.ts", "x.css", false},
    {"]|", "anything", true},
    {"a?{2}", "abb", true},
    {"a?{2}", "ab", false},
    {"*.{js,ts}", "x.{js,ts}", true},
    {"*.{js,ts}", "x.js", false},
    /* A wildcard-free tail after "**" is a suffix test; a head before a final "**" a prefix test.
     */
    {"**foo", "barfoo", true},
    {"**foo", "a/xfoo", true},
    {"foo**", "foobar", true},
    {"foo**", "foo/x", true},
    {"foo**", "foo", true},
    {"a/**foo", "a/barfoo", false},
    /* "**" in an expression does not match a newline; a plain "**" does. */
    {"**", "a\nb", true},
    {"**/**", "a\nb", false},
    {"*", "a\nb", true},
    /* Runes, not bytes, and an invalid byte is one rune. */
    {"?", "\xc3\xa9", true},
    {"a?b", "a\xffz", false},
    {"a?z", "a\xffz", true},
    {"a*b",
     "a\xc3\xa9\xff"
     "b",
     true},
};

TEST(quirks)
{
    run_cases(quirks, N_OF(quirks));
}

/*
 * Docker's walk decides a directory from its parent's results, and a pattern
 * it did not need for the parent is not inherited: "!a" comes first, so it is
 * skipped for "a"; "a/b" then excludes "a/b", and nothing re-includes it.
 * (patternmatcher's MatchesOrParentMatches would say "a/b" is not excluded.)
 */
TEST(parent_results)
{
    struct oci_ignore *ig = parse_ok("a/b\n!a");
    unsigned char top[OCI_IGNORE_PATTERNS_MAX / 8], below[OCI_IGNORE_PATTERNS_MAX / 8];

    CHECK(oci_ignore_state_size(ig) == 1);
    CHECK(!oci_ignore_excluded(ig, "a"));
    CHECK(oci_ignore_excluded(ig, "a/b"));
    CHECK(oci_ignore_excluded(ig, "a/b/c"));
    CHECK(!oci_ignore_excluded(ig, "a/c"));
    /* Step by step with states, as a walker does. */
    CHECK(!oci_ignore_excluded_under(ig, "a", NULL, top));
    CHECK(oci_ignore_excluded_under(ig, "a/b", top, below));
    CHECK(oci_ignore_excluded_under(ig, "a/b/c", below, NULL));
    /* Without a parent state, each parent directory is matched afresh. */
    CHECK(!oci_ignore_excluded_under(ig, "a/b", NULL, NULL));
    oci_ignore_free(ig);

    /* A parent's match is inherited even when the child alone would not match. */
    ig = parse_ok("build*\n!build-keep");
    CHECK(oci_ignore_excluded(ig, "build-out/x/y"));
    CHECK(!oci_ignore_excluded(ig, "build-keep"));
    CHECK(!oci_ignore_excluded(ig, "build-keep/x"));
    oci_ignore_free(ig);
}

TEST(empty)
{
    struct oci_ignore *ig = NULL;
    char err[256];

    CHECK_INT(oci_ignore_parse(&ig, NULL, 0, err, sizeof(err)), 0);
    CHECK(ig != NULL);
    CHECK(!oci_ignore_excluded(ig, "a"));
    CHECK(!oci_ignore_must_descend(ig, "a"));
    CHECK_INT(oci_ignore_state_size(ig), 0);
    oci_ignore_free(ig);

    ig = parse_ok("# only a comment\n\n   \n");
    CHECK(!oci_ignore_excluded(ig, "a"));
    CHECK(!oci_ignore_excluded(ig, "# only a comment"));
    oci_ignore_free(ig);

    ig = parse_ok("*");
    CHECK(!oci_ignore_excluded(ig, ""));
    CHECK(!oci_ignore_excluded(ig, NULL));
    CHECK(oci_ignore_excluded(ig, "x"));
    oci_ignore_free(ig);

    CHECK(!oci_ignore_excluded(NULL, "a"));
    CHECK(!oci_ignore_excluded_under(NULL, "a", NULL, NULL));
    CHECK(!oci_ignore_must_descend(NULL, "a"));
    CHECK_INT(oci_ignore_state_size(NULL), 0);
    oci_ignore_free(NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Errors and limits
 */

struct bad_case {
    const char *text;
    int rc;
    const char *msg; /* a part of err */
};

static const struct bad_case bad_cases[] = {
    /* filepath.Match's syntax errors, which docker reports when it reads the file. */
    {"a\n\n[\n", OCISYNC_EUSAGE, "line 3: pattern \"[\": '[' has no closing ']'"},
    {"# c\nfoo\n  [x-]", OCISYNC_EUSAGE, "line 3: pattern \"[x-]\": a character class has"},
    {"[]a]", OCISYNC_EUSAGE, "line 1: pattern \"[]a]\""},
    {"[-]", OCISYNC_EUSAGE, "line 1"},
    {"[-x]", OCISYNC_EUSAGE, "line 1"},
    {"[a-b-c]", OCISYNC_EUSAGE, "line 1"},
    {"[^", OCISYNC_EUSAGE, "'[' has no closing ']'"},
    {"[^bc", OCISYNC_EUSAGE, "'[' has no closing ']'"},
    {"a[", OCISYNC_EUSAGE, "'[' has no closing ']'"},
    {"x\n\\", OCISYNC_EUSAGE, "line 2: pattern \"\\\": it ends with a lone '\\'"},
    {"a\\", OCISYNC_EUSAGE, "it ends with a lone '\\'"},
    {"a\\*b\\", OCISYNC_EUSAGE, "it ends with a lone '\\'"}, /* after a mismatch, too */
    {"[\xff]", OCISYNC_EUSAGE, "not UTF-8"},
    /* '!' alone. */
    {"a\n!\n", OCISYNC_EUSAGE, "line 2: pattern \"!\": a '!' with nothing after it"},
    {"! ", OCISYNC_EUSAGE, "line 1: pattern \"!\""},
    {"!/", OCISYNC_EUSAGE, "line 1: pattern \"!/\""},
    /* Go's regexp errors, which docker meets on the first path it matches. */
    {"x\n[Local-Only]/", OCISYNC_EUSAGE,
     "line 2: pattern \"[Local-Only]/\": docker matches with the Go regular expression "
     "\"^[Local-Only]$\", and invalid character class range: `l-O`"},
    {"[z-a]*", OCISYNC_EUSAGE, "invalid character class range: `z-a`"},
    {"a\\q", OCISYNC_EUSAGE, "invalid escape sequence: `\\q`"},
    {"a\\1", OCISYNC_EUSAGE, "invalid escape sequence: `\\1`"},
    {"[[:foo:]]", OCISYNC_EUSAGE, "invalid character class range: `[:foo:]`"},
    {"[[:alpha:]", OCISYNC_EUSAGE, "missing closing ]"},
    {"a{1001}*", OCISYNC_EUSAGE, "invalid repeat count: `{1001}`"},
    {"*{2}", OCISYNC_EUSAGE, "invalid nested repetition operator: `*{2}`"},
    {"a*|{2}", OCISYNC_EUSAGE, "missing argument to repetition operator: `{2}`"},
    /* What ocisync does not do. */
    {"\\pL", OCISYNC_EUSAGE, "a Unicode class"},
    {"[\\PN]", OCISYNC_EUSAGE, "a Unicode class"},
};

TEST(errors)
{
    for (size_t i = 0; i < N_OF(bad_cases); i++) {
        static int dummy;
        struct oci_ignore *ig = (struct oci_ignore *)&dummy; /* oci_ignore_parse resets it */
        char err[512];
        int rc =
            oci_ignore_parse(&ig, bad_cases[i].text, strlen(bad_cases[i].text), err, sizeof(err));
        if (rc != bad_cases[i].rc || strstr(err, bad_cases[i].msg) == NULL)
            fprintf(stderr, "case %zu: \"%s\": rc %d, err \"%s\"; want %d, \"%s\"\n", i,
                    bad_cases[i].text, rc, err, bad_cases[i].rc, bad_cases[i].msg);
        CHECK_INT(rc, bad_cases[i].rc);
        CHECK(strstr(err, bad_cases[i].msg) != NULL);
        CHECK(ig == NULL);
    }
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(ul * times + tl + 1);

    if (s == NULL)
        abort();
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * ul, unit, ul);
    memcpy(s + ul * times, tail, tl + 1);
    return s;
}

TEST(limits)
{
    struct oci_ignore *ig = NULL;
    char err[512], *s;

    /* The whole file. */
    s = repeat("a\n", OCI_IGNORE_TEXT_MAX / 2, "");
    CHECK_INT(oci_ignore_parse(&ig, s, strlen(s) + 1, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "larger than 1048576 bytes") != NULL);
    CHECK(ig == NULL);
    free(s);

    /* Patterns: comments and blank lines do not count. */
    s = repeat("a\n#\n\n", OCI_IGNORE_PATTERNS_MAX, "");
    CHECK_INT(oci_ignore_parse(&ig, s, strlen(s), err, sizeof(err)), 0);
    CHECK_INT(oci_ignore_state_size(ig), OCI_IGNORE_PATTERNS_MAX / 8);
    CHECK(oci_ignore_excluded(ig, "a"));
    oci_ignore_free(ig);
    free(s);
    s = repeat("a\n", OCI_IGNORE_PATTERNS_MAX, "b");
    CHECK_INT(oci_ignore_parse(&ig, s, strlen(s), err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "line 16385: more than 16384 patterns") != NULL);
    free(s);

    /* A line: docker's scanner takes 65535 bytes before the newline, not one more. */
    s = repeat(" ", OCI_IGNORE_LINE_MAX - 1, "a\nb");
    ig = parse_ok(s);
    CHECK(oci_ignore_excluded(ig, "a"));
    CHECK(oci_ignore_excluded(ig, "b"));
    oci_ignore_free(ig);
    free(s);
    s = repeat("#", OCI_IGNORE_LINE_MAX + 1, "");
    CHECK_INT(oci_ignore_parse(&ig, s, strlen(s), err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "line 1 is longer than 65535 bytes") != NULL);
    free(s);

    /* A pattern. */
    s = repeat("a", OCI_IGNORE_PATTERN_MAX, "");
    ig = parse_ok(s);
    CHECK(oci_ignore_excluded(ig, s));
    oci_ignore_free(ig);
    free(s);
    s = repeat("a", OCI_IGNORE_PATTERN_MAX + 1, "");
    CHECK_INT(oci_ignore_parse(&ig, s, strlen(s), err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "is longer than 4096 bytes") != NULL);
    free(s);

    /* Repetition counts make large programs: one pattern, then all of them. */
    s = repeat("?{1000}", 65, "");
    ig = parse_ok(s);
    oci_ignore_free(ig);
    free(s);
    s = repeat("?{1000}", 66, "");
    CHECK_INT(oci_ignore_parse(&ig, s, strlen(s), err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "larger than ocisync handles") != NULL);
    free(s);
    {
        char *one = repeat("?{1000}", 60, "\n");
        s = repeat(one, 40, "");
        CHECK_INT(oci_ignore_parse(&ig, s, strlen(s), err, sizeof(err)), OCISYNC_ETOOBIG);
        CHECK(strstr(err, "line 35:") != NULL);
        free(one);
        free(s);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Skipping excluded directories
 */

TEST(must_descend)
{
    struct oci_ignore *ig;

    /* No exceptions: an excluded directory is skipped whole. */
    ig = parse_ok("src");
    CHECK(!oci_ignore_must_descend(ig, "src"));
    oci_ignore_free(ig);

    /* Exceptions without wildcards: descend where one lies below, or is the directory. */
    ig = parse_ok("src\n!src/a/b/**\n!docs/keep/*\n!other");
    CHECK(oci_ignore_must_descend(ig, "src"));
    CHECK(oci_ignore_must_descend(ig, "src/a"));
    CHECK(oci_ignore_must_descend(ig, "src/a/b"));
    CHECK(!oci_ignore_must_descend(ig, "src/a/b/c"));
    CHECK(!oci_ignore_must_descend(ig, "src/c"));
    CHECK(!oci_ignore_must_descend(ig, "sr"));
    CHECK(!oci_ignore_must_descend(ig, "src/a/bb"));
    CHECK(oci_ignore_must_descend(ig, "docs/keep"));
    CHECK(!oci_ignore_must_descend(ig, "docs/lose"));
    CHECK(oci_ignore_must_descend(ig, "other"));
    oci_ignore_free(ig);

    /* An exception with a wildcard (or an escape) anywhere else: always descend. */
    ig = parse_ok("src\n!**/*.go");
    CHECK(oci_ignore_must_descend(ig, "src"));
    CHECK(oci_ignore_must_descend(ig, "anything/else"));
    oci_ignore_free(ig);
    ig = parse_ok("src\n!src/*.go");
    CHECK(oci_ignore_must_descend(ig, "other"));
    oci_ignore_free(ig);
    ig = parse_ok("src\n!src/a\\-b");
    CHECK(oci_ignore_must_descend(ig, "other"));
    oci_ignore_free(ig);
    /* Wildcards in patterns that are not exceptions change nothing. */
    ig = parse_ok("**/*.o\n!keep");
    CHECK(!oci_ignore_must_descend(ig, "src"));
    CHECK(oci_ignore_must_descend(ig, "keep"));
    oci_ignore_free(ig);
}

/*
 * Hostile patterns that make a backtracking matcher exponential; here the
 * cost is the program's size times the path's length (timings are not
 * checked: an exponential matcher would not finish within ctest's timeout).
 */
TEST(pathological)
{
    char *text = repeat("**/", 100, "a"), *path = repeat("x/", 300, "b");
    struct oci_ignore *ig = parse_ok(text);

    CHECK(!oci_ignore_excluded(ig, path));
    path[strlen(path) - 1] = 'a';
    CHECK(oci_ignore_excluded(ig, path));
    oci_ignore_free(ig);
    free(text);
    free(path);

    text = repeat("*a", 60, "*b");
    path = repeat("a", 1500, "");
    ig = parse_ok(text);
    CHECK(!oci_ignore_excluded(ig, path));
    oci_ignore_free(ig);
    free(path);
    path = repeat("a", 1500, "b");
    ig = parse_ok(text);
    CHECK(oci_ignore_excluded(ig, path));
    oci_ignore_free(ig);
    free(text);
    free(path);

    text = repeat("?{0,1000}", 8, "b");
    path = repeat("a", 1000, "c");
    ig = parse_ok(text);
    CHECK(!oci_ignore_excluded(ig, path));
    oci_ignore_free(ig);
    free(text);
    free(path);
}

TEST_MAIN(T(patternmatcher_matches), T(go_match), T(docs_examples), T(readall_lines), T(quirks),
          T(parent_results), T(empty), T(errors), T(limits), T(must_descend), T(pathological))
