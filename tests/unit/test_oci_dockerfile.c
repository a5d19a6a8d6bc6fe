/*
 * The Dockerfile parser and word expander, checked against BuildKit's own
 * test data (parser testfiles, heredoc tests, shell/envVarTest, wordsTest,
 * lex_test.go) and against the limits and errors ocisync adds.
 */
#include "test.h"

#include "ocisync.h"
#include "oci/dockerfile.h"

#include <stdbool.h>
#include <uv.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct corpus_case {
    const char *name;
    const char *dockerfile;
    const char *result; /* BuildKit's Node.Dump, one line per instruction */
};

struct expand_case {
    const char *word;
    const char *want; /* NULL: an error */
};

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* Appends s as Go's strconv.Quote writes it (printable UTF-8 kept as is). */
static void quote_go(struct test_buf *b, const char *s)
{
    test_buf_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        char tmp[8];
        switch (*c) {
        case '"':
            test_buf_add(b, "\\\"", 2);
            break;
        case '\\':
            test_buf_add(b, "\\\\", 2);
            break;
        case '\n':
            test_buf_add(b, "\\n", 2);
            break;
        case '\t':
            test_buf_add(b, "\\t", 2);
            break;
        case '\r':
            test_buf_add(b, "\\r", 2);
            break;
        case '\b':
            test_buf_add(b, "\\b", 2);
            break;
        case '\f':
            test_buf_add(b, "\\f", 2);
            break;
        default:
            if (*c < 0x20 || *c == 0x7f) {
                snprintf(tmp, sizeof(tmp), "\\x%02x", *c);
                test_buf_add(b, tmp, strlen(tmp));
            } else {
                test_buf_add(b, c, 1);
            }
        }
    }
    test_buf_add(b, "\"", 1);
}

static void add_str(struct test_buf *b, const char *s)
{
    test_buf_add(b, s, strlen(s));
}

/* One instruction the way BuildKit's Node.Dump prints it, without the parentheses. */
static void dump_instr(struct test_buf *b, const struct oci_df_instr *in)
{
    for (const char *c = in->keyword; *c != '\0'; c++) {
        char l = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        test_buf_add(b, &l, 1);
    }
    if (in->n_flags > 0) {
        add_str(b, " [");
        for (size_t i = 0; i < in->n_flags; i++) {
            struct test_buf f = {0};
            if (i > 0)
                add_str(b, " ");
            add_str(&f, "--");
            add_str(&f, in->flags[i].name);
            if (in->flags[i].value != NULL) {
                add_str(&f, "=");
                add_str(&f, in->flags[i].value);
            }
            test_buf_add(&f, "", 1);
            quote_go(b, (const char *)f.data);
            test_buf_free(&f);
        }
        add_str(b, "]");
    }
    if (in->sub != NULL) {
        add_str(b, " (");
        dump_instr(b, in->sub);
        add_str(b, ")");
    }
    for (size_t i = 0; i < in->n_args; i++) {
        add_str(b, " ");
        quote_go(b, in->args[i]);
    }
    for (size_t i = 0; i < in->n_pairs; i++) {
        const struct oci_df_pair *p = &in->pairs[i];
        add_str(b, " ");
        if (in->kind == OCI_DF_ARG) {
            /* ARG's words stay whole in BuildKit's tree: name or name=value. */
            struct test_buf w = {0};
            add_str(&w, p->key);
            if (p->value != NULL) {
                add_str(&w, "=");
                add_str(&w, p->value);
            }
            test_buf_add(&w, "", 1);
            quote_go(b, (const char *)w.data);
            test_buf_free(&w);
            continue;
        }
        quote_go(b, p->key);
        add_str(b, " ");
        quote_go(b, p->value);
        add_str(b, in->legacy ? " \"\"" : " \"=\"");
    }
}

/* The whole Dockerfile dumped, one "(...)\n" line per instruction; "ERROR: msg" on failure. */
static char *dump(const char *text, size_t len)
{
    struct oci_df df;
    struct test_buf b = {0};
    char err[512];
    int rc = oci_df_parse(&df, text, len, err, sizeof(err));

    if (rc != 0) {
        add_str(&b, "ERROR: ");
        add_str(&b, err);
    }
    for (size_t i = 0; rc == 0 && i < df.n_instrs; i++) {
        add_str(&b, "(");
        dump_instr(&b, &df.instrs[i]);
        add_str(&b, ")\n");
    }
    test_buf_add(&b, "", 1);
    oci_df_free(&df);
    return (char *)b.data;
}

#define CHECK_DUMP(text, want)                                                                     \
    do {                                                                                           \
        char *got_ = dump((text), strlen(text));                                                   \
        CHECK_STR(got_, (want));                                                                   \
        free(got_);                                                                                \
    } while (0)

/* Parses text expecting rc, and an error message that holds part. */
static void check_err(const char *text, size_t len, int rc, const char *part, int line)
{
    struct oci_df df;
    char err[512];
    int got = oci_df_parse(&df, text, len, err, sizeof(err));

    test_checks_++;
    if (got != rc || strstr(err, part) == NULL) {
        fprintf(stderr, "%s:%d: parse of %.60s: got %d \"%s\", want %d and \"%s\"\n", __FILE__,
                line, text, got, err, rc, part);
        test_failures_++;
    }
    CHECK(df.n_instrs == 0 && df.instrs == NULL);
    oci_df_free(&df);
}

#define CHECK_ERR(text, rc, part) check_err((text), strlen(text), (rc), (part), __LINE__)

/* Parses text that must parse. */
static bool parse(struct oci_df *df, const char *text)
{
    char err[512];
    int rc = oci_df_parse(df, text, strlen(text), err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "parse failed: %s\n", err);
    CHECK_INT(rc, 0);
    return rc == 0;
}

/* Variables for the expander: NAME=value strings, the last one of a name wins. */
struct env {
    const char *const *vars;
    size_t n;
};

static const char *lookup(void *arg, const char *name, size_t len)
{
    const struct env *e = arg;
    for (size_t i = e->n; i > 0; i--) {
        const char *v = e->vars[i - 1], *eq = strchr(v, '=');
        size_t kn = eq != NULL ? (size_t)(eq - v) : strlen(v);
        if (kn == len && memcmp(v, name, len) == 0)
            return eq != NULL ? eq + 1 : "";
    }
    return NULL;
}

/* Expands word with vars and checks the result (want NULL: an error). */
static void check_expand(const char *word, char esc, const char *const *vars, size_t n,
                         const char *want, int line)
{
    struct env e = {vars, n};
    char *out = NULL, err[256];
    int rc = oci_df_expand(word, esc, lookup, &e, &out, err, sizeof(err));

    test_checks_++;
    if (want == NULL ? rc == 0 : (rc != 0 || strcmp(out, want) != 0)) {
        fprintf(stderr, "%s:%d: expand %s: got %d \"%s\" (%s), want %s\n", __FILE__, line, word, rc,
                out != NULL ? out : "", err, want != NULL ? want : "an error");
        test_failures_++;
    }
    if (want == NULL && rc != 0)
        CHECK(out == NULL && strncmp(err, "failed to process \"", 19) == 0);
    free(out);
}

#define CHECK_EXPAND(word, vars, want)                                                             \
    check_expand((word), '\\', (vars), N_OF(vars), (want), __LINE__)

/* ---------------------------------------------------------------------------------------------
 * Ported test data
 */

/* moby/buildkit frontend/dockerfile/parser/testfiles: Dockerfile and result, as they are except
 * where noted (a FROM put first, lines our parse-time checks refuse taken out). */
static const struct corpus_case corpus[] = {
    {"ADD-COPY-with-JSON",
     "FROM\tubuntu:14.04\n"
     "LABEL\tmaintainer\tSeongyeol Lim <seongyeol37@gmail.com>\n"
     "\n"
     "COPY\t.\t/go/src/github.com/docker/docker\n"
     "ADD\t\t.\t/\n"
     "ADD\t\tnull /\n"
     "COPY\tnullfile /tmp\n"
     "ADD\t\t[ \"vimrc\", \"/tmp\" ]\n"
     "COPY\t[ \"bashrc\", \"/tmp\" ]\n"
     "COPY\t[ \"test file\", \"/tmp\" ]\n"
     "ADD\t\t[ \"test file\", \"/tmp/test file\" ]\n",
     "(from \"ubuntu:14.04\")\n"
     "(label \"maintainer\" \"Seongyeol Lim <seongyeol37@gmail.com>\" \"\")\n"
     "(copy \".\" \"/go/src/github.com/docker/docker\")\n"
     "(add \".\" \"/\")\n"
     "(add \"null\" \"/\")\n"
     "(copy \"nullfile\" \"/tmp\")\n"
     "(add \"vimrc\" \"/tmp\")\n"
     "(copy \"bashrc\" \"/tmp\")\n"
     "(copy \"test file\" \"/tmp\")\n"
     "(add \"test file\" \"/tmp/test file\")\n"},
    {"args",
     "ARG foo bar=baz\n"
     "FROM ubuntu\n"
     "ARG abc=\"123 456\" def\n",
     "(arg \"foo\" \"bar=baz\")\n"
     "(from \"ubuntu\")\n"
     "(arg \"abc=\\\"123 456\\\"\" \"def\")\n"},
    {"continue-at-eof",
     "FROM alpine:3.5\n"
     "\n"
     "RUN something \\",
     "(from \"alpine:3.5\")\n"
     "(run \"something\")\n"},
    {"continueIndent",
     "FROM ubuntu:14.04\n"
     "\n"
     "RUN echo hello\\\n"
     "  world\\\n"
     "  goodnight  \\\n"
     "  moon\\\n"
     "  light\\\n"
     "ning\n"
     "RUN echo hello  \\\n"
     "  world\n"
     "RUN echo hello  \\\n"
     "world\n"
     "RUN echo hello \\\n"
     "goodbye\\\n"
     "frog\n"
     "RUN echo hello  \\  \n"
     "world\n"
     "RUN echo hi \\\n"
     " \\\n"
     " world \\\n"
     "\\\n"
     " good\\\n"
     "\\\n"
     "night\n"
     "RUN echo goodbye\\\n"
     "frog\n"
     "RUN echo good\\\n"
     "bye\\\n"
     "frog\n"
     "\n"
     "RUN echo hello \\\n"
     "# this is a comment\n"
     "\n"
     "# this is a comment with a blank line surrounding it\n"
     "\n"
     "this is some more useful stuff\n",
     "(from \"ubuntu:14.04\")\n"
     "(run \"echo hello  world  goodnight    moon  lightning\")\n"
     "(run \"echo hello    world\")\n"
     "(run \"echo hello  world\")\n"
     "(run \"echo hello goodbyefrog\")\n"
     "(run \"echo hello  world\")\n"
     "(run \"echo hi   world  goodnight\")\n"
     "(run \"echo goodbyefrog\")\n"
     "(run \"echo goodbyefrog\")\n"
     "(run \"echo hello this is some more useful stuff\")\n"},
    {"env",
     "FROM ubuntu\n"
     "ENV name value\n"
     "ENV name=value\n"
     "ENV name=value name2=value2\n"
     "ENV name=\"value value1\"\n"
     "ENV name=value\\ value2\n"
     "ENV name=\"value'quote space'value2\"\n"
     "ENV name='value\"double quote\"value2'\n"
     "ENV name=value\\ value2 name2=value2\\ value3\n"
     "ENV name=\"a\\\"b\"\n"
     "ENV name=\"a\\'b\"\n"
     "ENV name='a\\'b'\n"
     "ENV name='a\\'b''\n"
     "ENV name='a\\\"b'\n"
     "ENV name=\"''\"\n"
     "# don't put anything after the next line - it must be the last line of the\n"
     "# Dockerfile and it must end with \\\n"
     "ENV name=value \\\n"
     "    name1=value1 \\\n"
     "    name2=\"value2a \\\n"
     "           value2b\" \\\n"
     "    name3=\"value3a\\n\\\"value3b\\\"\" \\\n"
     "\tname4=\"value4a\\\\nvalue4b\" \\\n",
     "(from \"ubuntu\")\n"
     "(env \"name\" \"value\" \"\")\n"
     "(env \"name\" \"value\" \"=\")\n"
     "(env \"name\" \"value\" \"=\" \"name2\" \"value2\" \"=\")\n"
     "(env \"name\" \"\\\"value value1\\\"\" \"=\")\n"
     "(env \"name\" \"value\\\\ value2\" \"=\")\n"
     "(env \"name\" \"\\\"value'quote space'value2\\\"\" \"=\")\n"
     "(env \"name\" \"'value\\\"double quote\\\"value2'\" \"=\")\n"
     "(env \"name\" \"value\\\\ value2\" \"=\" \"name2\" \"value2\\\\ value3\" \"=\")\n"
     "(env \"name\" \"\\\"a\\\\\\\"b\\\"\" \"=\")\n"
     "(env \"name\" \"\\\"a\\\\'b\\\"\" \"=\")\n"
     "(env \"name\" \"'a\\\\'b'\" \"=\")\n"
     "(env \"name\" \"'a\\\\'b''\" \"=\")\n"
     "(env \"name\" \"'a\\\\\\\"b'\" \"=\")\n"
     "(env \"name\" \"\\\"''\\\"\" \"=\")\n"
     "(env \"name\" \"value\" \"=\" \"name1\" \"value1\" \"=\" \"name2\" \"\\\"value2a            "
     "value2b\\\"\" \"=\" \"name3\" \"\\\"value3a\\\\n\\\\\\\"value3b\\\\\\\"\\\"\" \"=\" "
     "\"name4\" \"\\\"value4a\\\\\\\\nvalue4b\\\"\" \"=\")\n"},
    {"escape",
     "#escape = `\n"
     "\n"
     "FROM image\n"
     "LABEL maintainer foo@bar.com\n"
     "ENV GOPATH `\n"
     "\\go",
     "(from \"image\")\n"
     "(label \"maintainer\" \"foo@bar.com\" \"\")\n"
     "(env \"GOPATH\" \"\\\\go\" \"\")\n"},
    {"escape-after-comment",
     "# Comment here. Should not be looking for the following parser directive.\n"
     "# Hence the following line will be ignored, and the subsequent backslash\n"
     "# continuation will be the default.\n"
     "# escape = `\n"
     "\n"
     "FROM image\n"
     "LABEL maintainer foo@bar.com\n"
     "ENV GOPATH \\\n"
     "\\go",
     "(from \"image\")\n"
     "(label \"maintainer\" \"foo@bar.com\" \"\")\n"
     "(env \"GOPATH\" \"\\\\go\" \"\")\n"},
    {"escape-nonewline",
     "# escape = `\n"
     "# There is no white space line after the directives. This still succeeds, but goes\n"
     "# against best practices.\n"
     "FROM image\n"
     "LABEL maintainer foo@bar.com\n"
     "ENV GOPATH `\n"
     "\\go\n",
     "(from \"image\")\n"
     "(label \"maintainer\" \"foo@bar.com\" \"\")\n"
     "(env \"GOPATH\" \"\\\\go\" \"\")\n"},
    {"escape-with-syntax",
     "# syntax = docker/dockerfile\n"
     "# escape = `\n"
     "\n"
     "FROM `\n"
     "    image\n",
     "(from \"image\")\n"},
    {"escapes",
     "FROM ubuntu:14.04\n"
     "LABEL maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\\"\n"
     "\n"
     "RUN apt-get \\update && \\\n"
     "  apt-get \\\"install znc -y\n"
     "ADD \\conf\\\\\" /.znc\n"
     "\n"
     "RUN foo \\\n"
     "\n"
     "bar \\\n"
     "\n"
     "baz\n"
     "\n"
     "CMD [ \"\\/usr\\\\\\\"/bin/znc\", \"-f\", \"-r\" ]\n",
     "(from \"ubuntu:14.04\")\n"
     "(label \"maintainer\" \"Erik \\\\\\\\Hollensbe <erik@hollensbe.org>\\\\\\\"\" \"\")\n"
     "(run \"apt-get \\\\update &&   apt-get \\\\\\\"install znc -y\")\n"
     "(add \"\\\\conf\\\\\\\\\\\"\" \"/.znc\")\n"
     "(run \"foo bar baz\")\n"
     "(cmd \"/usr\\\\\\\"/bin/znc\" \"-f\" \"-r\")\n"},
    {"flags",
     "FROM scratch\n"
     "COPY foo /tmp/\n"
     "COPY --user=me foo /tmp/\n"
     "COPY --doit=true foo /tmp/\n"
     "COPY --user=me --doit=true foo /tmp/\n"
     "COPY --doit=true -- foo /tmp/\n"
     "COPY -- foo /tmp/\n"
     "CMD --doit [ \"a\", \"b\" ]\n"
     "CMD --doit=true -- [ \"a\", \"b\" ]\n"
     "CMD --doit -- [ ]\n",
     "(from \"scratch\")\n"
     "(copy \"foo\" \"/tmp/\")\n"
     "(copy [\"--user=me\"] \"foo\" \"/tmp/\")\n"
     "(copy [\"--doit=true\"] \"foo\" \"/tmp/\")\n"
     "(copy [\"--user=me\" \"--doit=true\"] \"foo\" \"/tmp/\")\n"
     "(copy [\"--doit=true\"] \"foo\" \"/tmp/\")\n"
     "(copy \"foo\" \"/tmp/\")\n"
     "(cmd [\"--doit\"] \"a\" \"b\")\n"
     "(cmd [\"--doit=true\"] \"a\" \"b\")\n"
     "(cmd [\"--doit\"])\n"},
    /* health (HEALTHCHECK alone, CMD alone and CONNECT out: errors here) */
    {"health",
     "FROM debian\n"
     "ADD check.sh main.sh /app/\n"
     "CMD /app/main.sh\n"
     "HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n"
     "  CMD /app/check.sh --quiet\n"
     "HEALTHCHECK   CMD   a b\n"
     "HEALTHCHECK --timeout=3s CMD [\"foo\"]\n"
     "HEALTHCHECK --start-period=0s --start-interval=0s --interval=5s --timeout=0s --retries=0 CMD "
     "[\"foo\"]\n",
     "(from \"debian\")\n"
     "(add \"check.sh\" \"main.sh\" \"/app/\")\n"
     "(cmd \"/app/main.sh\")\n"
     "(healthcheck [\"--interval=5s\" \"--timeout=3s\" \"--retries=3\"] \"CMD\" \"/app/check.sh "
     "--quiet\")\n"
     "(healthcheck \"CMD\" \"a b\")\n"
     "(healthcheck [\"--timeout=3s\"] \"CMD\" \"foo\")\n"
     "(healthcheck [\"--start-period=0s\" \"--start-interval=0s\" \"--interval=5s\" "
     "\"--timeout=0s\" \"--retries=0\"] \"CMD\" \"foo\")\n"},
    /* jeztah-invalid-json-json-inside-string (FROM x added; json: the \u0000 line out) */
    {"jeztah-invalid-json-json-inside-string",
     "FROM x\n"
     "CMD '[\"echo\", \"Well, JSON in a string is JSON too?\"]'\n",
     "(from \"x\")\n"
     "(cmd \"'[\\\"echo\\\", \\\"Well, JSON in a string is JSON too?\\\"]'\")\n"},
    /* jeztah-invalid-json-json-inside-string-double (FROM x added; json: the \u0000 line out) */
    {"jeztah-invalid-json-json-inside-string-double",
     "FROM x\n"
     "CMD \"[\\\"echo\\\", \\\"Phew, I just managed to escaped those double quotes\\\"]\"\n",
     "(from \"x\")\n"
     "(cmd \"\\\"[\\\\\\\"echo\\\\\\\", \\\\\\\"Phew, I just managed to escaped those double "
     "quotes\\\\\\\"]\\\"\")\n"},
    /* jeztah-invalid-json-single-quotes (FROM x added; json: the \u0000 line out) */
    {"jeztah-invalid-json-single-quotes",
     "FROM x\n"
     "CMD ['echo','single quotes are invalid JSON']\n",
     "(from \"x\")\n"
     "(cmd \"['echo','single quotes are invalid JSON']\")\n"},
    /* jeztah-invalid-json-unterminated-bracket (FROM x added; json: the \u0000 line out) */
    {"jeztah-invalid-json-unterminated-bracket",
     "FROM x\n"
     "CMD [\"echo\", \"Please, close the brackets when you're done\"\n",
     "(from \"x\")\n"
     "(cmd \"[\\\"echo\\\", \\\"Please, close the brackets when you're done\\\"\")\n"},
    /* jeztah-invalid-json-unterminated-string (FROM x added; json: the \u0000 line out) */
    {"jeztah-invalid-json-unterminated-string",
     "FROM x\n"
     "CMD [\"echo\", \"look ma, no quote!]\n",
     "(from \"x\")\n"
     "(cmd \"[\\\"echo\\\", \\\"look ma, no quote!]\")\n"},
    /* json (FROM x added; json: the \u0000 line out) */
    {"json",
     "FROM x\n"
     "CMD []\n"
     "CMD [\"\"]\n"
     "CMD [\"a\"]\n"
     "CMD [\"a\",\"b\"]\n"
     "CMD [ \"a\", \"b\" ]\n"
     "CMD [\t\"a\",\t\"b\"\t]\n"
     "CMD\t[\t\"a\",\t\"b\"\t]\t\n",
     "(from \"x\")\n"
     "(cmd)\n"
     "(cmd \"\")\n"
     "(cmd \"a\")\n"
     "(cmd \"a\" \"b\")\n"
     "(cmd \"a\" \"b\")\n"
     "(cmd \"a\" \"b\")\n"
     "(cmd \"a\" \"b\")\n"},
    {"kartar-entrypoint-oddities",
     "FROM ubuntu:14.04\n"
     "LABEL maintainer James Turnbull \"james@example.com\"\n"
     "ENV REFRESHED_AT 2014-06-01\n"
     "RUN apt-get update\n"
     "RUN apt-get --no-install-recommends install -y redis-server redis-tools\n"
     "EXPOSE 6379\n"
     "ENTRYPOINT [ \"/usr/bin/redis-server\" ]\n",
     "(from \"ubuntu:14.04\")\n"
     "(label \"maintainer\" \"James Turnbull \\\"james@example.com\\\"\" \"\")\n"
     "(env \"REFRESHED_AT\" \"2014-06-01\" \"\")\n"
     "(run \"apt-get update\")\n"
     "(run \"apt-get --no-install-recommends install -y redis-server redis-tools\")\n"
     "(expose \"6379\")\n"
     "(entrypoint \"/usr/bin/redis-server\")\n"},
    {"lk4d4-the-edge-case-generator",
     "FROM busybox:buildroot-2014.02\n"
     "\n"
     "LABEL maintainer docker <docker@docker.io>\n"
     "\n"
     "ONBUILD RUN [\"echo\", \"test\"]\n"
     "ONBUILD RUN echo test\n"
     "ONBUILD COPY . /\n"
     "\n"
     "\n"
     "# RUN Commands \\\n"
     "# linebreak in comment \\\n"
     "RUN [\"ls\", \"-la\"]\n"
     "RUN [\"echo\", \"'1234'\"]\n"
     "RUN echo \"1234\"\n"
     "RUN echo 1234\n"
     "RUN echo '1234' && \\\n"
     "    echo \"456\" && \\\n"
     "    echo 789\n"
     "RUN    sh -c 'echo root:testpass \\\n"
     "        > /tmp/passwd'\n"
     "RUN mkdir -p /test /test2 /test3/test\n"
     "\n"
     "# ENV \\\n"
     "ENV SCUBA 1 DUBA 3\n"
     "ENV SCUBA \"1 DUBA 3\"\n"
     "\n"
     "# CMD \\\n"
     "CMD [\"echo\", \"test\"]\n"
     "CMD echo test\n"
     "CMD echo \"test\"\n"
     "CMD echo 'test'\n"
     "CMD echo 'test' | wc -\n"
     "\n"
     "#EXPOSE\\\n"
     "EXPOSE 3000\n"
     "EXPOSE 9000 5000 6000\n"
     "\n"
     "USER docker\n"
     "USER docker:root\n"
     "\n"
     "VOLUME [\"/test\"]\n"
     "VOLUME [\"/test\", \"/test2\"]\n"
     "VOLUME /test3\n"
     "\n"
     "WORKDIR /test\n"
     "\n"
     "ADD . /\n"
     "COPY . copy\n",
     "(from \"busybox:buildroot-2014.02\")\n"
     "(label \"maintainer\" \"docker <docker@docker.io>\" \"\")\n"
     "(onbuild (run \"echo\" \"test\"))\n"
     "(onbuild (run \"echo test\"))\n"
     "(onbuild (copy \".\" \"/\"))\n"
     "(run \"ls\" \"-la\")\n"
     "(run \"echo\" \"'1234'\")\n"
     "(run \"echo \\\"1234\\\"\")\n"
     "(run \"echo 1234\")\n"
     "(run \"echo '1234' &&     echo \\\"456\\\" &&     echo 789\")\n"
     "(run \"sh -c 'echo root:testpass         > /tmp/passwd'\")\n"
     "(run \"mkdir -p /test /test2 /test3/test\")\n"
     "(env \"SCUBA\" \"1 DUBA 3\" \"\")\n"
     "(env \"SCUBA\" \"\\\"1 DUBA 3\\\"\" \"\")\n"
     "(cmd \"echo\" \"test\")\n"
     "(cmd \"echo test\")\n"
     "(cmd \"echo \\\"test\\\"\")\n"
     "(cmd \"echo 'test'\")\n"
     "(cmd \"echo 'test' | wc -\")\n"
     "(expose \"3000\")\n"
     "(expose \"9000\" \"5000\" \"6000\")\n"
     "(user \"docker\")\n"
     "(user \"docker:root\")\n"
     "(volume \"/test\")\n"
     "(volume \"/test\" \"/test2\")\n"
     "(volume \"/test3\")\n"
     "(workdir \"/test\")\n"
     "(add \".\" \"/\")\n"
     "(copy \".\" \"copy\")\n"},
    {"mail",
     "FROM ubuntu:14.04\n"
     "\n"
     "RUN apt-get update -qy && apt-get install mutt offlineimap vim-nox abook elinks curl tmux "
     "cron zsh -y\n"
     "ADD .muttrc /\n"
     "ADD .offlineimaprc /\n"
     "ADD .tmux.conf /\n"
     "ADD mutt /.mutt\n"
     "ADD vim /.vim\n"
     "ADD vimrc /.vimrc\n"
     "ADD crontab /etc/crontab\n"
     "RUN chmod 644 /etc/crontab\n"
     "RUN mkdir /Mail\n"
     "RUN mkdir /.offlineimap\n"
     "RUN echo \"export TERM=screen-256color\" >/.zshenv\n"
     "\n"
     "CMD setsid cron; tmux -2\n",
     "(from \"ubuntu:14.04\")\n"
     "(run \"apt-get update -qy && apt-get install mutt offlineimap vim-nox abook elinks curl tmux "
     "cron zsh -y\")\n"
     "(add \".muttrc\" \"/\")\n"
     "(add \".offlineimaprc\" \"/\")\n"
     "(add \".tmux.conf\" \"/\")\n"
     "(add \"mutt\" \"/.mutt\")\n"
     "(add \"vim\" \"/.vim\")\n"
     "(add \"vimrc\" \"/.vimrc\")\n"
     "(add \"crontab\" \"/etc/crontab\")\n"
     "(run \"chmod 644 /etc/crontab\")\n"
     "(run \"mkdir /Mail\")\n"
     "(run \"mkdir /.offlineimap\")\n"
     "(run \"echo \\\"export TERM=screen-256color\\\" >/.zshenv\")\n"
     "(cmd \"setsid cron; tmux -2\")\n"},
    {"multiple-volumes",
     "FROM foo\n"
     "\n"
     "VOLUME /opt/nagios/var /opt/nagios/etc /opt/nagios/libexec /var/log/apache2 "
     "/usr/share/snmp/mibs\n",
     "(from \"foo\")\n"
     "(volume \"/opt/nagios/var\" \"/opt/nagios/etc\" \"/opt/nagios/libexec\" \"/var/log/apache2\" "
     "\"/usr/share/snmp/mibs\")\n"},
    {"trailing-backslash",
     "# https://github.com/docker/for-win/issues/5254\n"
     "\n"
     "FROM hello-world\n"
     "\n"
     "ENV A path\n"
     "ENV B another\\\\path\n"
     "ENV C trailing\\\\backslash\\\\\n"
     "ENV D This should not be appended to C\n"
     "ENV E hello\\\n"
     "\\\n"
     "world\n"
     "ENV F hello\\\n"
     " \\\n"
     "world\n"
     "ENV G hello \\\n"
     "\\\n"
     "world\n",
     "(from \"hello-world\")\n"
     "(env \"A\" \"path\" \"\")\n"
     "(env \"B\" \"another\\\\\\\\path\" \"\")\n"
     "(env \"C\" \"trailing\\\\\\\\backslash\\\\\\\\\" \"\")\n"
     "(env \"D\" \"This should not be appended to C\" \"\")\n"
     "(env \"E\" \"helloworld\" \"\")\n"
     "(env \"F\" \"hello world\" \"\")\n"
     "(env \"G\" \"hello world\" \"\")\n"},
    {"brimstone-consuldock",
     "#escape=\\\n"
     "FROM brimstone/ubuntu:14.04\n"
     "\n"
     "LABEL maintainer brimstone@the.narro.ws\n"
     "\n"
     "# TORUN -v /var/run/docker.sock:/var/run/docker.sock\n"
     "\n"
     "ENV GOPATH /go\n"
     "\n"
     "# Set our command\n"
     "ENTRYPOINT [\"/usr/local/bin/consuldock\"]\n"
     "\n"
     "# Install the packages we need, clean up after them and us\n"
     "RUN apt-get update \\\n"
     "\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.clean \\\n"
     "    && apt-get --no-install-recommends install -y git golang ca-certificates \\\n"
     "    && apt-get clean \\\n"
     "    && rm -rf /var/lib/apt/lists \\\n"
     "\n"
     "\t&& go get -v github.com/brimstone/consuldock \\\n"
     "    && mv $GOPATH/bin/consuldock /usr/local/bin/consuldock \\\n"
     "\n"
     "\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.dirty \\\n"
     "\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty | awk '/^>/ {print "
     "$2}') \\\n"
     "\t&& rm /tmp/dpkg.* \\\n"
     "\t&& rm -rf $GOPATH\n",
     "(from \"brimstone/ubuntu:14.04\")\n"
     "(label \"maintainer\" \"brimstone@the.narro.ws\" \"\")\n"
     "(env \"GOPATH\" \"/go\" \"\")\n"
     "(entrypoint \"/usr/local/bin/consuldock\")\n"
     "(run \"apt-get update \\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.clean     && "
     "apt-get --no-install-recommends install -y git golang ca-certificates     && apt-get clean   "
     "  && rm -rf /var/lib/apt/lists \\t&& go get -v github.com/brimstone/consuldock     && mv "
     "$GOPATH/bin/consuldock /usr/local/bin/consuldock \\t&& dpkg -l | awk '/^ii/ {print $2}' > "
     "/tmp/dpkg.dirty \\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty | awk "
     "'/^>/ {print $2}') \\t&& rm /tmp/dpkg.* \\t&& rm -rf $GOPATH\")\n"},
    {"cpuguy83-nagios",
     "FROM cpuguy83/ubuntu\n"
     "ENV NAGIOS_HOME /opt/nagios\n"
     "ENV NAGIOS_USER nagios\n"
     "ENV NAGIOS_GROUP nagios\n"
     "ENV NAGIOS_CMDUSER nagios\n"
     "ENV NAGIOS_CMDGROUP nagios\n"
     "ENV NAGIOSADMIN_USER nagiosadmin\n"
     "ENV NAGIOSADMIN_PASS nagios\n"
     "ENV APACHE_RUN_USER nagios\n"
     "ENV APACHE_RUN_GROUP nagios\n"
     "ENV NAGIOS_TIMEZONE UTC\n"
     "\n"
     "RUN sed -i 's/universe/universe multiverse/' /etc/apt/sources.list\n"
     "RUN apt-get update && apt-get --no-install-recommends install -y iputils-ping netcat "
     "build-essential snmp snmpd snmp-mibs-downloader php5-cli apache2 libapache2-mod-php5 runit "
     "bc postfix bsd-mailx\n"
     "RUN ( egrep -i  \"^${NAGIOS_GROUP}\" /etc/group || groupadd $NAGIOS_GROUP ) && ( egrep -i "
     "\"^${NAGIOS_CMDGROUP}\" /etc/group || groupadd $NAGIOS_CMDGROUP )\n"
     "RUN ( id -u $NAGIOS_USER || useradd --system $NAGIOS_USER -g $NAGIOS_GROUP -d $NAGIOS_HOME ) "
     "&& ( id -u $NAGIOS_CMDUSER || useradd --system -d $NAGIOS_HOME -g $NAGIOS_CMDGROUP "
     "$NAGIOS_CMDUSER )\n"
     "\n"
     "ADD "
     "http://downloads.sourceforge.net/project/nagios/nagios-3.x/nagios-3.5.1/"
     "nagios-3.5.1.tar.gz?r=http%3A%2F%2Fwww.nagios.org%2Fdownload%2Fcore%2Fthanks%2F%3Ft%"
     "3D1398863696&ts=1398863718&use_mirror=superb-dca3 /tmp/nagios.tar.gz\n"
     "RUN cd /tmp && tar -zxvf nagios.tar.gz && cd nagios  && ./configure --prefix=${NAGIOS_HOME} "
     "--exec-prefix=${NAGIOS_HOME} --enable-event-broker "
     "--with-nagios-command-user=${NAGIOS_CMDUSER} --with-command-group=${NAGIOS_CMDGROUP} "
     "--with-nagios-user=${NAGIOS_USER} --with-nagios-group=${NAGIOS_GROUP} && make all && make "
     "install && make install-config && make install-commandmode && cp sample-config/httpd.conf "
     "/etc/apache2/conf.d/nagios.conf\n"
     "ADD http://www.nagios-plugins.org/download/nagios-plugins-1.5.tar.gz /tmp/\n"
     "RUN cd /tmp && tar -zxvf nagios-plugins-1.5.tar.gz && cd nagios-plugins-1.5 && ./configure "
     "--prefix=${NAGIOS_HOME} && make && make install\n"
     "\n"
     "RUN sed -i.bak 's/.*\\=www\\-data//g' /etc/apache2/envvars\n"
     "RUN export DOC_ROOT=\"DocumentRoot $(echo $NAGIOS_HOME/share)\"; sed -i "
     "\"s,DocumentRoot.*,$DOC_ROOT,\" /etc/apache2/sites-enabled/000-default\n"
     "\n"
     "RUN ln -s ${NAGIOS_HOME}/bin/nagios /usr/local/bin/nagios && mkdir -p /usr/share/snmp/mibs "
     "&& chmod 0755 /usr/share/snmp/mibs && touch /usr/share/snmp/mibs/.foo\n"
     "\n"
     "RUN echo \"use_timezone=$NAGIOS_TIMEZONE\" >> ${NAGIOS_HOME}/etc/nagios.cfg && echo \"SetEnv "
     "TZ \\\"${NAGIOS_TIMEZONE}\\\"\" >> /etc/apache2/conf.d/nagios.conf\n"
     "\n"
     "RUN mkdir -p ${NAGIOS_HOME}/etc/conf.d && mkdir -p ${NAGIOS_HOME}/etc/monitor && ln -s "
     "/usr/share/snmp/mibs ${NAGIOS_HOME}/libexec/mibs\n"
     "RUN echo \"cfg_dir=${NAGIOS_HOME}/etc/conf.d\" >> ${NAGIOS_HOME}/etc/nagios.cfg\n"
     "RUN echo \"cfg_dir=${NAGIOS_HOME}/etc/monitor\" >> ${NAGIOS_HOME}/etc/nagios.cfg\n"
     "RUN download-mibs && echo \"mibs +ALL\" > /etc/snmp/snmp.conf\n"
     "\n"
     "RUN sed -i 's,/bin/mail,/usr/bin/mail,' /opt/nagios/etc/objects/commands.cfg && \\\n"
     "  sed -i 's,/usr/usr,/usr,' /opt/nagios/etc/objects/commands.cfg\n"
     "RUN cp /etc/services /var/spool/postfix/etc/\n"
     "\n"
     "RUN mkdir -p /etc/sv/nagios && mkdir -p /etc/sv/apache && rm -rf /etc/sv/getty-5 && mkdir -p "
     "/etc/sv/postfix\n"
     "ADD nagios.init /etc/sv/nagios/run\n"
     "ADD apache.init /etc/sv/apache/run\n"
     "ADD postfix.init /etc/sv/postfix/run\n"
     "ADD postfix.stop /etc/sv/postfix/finish\n"
     "\n"
     "ADD start.sh /usr/local/bin/start_nagios\n"
     "\n"
     "ENV APACHE_LOCK_DIR /var/run\n"
     "ENV APACHE_LOG_DIR /var/log/apache2\n"
     "\n"
     "EXPOSE 80\n"
     "\n"
     "VOLUME [\"/opt/nagios/var\", \"/opt/nagios/etc\", \"/opt/nagios/libexec\", "
     "\"/var/log/apache2\", \"/usr/share/snmp/mibs\"]\n"
     "\n"
     "CMD [\"/usr/local/bin/start_nagios\"]\n",
     "(from \"cpuguy83/ubuntu\")\n"
     "(env \"NAGIOS_HOME\" \"/opt/nagios\" \"\")\n"
     "(env \"NAGIOS_USER\" \"nagios\" \"\")\n"
     "(env \"NAGIOS_GROUP\" \"nagios\" \"\")\n"
     "(env \"NAGIOS_CMDUSER\" \"nagios\" \"\")\n"
     "(env \"NAGIOS_CMDGROUP\" \"nagios\" \"\")\n"
     "(env \"NAGIOSADMIN_USER\" \"nagiosadmin\" \"\")\n"
     "(env \"NAGIOSADMIN_PASS\" \"nagios\" \"\")\n"
     "(env \"APACHE_RUN_USER\" \"nagios\" \"\")\n"
     "(env \"APACHE_RUN_GROUP\" \"nagios\" \"\")\n"
     "(env \"NAGIOS_TIMEZONE\" \"UTC\" \"\")\n"
     "(run \"sed -i 's/universe/universe multiverse/' /etc/apt/sources.list\")\n"
     "(run \"apt-get update && apt-get --no-install-recommends install -y iputils-ping netcat "
     "build-essential snmp snmpd snmp-mibs-downloader php5-cli apache2 libapache2-mod-php5 runit "
     "bc postfix bsd-mailx\")\n"
     "(run \"( egrep -i  \\\"^${NAGIOS_GROUP}\\\" /etc/group || groupadd $NAGIOS_GROUP ) && ( "
     "egrep -i \\\"^${NAGIOS_CMDGROUP}\\\" /etc/group || groupadd $NAGIOS_CMDGROUP )\")\n"
     "(run \"( id -u $NAGIOS_USER || useradd --system $NAGIOS_USER -g $NAGIOS_GROUP -d "
     "$NAGIOS_HOME ) && ( id -u $NAGIOS_CMDUSER || useradd --system -d $NAGIOS_HOME -g "
     "$NAGIOS_CMDGROUP $NAGIOS_CMDUSER )\")\n"
     "(add "
     "\"http://downloads.sourceforge.net/project/nagios/nagios-3.x/nagios-3.5.1/"
     "nagios-3.5.1.tar.gz?r=http%3A%2F%2Fwww.nagios.org%2Fdownload%2Fcore%2Fthanks%2F%3Ft%"
     "3D1398863696&ts=1398863718&use_mirror=superb-dca3\" \"/tmp/nagios.tar.gz\")\n"
     "(run \"cd /tmp && tar -zxvf nagios.tar.gz && cd nagios  && ./configure "
     "--prefix=${NAGIOS_HOME} --exec-prefix=${NAGIOS_HOME} --enable-event-broker "
     "--with-nagios-command-user=${NAGIOS_CMDUSER} --with-command-group=${NAGIOS_CMDGROUP} "
     "--with-nagios-user=${NAGIOS_USER} --with-nagios-group=${NAGIOS_GROUP} && make all && make "
     "install && make install-config && make install-commandmode && cp sample-config/httpd.conf "
     "/etc/apache2/conf.d/nagios.conf\")\n"
     "(add \"http://www.nagios-plugins.org/download/nagios-plugins-1.5.tar.gz\" \"/tmp/\")\n"
     "(run \"cd /tmp && tar -zxvf nagios-plugins-1.5.tar.gz && cd nagios-plugins-1.5 && "
     "./configure --prefix=${NAGIOS_HOME} && make && make install\")\n"
     "(run \"sed -i.bak 's/.*\\\\=www\\\\-data//g' /etc/apache2/envvars\")\n"
     "(run \"export DOC_ROOT=\\\"DocumentRoot $(echo $NAGIOS_HOME/share)\\\"; sed -i "
     "\\\"s,DocumentRoot.*,$DOC_ROOT,\\\" /etc/apache2/sites-enabled/000-default\")\n"
     "(run \"ln -s ${NAGIOS_HOME}/bin/nagios /usr/local/bin/nagios && mkdir -p "
     "/usr/share/snmp/mibs && chmod 0755 /usr/share/snmp/mibs && touch "
     "/usr/share/snmp/mibs/.foo\")\n"
     "(run \"echo \\\"use_timezone=$NAGIOS_TIMEZONE\\\" >> ${NAGIOS_HOME}/etc/nagios.cfg && echo "
     "\\\"SetEnv TZ \\\\\\\"${NAGIOS_TIMEZONE}\\\\\\\"\\\" >> /etc/apache2/conf.d/nagios.conf\")\n"
     "(run \"mkdir -p ${NAGIOS_HOME}/etc/conf.d && mkdir -p ${NAGIOS_HOME}/etc/monitor && ln -s "
     "/usr/share/snmp/mibs ${NAGIOS_HOME}/libexec/mibs\")\n"
     "(run \"echo \\\"cfg_dir=${NAGIOS_HOME}/etc/conf.d\\\" >> ${NAGIOS_HOME}/etc/nagios.cfg\")\n"
     "(run \"echo \\\"cfg_dir=${NAGIOS_HOME}/etc/monitor\\\" >> ${NAGIOS_HOME}/etc/nagios.cfg\")\n"
     "(run \"download-mibs && echo \\\"mibs +ALL\\\" > /etc/snmp/snmp.conf\")\n"
     "(run \"sed -i 's,/bin/mail,/usr/bin/mail,' /opt/nagios/etc/objects/commands.cfg &&   sed -i "
     "'s,/usr/usr,/usr,' /opt/nagios/etc/objects/commands.cfg\")\n"
     "(run \"cp /etc/services /var/spool/postfix/etc/\")\n"
     "(run \"mkdir -p /etc/sv/nagios && mkdir -p /etc/sv/apache && rm -rf /etc/sv/getty-5 && mkdir "
     "-p /etc/sv/postfix\")\n"
     "(add \"nagios.init\" \"/etc/sv/nagios/run\")\n"
     "(add \"apache.init\" \"/etc/sv/apache/run\")\n"
     "(add \"postfix.init\" \"/etc/sv/postfix/run\")\n"
     "(add \"postfix.stop\" \"/etc/sv/postfix/finish\")\n"
     "(add \"start.sh\" \"/usr/local/bin/start_nagios\")\n"
     "(env \"APACHE_LOCK_DIR\" \"/var/run\" \"\")\n"
     "(env \"APACHE_LOG_DIR\" \"/var/log/apache2\" \"\")\n"
     "(expose \"80\")\n"
     "(volume \"/opt/nagios/var\" \"/opt/nagios/etc\" \"/opt/nagios/libexec\" \"/var/log/apache2\" "
     "\"/usr/share/snmp/mibs\")\n"
     "(cmd \"/usr/local/bin/start_nagios\")\n"},
    {"znc",
     "FROM ubuntu:14.04\n"
     "LABEL maintainer Erik Hollensbe <erik@hollensbe.org>\n"
     "\n"
     "RUN apt-get update && apt-get install znc -y\n"
     "ADD conf /.znc\n"
     "\n"
     "CMD [ \"/usr/bin/znc\", \"-f\", \"-r\" ]\n",
     "(from \"ubuntu:14.04\")\n"
     "(label \"maintainer\" \"Erik Hollensbe <erik@hollensbe.org>\" \"\")\n"
     "(run \"apt-get update && apt-get install znc -y\")\n"
     "(add \"conf\" \"/.znc\")\n"
     "(cmd \"/usr/bin/znc\" \"-f\" \"-r\")\n"},
};

/* moby/buildkit frontend/dockerfile/shell/envVarTest (the A and U lines): word, result or NULL for
 * an error. */
static const struct expand_case env_var_test[] = {
    {"hello", "hello"},
    {"he'll'o", "hello"},
    {"he'llo", NULL},
    {"he\\'llo", "he'llo"},
    {"he\\\\'llo", NULL},
    {"abc\\tdef", "abctdef"},
    {"\"abc\\tdef\"", "abc\\tdef"},
    {"\"abc\\\\tdef\"", "abc\\tdef"},
    {"'abc\\tdef'", "abc\\tdef"},
    {"hello\\", "hello"},
    {"hello\\\\", "hello\\"},
    {"\"hello", NULL},
    {"\"hello\\\"", NULL},
    {"\"hel'lo\"", "hel'lo"},
    {"'hello", NULL},
    {"'hello\\'", "hello\\"},
    {"'hello\\there'", "hello\\there"},
    {"'hello\\\\there'", "hello\\\\there"},
    {"\"''\"", "''"},
    {"$.", "$."},
    {"he$1x", "hex"},
    {"he$.x", "he$.x"},
    {"he$pwd.", "he."},
    {"he$PWD", "he/home"},
    {"he\\$PWD", "he$PWD"},
    {"he\\\\$PWD", "he\\/home"},
    {"\"he\\$PWD\"", "he$PWD"},
    {"\"he\\\\$PWD\"", "he\\/home"},
    {"\\${}", "${}"},
    {"\\${}aaa", "${}aaa"},
    {"he\\${}", "he${}"},
    {"he\\${}xx", "he${}xx"},
    {"${}", NULL},
    {"${}aaa", NULL},
    {"he${}", NULL},
    {"he${}xx", NULL},
    {"he${hi}", "he"},
    {"he${hi}xx", "hexx"},
    {"he${PWD}", "he/home"},
    {"he${.}", NULL},
    {"he${XXX:-000}xx", "he000xx"},
    {"he${PWD:-000}xx", "he/homexx"},
    {"he${XXX:-$PWD}xx", "he/homexx"},
    {"he${XXX:-${PWD:-yyy}}xx", "he/homexx"},
    {"he${XXX:-${YYY:-yyy}}xx", "heyyyxx"},
    {"he${XXX:YYY}", NULL},
    {"he${XXX?}", NULL},
    {"he${XXX:?}", NULL},
    {"he${PWD?}", "he/home"},
    {"he${PWD:?}", "he/home"},
    {"he${NULL?}", "he"},
    {"he${NULL:?}", NULL},
    {"he${XXX:+${PWD}}xx", "hexx"},
    {"he${PWD:+${XXX}}xx", "hexx"},
    {"he${PWD:+${SHELL}}xx", "hebashxx"},
    {"he${XXX:+000}xx", "hexx"},
    {"he${PWD:+000}xx", "he000xx"},
    {"'he${XX}'", "he${XX}"},
    {"\"he${PWD}\"", "he/home"},
    {"\"he'$PWD'\"", "he'/home'"},
    {"\"$PWD\"", "/home"},
    {"'$PWD'", "$PWD"},
    {"'\\$PWD'", "\\$PWD"},
    {"'\"hello\"'", "\"hello\""},
    {"he\\$PWD", "he$PWD"},
    {"\"he\\$PWD\"", "he$PWD"},
    {"'he\\$PWD'", "he\\$PWD"},
    {"he${PWD", NULL},
    {"he${PWD:=000}xx", NULL},
    {"he${PWD:+${PWD}:}xx", "he/home:xx"},
    {"he${XXX:-\\$PWD:}xx", "he$PWD:xx"},
    {"he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"},
    {"안녕하세요", "안녕하세요"},
    {"안'녕'하세요", "안녕하세요"},
    {"안'녕하세요", NULL},
    {"안녕\\'하세요", "안녕'하세요"},
    {"안\\\\'녕하세요", NULL},
    {"안녕\\t하세요", "안녕t하세요"},
    {"\"안녕\\t하세요\"", "안녕\\t하세요"},
    {"'안녕\\t하세요", NULL},
    {"안녕하세요\\", "안녕하세요"},
    {"안녕하세요\\\\", "안녕하세요\\"},
    {"\"안녕하세요", NULL},
    {"\"안녕하세요\\\"", NULL},
    {"\"안녕'하세요\"", "안녕'하세요"},
    {"'안녕하세요", NULL},
    {"'안녕하세요\\'", "안녕하세요\\"},
    {"안녕$1x", "안녕x"},
    {"안녕$.x", "안녕$.x"},
    {"안녕$pwd.", "안녕."},
    {"안녕$PWD", "안녕/home"},
    {"안녕\\$PWD", "안녕$PWD"},
    {"안녕\\\\$PWD", "안녕\\/home"},
    {"안녕\\${}", "안녕${}"},
    {"안녕\\${}xx", "안녕${}xx"},
    {"안녕${}", NULL},
    {"안녕${}xx", NULL},
    {"안녕${hi}", "안녕"},
    {"안녕${hi}xx", "안녕xx"},
    {"안녕${PWD}", "안녕/home"},
    {"안녕${.}", NULL},
    {"안녕${XXX:-000}xx", "안녕000xx"},
    {"안녕${PWD:-000}xx", "안녕/homexx"},
    {"안녕${XXX:-$PWD}xx", "안녕/homexx"},
    {"안녕${XXX:-${PWD:-yyy}}xx", "안녕/homexx"},
    {"안녕${XXX:-${YYY:-yyy}}xx", "안녕yyyxx"},
    {"안녕${XXX:YYY}", NULL},
    {"안녕${XXX:+${PWD}}xx", "안녕xx"},
    {"안녕${PWD:+${XXX}}xx", "안녕xx"},
    {"안녕${PWD:+${SHELL}}xx", "안녕bashxx"},
    {"안녕${XXX:+000}xx", "안녕xx"},
    {"안녕${PWD:+000}xx", "안녕000xx"},
    {"'안녕${XX}'", "안녕${XX}"},
    {"\"안녕${PWD}\"", "안녕/home"},
    {"\"안녕'$PWD'\"", "안녕'/home'"},
    {"'\"안녕\"'", "\"안녕\""},
    {"안녕\\$PWD", "안녕$PWD"},
    {"\"안녕\\$PWD\"", "안녕$PWD"},
    {"'안녕\\$PWD'", "안녕\\$PWD"},
    {"안녕${PWD", NULL},
    {"안녕${PWD:=000}xx", NULL},
    {"안녕${PWD:+${PWD}:}xx", "안녕/home:xx"},
    {"안녕${XXX:-\\$PWD:}xx", "안녕$PWD:xx"},
    {"안녕${XXX:-\\${PWD}z}xx", "안녕${PWDz}xx"},
    {"$KOREAN", "한국어"},
    {"안녕$KOREAN", "안녕한국어"},
    {"${{aaa}", NULL},
    {"${aaa}}", "}"},
    {"${aaa", NULL},
    {"${{aaa:-bbb}", NULL},
    {"${aaa:-bbb}}", "bbb}"},
    {"${aaa:-bbb", NULL},
    {"${aaa:-bbb}", "bbb"},
    {"${aaa:-${bbb:-ccc}}", "ccc"},
    {"${aaa:-bbb ${foo}", NULL},
    {"${aaa:-bbb {foo}", "bbb {foo"},
    {"${:}", NULL},
    {"${:-bbb}", NULL},
    {"${:+bbb}", NULL},
    {"$1", ""},
    {"${1}", ""},
    {"${1:+bbb}", ""},
    {"${1:-bbb}", "bbb"},
    {"$2", ""},
    {"${2}", ""},
    {"${2:+bbb}", ""},
    {"${2:-bbb}", "bbb"},
    {"$3", ""},
    {"${3}", ""},
    {"${3:+bbb}", ""},
    {"${3:-bbb}", "bbb"},
    {"$4", ""},
    {"${4}", ""},
    {"${4:+bbb}", ""},
    {"${4:-bbb}", "bbb"},
    {"$5", ""},
    {"${5}", ""},
    {"${5:+bbb}", ""},
    {"${5:-bbb}", "bbb"},
    {"$6", ""},
    {"${6}", ""},
    {"${6:+bbb}", ""},
    {"${6:-bbb}", "bbb"},
    {"$7", ""},
    {"${7}", ""},
    {"${7:+bbb}", ""},
    {"${7:-bbb}", "bbb"},
    {"$8", ""},
    {"${8}", ""},
    {"${8:+bbb}", ""},
    {"${8:-bbb}", "bbb"},
    {"$9", ""},
    {"${9}", ""},
    {"${9:+bbb}", ""},
    {"${9:-bbb}", "bbb"},
    {"$999", ""},
    {"${999}", ""},
    {"${999:+bbb}", ""},
    {"${999:-bbb}", "bbb"},
    {"$999aaa", "aaa"},
    {"${999}aaa", "aaa"},
    {"${999:+bbb}aaa", "aaa"},
    {"${999:-bbb}aaa", "bbbaaa"},
    {"$001", ""},
    {"${001}", ""},
    {"${001:+bbb}", ""},
    {"${001:-bbb}", "bbb"},
    {"$001aaa", "aaa"},
    {"${001}aaa", "aaa"},
    {"${001:+bbb}aaa", "aaa"},
    {"${001:-bbb}aaa", "bbbaaa"},
    {"$@", ""},
    {"${@}", ""},
    {"${@:+bbb}", ""},
    {"${@:-bbb}", "bbb"},
    {"$@@@", "@@"},
    {"$@aaa", "aaa"},
    {"${@}aaa", "aaa"},
    {"${@:+bbb}aaa", "aaa"},
    {"${@:-bbb}aaa", "bbbaaa"},
    {"$*", ""},
    {"${*}", ""},
    {"${*:+bbb}", ""},
    {"${*:-bbb}", "bbb"},
    {"$#", ""},
    {"${#}", ""},
    {"${#:+bbb}", ""},
    {"${#:-bbb}", "bbb"},
    {"$?", ""},
    {"${?}", ""},
    {"${?:+bbb}", ""},
    {"${?:-bbb}", "bbb"},
    {"$-", ""},
    {"${-}", ""},
    {"${-:+bbb}", ""},
    {"${-:-bbb}", "bbb"},
    {"$$", ""},
    {"${$}", ""},
    {"${$:+bbb}", ""},
    {"${$:-bbb}", "bbb"},
    {"$!", ""},
    {"${!}", ""},
    {"${!:+bbb}", ""},
    {"${!:-bbb}", "bbb"},
    {"$0", ""},
    {"${0}", ""},
    {"${0:+bbb}", ""},
    {"${0:-bbb}", "bbb"},
};

/* moby/buildkit frontend/dockerfile/shell/wordsTest: ENV lines set variables (see words_test). */
static const char *const words_test[] = {
    "hello | hello",
    "hello${hi}bye | hellobye",
    "ENV hi=hi",
    "hello${hi}bye | hellohibye",
    "ENV space=abc  def",
    "hello${space}bye | helloabc,defbye",
    "hello\"${space}\"bye | helloabc  defbye",
    "hello \"${space}\"bye | hello,abc  defbye",
    "ENV leading=  ab c",
    "hello${leading}def | hello,ab,cdef",
    "hello\"${leading}\" def | hello  ab c,def",
    "hello\"${leading}\" | hello  ab c",
    "hello${leading} | hello,ab,c",
    "ENV trailing=ab c   ",
    "hello${trailing} | helloab,c",
    "hello${trailing}d | helloab,c,d",
    "hello\"${trailing}\"d | helloab c   d",
    "hel\"lo${trailing}\" | helloab c   ",
    "hello\" there  \" | hello there  ",
    "hello there     | hello,there",
    "hello\\ there | hello there",
    "hello\" there | error",
    "hello\\\" there | hello\",there",
    "hello\"\\\\there\" | hello\\there",
    "hello\"\\there\" | hello\\there",
    "hello'\\\\there' | hello\\\\there",
    "hello'\\there' | hello\\there",
    "hello'$there' | hello$there",
};

/* ---------------------------------------------------------------------------------------------
 * Parsing
 */

TEST(buildkit_testfiles)
{
    for (size_t i = 0; i < N_OF(corpus); i++) {
        char *got = dump(corpus[i].dockerfile, strlen(corpus[i].dockerfile));
        if (strcmp(got, corpus[i].result) != 0)
            fprintf(stderr, "testfile %s:\n%s\nwant:\n%s\n", corpus[i].name, got, corpus[i].result);
        CHECK_STR(got, corpus[i].result);
        free(got);
    }
}

TEST(directives)
{
    struct oci_df df;

    /* syntax kept, escape applied, check ignored, names in any case, blanks around '='. */
    if (parse(&df, "# SYNTAX = docker/dockerfile:1.7  \n"
                   "#Escape=`\n"
                   "# check=skip=all\n"
                   "FROM img\n"
                   "RUN a `\n"
                   "  b\n"
                   "RUN c \\\n")) {
        CHECK_STR(df.syntax, "docker/dockerfile:1.7");
        CHECK_INT(df.escape, '`');
        CHECK_INT(df.n_instrs, 3);
        CHECK_STR(df.instrs[1].raw, "a   b");
        CHECK_STR(df.instrs[2].raw, "c \\");
        CHECK_INT(df.instrs[2].line, 7);
    }
    oci_df_free(&df);
    CHECK(df.syntax == NULL && df.instrs == NULL);
    oci_df_free(&df); /* twice is fine */

    /* The default escape, no syntax. */
    if (parse(&df, "FROM img\n")) {
        CHECK_INT(df.escape, '\\');
        CHECK(df.syntax == NULL);
    }
    oci_df_free(&df);

    /* A blank line, another comment or an instruction ends the directives. */
    if (parse(&df, "\n# escape=`\nFROM img\nRUN a \\\n b\n")) {
        CHECK_INT(df.escape, '\\');
        CHECK_STR(df.instrs[1].raw, "a  b");
    }
    oci_df_free(&df);
    if (parse(&df, "# hello\n# escape=`\nFROM img\n"))
        CHECK_INT(df.escape, '\\');
    oci_df_free(&df);
    if (parse(&df, "# foo=bar\n# escape=`\nFROM img\n"))
        CHECK_INT(df.escape, '\\');
    oci_df_free(&df);
    if (parse(&df, "FROM img\n# escape=`\n# syntax=x\n")) {
        CHECK_INT(df.escape, '\\');
        CHECK(df.syntax == NULL);
    }
    oci_df_free(&df);
    /* Leading blanks are fine; a byte-order mark is skipped. */
    if (parse(&df, "\xEF\xBB\xBF  # escape=`\nFROM img\n"))
        CHECK_INT(df.escape, '`');
    oci_df_free(&df);
    /* "# escape=" without a value is a plain comment. */
    if (parse(&df, "# escape=\nFROM img\n"))
        CHECK_INT(df.escape, '\\');
    oci_df_free(&df);

    CHECK_ERR("# escape=`\n# escape=\\\nFROM img\n", OCISYNC_EUSAGE,
              "Dockerfile line 2: only one escape parser directive can be used");
    CHECK_ERR("# syntax=a\n# SYNTAX=b\nFROM img\n", OCISYNC_EUSAGE,
              "only one syntax parser directive");
    CHECK_ERR("# escape=x\nFROM img\n", OCISYNC_EUSAGE,
              "Dockerfile line 1: invalid escape token 'x' does not match ` or \\");
    CHECK_ERR("# escape=\\\\\nFROM img\n", OCISYNC_EUSAGE, "invalid escape token");
    /* (.+?) takes a blank when only blanks follow '=': BuildKit then refuses " ". */
    CHECK_ERR("# escape=  \nFROM img\n", OCISYNC_EUSAGE, "invalid escape token ' '");
}

TEST(continuations)
{
    struct oci_df df;
    const char *text = "FROM img\n"
                       "\n"
                       "RUN apt-get update && \\  \n"  /* blanks after the escape */
                       "    # a comment, dropped \\\n" /* even one ending in an escape */
                       "\n"
                       "  \t \n"
                       "    apt-get install -y x\r\n"
                       "  run   echo  done  \n"
                       "RUN echo c:\\\\\n" /* an escaped escape does not continue */
                       "RUN last \\";      /* continued at the end of the file */

    if (parse(&df, text)) {
        CHECK_INT(df.n_instrs, 5);
        const struct oci_df_instr *in = &df.instrs[1];
        CHECK_INT(in->kind, OCI_DF_RUN);
        CHECK_INT(in->line, 3);
        CHECK_INT(in->end_line, 7);
        CHECK_STR(in->original, "RUN apt-get update &&     apt-get install -y x");
        CHECK_STR(in->raw, "apt-get update &&     apt-get install -y x");
        CHECK_INT(in->n_args, 1);
        CHECK(!in->json);
        in = &df.instrs[2];
        CHECK_STR(in->keyword, "run");
        CHECK_INT(in->line, 8);
        CHECK_STR(in->original, "run   echo  done  ");
        CHECK_STR(in->raw, "echo  done");
        CHECK_STR(df.instrs[3].args[0], "echo c:\\\\");
        CHECK_INT(df.instrs[3].line, 9);
        CHECK_STR(df.instrs[0].original, "FROM img");
    }
    oci_df_free(&df);
    if (parse(&df, "FROM img\nRUN last \\")) {
        CHECK_STR(df.instrs[1].raw, "last");
        CHECK_INT(df.instrs[1].end_line, 2);
    }
    oci_df_free(&df);

    /* An escape alone on a line joins nothing; lines keep their indentation. */
    if (parse(&df, "FROM \\\n\\\n  img\n"))
        CHECK_STR(df.instrs[0].args[0], "img");
    oci_df_free(&df);
    /* A comment line after FROM is no instruction; keywords in any case. */
    if (parse(&df, "  # c\nfRoM img\n\t# d\nWorkDir /a b\n")) {
        CHECK_INT(df.n_instrs, 2);
        CHECK_INT(df.instrs[0].kind, OCI_DF_FROM);
        CHECK_INT(df.instrs[1].kind, OCI_DF_WORKDIR);
        CHECK_STR(df.instrs[1].keyword, "WorkDir");
        CHECK_INT(df.instrs[1].n_args, 1);
        CHECK_STR(df.instrs[1].args[0], "/a b");
    }
    oci_df_free(&df);
}

TEST(flags)
{
    struct oci_df df;

    if (parse(&df, "FROM --platform=$BUILDPLATFORM golang AS Build\n"
                   "COPY --from=build --link --chmod=\"0 755\" --chown= --exclude='*.md' a b /c\n"
                   "RUN --mount=type=cache,target=/root/.cache \\\n"
                   "    --network=none -- --not-a-flag\n"
                   "RUN -x --y\n"
                   "COPY --a=b\\ c -- x y\n"
                   "ENV --weird=1 A=b\n")) {
        const struct oci_df_instr *in = &df.instrs[0];
        CHECK_INT(in->n_flags, 1);
        CHECK_STR(in->flags[0].name, "platform");
        CHECK_STR(in->flags[0].value, "$BUILDPLATFORM");
        CHECK_STR(in->raw, "golang AS Build");
        CHECK_INT(in->n_args, 3);
        CHECK_STR(in->stage, "build");

        in = &df.instrs[1];
        CHECK_INT(in->n_flags, 5);
        CHECK_STR(in->flags[0].name, "from");
        CHECK_STR(in->flags[0].value, "build");
        CHECK_STR(in->flags[1].name, "link");
        CHECK(in->flags[1].value == NULL);
        CHECK_STR(in->flags[2].name, "chmod");
        CHECK_STR(in->flags[2].value, "0 755");
        CHECK_STR(in->flags[3].name, "chown");
        CHECK_STR(in->flags[3].value, "");
        CHECK_STR(in->flags[4].value, "*.md");
        CHECK_INT(in->n_args, 3);
        CHECK_STR(in->args[2], "/c");

        in = &df.instrs[2];
        CHECK_INT(in->n_flags, 2);
        CHECK_STR(in->flags[0].value, "type=cache,target=/root/.cache");
        CHECK_STR(in->flags[1].name, "network");
        CHECK_STR(in->raw, "--not-a-flag");

        in = &df.instrs[3]; /* one dash is no flag, and flags end at the first non-flag */
        CHECK_INT(in->n_flags, 0);
        CHECK_STR(in->raw, "-x --y");

        in = &df.instrs[4];
        CHECK_INT(in->n_flags, 1);
        CHECK_STR(in->flags[0].value, "b c");
        CHECK_INT(in->n_args, 2);

        in = &df.instrs[5]; /* flags on any instruction: refusing them is the executor's */
        CHECK_INT(in->n_flags, 1);
        CHECK_STR(in->flags[0].name, "weird");
        CHECK_INT(in->n_pairs, 1);
    }
    oci_df_free(&df);
}

TEST(exec_and_shell_forms)
{
    struct oci_df df;

    if (parse(&df, "FROM img\n"
                   "CMD [\"a\", \"b c\"]\n"
                   "CMD [ ]\n"
                   "ENTRYPOINT [\"x\"] && y\n"    /* not JSON: shell form */
                   "RUN [ -f /etc/os-release ]\n" /* not JSON: shell form */
                   "SHELL [\"/bin/bash\", \"-c\"]\n"
                   "COPY [\"a b\", \"/c d/\"]\n"
                   "COPY [\"a\", \"b\" /c\n"        /* not JSON: words */
                   "VOLUME [\" /data \", \"/x\"]\n" /* trimmed, as BuildKit */
                   "VOLUME /a /b\n"
                   "CMD [\"\\u00e9\\n\\\"\"]\n"
                   "RUN [1e400]\n" /* Go cannot decode it either: shell form */
                   "HEALTHCHECK --interval=5s CMD [\"curl\", \"-f\", \"http://x/\"]\n"
                   "HEALTHCHECK cmd curl -f http://x/ || exit 1\n"
                   "HEALTHCHECK NONE\n")) {
        const struct oci_df_instr *in = df.instrs;
        CHECK(in[1].json);
        CHECK_INT(in[1].n_args, 2);
        CHECK_STR(in[1].args[1], "b c");
        CHECK(in[2].json);
        CHECK_INT(in[2].n_args, 0);
        CHECK(!in[3].json);
        CHECK_STR(in[3].args[0], "[\"x\"] && y");
        CHECK(!in[4].json);
        CHECK_STR(in[4].args[0], "[ -f /etc/os-release ]");
        CHECK(in[5].json);
        CHECK_STR(in[5].args[1], "-c");
        CHECK(in[6].json);
        CHECK_STR(in[6].args[0], "a b");
        CHECK(!in[7].json);
        CHECK_INT(in[7].n_args, 3);
        CHECK_STR(in[7].args[0], "[\"a\",");
        CHECK(in[8].json);
        CHECK_STR(in[8].args[0], "/data");
        CHECK(!in[9].json);
        CHECK_INT(in[9].n_args, 2);
        CHECK_STR(in[10].args[0], "\xC3\xA9\n\"");
        CHECK(!in[11].json);
        CHECK_STR(in[12].args[0], "CMD");
        CHECK(in[12].json);
        CHECK_INT(in[12].n_args, 4);
        CHECK_STR(in[12].args[3], "http://x/");
        CHECK_STR(in[12].flags[0].name, "interval");
        CHECK(!in[13].json);
        CHECK_INT(in[13].n_args, 2);
        CHECK_STR(in[13].args[0], "cmd");
        CHECK_STR(in[13].args[1], "curl -f http://x/ || exit 1");
        CHECK_INT(in[14].n_args, 1);
    }
    oci_df_free(&df);

    CHECK_ERR("FROM img\nCMD [\"a\", 1]\n", OCISYNC_EUSAGE,
              "Dockerfile line 2: when using JSON array syntax, arrays must be comprised of "
              "strings only");
    CHECK_ERR("FROM img\nCOPY [\"a\", [\"b\"]]\n", OCISYNC_EUSAGE, "line 2: when using JSON");
    CHECK_ERR("FROM img\nRUN [null]\n", OCISYNC_EUSAGE, "strings only");
    CHECK_ERR("FROM img\nCMD [\"a\\u0000b\"]\n", OCISYNC_EUSAGE, "NUL");
    CHECK_ERR("FROM img\nSHELL /bin/sh -c\n", OCISYNC_EUSAGE,
              "line 2: SHELL requires the arguments to be in JSON form");
    CHECK_ERR("FROM img\nSHELL []\n", OCISYNC_EUSAGE, "SHELL requires at least one argument");
    CHECK_ERR("FROM img\nHEALTHCHECK\n", OCISYNC_EUSAGE,
              "HEALTHCHECK requires at least one argument");
    CHECK_ERR("FROM img\nHEALTHCHECK CMD\n", OCISYNC_EUSAGE,
              "Missing command after HEALTHCHECK CMD");
    CHECK_ERR("FROM img\nHEALTHCHECK NONE x\n", OCISYNC_EUSAGE,
              "HEALTHCHECK NONE takes no arguments");
    CHECK_ERR("FROM img\nHEALTHCHECK CONNECT x\n", OCISYNC_EUSAGE,
              "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)");
    CHECK_ERR("FROM img\nVOLUME [\" \"]\n", OCISYNC_EUSAGE,
              "VOLUME specified can not be an empty string");
    CHECK_ERR("FROM img\nVOLUME\n", OCISYNC_EUSAGE, "VOLUME requires at least one argument");
}

TEST(env_label_arg)
{
    struct oci_df df;

    if (parse(&df, "ARG BASE=alpine:3 V\n"
                   "FROM $BASE\n"
                   "ENV A=1 B=\"two words\" C='x y' D=a\\ b E=\n"
                   "ENV LEGACY value with  spaces\n"
                   "LABEL \"org.opencontainers.image.title\"=\"t\" version=1\n"
                   "LABEL maintainer Someone <a@b>\n"
                   "ARG X Y=\"1 2\" Z=\n"
                   "ENV \\\n"
                   "    P=1 \\\n"
                   "    Q=2\n")) {
        const struct oci_df_instr *in = &df.instrs[0];
        CHECK_INT(in->kind, OCI_DF_ARG);
        CHECK_INT(in->n_pairs, 2);
        CHECK_STR(in->pairs[0].key, "BASE");
        CHECK_STR(in->pairs[0].value, "alpine:3");
        CHECK_STR(in->pairs[1].key, "V");
        CHECK(in->pairs[1].value == NULL);
        CHECK_STR(df.instrs[1].args[0], "$BASE");

        in = &df.instrs[2];
        CHECK(!in->legacy);
        CHECK_INT(in->n_pairs, 5);
        CHECK_STR(in->pairs[1].value, "\"two words\"");
        CHECK_STR(in->pairs[2].value, "'x y'");
        CHECK_STR(in->pairs[3].value, "a\\ b");
        CHECK_STR(in->pairs[4].key, "E");
        CHECK_STR(in->pairs[4].value, "");

        in = &df.instrs[3];
        CHECK(in->legacy);
        CHECK_INT(in->n_pairs, 1);
        CHECK_STR(in->pairs[0].key, "LEGACY");
        CHECK_STR(in->pairs[0].value, "value with  spaces");

        in = &df.instrs[4];
        CHECK_STR(in->pairs[0].key, "\"org.opencontainers.image.title\"");
        CHECK_STR(in->pairs[0].value, "\"t\"");
        CHECK(df.instrs[5].legacy);
        CHECK_STR(df.instrs[5].pairs[0].value, "Someone <a@b>");

        in = &df.instrs[6];
        CHECK_INT(in->n_pairs, 3);
        CHECK(in->pairs[0].value == NULL);
        CHECK_STR(in->pairs[1].value, "\"1 2\"");
        CHECK_STR(in->pairs[2].value, "");

        in = &df.instrs[7];
        CHECK_INT(in->n_pairs, 2);
        CHECK_STR(in->pairs[1].key, "Q");
        CHECK_INT(in->end_line, 10);
    }
    oci_df_free(&df);

    CHECK_ERR("FROM busybox\n\nENV PATH\n", OCISYNC_EUSAGE,
              "Dockerfile line 3: ENV must have two arguments");
    CHECK_ERR("FROM img\nENV\n", OCISYNC_EUSAGE, "ENV requires at least one argument");
    CHECK_ERR("FROM img\nENV A=1 B\n", OCISYNC_EUSAGE,
              "Syntax error - can't find = in \"B\". Must be of the form: name=value");
    CHECK_ERR("FROM img\nENV =x\n", OCISYNC_EUSAGE, "ENV names can not be blank");
    CHECK_ERR("FROM img\nLABEL\n", OCISYNC_EUSAGE, "LABEL requires at least one argument");
    CHECK_ERR("ARG\nFROM img\n", OCISYNC_EUSAGE, "line 1: ARG requires at least one argument");
    CHECK_ERR("FROM img\nARG =x\n", OCISYNC_EUSAGE, "ARG names can not be blank");
}

TEST(from)
{
    struct oci_df df;

    if (parse(&df, "FROM img\nFROM img as b-1_x.y\nFROM --platform=linux/arm64 img AS Z\n")) {
        CHECK(df.instrs[0].stage == NULL);
        CHECK_INT(df.instrs[0].n_args, 1);
        CHECK_STR(df.instrs[1].stage, "b-1_x.y");
        CHECK_STR(df.instrs[1].args[1], "as");
        CHECK_STR(df.instrs[2].stage, "z");
        CHECK_STR(df.instrs[2].args[2], "Z");
    }
    oci_df_free(&df);

    CHECK_ERR("FROM\n", OCISYNC_EUSAGE, "Dockerfile line 1: FROM requires either one or three");
    CHECK_ERR("FROM a b\n", OCISYNC_EUSAGE, "FROM requires either one or three arguments");
    CHECK_ERR("FROM a to b\n", OCISYNC_EUSAGE, "FROM requires either one or three arguments");
    CHECK_ERR("FROM a AS b c\n", OCISYNC_EUSAGE, "FROM requires either one or three arguments");
    CHECK_ERR("FROM img\n\nFROM a AS 1st\n", OCISYNC_EUSAGE,
              "Dockerfile line 3: invalid name for build stage: \"1st\"");
    CHECK_ERR("FROM a AS b/c\n", OCISYNC_EUSAGE, "invalid name for build stage");
    /* Only ARG may come before the first FROM; a Dockerfile needs a FROM. */
    CHECK_ERR("ARG A\nRUN x\nFROM img\n", OCISYNC_EUSAGE,
              "Dockerfile line 2: no build stage in current context");
    CHECK_ERR("ARG A\n", OCISYNC_EUSAGE, "no stages to build");
    CHECK_ERR("", OCISYNC_EUSAGE, "file with no instructions");
    CHECK_ERR("# Hello\n# These are just comments\n\n", OCISYNC_EUSAGE,
              "file with no instructions");
}

TEST(other_instructions)
{
    struct oci_df df;

    if (parse(&df, "FROM img\n"
                   "USER app:app\n"
                   "STOPSIGNAL SIGTERM\n"
                   "EXPOSE 80/tcp\t443 ${P}\n"
                   "MAINTAINER Jane Doe <j@d>\n"
                   "ONBUILD RUN echo hi\n"
                   "ONBUILD COPY [\"a\", \"b\"]\n")) {
        CHECK_STR(df.instrs[1].args[0], "app:app");
        CHECK_STR(df.instrs[2].args[0], "SIGTERM");
        CHECK_INT(df.instrs[3].n_args, 3);
        CHECK_STR(df.instrs[3].args[2], "${P}");
        CHECK_STR(df.instrs[4].args[0], "Jane Doe <j@d>");
        const struct oci_df_instr *in = &df.instrs[5];
        CHECK_INT(in->kind, OCI_DF_ONBUILD);
        CHECK(in->sub != NULL && in->sub->kind == OCI_DF_RUN);
        CHECK_STR(in->sub->original, "RUN echo hi");
        CHECK_STR(in->sub->args[0], "echo hi");
        CHECK_INT(in->sub->line, 6);
        CHECK(df.instrs[6].sub->json);
    }
    oci_df_free(&df);

    CHECK_ERR("FROM img\nUSER\n", OCISYNC_EUSAGE, "USER requires exactly one argument");
    CHECK_ERR("FROM img\nWORKDIR\n", OCISYNC_EUSAGE, "WORKDIR requires exactly one argument");
    CHECK_ERR("FROM img\nSTOPSIGNAL\n", OCISYNC_EUSAGE, "STOPSIGNAL requires exactly one");
    CHECK_ERR("FROM img\nMAINTAINER\n", OCISYNC_EUSAGE, "MAINTAINER requires exactly one");
    CHECK_ERR("FROM img\nEXPOSE\n", OCISYNC_EUSAGE, "EXPOSE requires at least one argument");
    CHECK_ERR("FROM img\nCOPY a\n", OCISYNC_EUSAGE,
              "line 2: COPY requires at least two arguments, but only one was provided");
    CHECK_ERR("FROM img\nADD [\"a\"]\n", OCISYNC_EUSAGE, "ADD requires at least two arguments");
    CHECK_ERR("FROM img\nONBUILD\n", OCISYNC_EUSAGE, "ONBUILD requires at least one argument");
    CHECK_ERR("FROM img\nONBUILD ONBUILD RUN x\n", OCISYNC_EUSAGE,
              "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    CHECK_ERR("FROM img\nONBUILD from x\n", OCISYNC_EUSAGE,
              "FROM isn't allowed as an ONBUILD trigger");
    CHECK_ERR("FROM img\nONBUILD MAINTAINER x\n", OCISYNC_EUSAGE, "MAINTAINER isn't allowed");
    CHECK_ERR("FROM img\nRUN a\n\n  FORM b \\\n c\n", OCISYNC_EUSAGE,
              "Dockerfile line 4: unknown instruction: FORM");
    CHECK_ERR("FROM img\nONBUILD BOGUS x\n", OCISYNC_EUSAGE, "line 2: unknown instruction: BOGUS");
    CHECK_ERR("FROM img\n\\\n", OCISYNC_EUSAGE, "line 2: unknown instruction: ");
}

/* ---------------------------------------------------------------------------------------------
 * Heredocs
 */

/* moby/buildkit parser/parser_heredoc_test.go TestParseExtractsHeredoc (USER's body line out). */
static const char heredoc_file[] = "\n"
                                   "FROM alpine:3.6\n"
                                   "\n"
                                   "ENV NAME=me\n"
                                   "\n"
                                   "RUN ls\n"
                                   "\n"
                                   "USER <<INVALID\n"
                                   "\n"
                                   "RUN <<EMPTY\n"
                                   "EMPTY\n"
                                   "\n"
                                   "RUN 3<<EMPTY2\n"
                                   "EMPTY2\n"
                                   "\n"
                                   "RUN \"<<NOHEREDOC\"\n"
                                   "\n"
                                   "RUN <<INDENT\n"
                                   "\tfoo\n"
                                   "\tbar\n"
                                   "INDENT\n"
                                   "\n"
                                   "RUN <<-UNINDENT\n"
                                   "\tbaz\n"
                                   "\tquux\n"
                                   "UNINDENT\n"
                                   "\n"
                                   "RUN <<-UNINDENT2\n"
                                   "\tbaz\n"
                                   "\tquux\n"
                                   "\tUNINDENT2\n"
                                   "\n"
                                   "RUN <<-EXPAND\n"
                                   "\texpand $NAME\n"
                                   "EXPAND\n"
                                   "\n"
                                   "RUN <<-'NOEXPAND'\n"
                                   "\tdon't expand $NAME\n"
                                   "NOEXPAND\n"
                                   "\n"
                                   "RUN <<COPY\n"
                                   "echo hello world\n"
                                   "echo foo bar\n"
                                   "COPY\n"
                                   "\n"
                                   "RUN <<COMMENT\n"
                                   "# internal comment\n"
                                   "echo hello world\n"
                                   "echo foo bar # trailing comment\n"
                                   "COMMENT\n"
                                   "\n"
                                   "RUN --mount=type=cache,target=/foo <<MOUNT\n"
                                   "echo hello\n"
                                   "MOUNT\n"
                                   "\n"
                                   "COPY <<FILE1 <<FILE2 /dest\n"
                                   "content 1\n"
                                   "FILE1\n"
                                   "content 2\n"
                                   "FILE2\n"
                                   "\n"
                                   "COPY <<EOF /quotes\n"
                                   "\"foo\"\n"
                                   "'bar'\n"
                                   "EOF\n"
                                   "\n"
                                   "COPY <<X <<Y /dest\n"
                                   "Y\n"
                                   "X\n"
                                   "X\n"
                                   "Y\n"
                                   "\n"
                                   "RUN <<COMPLEX python3\n"
                                   "print('hello world')\n"
                                   "COMPLEX\n"
                                   "\n"
                                   "COPY <<file.txt /dest\n"
                                   "hello world\n"
                                   "file.txt\n"
                                   "\n"
                                   "RUN <<eo'f'\n"
                                   "echo foo\n"
                                   "eof\n"
                                   "\n"
                                   "RUN <<eo\\'f\n"
                                   "echo foo\n"
                                   "eo'f\n"
                                   "\n"
                                   "RUN <<'e'o\\'f\n"
                                   "echo foo\n"
                                   "eo'f\n"
                                   "\n"
                                   "RUN <<'one two'\n"
                                   "echo bar\n"
                                   "one two\n"
                                   "\n"
                                   "RUN <<$EOF\n"
                                   "$EOF\n"
                                   "\n"
                                   "RUN <<  EOF\n"
                                   "EOF\n"
                                   "\n"
                                   "RUN <<  EOF  > foo\n"
                                   "EOF\n"
                                   "\t";

struct want_heredoc {
    const char *name, *content;
    bool expand, chomp;
    unsigned fd;
};

static const struct {
    size_t n;
    struct want_heredoc h[2];
} heredoc_want[] = {
    {0, {{0}}}, /* ENV */
    {0, {{0}}}, /* RUN ls */
    {0, {{0}}}, /* USER <<INVALID */
    {1, {{"EMPTY", "", true, false, 0}}},
    {1, {{"EMPTY2", "", true, false, 3}}},
    {0, {{0}}}, /* RUN "<<NOHEREDOC" */
    {1, {{"INDENT", "\tfoo\n\tbar\n", true, false, 0}}},
    {1, {{"UNINDENT", "\tbaz\n\tquux\n", true, true, 0}}},
    {1, {{"UNINDENT2", "\tbaz\n\tquux\n", true, true, 0}}},
    {1, {{"EXPAND", "\texpand $NAME\n", true, true, 0}}},
    {1, {{"NOEXPAND", "\tdon't expand $NAME\n", false, true, 0}}},
    {1, {{"COPY", "echo hello world\necho foo bar\n", true, false, 0}}},
    {1,
     {{"COMMENT", "# internal comment\necho hello world\necho foo bar # trailing comment\n", true,
       false, 0}}},
    {1, {{"MOUNT", "echo hello\n", true, false, 0}}},
    {2, {{"FILE1", "content 1\n", true, false, 0}, {"FILE2", "content 2\n", true, false, 0}}},
    {1, {{"EOF", "\"foo\"\n'bar'\n", true, false, 0}}},
    {2, {{"X", "Y\n", true, false, 0}, {"Y", "X\n", true, false, 0}}},
    {1, {{"COMPLEX", "print('hello world')\n", true, false, 0}}},
    {1, {{"file.txt", "hello world\n", true, false, 0}}},
    {1, {{"eof", "echo foo\n", false, false, 0}}},
    {1, {{"eo'f", "echo foo\n", true, false, 0}}},
    {1, {{"eo'f", "echo foo\n", false, false, 0}}},
    {1, {{"one two", "echo bar\n", false, false, 0}}},
    {1, {{"$EOF", "", true, false, 0}}},
    {1, {{"EOF", "", true, false, 0}}},
    {1, {{"EOF", "", true, false, 0}}},
};

TEST(heredocs_buildkit)
{
    struct oci_df df;

    if (!parse(&df, heredoc_file))
        return;
    CHECK_INT(df.n_instrs, N_OF(heredoc_want) + 1);
    for (size_t i = 0; i < N_OF(heredoc_want) && i + 1 < df.n_instrs; i++) {
        const struct oci_df_instr *in = &df.instrs[i + 1];
        CHECK_INT(in->n_heredocs, heredoc_want[i].n);
        for (size_t k = 0; k < in->n_heredocs && k < heredoc_want[i].n; k++) {
            const struct want_heredoc *w = &heredoc_want[i].h[k];
            CHECK_STR(in->heredocs[k].name, w->name);
            CHECK_STR(in->heredocs[k].content, w->content);
            CHECK_INT(in->heredocs[k].expand, w->expand);
            CHECK_INT(in->heredocs[k].chomp, w->chomp);
            CHECK_INT(in->heredocs[k].fd, w->fd);
        }
    }
    /* The word list keeps the markers, so that the executor can tell them from files. */
    const struct oci_df_instr *copy = &df.instrs[15];
    CHECK_INT(copy->kind, OCI_DF_COPY);
    CHECK_INT(copy->n_args, 3);
    CHECK_STR(copy->args[0], "<<FILE1");
    CHECK_INT(copy->line, 56);
    CHECK_INT(copy->end_line, 60);
    oci_df_free(&df);
}

TEST(heredocs)
{
    struct oci_df df;
    char *s;

    if (parse(&df, "FROM img\n"
                   "RUN [\"<<EOF\"]\n"
                   "COPY <<-EOF /a\n"
                   "\t\tline 1\n"
                   "\tline\t2\n"
                   "\tEOF\n"
                   "ONBUILD RUN <<X\n"
                   "body\n"
                   "X\n"
                   "RUN cat <<A >/a \\\n"
                   " && cat <<\"B\"\r\n"
                   "a\r\n"
                   "A\r\n"
                   "b ${X}\n"
                   "B\n"
                   "CMD <<X\n")) {
        CHECK_INT(df.instrs[1].n_heredocs, 0);
        const struct oci_df_instr *in = &df.instrs[2];
        CHECK_INT(in->n_heredocs, 1);
        CHECK_STR(in->heredocs[0].content, "\t\tline 1\n\tline\t2\n");
        CHECK(oci_df_chomp(in->heredocs[0].content, &s) == 0);
        CHECK_STR(s, "line 1\nline\t2\n");
        free(s);
        CHECK(oci_df_heredoc_by_name(in, "EOF") == &in->heredocs[0]);
        CHECK(oci_df_heredoc_by_name(in, "eof") == NULL);
        CHECK_INT(in->end_line, 6);

        in = &df.instrs[3];
        CHECK_INT(in->n_heredocs, 0);
        CHECK_INT(in->sub->n_heredocs, 1);
        CHECK_STR(in->sub->heredocs[0].content, "body\n");
        CHECK_INT(in->end_line, 9);

        in = &df.instrs[4];
        CHECK_INT(in->line, 10);
        CHECK_INT(in->end_line, 15);
        CHECK_INT(in->n_heredocs, 2);
        CHECK_STR(in->heredocs[0].content, "a\r\n");
        CHECK(in->heredocs[0].expand);
        CHECK_STR(in->heredocs[1].name, "B");
        CHECK_STR(in->heredocs[1].content, "b ${X}\n");
        CHECK(!in->heredocs[1].expand);
        CHECK_STR(in->args[0], "cat <<A >/a  && cat <<\"B\"");

        /* CMD takes no heredocs: "<<X" is just text. */
        CHECK_INT(df.instrs[5].n_heredocs, 0);
    }
    oci_df_free(&df);

    CHECK_ERR("FROM img\nRUN <<EOF\nx\nEOFF\n", OCISYNC_EUSAGE,
              "Dockerfile line 2: unterminated heredoc EOF");
    CHECK_ERR("FROM img\nCOPY <<A <<B /x\na\nA\nb\n", OCISYNC_EUSAGE, "unterminated heredoc B");
    /* Without "-" the delimiter must start the line. */
    CHECK_ERR("FROM img\nRUN <<EOF\n\tEOF\n", OCISYNC_EUSAGE, "unterminated heredoc");
    CHECK_ERR("COPY /foo <<EOF\nEOF", OCISYNC_EUSAGE, "no build stage");
    CHECK_ERR("FROM img\nCOPY /foo <<EOF\nEOF", OCISYNC_EUSAGE,
              "COPY cannot accept a heredoc as a destination");
}

TEST(heredoc_words)
{
    /* moby/buildkit parser/parser_heredoc_test.go TestParseHeredocHelpers. */
    static const char *const valid[] = {
        "<<EOF",      "<<'EOF'",   "<<\"EOF\"", "<<-EOF",  "<<-'EOF'",
        "<<-\"EOF\"", "<<EO\"F\"", "<< EOF",    "<<- EOF",
    };
    static const char *const invalid[] = {"<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""};
    static const char *const not_heredocs[] = {"",     "EOF",    "<<",       "<<-",
                                               "<EOF", "<<<EOF", "<<EOF sh", "a<<EOF"};
    struct oci_df_heredoc h;

    for (size_t i = 0; i < N_OF(valid); i++) {
        CHECK_INT(oci_df_heredoc_word(valid[i], &h), 1);
        CHECK_STR(h.name, "EOF");
        free(h.name);
    }
    for (size_t i = 0; i < N_OF(invalid); i++)
        CHECK_INT(oci_df_heredoc_word(invalid[i], &h), OCISYNC_EUSAGE);
    for (size_t i = 0; i < N_OF(not_heredocs); i++) {
        CHECK_INT(oci_df_heredoc_word(not_heredocs[i], &h), 0);
        CHECK(h.name == NULL);
    }
    CHECK_INT(oci_df_heredoc_word("<<-'E'OF", &h), 1);
    CHECK(h.chomp && !h.expand && h.fd == 0);
    free(h.name);
    CHECK_INT(oci_df_heredoc_word("12<< -EOF", &h), 1);
    CHECK_STR(h.name, "-EOF");
    CHECK(!h.chomp && h.expand && h.fd == 12);
    free(h.name);
}

/* ---------------------------------------------------------------------------------------------
 * Limits
 */

TEST(limits)
{
    struct test_buf b = {0};
    struct oci_df df;
    char err[256];

    /* The file. */
    char *big = malloc(OCI_DF_MAX + 1);
    memset(big, '#', OCI_DF_MAX + 1);
    CHECK_INT(oci_df_parse(&df, big, OCI_DF_MAX + 1, err, sizeof(err)), OCISYNC_ETOOBIG);
    free(big);

    /* A physical line: 65535 bytes are fine, 65536 are not (Go's bufio.Scanner). */
    add_str(&b, "FROM img\nLABEL a=");
    for (size_t i = 0; i < OCI_DF_LINE_MAX - 8; i++)
        test_buf_add(&b, "x", 1);
    CHECK_INT(oci_df_parse(&df, (const char *)b.data, b.len, err, sizeof(err)), 0);
    oci_df_free(&df);
    test_buf_add(&b, "\n", 1);
    CHECK_INT(oci_df_parse(&df, (const char *)b.data, b.len, err, sizeof(err)), 0);
    oci_df_free(&df);
    b.len--;
    test_buf_add(&b, "y", 1);
    check_err((const char *)b.data, b.len, OCISYNC_ETOOBIG, "Dockerfile line 2: the line is",
              __LINE__);
    test_buf_free(&b);

    /* A continuation may join many lines into one long instruction. */
    add_str(&b, "FROM img\nRUN true");
    for (int i = 0; i < 2000; i++)
        add_str(&b, " \\\n && echo 0123456789012345678901234567890123456789");
    test_buf_add(&b, "\n", 1);
    CHECK_INT(oci_df_parse(&df, (const char *)b.data, b.len, err, sizeof(err)), 0);
    CHECK(df.n_instrs == 2 && strlen(df.instrs[1].raw) > 65536);
    oci_df_free(&df);
    test_buf_free(&b);

    /* Instructions. */
    add_str(&b, "FROM img\n");
    for (int i = 1; i < OCI_DF_MAX_INSTRS; i++)
        add_str(&b, "USER u\n");
    CHECK_INT(oci_df_parse(&df, (const char *)b.data, b.len, err, sizeof(err)), 0);
    CHECK_INT(df.n_instrs, OCI_DF_MAX_INSTRS);
    oci_df_free(&df);
    add_str(&b, "USER u\n");
    check_err((const char *)b.data, b.len, OCISYNC_ETOOBIG, "Dockerfile line 16385: more than",
              __LINE__);
    test_buf_free(&b);

    /* JSON values. */
    add_str(&b, "FROM img\nCMD [\"a\"");
    for (int i = 0; i < OCI_DF_JSON_MAX_VALUES; i++)
        add_str(&b, ",1 \\\n");
    add_str(&b, "]\n");
    check_err((const char *)b.data, b.len, OCISYNC_ETOOBIG, "line 2: the JSON array holds",
              __LINE__);
    test_buf_free(&b);

    /* A heredoc body runs to the end of the file at most. */
    add_str(&b, "FROM img\nCOPY <<EOF /x\n");
    for (int i = 0; i < 100000; i++)
        add_str(&b, "0123456789012345678901234567890123456789\n");
    add_str(&b, "EOF\n");
    CHECK_INT(oci_df_parse(&df, (const char *)b.data, b.len, err, sizeof(err)), 0);
    CHECK(df.n_instrs == 2 && strlen(df.instrs[1].heredocs[0].content) == 4100000);
    CHECK_INT(df.instrs[1].end_line, 100003);
    oci_df_free(&df);
    test_buf_free(&b);

    /* NUL bytes are refused (strings here end at one). */
    check_err("FROM img\nRUN a\0b\n", 16, OCISYNC_EUSAGE, "Dockerfile line 2: holds a NUL",
              __LINE__);
    CHECK_INT(oci_df_parse(&df, NULL, 1, err, sizeof(err)), OCISYNC_EUSAGE);
}

/* ---------------------------------------------------------------------------------------------
 * Expansion
 */

TEST(env_var_test)
{
    static const char *const vars[] = {"PWD=/home", "SHELL=bash",
                                       "KOREAN=\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", "NULL="};
    for (size_t i = 0; i < N_OF(env_var_test); i++)
        CHECK_EXPAND(env_var_test[i].word, vars, env_var_test[i].want);
}

TEST(words_test)
{
    /* As TestShellParser4Words: "word | want,words" lines, ENV lines add variables. */
    const char *vars[16];
    size_t n_vars = 0;

    for (size_t i = 0; i < N_OF(words_test); i++) {
        const char *line = words_test[i];
        if (strncmp(line, "ENV ", 4) == 0) {
            line += 3;
            while (*line == ' ')
                line++;
            vars[n_vars++] = line;
            continue;
        }
        const char *bar = strchr(line, '|');
        char word[256], want[256], got[512] = "";
        size_t wl = (size_t)(bar - line);
        memcpy(word, line, wl);
        while (wl > 0 && word[wl - 1] == ' ')
            wl--;
        word[wl] = '\0';
        bar++;
        while (*bar == ' ')
            bar++;
        snprintf(want, sizeof(want), "%s", bar);

        struct env e = {vars, n_vars};
        char **w, err[256];
        size_t n;
        int rc = oci_df_expand_words(word, '\\', lookup, &e, &w, &n, err, sizeof(err));
        if (rc != 0)
            snprintf(got, sizeof(got), "error");
        for (size_t k = 0; rc == 0 && k < n; k++) {
            if (k > 0)
                strcat(got, ",");
            strcat(got, w[k]);
        }
        oci_df_words_free(w, n);
        if (strcmp(got, want) != 0)
            fprintf(stderr, "words of %s\n", word);
        CHECK_STR(got, want);
    }
}

TEST(modifiers)
{
    /* moby/buildkit shell/lex_test.go TestProcessWithMatches. */
    static const char *const foo_bar[] = {"FOO=xxx", "BAR="};
    static const char *const none[] = {"DUMMY=dummy"};
    static const char *const xxyy[] = {"FOO=xxyy"};

    CHECK_EXPAND("x ${UNUSED}", none, "x ");
    CHECK_EXPAND("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", foo_bar, "xxx  ccc");
    CHECK_EXPAND("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", foo_bar, "xxx bbb ccc");
    CHECK_EXPAND("${FOO:-}", foo_bar, "xxx");
    CHECK_EXPAND("${BAZ:-}", foo_bar, "");
    CHECK_EXPAND("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", foo_bar, "aaa bbb ");
    CHECK_EXPAND("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", foo_bar, "aaa  ");
    CHECK_EXPAND("${FOO?aaa}", foo_bar, "xxx");
    CHECK_EXPAND("${BAR?bbb}", foo_bar, "");
    CHECK_EXPAND("${BAZ?ccc}", foo_bar, NULL);
    CHECK_EXPAND("${FOO:?aaa}", foo_bar, "xxx");
    CHECK_EXPAND("${BAR:?bbb}", foo_bar, NULL);
    CHECK_EXPAND("${BAZ:?ccc}", foo_bar, NULL);
    CHECK_EXPAND("${BAZ:?}", foo_bar, NULL);
    CHECK_EXPAND("${FOO=aaa}", foo_bar, NULL);
    CHECK_EXPAND("${FOO=:aaa}", foo_bar, NULL);
    CHECK_EXPAND("${FOO=}", none, NULL);
    {
        static const char *const v[] = {"FOO=()[]{}^$.*?|\\x"};
        CHECK_EXPAND("${FOO#()[]{\\}^$.\\*\\?|\\\\}", v, "x");
    }
    {
        static const char *const v[] = {"FOO=xx**"};
        CHECK_EXPAND("${FOO%%\\**}", v, "xx");
    }
    CHECK_EXPAND("${FOO#*x*y}", xxyy, "y");
    CHECK_EXPAND("${FOO#*}", xxyy, "xxyy");
    {
        static const char *const v[] = {"FOO=xxyy", "BAR=x"};
        static const char *const e[] = {"FOO=xxyy", "BAR="};
        CHECK_EXPAND("${FOO#$BAR}", v, "xyy");
        CHECK_EXPAND("${FOO#$BAR}", e, "xxyy");
        CHECK_EXPAND("${FOO%%$BAR}", e, "xxyy");
        CHECK_EXPAND("${FOO/$BAR/ww}", e, "wwxxyy");
    }
    CHECK_EXPAND("${FOO#}", xxyy, "xxyy");
    CHECK_EXPAND("${FOO##*x}", xxyy, "yy");
    CHECK_EXPAND("${FOO##}", xxyy, "xxyy");
    {
        static const char *const v[] = {"FOO=???y"};
        CHECK_EXPAND("${FOO#?\\?}", v, "?y");
    }
    CHECK_EXPAND("${ABC:-.}${FOO%x}${ABC:-.}", xxyy, ".xxyy.");
    {
        static const char *const v[] = {"FOO=a***yy*"};
        CHECK_EXPAND("${FOO%%\\**\\*}", v, "a");
    }
    CHECK_EXPAND("${FOO%}", xxyy, "xxyy");
    CHECK_EXPAND("${FOO:#}", none, NULL);
    CHECK_EXPAND("${FOO:##}", none, NULL);
    CHECK_EXPAND("${FOO:%}", none, NULL);
    CHECK_EXPAND("${FOO:%%}", none, NULL);
    {
        static const char *const v[] = {"FOO=/foo*/*/*.txt", "NEEDLE=\\*/"};
        CHECK_EXPAND("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", v, "/foo.*/*.txt - /foo..*.txt");
    }
    {
        static const char *const v[] = {"FOO=/tmp/tmp/bar.txt", "NEEDLE=/tmp"};
        CHECK_EXPAND("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", v, "/tmp/bar.txt - /bar.txt");
    }
    {
        static const char *const v[] = {"FOO=/a/foo/b/c.txt", "NEEDLE=/?/", "REPLACEMENT=/"};
        CHECK_EXPAND("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}", v,
                     "/foo/b/c.txt - /foo/c.txt");
    }
    {
        static const char *const v[] = {"FOO=http://google.de", "NEEDLE=http://",
                                        "REPLACEMENT=https://"};
        CHECK_EXPAND("${FOO/$NEEDLE/$REPLACEMENT}", v, "https://google.de");
    }
    {
        static const char *const v[] = {"FOO=/tmp/foo.txt"};
        CHECK_EXPAND("${FOO//\\//\\/}", v, "\\/tmp\\/foo.txt");
    }
    CHECK_EXPAND("${FOO//ww}", xxyy, NULL);
    CHECK_EXPAND("${FOO//}", xxyy, NULL);
    CHECK_EXPAND("${FOO///}", xxyy, "xxyy");
    CHECK_EXPAND("${FOO///}", none, "");
    CHECK_EXPAND("${FOO/x}", xxyy, NULL);

    /* TestShellParserMandatoryEnvVars. */
    static const char *const set[] = {"VAR=plain", "ARG=x"};
    static const char *const empty[] = {"VAR=", "ARG=x"};
    static const char *const unset[] = {"ARG=x"};
    CHECK_EXPAND("${VAR:?message here$ARG}", set, "plain");
    CHECK_EXPAND("${VAR:?message here$ARG}", empty, NULL);
    CHECK_EXPAND("${VAR:?message here$ARG}", unset, NULL);
    CHECK_EXPAND("${VAR?message here$ARG}", set, "plain");
    CHECK_EXPAND("${VAR?message here$ARG}", empty, "");
    CHECK_EXPAND("${VAR?message here$ARG}", unset, NULL);

    struct env e = {unset, N_OF(unset)};
    char *out = NULL, err[256];
    CHECK_INT(oci_df_expand("${VAR:?message here$ARG}", '\\', lookup, &e, &out, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK(strstr(err, "VAR: message herex") != NULL);
    CHECK_INT(oci_df_expand("a${VAR?}", '\\', lookup, &e, &out, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "failed to process \"a${VAR?}\": VAR: is not allowed to be unset");
    CHECK(out == NULL);
}

TEST(expand_more)
{
    static const char *const v[] = {"A=a", "SP=x  y", "NL=a\nb", "E=", "P=/usr/local/bin"};
    static const char *const none[] = {"Z=z"};

    /* Quotes, escapes, nesting, unset variables. */
    CHECK_EXPAND("${A:-${B:-c}}-${B:-${A}}-${B:-${C:-d}}", v, "a-a-d");
    CHECK_EXPAND("$B${B}\"$B\"x", v, "x");
    CHECK_EXPAND("'$A'\"$A\"\\$A$A", v, "$Aa$Aa");
    CHECK_EXPAND("\"a\\b\\\"\\$\\\\\"", v, "a\\b\"$\\");
    CHECK_EXPAND("\"$SP\"", v, "x  y");
    CHECK_EXPAND("${A}b ${A}", v, "ab a");
    CHECK_EXPAND("${A:+x y}", v, "x y");
    CHECK_EXPAND("${A:-'}'}", none, "}");
    CHECK_EXPAND("${A:-\\}}", none, "}");
    CHECK_EXPAND("$", v, "$");
    CHECK_EXPAND("a$", v, "a$");
    CHECK_EXPAND("$-x", v, "x");
    CHECK_EXPAND("${A", v, NULL);
    CHECK_EXPAND("${A:}", v, NULL);
    CHECK_EXPAND("${A:}}", v, NULL);
    CHECK_EXPAND("${A!}", v, NULL);
    /* Patterns: * and ? do not cross a newline (Go's "."), suffixes, unicode. */
    CHECK_EXPAND("${NL#*}", v, "a\nb");
    CHECK_EXPAND("${NL##*}", v, "\nb");
    CHECK_EXPAND("${NL#a?}", v, "a\nb");
    CHECK_EXPAND("${NL%\n*}", v, "a");
    CHECK_EXPAND("${P##*/}", v, "bin");
    CHECK_EXPAND("${P#*/}", v, "usr/local/bin");
    CHECK_EXPAND("${P%/*}", v, "/usr/local");
    CHECK_EXPAND("${P%%/*}", v, "");
    CHECK_EXPAND("${P%?in}", v, "/usr/local/");
    CHECK_EXPAND("${P/\\/local/}", v, "/usr/bin");
    CHECK_EXPAND("${P//l/L}", v, "/usr/LocaL/bin");
    CHECK_EXPAND("${P/*l/-}", v, "-/bin");
    CHECK_EXPAND("${P//?/.}", v, "..............");
    CHECK_EXPAND("${E//*/x}", v, "x");
    CHECK_EXPAND("${A//*/x}", v, "x");
    CHECK_EXPAND("${A#\\x}", v, NULL);
    {
        static const char *const u[] = {"U=\xC3\xA9t\xC3\xA9"};
        CHECK_EXPAND("${U#?}", u, "t\xC3\xA9");
        CHECK_EXPAND("${U%?}", u, "\xC3\xA9t");
        CHECK_EXPAND("${U/t/\xE2\x82\xAC}", u, "\xC3\xA9\xE2\x82\xAC\xC3\xA9");
    }
    /* Go's ReplaceAllString expands $0 (the match) and $$ in the replacement; "/" does not. */
    CHECK_EXPAND("${A//a/\\$0\\$0}", v, "\\a\\a");
    CHECK_EXPAND("${A/a/\\$0}", v, "\\$0");
    CHECK_EXPAND("${A//a/[\\$0\\$1]}", v, "[\\a\\]");
    CHECK_EXPAND("${A//a/<\\$$>}", v, "<\\$>");
    /* "}" ends the replacement before Go sees "${0}". */
    CHECK_EXPAND("${A//a/[\\${0}\\$1]}", v, "[\\${0$1]}");
    /* The backtick as escape character. */
    check_expand("a`$A`\"`", '`', v, N_OF(v), "a$A\"", __LINE__);
    check_expand("\"`$A\\$A\"", '`', v, N_OF(v), "$A\\a", __LINE__);
    check_expand("a\\b", '`', v, N_OF(v), "a\\b", __LINE__);

    /* No variables at all. */
    char *out, err[256];
    CHECK_INT(oci_df_expand("${X:-d}$Y", '\\', NULL, NULL, &out, err, sizeof(err)), 0);
    CHECK_STR(out, "d");
    free(out);
}

TEST(expand_words_and_heredoc)
{
    static const char *const v[] = {"P=80/tcp 443", "E="};
    struct env e = {v, N_OF(v)};
    char **w, *out, err[256];
    size_t n;

    CHECK_INT(oci_df_expand_words("$P \"8 0\" ${E} 9", '\\', lookup, &e, &w, &n, err, sizeof(err)),
              0);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(w[0], "80/tcp");
        CHECK_STR(w[1], "443");
        CHECK_STR(w[2], "8 0");
        CHECK_STR(w[3], "9");
    }
    oci_df_words_free(w, n);
    /* BuildKit's shared words buffer: a nested ${...} word drops what came before it. */
    CHECK_INT(oci_df_expand_words("a${X:-b}c d", '\\', lookup, &e, &w, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(w[0], "bc");
        CHECK_STR(w[1], "d");
    }
    oci_df_words_free(w, n);
    CHECK_INT(oci_df_expand_words("\"a", '\\', lookup, &e, &w, &n, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK(w == NULL && n == 0);

    /* Heredoc bodies: quotes are text, variables and backslashes act. */
    CHECK_INT(oci_df_expand_heredoc("echo '$P' \"${E:-x}\" \\$P a\\nb\n", lookup, &e, &out, err,
                                    sizeof(err)),
              0);
    CHECK_STR(out, "echo '80/tcp 443' \"x\" $P anb\n");
    free(out);
}

/* A lookup that answers with a value of (size_t)arg bytes. */
static const char *big_value(void *arg, const char *name, size_t len)
{
    static char *v;
    size_t n = (size_t)arg;
    if (v == NULL || strlen(v) != n) {
        free(v);
        v = malloc(n + 1);
        memset(v, 'a', n);
        v[n] = '\0';
    }
    return len == 1 && name[0] == 'V' ? v : NULL;
}

TEST(expand_limits)
{
    struct test_buf b = {0};
    char *out = NULL, err[256];

    /* Output. */
    CHECK_INT(oci_df_expand("$V", '\\', big_value, (void *)(size_t)OCI_DF_EXPAND_MAX, &out, err,
                            sizeof(err)),
              0);
    free(out);
    CHECK_INT(oci_df_expand("$V.", '\\', big_value, (void *)(size_t)OCI_DF_EXPAND_MAX, &out, err,
                            sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK(out == NULL && strstr(err, "longer than") != NULL);
    /* Nesting. */
    for (int i = 0; i < 65; i++)
        add_str(&b, "${A:-");
    for (int i = 0; i < 65; i++)
        add_str(&b, "}");
    test_buf_add(&b, "", 1);
    CHECK_INT(oci_df_expand((const char *)b.data, '\\', NULL, NULL, &out, err, sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK(strstr(err, "nested deeper") != NULL);
    test_buf_free(&b);
    for (int i = 0; i < 64; i++)
        add_str(&b, "${A:-");
    add_str(&b, "x");
    for (int i = 0; i < 64; i++)
        add_str(&b, "}");
    test_buf_add(&b, "", 1);
    CHECK_INT(oci_df_expand((const char *)b.data, '\\', NULL, NULL, &out, err, sizeof(err)), 0);
    CHECK_STR(out, "x");
    free(out);
    test_buf_free(&b);
    /* A costly pattern: every step is bounded, and the total is capped. */
    add_str(&b, "${V//");
    for (int i = 0; i < 2000; i++)
        add_str(&b, "*a");
    add_str(&b, "b/x}");
    test_buf_add(&b, "", 1);
    CHECK_INT(oci_df_expand((const char *)b.data, '\\', big_value, (void *)(size_t)100000, &out,
                            err, sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK(strstr(err, "too costly") != NULL);
    test_buf_free(&b);
    /* ...while an ordinary one over a long value is quick. */
    CHECK_INT(oci_df_expand("${V%%a*}${V#*a}", '\\', big_value, (void *)(size_t)100000, &out, err,
                            sizeof(err)),
              0);
    CHECK_INT(strlen(out), 99999);
    free(out);
    big_value((void *)(size_t)0, "", 0);
}

TEST(kind_names)
{
    CHECK_STR(oci_df_kind_name(OCI_DF_FROM), "FROM");
    CHECK_STR(oci_df_kind_name(OCI_DF_HEALTHCHECK), "HEALTHCHECK");
    CHECK_STR(oci_df_kind_name(OCI_DF_ONBUILD), "ONBUILD");
    CHECK_STR(oci_df_kind_name((enum oci_df_kind)99), "?");
}

TEST_MAIN(T(buildkit_testfiles), T(directives), T(continuations), T(flags), T(exec_and_shell_forms),
          T(env_label_arg), T(from), T(other_instructions), T(heredocs_buildkit), T(heredocs),
          T(heredoc_words), T(limits), T(env_var_test), T(words_test), T(modifiers), T(expand_more),
          T(expand_words_and_heredoc), T(expand_limits), T(kind_names))
