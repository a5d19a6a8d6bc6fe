/*
 * Dockerfiles as BuildKit reads them. The code follows moby/buildkit's
 * frontend/dockerfile/parser (parser.go, line_parsers.go, split_command.go,
 * directives.go), instructions/parse.go (the checks that need no build
 * state) and shell/lex.go (the word expander), quirks included, because a
 * Dockerfile must mean here what it means to `docker build`. Where BuildKit
 * looks at bytes as Latin-1 runes, or at runes, this code does the same.
 */
#include "oci/dockerfile.h"

#include "common/json_depth.h"
#include "common/msg.h"
#include "ocisync.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* How many bytes of a user's text an error message quotes. */
#define QUOTE_MAX 80
/* ${a:-${b:-...}} nesting: BuildKit recurses without a limit; no Dockerfile nests 64 deep. */
#define LEX_DEPTH_MAX 64
/*
 * Steps a word's pattern matching may take (threads times characters): a
 * pattern and a value of a few kilobytes each fit many times over, a
 * hostile megabyte of both does not.
 */
#define LEX_MATCH_BUDGET (64u * 1024 * 1024)

/* ---------------------------------------------------------------------------------------------
 * Characters
 */

/*
 * Go's unicode.IsSpace on the UTF-8 rune at s[0..n): the rune's length if it
 * is white space, else 0. Invalid UTF-8 is never space (Go decodes it as
 * U+FFFD).
 */
static size_t uspace(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];

    if (c == ' ' || (c >= '\t' && c <= '\r'))
        return 1;
    if (c < 0x80)
        return 0;
    if (n >= 2 && c == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (n < 3)
        return 0;
    if (c == 0xE1 && s[1] == 0x9A && s[2] == 0x80) /* U+1680 */
        return 3;
    /* U+2000..200A, U+2028, U+2029, U+202F */
    if (c == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;
    if (c == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) /* U+205F */
        return 3;
    if (c == 0xE3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    return 0;
}

/* unicode.IsSpace(rune(b)) on one byte, as split_command.go and parseHealthConfig look at bytes. */
static bool byte_space(char b)
{
    unsigned char c = (unsigned char)b;
    return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xA0;
}

/* BuildKit's reWhitespace, [\t\v\f\r ]. */
static bool ws_ascii(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* Go regexp's \s, [\t\n\f\r ]. */
static bool re_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* The length of the UTF-8 rune at s[0..n) (n > 0); an invalid byte counts as one, as in Go. */
static size_t rune_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && is_cont(s[1]) ? 2 : 1;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return n >= 3 && s[1] >= lo && s[1] <= hi && is_cont(s[2]) ? 3 : 1;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return n >= 4 && s[1] >= lo && s[1] <= hi && is_cont(s[2]) && is_cont(s[3]) ? 4 : 1;
    }
    return 1;
}

/* bytes.TrimLeftFunc(s, unicode.IsSpace): how many bytes to skip. */
static size_t skip_space(const char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n && (k = uspace(s + i, n - i)) != 0)
        i += k;
    return i;
}

/* The length of s[0..n) without trailing white space (TrimRightFunc with unicode.IsSpace). */
static size_t trim_right(const char *s, size_t n)
{
    while (n > 0) {
        size_t b = n - 1;
        while (b > 0 && n - b < 4 && is_cont((unsigned char)s[b]))
            b--;
        size_t k = uspace(s + b, n - b);
        if (k == 0 || k != n - b)
            break;
        n = b;
    }
    return n;
}

/* strings.TrimSpace: adjusts *s and *n. */
static void trim_space(const char **s, size_t *n)
{
    size_t k = skip_space(*s, *n);
    *s += k;
    *n = trim_right(*s, *n - k);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static bool eq_fold(const char *a, size_t n, const char *lower)
{
    size_t i;
    for (i = 0; i < n && lower[i] != '\0'; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return i == n && lower[i] == '\0';
}

/* ---------------------------------------------------------------------------------------------
 * Buffers
 */

/* A growable string with a hard cap; p is NUL-terminated once anything was added. */
struct sbuf {
    char *p; /* owned */
    size_t len, cap, max;
};

static int sb_add(struct sbuf *b, const void *s, size_t n)
{
    if (n > b->max - b->len)
        return OCISYNC_ETOOBIG;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        char *np;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        np = realloc(b->p, ncap);
        if (np == NULL)
            return UV_ENOMEM;
        b->p = np;
        b->cap = ncap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Hands over the string (never NULL unless out of memory) and leaves b empty. */
static char *sb_take(struct sbuf *b)
{
    char *p = b->p;

    if (p == NULL)
        p = dup_n("", 0);
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

static void sb_free(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* A growable array of strings. */
struct strv {
    char **v; /* owned, n strings */
    size_t n, cap;
};

static int strv_push(struct strv *a, char *s)
{
    if (s == NULL)
        return UV_ENOMEM;
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 4;
        char **nv = realloc(a->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            free(s);
            return UV_ENOMEM;
        }
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = s;
    return 0;
}

static void strv_free(struct strv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* ---------------------------------------------------------------------------------------------
 * The shell lexer (shell/lex.go)
 */

struct lex {
    const char *s; /* the word, not owned */
    size_t len, pos;
    char esc;
    bool raw_quotes;  /* keep quote characters (Lex.RawQuotes) */
    bool raw_escapes; /* keep escape characters (the current processStopOn's) */
    bool skip_quotes; /* quotes are plain characters (Lex.SkipProcessQuotes) */
    bool skip_unset;  /* leave unset variables as written (Lex.SkipUnsetEnv) */
    oci_df_lookup lookup;
    void *arg;
    size_t max; /* cap of every buffer */
    int depth;
    size_t budget;        /* pattern-matching steps left */
    unsigned long nested; /* nested words read so far (see process) */
    char why[256];        /* the first error's reason */
};

/* ProcessWords' splitting state (shell/lex.go's wordsStruct). */
struct words {
    struct sbuf buf;
    bool in_word;
    struct strv out;
};

static int lex_fail(struct lex *lx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lex_fail(struct lex *lx, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(lx->why, sizeof(lx->why), fmt, ap);
    va_end(ap);
    return rc;
}

/* Appends to a buffer of the expansion, naming a failure. */
static int lex_add(struct lex *lx, struct sbuf *b, const void *s, size_t n)
{
    int rc = sb_add(b, s, n);
    if (rc == OCISYNC_ETOOBIG)
        return lex_fail(lx, rc, "the expansion is longer than %zu bytes", lx->max);
    if (rc != 0)
        return lex_fail(lx, rc, "out of memory");
    return 0;
}

static int w_push(struct lex *lx, struct words *w)
{
    char *s = sb_take(&w->buf);
    w->buf.max = lx->max;
    if (strv_push(&w->out, s) != 0)
        return lex_fail(lx, UV_ENOMEM, "out of memory");
    return 0;
}

/* wordsStruct.addRawString / addRawChar: text that never splits. */
static int w_raw(struct lex *lx, struct words *w, const char *s, size_t n)
{
    w->in_word = true;
    return lex_add(lx, &w->buf, s, n);
}

/* wordsStruct.addString: unquoted text, which white space splits. */
static int w_text(struct lex *lx, struct words *w, const char *s, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0;) {
        size_t k = uspace(s + i, n - i);
        if (k != 0) {
            if (w->in_word && w->buf.len != 0) {
                rc = w_push(lx, w);
                w->in_word = false;
            }
            i += k;
        } else {
            k = rune_len(s + i, n - i);
            rc = w_raw(lx, w, s + i, k);
            i += k;
        }
    }
    return rc;
}

static int process(struct lex *lx, int stop, bool raw_escapes, struct sbuf *out, struct words *w);

/* A word inside ${...}: processStopOn(stop, rawEscapes), nested. */
static int nested(struct lex *lx, int stop, bool raw_escapes, struct sbuf *out)
{
    int rc;

    if (++lx->depth > LEX_DEPTH_MAX) {
        lx->depth--;
        return lex_fail(lx, OCISYNC_ETOOBIG, "${...} nested deeper than %d", LEX_DEPTH_MAX);
    }
    lx->nested++;
    rc = process(lx, stop, raw_escapes, out, NULL);
    lx->depth--;
    return rc;
}

static const char *get_env(struct lex *lx, const char *name, size_t n)
{
    return lx->lookup != NULL ? lx->lookup(lx->arg, name, n) : NULL;
}

/* processName: a run of digits, one special parameter, or letters, digits and '_'. */
static size_t read_name(struct lex *lx)
{
    size_t start = lx->pos;
    const char *s = lx->s;

    if (lx->pos < lx->len && is_digit(s[lx->pos])) {
        while (lx->pos < lx->len && is_digit(s[lx->pos]))
            lx->pos++;
        return lx->pos - start;
    }
    if (lx->pos < lx->len && strchr("@*#?-$!", s[lx->pos]) != NULL && s[lx->pos] != '\0') {
        lx->pos++;
        return 1;
    }
    while (lx->pos < lx->len && (is_alpha(s[lx->pos]) || is_digit(s[lx->pos]) || s[lx->pos] == '_'))
        lx->pos++;
    return lx->pos - start;
}

static int subst_pattern(struct lex *lx, char op, bool greedy, const char *pat, size_t plen,
                         const char *val, size_t vlen, struct sbuf *out);
static int subst_replace(struct lex *lx, bool all, const char *pat, size_t plen, const char *repl,
                         size_t rlen, const char *val, size_t vlen, struct sbuf *out);

/* processDollar: s[pos] is '$'. */
static int dollar(struct lex *lx, struct sbuf *out)
{
    const char *s = lx->s;
    const char *name, *val;
    size_t nlen;
    char ch, chs[3] = {0, 0, 0};
    bool null_unset = false;
    struct sbuf word = {.max = lx->max}, repl = {.max = lx->max};
    int rc = 0;

    lx->pos++;
    if (lx->pos >= lx->len || s[lx->pos] != '{') {
        name = s + lx->pos;
        nlen = read_name(lx);
        if (nlen == 0)
            return lex_add(lx, out, "$", 1);
        val = get_env(lx, name, nlen);
        if (val == NULL && lx->skip_unset) {
            if ((rc = lex_add(lx, out, "$", 1)) != 0)
                return rc;
            return lex_add(lx, out, name, nlen);
        }
        return val != NULL ? lex_add(lx, out, val, strlen(val)) : 0;
    }
    lx->pos++;
    if (lx->pos >= lx->len)
        return lex_fail(lx, OCISYNC_EUSAGE, "syntax error: missing '}'");
    if (s[lx->pos] == '{' || s[lx->pos] == '}' || s[lx->pos] == ':')
        return lex_fail(lx, OCISYNC_EUSAGE, "syntax error: bad substitution");
    name = s + lx->pos;
    nlen = read_name(lx);
    if (lx->pos >= lx->len)
        return lex_fail(lx, OCISYNC_EUSAGE, "syntax error: missing '}'");
    ch = s[lx->pos++];
    chs[0] = ch;

    if (ch == '}') {
        val = get_env(lx, name, nlen);
        if (val == NULL && lx->skip_unset) {
            if ((rc = lex_add(lx, out, "${", 2)) != 0 || (rc = lex_add(lx, out, name, nlen)) != 0)
                return rc;
            return lex_add(lx, out, "}", 1);
        }
        return val != NULL ? lex_add(lx, out, val, strlen(val)) : 0;
    }

    if (ch == '/') {
        bool all = lx->pos < lx->len && s[lx->pos] == '/';
        if (all)
            lx->pos++;
        if ((rc = nested(lx, '/', true, &word)) != 0) {
            if (rc == OCISYNC_EUSAGE && lx->pos >= lx->len)
                lex_fail(lx, rc, "syntax error: missing '/' in ${}");
            goto out;
        }
        if ((rc = nested(lx, '}', true, &repl)) != 0) {
            if (rc == OCISYNC_EUSAGE && lx->pos >= lx->len)
                lex_fail(lx, rc, "syntax error: missing '}'");
            goto out;
        }
        val = get_env(lx, name, nlen);
        if (val == NULL && lx->skip_unset) {
            if ((rc = lex_add(lx, out, "${", 2)) != 0 || (rc = lex_add(lx, out, name, nlen)) != 0 ||
                (rc = lex_add(lx, out, "/", 1)) != 0 ||
                (rc = lex_add(lx, out, word.p, word.len)) != 0 ||
                (rc = lex_add(lx, out, "/", 1)) != 0 ||
                (rc = lex_add(lx, out, repl.p, repl.len)) != 0)
                goto out;
            rc = lex_add(lx, out, "}", 1);
            goto out;
        }
        rc = subst_replace(lx, all, word.p ? word.p : "", word.len, repl.p ? repl.p : "", repl.len,
                           val ? val : "", val ? strlen(val) : 0, out);
        goto out;
    }

    if (ch == ':') {
        null_unset = true;
        if (lx->pos >= lx->len) {
            rc = lex_fail(lx, OCISYNC_EUSAGE, "syntax error: missing '}'");
            goto out;
        }
        ch = s[lx->pos++];
        chs[1] = ch;
    } else if (ch != '+' && ch != '-' && ch != '?' && ch != '#' && ch != '%') {
        rc = lex_fail(lx, OCISYNC_EUSAGE, "unsupported modifier (%s) in substitution", chs);
        goto out;
    }
    /* BuildKit's switch falls through from ':' to here whatever the next character is. */
    bool raw = ch == '#' || ch == '%';
    if (null_unset && raw) {
        rc = lex_fail(lx, OCISYNC_EUSAGE, "unsupported modifier (%s) in substitution", chs);
        goto out;
    }
    if ((rc = nested(lx, '}', raw, &word)) != 0) {
        if (rc == OCISYNC_EUSAGE && lx->pos >= lx->len)
            lex_fail(lx, rc, "syntax error: missing '}'");
        goto out;
    }
    val = get_env(lx, name, nlen);
    if (val == NULL && lx->skip_unset) {
        if ((rc = lex_add(lx, out, "${", 2)) != 0 || (rc = lex_add(lx, out, name, nlen)) != 0 ||
            (rc = lex_add(lx, out, chs, strlen(chs))) != 0 ||
            (rc = lex_add(lx, out, word.p, word.len)) != 0)
            goto out;
        rc = lex_add(lx, out, "}", 1);
        goto out;
    }
    bool empty = val == NULL || (null_unset && val[0] == '\0');
    struct ocisync__clipped c;
    switch (ch) {
    case '-':
        rc = empty ? lex_add(lx, out, word.p, word.len) : lex_add(lx, out, val, strlen(val));
        break;
    case '+':
        rc = empty ? 0 : lex_add(lx, out, word.p, word.len);
        break;
    case '?':
        if (val == NULL)
            rc = lex_fail(lx, OCISYNC_EUSAGE, "%.*s: %s", (int)nlen, name,
                          word.len ? ocisync__clip(word.p, QUOTE_MAX, &c)
                                   : "is not allowed to be unset");
        else if (empty)
            rc = lex_fail(lx, OCISYNC_EUSAGE, "%.*s: %s", (int)nlen, name,
                          word.len ? ocisync__clip(word.p, QUOTE_MAX, &c)
                                   : "is not allowed to be empty");
        else
            rc = lex_add(lx, out, val, strlen(val));
        break;
    case '#':
    case '%': {
        const char *pat = word.p ? word.p : "";
        size_t plen = word.len;
        bool greedy = plen > 0 && pat[0] == ch;
        if (greedy) {
            pat++;
            plen--;
        }
        rc = subst_pattern(lx, ch, greedy, pat, plen, val ? val : "", val ? strlen(val) : 0, out);
        break;
    }
    default:
        rc = lex_fail(lx, OCISYNC_EUSAGE, "unsupported modifier (%s) in substitution", chs);
        break;
    }
out:
    sb_free(&word);
    sb_free(&repl);
    return rc;
}

/* processSingleQuote: everything up to the next ' as is. */
static int single_quote(struct lex *lx, struct sbuf *out)
{
    int rc;

    lx->pos++;
    if (lx->raw_quotes && (rc = lex_add(lx, out, "'", 1)) != 0)
        return rc;
    for (;;) {
        if (lx->pos >= lx->len)
            return lex_fail(lx, OCISYNC_EUSAGE,
                            "unexpected end of statement while looking for matching single-quote");
        char c = lx->s[lx->pos++];
        if (c == '\'')
            return lx->raw_quotes ? lex_add(lx, out, "'", 1) : 0;
        if ((rc = lex_add(lx, out, &c, 1)) != 0)
            return rc;
    }
}

/* processDoubleQuote: variables expand; the escape character escapes only " $ and itself. */
static int double_quote(struct lex *lx, struct sbuf *out)
{
    int rc;

    lx->pos++;
    if (lx->raw_quotes && (rc = lex_add(lx, out, "\"", 1)) != 0)
        return rc;
    for (;;) {
        if (lx->pos >= lx->len)
            return lex_fail(lx, OCISYNC_EUSAGE,
                            "unexpected end of statement while looking for matching double-quote");
        char c = lx->s[lx->pos];
        if (c == '"') {
            lx->pos++;
            return lx->raw_quotes ? lex_add(lx, out, "\"", 1) : 0;
        }
        if (c == '$') {
            if ((rc = dollar(lx, out)) != 0)
                return rc;
            continue;
        }
        lx->pos++;
        if (c == lx->esc) {
            if (lx->raw_escapes && (rc = lex_add(lx, out, &c, 1)) != 0)
                return rc;
            if (lx->pos >= lx->len)
                continue; /* and fail above: the quote is still open */
            char n = lx->s[lx->pos];
            if (n == '"' || n == '$' || n == lx->esc) {
                c = n;
                lx->pos++;
            }
            /* Otherwise the escape stays, written a second time with raw escapes, as BuildKit does.
             */
        }
        if ((rc = lex_add(lx, out, &c, 1)) != 0)
            return rc;
    }
}

/* processPossibleHeredoc: "<<" keeps the blanks after it, so "<< EOF" stays one word. */
static int heredoc_marker(struct lex *lx, struct sbuf *out)
{
    size_t start = lx->pos;

    lx->pos++;
    if (lx->pos >= lx->len || lx->s[lx->pos] != '<')
        return lex_add(lx, out, "<", 1);
    lx->pos++;
    while (lx->pos < lx->len &&
           (lx->s[lx->pos] == ' ' || lx->s[lx->pos] == '\t' || lx->s[lx->pos] == '\r'))
        lx->pos++;
    return lex_add(lx, out, lx->s + start, lx->pos - start);
}

/*
 * processStopOn: reads until stop (or the end, for stop < 0) into out and,
 * for the top-level word of ProcessWords, into w.
 *
 * BuildKit's shellWord shares one words buffer between this function and
 * the nested words of ${NAME<modifier>word}, and each nested call empties
 * it; so "a${X:-b}" splits into just "b". The nested counter reproduces that.
 */
static int process(struct lex *lx, int stop, bool raw_escapes, struct sbuf *out, struct words *w)
{
    bool saved = lx->raw_escapes;
    int rc = 0;

    lx->raw_escapes = raw_escapes;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];

        if (stop >= 0 && c == (char)stop) {
            lx->pos++;
            goto out;
        }
        if (c == '$' || c == '<' || (!lx->skip_quotes && (c == '\'' || c == '"'))) {
            struct sbuf tmp = {.max = lx->max};
            unsigned long before = lx->nested;
            if (c == '$')
                rc = dollar(lx, &tmp);
            else if (c == '<')
                rc = heredoc_marker(lx, &tmp);
            else if (c == '\'')
                rc = single_quote(lx, &tmp);
            else
                rc = double_quote(lx, &tmp);
            if (rc == 0)
                rc = lex_add(lx, out, tmp.p, tmp.len);
            if (rc == 0 && w != NULL) {
                if (lx->nested != before) {
                    w->buf.len = 0;
                    if (w->buf.p != NULL)
                        w->buf.p[0] = '\0';
                }
                rc = c == '$' ? w_text(lx, w, tmp.p, tmp.len) : w_raw(lx, w, tmp.p, tmp.len);
            }
            sb_free(&tmp);
            if (rc != 0)
                goto out;
            continue;
        }
        if (c == lx->esc) {
            lx->pos++;
            if (lx->raw_escapes) {
                if ((rc = lex_add(lx, out, &c, 1)) != 0 ||
                    (w != NULL && (rc = w_raw(lx, w, &c, 1)) != 0))
                    goto out;
            }
            if (lx->pos >= lx->len)
                break; /* an escape at the end is dropped */
            size_t k = rune_len(lx->s + lx->pos, lx->len - lx->pos);
            if ((rc = lex_add(lx, out, lx->s + lx->pos, k)) != 0 ||
                (w != NULL && (rc = w_raw(lx, w, lx->s + lx->pos, k)) != 0))
                goto out;
            lx->pos += k;
            continue;
        }
        size_t k = rune_len(lx->s + lx->pos, lx->len - lx->pos);
        if ((rc = lex_add(lx, out, lx->s + lx->pos, k)) != 0 ||
            (w != NULL && (rc = w_text(lx, w, lx->s + lx->pos, k)) != 0))
            goto out;
        lx->pos += k;
    }
    if (stop >= 0)
        rc = lex_fail(lx, OCISYNC_EUSAGE,
                      "unexpected end of statement while looking for matching %c", stop);
out:
    lx->raw_escapes = saved;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Shell patterns (convertShellPatternToRegex, trimPrefix, trimSuffix, the / replacement)
 *
 * BuildKit turns a pattern into a Go regular expression: * is .* (greedy) or
 * .*? (lazy), ? is ., and Go's . does not match a newline. This matcher runs
 * the same program as a Pike VM, whose threads in priority order give the
 * match a backtracking engine (and Go's leftmost-first semantics) would,
 * in time bounded by pattern times value.
 */

enum { G_LIT, G_ANY, G_STAR };

struct gtok {
    unsigned char kind;
    unsigned char n; /* G_LIT: the rune's length */
    size_t off;      /* G_LIT: where the rune is in the pattern */
};

struct thread {
    size_t st, start;
};

/* Threads for one position, each state at most once. */
struct tlist {
    struct thread *t; /* owned, n_states entries */
    size_t n;
    size_t *mark; /* owned: mark[state] == gen when the state is in the list */
    size_t gen;
};

struct glob {
    const char *pat;  /* not owned */
    struct gtok *tok; /* owned */
    size_t n;
    bool greedy;
    struct tlist a, b;
};

static void glob_free(struct glob *g)
{
    free(g->tok);
    free(g->a.t);
    free(g->a.mark);
    free(g->b.t);
    free(g->b.mark);
    memset(g, 0, sizeof(*g));
}

static int glob_compile(struct lex *lx, const char *pat, size_t plen, bool greedy, struct glob *g)
{
    struct ocisync__clipped c;

    memset(g, 0, sizeof(*g));
    g->pat = pat;
    g->greedy = greedy;
    g->tok = calloc(plen + 1, sizeof(*g->tok));
    if (g->tok == NULL)
        return lex_fail(lx, UV_ENOMEM, "out of memory");
    for (size_t i = 0; i < plen;) {
        struct gtok *t = &g->tok[g->n];
        char ch = pat[i];
        if (ch == '*') {
            t->kind = G_STAR;
            i++;
        } else if (ch == '?') {
            t->kind = G_ANY;
            i++;
        } else if (ch == '\\') {
            /* An escaped } or / belongs to ${...}; the escape is not part of the pattern. */
            if (i + 1 < plen && (pat[i + 1] == '}' || pat[i + 1] == '/')) {
                i++;
                continue;
            }
            i++;
            if (i >= plen || (pat[i] != '*' && pat[i] != '?' && pat[i] != '\\')) {
                char tmp[QUOTE_MAX + 1];
                size_t n = plen < QUOTE_MAX ? plen : QUOTE_MAX;
                memcpy(tmp, pat, n);
                tmp[n] = '\0';
                return lex_fail(lx, OCISYNC_EUSAGE,
                                "invalid pattern (%s) in substitution: invalid escape '\\%s'",
                                ocisync__clip(tmp, QUOTE_MAX, &c),
                                i >= plen ? "" : (char[2]){pat[i], '\0'});
            }
            t->kind = G_LIT;
            t->off = i;
            t->n = 1;
            i++;
        } else {
            t->kind = G_LIT;
            t->off = i;
            t->n = (unsigned char)rune_len(pat + i, plen - i);
            i += t->n;
        }
        g->n++;
    }
    g->a.t = calloc(g->n + 1, sizeof(*g->a.t));
    g->b.t = calloc(g->n + 1, sizeof(*g->b.t));
    g->a.mark = calloc(g->n + 1, sizeof(size_t));
    g->b.mark = calloc(g->n + 1, sizeof(size_t));
    if (g->a.t == NULL || g->b.t == NULL || g->a.mark == NULL || g->b.mark == NULL)
        return lex_fail(lx, UV_ENOMEM, "out of memory");
    return 0;
}

static void tl_push(struct tlist *l, size_t st, size_t start)
{
    if (l->mark[st] == l->gen)
        return;
    l->mark[st] = l->gen;
    l->t[l->n].st = st;
    l->t[l->n].start = start;
    l->n++;
}

/*
 * The threads reached from state k without consuming: a run of stars, each
 * either looping (consuming one more character) or moving on, greedy ones
 * preferring to loop, lazy ones to move on; then the first non-star or the
 * match state g->n.
 */
static void closure(const struct glob *g, struct tlist *l, size_t k, size_t start)
{
    size_t j = k;

    while (j < g->n && g->tok[j].kind == G_STAR)
        j++;
    if (g->greedy) {
        for (size_t m = k; m < j; m++)
            tl_push(l, m, start);
        tl_push(l, j, start);
    } else {
        tl_push(l, j, start);
        for (size_t m = j; m > k; m--)
            tl_push(l, m - 1, start);
    }
}

/*
 * Finds the leftmost-first match in s[from..len), anchored at from or not.
 * Returns 1 with [*ms, *me), 0 if none, OCISYNC_ETOOBIG past the budget.
 */
static int glob_search(struct lex *lx, struct glob *g, const char *s, size_t len, size_t from,
                       bool anchored, size_t *ms, size_t *me)
{
    struct tlist *cl = &g->a, *nl = &g->b;
    bool matched = false;

    cl->n = 0;
    cl->gen++;
    closure(g, cl, 0, from);
    for (size_t p = from;;) {
        size_t w = p < len ? rune_len(s + p, len - p) : 0;

        nl->n = 0;
        nl->gen++;
        for (size_t i = 0; i < cl->n; i++) {
            struct thread th = cl->t[i];
            if (lx->budget == 0)
                return lex_fail(lx, OCISYNC_ETOOBIG, "a pattern is too costly to match");
            lx->budget--;
            if (th.st == g->n) {
                /* A match: threads of lower priority are cut. */
                matched = true;
                *ms = th.start;
                *me = p;
                break;
            }
            if (p == len)
                continue;
            const struct gtok *t = &g->tok[th.st];
            if (t->kind == G_STAR) {
                if (s[p] != '\n')
                    closure(g, nl, th.st, th.start);
            } else if (t->kind == G_ANY) {
                if (s[p] != '\n')
                    closure(g, nl, th.st + 1, th.start);
            } else if (t->n == w && memcmp(g->pat + t->off, s + p, w) == 0) {
                closure(g, nl, th.st + 1, th.start);
            }
        }
        if (p == len)
            break;
        p += w;
        struct tlist *tmp = cl;
        cl = nl;
        nl = tmp;
        if (!matched && !anchored)
            closure(g, cl, 0, p);
        if (cl->n == 0)
            break;
    }
    return matched ? 1 : 0;
}

/* Rune spans of s, for reversing. */
static int rune_spans(struct lex *lx, const char *s, size_t n, size_t **off, size_t *count)
{
    size_t k = 0;

    *off = malloc((n + 1) * sizeof(size_t));
    if (*off == NULL)
        return lex_fail(lx, UV_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i += rune_len(s + i, n - i))
        (*off)[k++] = i;
    (*off)[k] = n;
    *count = k;
    return 0;
}

/* reverseString, or reversePattern (escape pairs keep their order) when pattern. */
static int reverse(struct lex *lx, const char *s, size_t n, bool pattern, char **out)
{
    size_t *off, cnt = 0, *order = NULL;
    char *r = NULL;
    int rc;

    if ((rc = rune_spans(lx, s, n, &off, &cnt)) != 0)
        return rc;
    order = malloc((cnt + 1) * sizeof(size_t));
    r = malloc(n + 1);
    if (order == NULL || r == NULL) {
        rc = lex_fail(lx, UV_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cnt;) {
        size_t at = cnt - 1 - i;
        if (pattern && s[off[i]] == '\\' && i != cnt - 1) {
            order[at - 1] = i;
            order[at] = i + 1;
            i += 2;
        } else {
            order[at] = i;
            i++;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < cnt; i++) {
        size_t len = off[order[i] + 1] - off[order[i]];
        memcpy(r + w, s + off[order[i]], len);
        w += len;
    }
    r[w] = '\0';
    *out = r;
    r = NULL;
out:
    free(off);
    free(order);
    free(r);
    return rc;
}

/* How much of val an anchored match of pat takes (trimPrefix's idx[1]), 0 if none. */
static int prefix_cut(struct lex *lx, const char *pat, size_t plen, bool greedy, const char *val,
                      size_t vlen, size_t *cut)
{
    struct glob g;
    size_t ms, me;
    int rc = glob_compile(lx, pat, plen, greedy, &g);

    *cut = 0;
    if (rc == 0) {
        rc = glob_search(lx, &g, val, vlen, 0, true, &ms, &me);
        if (rc == 1) {
            *cut = me;
            rc = 0;
        }
    }
    glob_free(&g);
    return rc;
}

/* ${NAME#pat} ${NAME##pat} ${NAME%pat} ${NAME%%pat}. */
static int subst_pattern(struct lex *lx, char op, bool greedy, const char *pat, size_t plen,
                         const char *val, size_t vlen, struct sbuf *out)
{
    char *rpat = NULL, *rval = NULL, *back = NULL;
    size_t cut;
    int rc;

    if (op == '#') {
        if ((rc = prefix_cut(lx, pat, plen, greedy, val, vlen, &cut)) != 0)
            return rc;
        return lex_add(lx, out, val + cut, vlen - cut);
    }
    /* Regular expressions cannot find the shortest rightmost match: reverse both, as BuildKit. */
    if ((rc = reverse(lx, pat, plen, true, &rpat)) != 0 ||
        (rc = reverse(lx, val, vlen, false, &rval)) != 0 ||
        (rc = prefix_cut(lx, rpat, plen, greedy, rval, vlen, &cut)) != 0 ||
        (rc = reverse(lx, rval + cut, vlen - cut, false, &back)) != 0)
        goto out;
    rc = lex_add(lx, out, back, vlen - cut);
out:
    free(rpat);
    free(rval);
    free(back);
    return rc;
}

/*
 * Go's Regexp.ReplaceAllString expands $name, ${name} and $$ in the
 * replacement; the only group a shell pattern has is $0, the match.
 */
static int expand_template(struct lex *lx, const char *t, size_t tn, const char *m, size_t mn,
                           struct sbuf *out)
{
    int rc = 0;

    while (tn > 0 && rc == 0) {
        const char *d = memchr(t, '$', tn);
        if (d == NULL)
            break;
        if ((rc = lex_add(lx, out, t, (size_t)(d - t))) != 0)
            return rc;
        tn -= (size_t)(d - t) + 1;
        t = d + 1;
        if (tn > 0 && t[0] == '$') {
            rc = lex_add(lx, out, "$", 1);
            t++;
            tn--;
            continue;
        }
        bool brace = tn > 0 && t[0] == '{';
        size_t i = brace ? 1 : 0, start = i;
        while (i < tn && (is_alpha(t[i]) || is_digit(t[i]) || t[i] == '_'))
            i++;
        if (i == start || (brace && (i >= tn || t[i] != '}'))) {
            rc = lex_add(lx, out, "$", 1); /* malformed: a plain '$' */
            continue;
        }
        const char *name = t + start;
        size_t nn = i - start;
        if (brace)
            i++;
        if (nn == 1 && name[0] == '0')
            rc = lex_add(lx, out, m, mn);
        t += i;
        tn -= i;
    }
    if (rc == 0)
        rc = lex_add(lx, out, t, tn);
    return rc;
}

/* ${NAME/pat/repl} and ${NAME//pat/repl}: a greedy, unanchored pattern. */
static int subst_replace(struct lex *lx, bool all, const char *pat, size_t plen, const char *repl,
                         size_t rlen, const char *val, size_t vlen, struct sbuf *out)
{
    struct glob g;
    size_t ms, me;
    int rc = glob_compile(lx, pat, plen, true, &g);

    if (rc != 0)
        goto out;
    if (!all) {
        if ((rc = glob_search(lx, &g, val, vlen, 0, false, &ms, &me)) < 0)
            goto out;
        if (rc == 0) {
            rc = lex_add(lx, out, val, vlen);
            goto out;
        }
        /* The first replacement is spliced in as is: Go's FindStringIndex, no template. */
        if ((rc = lex_add(lx, out, val, ms)) != 0 || (rc = lex_add(lx, out, repl, rlen)) != 0)
            goto out;
        rc = lex_add(lx, out, val + me, vlen - me);
        goto out;
    }
    /* Go's Regexp.replaceAll, step for step. */
    size_t last = 0, sp = 0;
    while (sp <= vlen) {
        if ((rc = glob_search(lx, &g, val, vlen, sp, false, &ms, &me)) < 0)
            goto out;
        if (rc == 0)
            break;
        if ((rc = lex_add(lx, out, val + last, ms - last)) != 0)
            goto out;
        if ((me > last || ms == 0) &&
            (rc = expand_template(lx, repl, rlen, val + ms, me - ms, out)) != 0)
            goto out;
        last = me;
        size_t w = sp < vlen ? rune_len(val + sp, vlen - sp) : 0;
        if (sp + w > me)
            sp += w;
        else if (sp + 1 > me)
            sp++;
        else
            sp = me;
    }
    rc = lex_add(lx, out, val + last, vlen - last);
out:
    glob_free(&g);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Expansion entry points
 */

struct lex_opts {
    char esc;
    bool raw_quotes, raw_escapes, skip_quotes, skip_unset;
    size_t max;
};

/* Runs the lexer over all of raw; w (ProcessWords) may be NULL (ProcessWord). */
static int lex_run(const char *raw, size_t len, const struct lex_opts *o, oci_df_lookup lookup,
                   void *arg, struct sbuf *out, struct words *w, char *err, size_t errlen)
{
    struct lex lx = {
        .s = raw,
        .len = len,
        .esc = o->esc,
        .raw_quotes = o->raw_quotes,
        .skip_quotes = o->skip_quotes,
        .skip_unset = o->skip_unset,
        .lookup = lookup,
        .arg = arg,
        .max = o->max,
        .budget = LEX_MATCH_BUDGET,
    };
    struct ocisync__clipped c;
    int rc;

    out->max = o->max;
    if (w != NULL)
        w->buf.max = o->max;
    rc = process(&lx, -1, o->raw_escapes, out, w);
    if (rc == 0 && w != NULL && w->buf.len > 0)
        rc = w_push(&lx, w);
    if (rc != 0) {
        char tmp[QUOTE_MAX + 1];
        size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
        memcpy(tmp, raw, n);
        tmp[n] = '\0';
        ocisync__errf(err, errlen, "failed to process \"%s%s\": %s",
                      ocisync__clip(tmp, QUOTE_MAX, &c), len > QUOTE_MAX ? "..." : "", lx.why);
    }
    return rc;
}

int oci_df_expand(const char *raw, char escape, oci_df_lookup lookup, void *arg, char **out,
                  char *err, size_t errlen)
{
    struct lex_opts o = {.esc = escape, .max = OCI_DF_EXPAND_MAX};
    struct sbuf b = {0};
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (raw == NULL)
        return OCISYNC_EUSAGE;
    rc = lex_run(raw, strlen(raw), &o, lookup, arg, &b, NULL, err, errlen);
    if (rc == 0 && (*out = sb_take(&b)) == NULL)
        rc = UV_ENOMEM;
    sb_free(&b);
    return rc;
}

int oci_df_expand_words(const char *raw, char escape, oci_df_lookup lookup, void *arg,
                        char ***words, size_t *n, char *err, size_t errlen)
{
    struct lex_opts o = {.esc = escape, .max = OCI_DF_EXPAND_MAX};
    struct sbuf b = {0};
    struct words w = {0};
    int rc;

    *words = NULL;
    *n = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (raw == NULL)
        return OCISYNC_EUSAGE;
    rc = lex_run(raw, strlen(raw), &o, lookup, arg, &b, &w, err, errlen);
    if (rc == 0) {
        *words = w.out.v;
        *n = w.out.n;
        w.out.v = NULL;
        w.out.n = 0;
    }
    strv_free(&w.out);
    sb_free(&w.buf);
    sb_free(&b);
    return rc;
}

void oci_df_words_free(char **words, size_t n)
{
    if (words == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

int oci_df_expand_heredoc(const char *content, oci_df_lookup lookup, void *arg, char **out,
                          char *err, size_t errlen)
{
    struct lex_opts o = {.esc = '\\', .skip_quotes = true, .max = OCI_DF_HEREDOC_EXPAND_MAX};
    struct sbuf b = {0};
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (content == NULL)
        return OCISYNC_EUSAGE;
    rc = lex_run(content, strlen(content), &o, lookup, arg, &b, NULL, err, errlen);
    if (rc == 0 && (*out = sb_take(&b)) == NULL)
        rc = UV_ENOMEM;
    sb_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Heredoc markers (parser.go's ParseHeredoc)
 */

int oci_df_heredoc_word(const char *word, struct oci_df_heredoc *h)
{
    /* ^(\d*)<<(-?)\s*([^<]*)$ */
    struct lex_opts o = {.esc = '\\', .skip_unset = true, .max = OCI_DF_MAX};
    struct sbuf b = {0};
    struct words w = {0}, wr = {0};
    size_t i = 0, n;
    unsigned long long fd = 0;
    bool chomp;
    int rc;

    memset(h, 0, sizeof(*h));
    if (word == NULL)
        return 0;
    n = strlen(word);
    while (i < n && is_digit(word[i])) {
        fd = fd > UINT32_MAX ? fd : fd * 10 + (unsigned)(word[i] - '0');
        i++;
    }
    if (n - i < 2 || word[i] != '<' || word[i + 1] != '<')
        return 0;
    i += 2;
    chomp = i < n && word[i] == '-';
    if (chomp)
        i++;
    while (i < n && re_space(word[i]))
        i++;
    if (i == n || memchr(word + i, '<', n - i) != NULL)
        return 0;

    /*
     * The delimiter lexed with and without quotes kept: if their quote
     * counts differ, some of it was quoted, and the body does not expand.
     */
    rc = lex_run(word + i, n - i, &o, NULL, NULL, &b, &w, NULL, 0);
    if (rc != 0)
        goto out;
    if (w.out.n != 1) {
        rc = 0;
        goto out;
    }
    sb_free(&b);
    o.raw_quotes = true;
    if ((rc = lex_run(word + i, n - i, &o, NULL, NULL, &b, &wr, NULL, 0)) != 0)
        goto out;
    if (wr.out.n != 1) {
        rc = OCISYNC_EUSAGE;
        goto out;
    }
    size_t q = 0, qr = 0;
    for (const char *c = w.out.v[0]; *c != '\0'; c++)
        q += *c == '\'' || *c == '"';
    for (const char *c = wr.out.v[0]; *c != '\0'; c++)
        qr += *c == '\'' || *c == '"';
    h->name = w.out.v[0];
    w.out.v[0] = NULL;
    h->fd = fd > UINT32_MAX ? UINT32_MAX : (unsigned)fd;
    h->expand = q == qr;
    h->chomp = chomp;
    rc = 1;
out:
    sb_free(&b);
    sb_free(&w.buf);
    sb_free(&wr.buf);
    strv_free(&w.out);
    strv_free(&wr.out);
    return rc;
}

const struct oci_df_heredoc *oci_df_heredoc_by_name(const struct oci_df_instr *in, const char *name)
{
    if (in == NULL || name == NULL)
        return NULL;
    for (size_t i = in->n_heredocs; i > 0; i--) {
        if (strcmp(in->heredocs[i - 1].name, name) == 0)
            return &in->heredocs[i - 1];
    }
    return NULL;
}

int oci_df_chomp(const char *content, char **out)
{
    size_t n = strlen(content), w = 0;
    bool bol = true;
    char *r = malloc(n + 1);

    *out = NULL;
    if (r == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (bol && content[i] == '\t')
            continue;
        bol = content[i] == '\n';
        r[w++] = content[i];
    }
    r[w] = '\0';
    *out = r;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The parser (parser.go, line_parsers.go, split_command.go, directives.go)
 */

struct parser {
    const char *text; /* the Dockerfile, not owned */
    size_t len, pos;
    unsigned line; /* physical lines read so far */
    char esc;
    char *err;
    size_t errlen;
};

static int perr(struct parser *p, int rc, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(struct parser *p, int rc, unsigned line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ocisync__errf(p->err, p->errlen, "Dockerfile line %u: %s", line, msg);
    return rc;
}

static int oom(struct parser *p, unsigned line)
{
    return perr(p, UV_ENOMEM, line, "out of memory");
}

/* A quotable, clipped copy of s[0..n) for messages. */
static const char *quote(const char *s, size_t n, char buf[QUOTE_MAX + 4])
{
    if (n > QUOTE_MAX) {
        memcpy(buf, s, QUOTE_MAX);
        memcpy(buf + QUOTE_MAX, "...", 4);
    } else {
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
    return buf;
}

/*
 * The next physical line with its "\n" (parser.go's scanLines keeps line
 * endings). Returns 1, 0 at the end, OCISYNC_ETOOBIG for a line longer than
 * bufio.Scanner takes.
 */
static int next_line(struct parser *p, const char **s, size_t *n)
{
    const char *nl;
    size_t end, content;

    if (p->pos >= p->len)
        return 0;
    nl = memchr(p->text + p->pos, '\n', p->len - p->pos);
    end = nl != NULL ? (size_t)(nl - p->text) + 1 : p->len;
    content = (nl != NULL ? (size_t)(nl - p->text) : p->len) - p->pos;
    if (content > OCI_DF_LINE_MAX)
        return perr(p, OCISYNC_ETOOBIG, p->line + 1, "the line is longer than %u bytes",
                    OCI_DF_LINE_MAX);
    *s = p->text + p->pos;
    *n = end - p->pos;
    p->pos = end;
    p->line++;
    return 1;
}

/* trimNewline: bytes.TrimRight(s, "\r\n"). */
static size_t trim_newline(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return n;
}

/* isComment: '#' after leading white space. */
static bool is_comment(const char *s, size_t n)
{
    size_t k = skip_space(s, n);
    return k < n && s[k] == '#';
}

/*
 * The line-continuation regex ([^E])E[ \t]*$|^E[ \t]*$ for the escape E:
 * an escape at the end, unless escaped itself. Shortens *n and returns true
 * when the line continues.
 */
static bool trim_continuation(const char *s, size_t *n, char esc)
{
    size_t e = *n;

    while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    if (e == 0 || s[e - 1] != esc || (e >= 2 && s[e - 2] == esc))
        return false;
    *n = e - 1;
    return true;
}

/* The directive parser's state: directives end at the first line that is not one. */
struct directives {
    bool done, seen_syntax, seen_escape, seen_check;
};

/*
 * DirectiveParser.ParseLine on a line already trimmed of its newline and
 * leading white space: "#" then ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$.
 */
static int directive(struct parser *p, struct directives *d, struct oci_df *df, const char *s,
                     size_t n)
{
    size_t i, name_start, name_len, v;
    char q[QUOTE_MAX + 4];

    if (d->done)
        return 0;
    if (n == 0 || s[0] != '#') {
        d->done = true;
        return 0;
    }
    i = 1 + skip_space(s + 1, n - 1);
    name_start = i;
    if (i >= n || !is_alpha(s[i])) {
        d->done = true;
        return 0;
    }
    while (i < n && (is_alpha(s[i]) || is_digit(s[i])))
        i++;
    name_len = i - name_start;
    while (i < n && re_space(s[i]))
        i++;
    if (i >= n || s[i] != '=') {
        d->done = true;
        return 0;
    }
    i++;
    v = i;
    while (i < n && re_space(s[i]))
        i++;
    /* (.+?) needs a character: when only blanks follow, \s* gives the last one back. */
    if (i == n) {
        if (v == n) {
            d->done = true;
            return 0;
        }
        i = n - 1;
    }
    size_t vend = n;
    while (vend > i + 1 && re_space(s[vend - 1]))
        vend--;
    const char *name = s + name_start, *val = s + i;
    size_t vlen = vend - i;
    static const char *const names[] = {"syntax", "escape", "check"};
    bool *const seens[] = {&d->seen_syntax, &d->seen_escape, &d->seen_check};
    bool *seen = NULL;
    const char *canon = NULL;
    for (size_t k = 0; k < 3; k++) {
        if (eq_fold(name, name_len, names[k])) {
            seen = seens[k];
            canon = names[k];
        }
    }
    if (seen == NULL) {
        d->done = true;
        return 0;
    }
    if (*seen)
        return perr(p, OCISYNC_EUSAGE, p->line, "only one %s parser directive can be used", canon);
    *seen = true;
    if (seen == &d->seen_escape) {
        if (vlen != 1 || (val[0] != '\\' && val[0] != '`'))
            return perr(p, OCISYNC_EUSAGE, p->line,
                        "invalid escape token '%s' does not match ` or \\", quote(val, vlen, q));
        p->esc = val[0];
        df->escape = val[0];
    } else if (seen == &d->seen_syntax) {
        if ((df->syntax = dup_n(val, vlen)) == NULL)
            return oom(p, p->line);
    }
    return 0;
}

static const struct {
    const char *name; /* lowercase */
    enum oci_df_kind kind;
} keywords[] = {
    {"from", OCI_DF_FROM},
    {"arg", OCI_DF_ARG},
    {"env", OCI_DF_ENV},
    {"label", OCI_DF_LABEL},
    {"workdir", OCI_DF_WORKDIR},
    {"user", OCI_DF_USER},
    {"expose", OCI_DF_EXPOSE},
    {"entrypoint", OCI_DF_ENTRYPOINT},
    {"cmd", OCI_DF_CMD},
    {"volume", OCI_DF_VOLUME},
    {"stopsignal", OCI_DF_STOPSIGNAL},
    {"healthcheck", OCI_DF_HEALTHCHECK},
    {"shell", OCI_DF_SHELL},
    {"copy", OCI_DF_COPY},
    {"add", OCI_DF_ADD},
    {"run", OCI_DF_RUN},
    {"maintainer", OCI_DF_MAINTAINER},
    {"onbuild", OCI_DF_ONBUILD},
};

const char *oci_df_kind_name(enum oci_df_kind k)
{
    static const char *const names[] = {
        [OCI_DF_FROM] = "FROM",
        [OCI_DF_ARG] = "ARG",
        [OCI_DF_ENV] = "ENV",
        [OCI_DF_LABEL] = "LABEL",
        [OCI_DF_WORKDIR] = "WORKDIR",
        [OCI_DF_USER] = "USER",
        [OCI_DF_EXPOSE] = "EXPOSE",
        [OCI_DF_ENTRYPOINT] = "ENTRYPOINT",
        [OCI_DF_CMD] = "CMD",
        [OCI_DF_VOLUME] = "VOLUME",
        [OCI_DF_STOPSIGNAL] = "STOPSIGNAL",
        [OCI_DF_HEALTHCHECK] = "HEALTHCHECK",
        [OCI_DF_SHELL] = "SHELL",
        [OCI_DF_COPY] = "COPY",
        [OCI_DF_ADD] = "ADD",
        [OCI_DF_RUN] = "RUN",
        [OCI_DF_MAINTAINER] = "MAINTAINER",
        [OCI_DF_ONBUILD] = "ONBUILD",
    };
    if ((unsigned)k >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[k];
}

static int add_arg(struct oci_df_instr *in, const char *s, size_t n)
{
    char *d = dup_n(s, n);
    char **nv;

    if (d == NULL)
        return UV_ENOMEM;
    nv = realloc(in->args, (in->n_args + 1) * sizeof(*nv));
    if (nv == NULL) {
        free(d);
        return UV_ENOMEM;
    }
    in->args = nv;
    in->args[in->n_args++] = d;
    return 0;
}

static int add_pair(struct oci_df_instr *in, const char *k, size_t kn, const char *v, size_t vn,
                    bool has_value)
{
    struct oci_df_pair *np = realloc(in->pairs, (in->n_pairs + 1) * sizeof(*np));
    struct oci_df_pair pr = {dup_n(k, kn), has_value ? dup_n(v, vn) : NULL};

    if (np != NULL)
        in->pairs = np;
    if (np == NULL || pr.key == NULL || (has_value && pr.value == NULL)) {
        free(pr.key);
        free(pr.value);
        return UV_ENOMEM;
    }
    in->pairs[in->n_pairs++] = pr;
    return 0;
}

static int add_flag(struct oci_df_instr *in, const char *w, size_t n)
{
    struct oci_df_flag *nf = realloc(in->flags, (in->n_flags + 1) * sizeof(*nf));
    const char *eq = memchr(w, '=', n);
    struct oci_df_flag f;

    if (nf == NULL)
        return UV_ENOMEM;
    in->flags = nf;
    /* The word starts with "--": BFlags.Parse cuts the name at the first '='. */
    f.name = dup_n(w + 2, (eq != NULL ? (size_t)(eq - w) : n) - 2);
    f.value = eq != NULL ? dup_n(eq + 1, n - (size_t)(eq - w) - 1) : NULL;
    if (f.name == NULL || (eq != NULL && f.value == NULL)) {
        free(f.name);
        free(f.value);
        return UV_ENOMEM;
    }
    in->flags[in->n_flags++] = f;
    return 0;
}

/*
 * extractBuilderFlags: leading words that start with "--", read byte by
 * byte, quotes and escapes removed; a "--" word ends them. *rest is where
 * the arguments start.
 */
static int extract_flags(const char *s, size_t n, char esc, struct oci_df_instr *in, size_t *rest)
{
    enum { SPACES, WORD, QUOTE } phase = SPACES;
    struct sbuf w = {.max = OCI_DF_MAX};
    char quote_ch = 0;
    bool blank_ok = false;
    int rc = 0;

    *rest = n;
    for (size_t pos = 0; pos <= n; pos++) {
        char ch = pos < n ? s[pos] : '\0';
        if (phase == SPACES) {
            if (pos == n)
                break;
            if (byte_space(ch))
                continue;
            if (ch != '-' || pos + 1 == n || s[pos + 1] != '-') {
                *rest = pos;
                goto out;
            }
            phase = WORD;
        }
        if (pos == n) {
            bool dashdash = w.len == 2 && memcmp(w.p, "--", 2) == 0;
            if (!dashdash && (blank_ok || w.len > 0))
                rc = add_flag(in, w.p, w.len);
            break;
        }
        if (phase == WORD) {
            if (byte_space(ch)) {
                phase = SPACES;
                if (w.len == 2 && memcmp(w.p, "--", 2) == 0) {
                    *rest = pos;
                    goto out;
                }
                if ((blank_ok || w.len > 0) && (rc = add_flag(in, w.p, w.len)) != 0)
                    goto out;
                w.len = 0;
                blank_ok = false;
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote_ch = ch;
                blank_ok = true;
                phase = QUOTE;
                continue;
            }
            if (ch == esc) {
                if (pos + 1 == n)
                    continue;
                ch = s[++pos];
            }
            if ((rc = sb_add(&w, &ch, 1)) != 0)
                goto out;
            continue;
        }
        if (ch == quote_ch) {
            phase = WORD;
            continue;
        }
        if (ch == esc) {
            if (pos + 1 == n) {
                phase = WORD;
                continue;
            }
            ch = s[++pos];
        }
        if ((rc = sb_add(&w, &ch, 1)) != 0)
            goto out;
    }
out:
    sb_free(&w);
    return rc;
}

/*
 * parseWords: words split on unquoted white space, quotes and escapes kept
 * (ENV, LABEL and ARG). Appends to out.
 */
static int parse_words(const char *s, size_t n, char esc, struct strv *out)
{
    enum { SPACES, WORD, QUOTE } phase = SPACES;
    struct sbuf w = {.max = OCI_DF_MAX};
    char quote_ch = 0;
    bool blank_ok = false;
    size_t k = 0;
    int rc = 0;

    for (size_t pos = 0; pos <= n; pos += k) {
        k = pos < n ? rune_len(s + pos, n - pos) : 0;
        bool space = pos < n && uspace(s + pos, n - pos) == k;
        if (phase == SPACES) {
            if (pos == n)
                break;
            if (space)
                continue;
            phase = WORD;
        }
        if (pos == n) {
            if (blank_ok || w.len > 0)
                rc = strv_push(out, sb_take(&w));
            break;
        }
        if (phase == WORD) {
            if (space) {
                phase = SPACES;
                if ((blank_ok || w.len > 0) && (rc = strv_push(out, sb_take(&w))) != 0)
                    goto out;
                w.len = 0;
                w.max = OCI_DF_MAX;
                blank_ok = false;
                continue;
            }
            if (s[pos] == '\'' || s[pos] == '"') {
                quote_ch = s[pos];
                blank_ok = true;
                phase = QUOTE;
            }
            if (s[pos] == esc) {
                if (pos + k == n)
                    continue; /* an escape at the end is dropped */
                if ((rc = sb_add(&w, s + pos, k)) != 0)
                    goto out;
                pos += k;
                k = rune_len(s + pos, n - pos);
            }
            if ((rc = sb_add(&w, s + pos, k)) != 0)
                goto out;
            continue;
        }
        if (s[pos] == quote_ch)
            phase = WORD;
        if (s[pos] == esc && quote_ch != '\'') {
            if (pos + k == n) {
                phase = WORD;
                continue;
            }
            if ((rc = sb_add(&w, s + pos, k)) != 0)
                goto out;
            pos += k;
            k = rune_len(s + pos, n - pos);
        }
        if ((rc = sb_add(&w, s + pos, k)) != 0)
            goto out;
    }
out:
    sb_free(&w);
    return rc;
}

/* parseStringsWhitespaceDelimited: split on runs of [\t\v\f\r ], quotes not honoured. */
static int split_ws(struct oci_df_instr *in, const char *s, size_t n)
{
    size_t i = 0;
    int rc = 0;

    if (n == 0)
        return 0;
    for (;;) {
        size_t j = i;
        while (j < n && !ws_ascii(s[j]))
            j++;
        if ((rc = add_arg(in, s + i, j - i)) != 0 || j == n)
            return rc;
        while (j < n && ws_ascii(s[j]))
            j++;
        i = j;
    }
}

/*
 * parseJSON: 1 when s is a JSON array of strings (args filled, json set), 0
 * when it is not JSON at all (the caller falls back to shell form), an error
 * for a JSON array holding anything but strings.
 */
static int parse_json(struct parser *p, unsigned line, struct oci_df_instr *in, const char *s,
                      size_t n)
{
    json_error_t jerr;
    json_t *root;
    int rc = 1;

    if (n == 0 || s[0] != '[')
        return 0;
    if (ocisync__json_values(s, n, OCI_DF_JSON_MAX_VALUES) > OCI_DF_JSON_MAX_VALUES)
        return perr(p, OCISYNC_ETOOBIG, line, "the JSON array holds more than %u values",
                    OCI_DF_JSON_MAX_VALUES);
    /* Go decodes numbers as float64: integers as reals overflow where Go's do. */
    root = json_loadb(s, n, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (root == NULL)
        return 0;
    if (!json_is_array(root)) {
        json_decref(root);
        return 0;
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        if (!json_is_string(json_array_get(root, i))) {
            rc = perr(p, OCISYNC_EUSAGE, line,
                      "when using JSON array syntax, arrays must be comprised of strings only");
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        json_t *v = json_array_get(root, i);
        const char *str = json_string_value(v);
        size_t len = json_string_length(v);
        if (memchr(str, '\0', len) != NULL) {
            rc = perr(p, OCISYNC_EUSAGE, line, "a JSON string holds a NUL character");
            goto out;
        }
        if (add_arg(in, str, len) != 0) {
            rc = oom(p, line);
            goto out;
        }
    }
    in->json = true;
out:
    json_decref(root);
    return rc;
}

/* parseMaybeJSON: RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK's command. */
static int maybe_json(struct parser *p, unsigned line, struct oci_df_instr *in, const char *s,
                      size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    if ((rc = parse_json(p, line, in, s, n)) != 0)
        return rc < 0 ? rc : 0;
    return add_arg(in, s, n) != 0 ? oom(p, line) : 0;
}

/* parseMaybeJSONToList: COPY, ADD, VOLUME. */
static int maybe_json_list(struct parser *p, unsigned line, struct oci_df_instr *in, const char *s,
                           size_t n)
{
    int rc = parse_json(p, line, in, s, n);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    return split_ws(in, s, n) != 0 ? oom(p, line) : 0;
}

/* parseNameVal: ENV and LABEL, "name=value ..." or the legacy "name value". */
static int name_val(struct parser *p, unsigned line, struct oci_df_instr *in, const char *s,
                    size_t n, const char *kw)
{
    struct strv words = {0};
    char q[QUOTE_MAX + 4];
    int rc;

    if ((rc = parse_words(s, n, p->esc, &words)) != 0) {
        rc = oom(p, line);
        goto out;
    }
    if (words.n == 0)
        goto out;
    if (strchr(words.v[0], '=') == NULL) {
        size_t i = 0, j;
        while (i < n && !ws_ascii(s[i]))
            i++;
        if (i == n) {
            rc = perr(p, OCISYNC_EUSAGE, line, "%s must have two arguments", kw);
            goto out;
        }
        j = i;
        while (j < n && ws_ascii(s[j]))
            j++;
        in->legacy = true;
        if (add_pair(in, s, i, s + j, n - j, true) != 0)
            rc = oom(p, line);
        goto out;
    }
    for (size_t i = 0; i < words.n; i++) {
        const char *wd = words.v[i], *eq = strchr(wd, '=');
        if (eq == NULL) {
            rc = perr(p, OCISYNC_EUSAGE, line,
                      "Syntax error - can't find = in \"%s\". Must be of the form: name=value",
                      quote(wd, strlen(wd), q));
            goto out;
        }
        if (add_pair(in, wd, (size_t)(eq - wd), eq + 1, strlen(eq + 1), true) != 0) {
            rc = oom(p, line);
            goto out;
        }
    }
out:
    strv_free(&words);
    return rc;
}

/* parseNameOrNameVal and parseArg: ARG's "name" and "name=default" words. */
static int arg_names(struct parser *p, unsigned line, struct oci_df_instr *in, const char *s,
                     size_t n)
{
    struct strv words = {0};
    int rc = 0;

    if (parse_words(s, n, p->esc, &words) != 0) {
        rc = oom(p, line);
        goto out;
    }
    for (size_t i = 0; i < words.n; i++) {
        const char *wd = words.v[i], *eq = strchr(wd, '=');
        size_t kn = eq != NULL ? (size_t)(eq - wd) : strlen(wd);
        if (add_pair(in, wd, kn, eq != NULL ? eq + 1 : NULL, eq != NULL ? strlen(eq + 1) : 0,
                     eq != NULL) != 0) {
            rc = oom(p, line);
            goto out;
        }
    }
out:
    strv_free(&words);
    return rc;
}

/* parseHealthConfig: the type, then the command as parseMaybeJSON reads it. */
static int health(struct parser *p, unsigned line, struct oci_df_instr *in, const char *s, size_t n)
{
    size_t sep = 0, next;

    while (sep < n && !byte_space(s[sep]))
        sep++;
    next = sep;
    while (next < n && byte_space(s[next]))
        next++;
    if (sep == 0)
        return 0;
    if (add_arg(in, s, sep) != 0)
        return oom(p, line);
    return maybe_json(p, line, in, s + next, n - next);
}

static int node_from_line(struct parser *p, const char *line_s, size_t line_n, unsigned line,
                          struct oci_df_instr *in);

/* newNodeFromLine: keyword, flags, then the keyword's own reading of the rest. */
static int node_from_line(struct parser *p, const char *line_s, size_t line_n, unsigned line,
                          struct oci_df_instr *in)
{
    const char *s = line_s, *rest;
    size_t n = line_n, k = 0, rn = 0, off;
    char q[QUOTE_MAX + 4];
    bool known = false;
    int rc;

    in->line = in->end_line = line;
    if ((in->original = dup_n(line_s, line_n)) == NULL)
        return oom(p, line);
    trim_space(&s, &n);
    while (k < n && !ws_ascii(s[k]))
        k++;
    if ((in->keyword = dup_n(s, k)) == NULL)
        return oom(p, line);
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (eq_fold(s, k, keywords[i].name)) {
            in->kind = keywords[i].kind;
            known = true;
            break;
        }
    }
    if (!known)
        return perr(p, OCISYNC_EUSAGE, line, "unknown instruction: %s", quote(s, k, q));
    rest = s + k;
    if (k < n) {
        size_t j = k;
        while (j < n && ws_ascii(s[j]))
            j++;
        if ((rc = extract_flags(s + j, n - j, p->esc, in, &off)) != 0)
            return oom(p, line);
        rest = s + j + off;
        rn = n - j - off;
        trim_space(&rest, &rn);
    }
    if ((in->raw = dup_n(rest, rn)) == NULL)
        return oom(p, line);

    switch (in->kind) {
    case OCI_DF_ADD:
    case OCI_DF_COPY:
    case OCI_DF_VOLUME:
        return maybe_json_list(p, line, in, rest, rn);
    case OCI_DF_RUN:
    case OCI_DF_CMD:
    case OCI_DF_ENTRYPOINT:
    case OCI_DF_SHELL:
        return maybe_json(p, line, in, rest, rn);
    case OCI_DF_FROM:
    case OCI_DF_EXPOSE:
        return split_ws(in, rest, rn) != 0 ? oom(p, line) : 0;
    case OCI_DF_ENV:
        return name_val(p, line, in, rest, rn, "ENV");
    case OCI_DF_LABEL:
        return name_val(p, line, in, rest, rn, "LABEL");
    case OCI_DF_ARG:
        return arg_names(p, line, in, rest, rn);
    case OCI_DF_HEALTHCHECK:
        return health(p, line, in, rest, rn);
    case OCI_DF_MAINTAINER:
    case OCI_DF_STOPSIGNAL:
    case OCI_DF_USER:
    case OCI_DF_WORKDIR:
        return rn > 0 && add_arg(in, rest, rn) != 0 ? oom(p, line) : 0;
    case OCI_DF_ONBUILD:
        if (rn == 0)
            return 0;
        if ((in->sub = calloc(1, sizeof(*in->sub))) == NULL)
            return oom(p, line);
        return node_from_line(p, rest, rn, line, in->sub);
    }
    return 0;
}

/* canContainHeredoc: RUN, COPY, ADD (or ONBUILD's), not in JSON form. */
static struct oci_df_instr *heredoc_target(struct oci_df_instr *in)
{
    if (in->kind == OCI_DF_ONBUILD) {
        if (in->sub == NULL)
            return NULL;
        in = in->sub;
    }
    if (in->kind != OCI_DF_RUN && in->kind != OCI_DF_COPY && in->kind != OCI_DF_ADD)
        return NULL;
    return in->json ? NULL : in;
}

/*
 * heredocsFromLine, then the bodies: the whole line lexed with a '\\'
 * lexer that keeps quotes and escapes, each word tried as a marker; each
 * body runs to a line equal to its name (after leading tabs, for "<<-").
 */
static int read_heredocs(struct parser *p, struct oci_df_instr *in, const char *line_s,
                         size_t line_n)
{
    struct oci_df_instr *t = heredoc_target(in);
    struct lex_opts o = {.esc = '\\',
                         .raw_quotes = true,
                         .raw_escapes = true,
                         .skip_unset = true,
                         .max = 2 * OCI_DF_MAX};
    struct sbuf b = {0};
    struct words w = {0};
    char q[QUOTE_MAX + 4];
    int rc;

    if (t == NULL)
        return 0;
    bool has = false;
    for (size_t i = 0; i + 1 < line_n && !has; i++)
        has = line_s[i] == '<' && line_s[i + 1] == '<';
    if (!has)
        return 0;
    /* BuildKit ignores the lexer's errors here: such a line has no heredocs. */
    rc = lex_run(line_s, line_n, &o, NULL, NULL, &b, &w, NULL, 0);
    sb_free(&b);
    sb_free(&w.buf);
    if (rc == UV_ENOMEM) {
        rc = oom(p, in->line);
        goto out;
    }
    if (rc != 0) {
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < w.out.n; i++) {
        struct oci_df_heredoc h;
        rc = oci_df_heredoc_word(w.out.v[i], &h);
        if (rc == 0)
            continue;
        if (rc < 0) {
            rc = rc == UV_ENOMEM ? oom(p, in->line)
                                 : perr(p, rc, in->line, "bad heredoc %s",
                                        quote(w.out.v[i], strlen(w.out.v[i]), q));
            goto out;
        }
        struct oci_df_heredoc *nh = realloc(t->heredocs, (t->n_heredocs + 1) * sizeof(*nh));
        if (nh == NULL) {
            free(h.name);
            rc = oom(p, in->line);
            goto out;
        }
        t->heredocs = nh;
        t->heredocs[t->n_heredocs++] = h;
    }
    for (size_t i = 0; i < t->n_heredocs; i++) {
        struct oci_df_heredoc *h = &t->heredocs[i];
        struct sbuf content = {.max = OCI_DF_MAX};
        size_t name_n = strlen(h->name), n;
        bool terminated = false;
        const char *s;
        while ((rc = next_line(p, &s, &n)) > 0) {
            const char *e = s;
            size_t en = trim_newline(s, n);
            if (h->chomp) {
                while (en > 0 && e[0] == '\t') {
                    e++;
                    en--;
                }
            }
            if (en == name_n && memcmp(e, h->name, en) == 0) {
                terminated = true;
                break;
            }
            if ((rc = sb_add(&content, s, n)) != 0) {
                rc = rc == UV_ENOMEM ? oom(p, in->line)
                                     : perr(p, rc, in->line, "the heredoc is too long");
                break;
            }
        }
        if (rc < 0) {
            sb_free(&content);
            goto out;
        }
        if (!terminated) {
            sb_free(&content);
            rc = perr(p, OCISYNC_EUSAGE, in->line, "unterminated heredoc %s",
                      quote(h->name, name_n, q));
            goto out;
        }
        if ((h->content = sb_take(&content)) == NULL) {
            rc = oom(p, in->line);
            goto out;
        }
    }
    rc = 0;
out:
    strv_free(&w.out);
    return rc;
}

/* validStageName: ^[a-z][a-z0-9-_.]*$ on the lowercased name. */
static bool valid_stage(const char *s)
{
    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (s++; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || is_digit(*s) || *s == '-' || *s == '_' || *s == '.'))
            return false;
    }
    return true;
}

/* The checks of instructions/parse.go that need no build state. */
static int validate(struct parser *p, struct oci_df_instr *in, bool *seen_from)
{
    const char *kw = oci_df_kind_name(in->kind);
    unsigned line = in->line;
    char q[QUOTE_MAX + 4];
    struct oci_df_heredoc h;
    int rc;

    if (in->kind != OCI_DF_FROM && in->kind != OCI_DF_ARG && !*seen_from)
        return perr(p, OCISYNC_EUSAGE, line,
                    "no build stage in current context (%s before the first FROM)", kw);
    switch (in->kind) {
    case OCI_DF_FROM:
        *seen_from = true;
        if (in->n_args == 3 && eq_fold(in->args[1], strlen(in->args[1]), "as")) {
            if ((in->stage = dup_n(in->args[2], strlen(in->args[2]))) == NULL)
                return oom(p, line);
            for (char *c = in->stage; *c != '\0'; c++) {
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            }
            if (!valid_stage(in->stage))
                return perr(p, OCISYNC_EUSAGE, line,
                            "invalid name for build stage: \"%s\", name can't start with a "
                            "number or contain symbols",
                            quote(in->args[2], strlen(in->args[2]), q));
        } else if (in->n_args != 1) {
            return perr(p, OCISYNC_EUSAGE, line, "FROM requires either one or three arguments");
        }
        return 0;
    case OCI_DF_ENV:
    case OCI_DF_LABEL:
    case OCI_DF_ARG:
        if (in->n_pairs == 0)
            return perr(p, OCISYNC_EUSAGE, line, "%s requires at least one argument", kw);
        for (size_t i = 0; i < in->n_pairs; i++) {
            if (in->pairs[i].key[0] == '\0')
                return perr(p, OCISYNC_EUSAGE, line, "%s names can not be blank", kw);
        }
        return 0;
    case OCI_DF_MAINTAINER:
    case OCI_DF_WORKDIR:
    case OCI_DF_USER:
    case OCI_DF_STOPSIGNAL:
        if (in->n_args != 1)
            return perr(p, OCISYNC_EUSAGE, line, "%s requires exactly one argument", kw);
        return 0;
    case OCI_DF_ADD:
    case OCI_DF_COPY:
        if (in->n_args < 2)
            return perr(p, OCISYNC_EUSAGE, line,
                        "%s requires at least two arguments, but only one was provided. "
                        "Destination could not be determined",
                        kw);
        rc = oci_df_heredoc_word(in->args[in->n_args - 1], &h);
        free(h.name);
        if (rc == UV_ENOMEM)
            return oom(p, line);
        if (rc == 1)
            return perr(p, OCISYNC_EUSAGE, line, "%s cannot accept a heredoc as a destination", kw);
        return 0;
    case OCI_DF_EXPOSE:
        if (in->n_args == 0)
            return perr(p, OCISYNC_EUSAGE, line, "EXPOSE requires at least one argument");
        return 0;
    case OCI_DF_VOLUME:
        if (in->n_args == 0)
            return perr(p, OCISYNC_EUSAGE, line, "VOLUME requires at least one argument");
        for (size_t i = 0; i < in->n_args; i++) {
            const char *s = in->args[i];
            size_t n = strlen(s);
            trim_space(&s, &n);
            if (n == 0)
                return perr(p, OCISYNC_EUSAGE, line, "VOLUME specified can not be an empty string");
            memmove(in->args[i], s, n);
            in->args[i][n] = '\0';
        }
        return 0;
    case OCI_DF_SHELL:
        if (in->n_args == 0)
            return perr(p, OCISYNC_EUSAGE, line, "SHELL requires at least one argument");
        if (!in->json)
            return perr(p, OCISYNC_EUSAGE, line, "SHELL requires the arguments to be in JSON form");
        return 0;
    case OCI_DF_HEALTHCHECK: {
        if (in->n_args == 0)
            return perr(p, OCISYNC_EUSAGE, line, "HEALTHCHECK requires at least one argument");
        const char *typ = in->args[0];
        if (eq_fold(typ, strlen(typ), "none")) {
            if (in->n_args != 1)
                return perr(p, OCISYNC_EUSAGE, line, "HEALTHCHECK NONE takes no arguments");
            return 0;
        }
        if (!eq_fold(typ, strlen(typ), "cmd"))
            return perr(p, OCISYNC_EUSAGE, line, "Unknown type \"%s\" in HEALTHCHECK (try CMD)",
                        quote(typ, strlen(typ), q));
        if (in->n_args == 1)
            return perr(p, OCISYNC_EUSAGE, line, "Missing command after HEALTHCHECK CMD");
        return 0;
    }
    case OCI_DF_ONBUILD:
        if (in->sub == NULL)
            return perr(p, OCISYNC_EUSAGE, line, "ONBUILD requires at least one argument");
        if (in->sub->kind == OCI_DF_ONBUILD)
            return perr(p, OCISYNC_EUSAGE, line,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (in->sub->kind == OCI_DF_MAINTAINER || in->sub->kind == OCI_DF_FROM)
            return perr(p, OCISYNC_EUSAGE, line, "%s isn't allowed as an ONBUILD trigger",
                        oci_df_kind_name(in->sub->kind));
        return 0;
    case OCI_DF_RUN:
    case OCI_DF_CMD:
    case OCI_DF_ENTRYPOINT:
        return 0;
    }
    return 0;
}

static void free_instr(struct oci_df_instr *in)
{
    free(in->keyword);
    free(in->original);
    for (size_t i = 0; i < in->n_flags; i++) {
        free(in->flags[i].name);
        free(in->flags[i].value);
    }
    free(in->flags);
    free(in->raw);
    for (size_t i = 0; i < in->n_args; i++)
        free(in->args[i]);
    free(in->args);
    for (size_t i = 0; i < in->n_pairs; i++) {
        free(in->pairs[i].key);
        free(in->pairs[i].value);
    }
    free(in->pairs);
    for (size_t i = 0; i < in->n_heredocs; i++) {
        free(in->heredocs[i].name);
        free(in->heredocs[i].content);
    }
    free(in->heredocs);
    free(in->stage);
    if (in->sub != NULL) {
        free_instr(in->sub);
        free(in->sub);
    }
    memset(in, 0, sizeof(*in));
}

void oci_df_free(struct oci_df *df)
{
    if (df == NULL)
        return;
    for (size_t i = 0; i < df->n_instrs; i++)
        free_instr(&df->instrs[i]);
    free(df->instrs);
    free(df->syntax);
    memset(df, 0, sizeof(*df));
    df->escape = '\\';
}

int oci_df_parse(struct oci_df *df, const char *text, size_t len, char *err, size_t errlen)
{
    struct parser p = {.text = text, .len = len, .esc = '\\', .err = err, .errlen = errlen};
    struct directives d = {0};
    struct sbuf buf = {.max = OCI_DF_MAX};
    size_t cap = 0;
    bool first = true, seen_from = false;
    const char *s, *nul;
    size_t n;
    int rc;

    memset(df, 0, sizeof(*df));
    df->escape = '\\';
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text == NULL && len > 0)
        return OCISYNC_EUSAGE;
    if (len > OCI_DF_MAX) {
        ocisync__errf(err, errlen, "Dockerfile: larger than %u bytes", OCI_DF_MAX);
        return OCISYNC_ETOOBIG;
    }
    /* Strings here end at a NUL; BuildKit would keep it, so refuse rather than cut. */
    if (len > 0 && (nul = memchr(text, '\0', len)) != NULL) {
        unsigned line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        rc = perr(&p, OCISYNC_EUSAGE, line, "holds a NUL byte");
        goto fail;
    }
    while ((rc = next_line(&p, &s, &n)) > 0) {
        if (first && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            n -= 3;
        }
        first = false;
        n = trim_newline(s, n);
        size_t k = skip_space(s, n);
        s += k;
        n -= k;
        if ((rc = directive(&p, &d, df, s, n)) != 0)
            goto fail;
        if (n > 0 && s[0] == '#')
            n = 0;
        unsigned start = p.line;
        bool cont = trim_continuation(s, &n, p.esc);
        if (!cont && n == 0)
            continue;
        buf.len = 0;
        if (sb_add(&buf, s, n) != 0) {
            rc = oom(&p, start);
            goto fail;
        }
        while (cont) {
            const char *c;
            size_t cn;
            if ((rc = next_line(&p, &c, &cn)) < 0)
                goto fail;
            if (rc == 0)
                break;
            if (is_comment(c, cn))
                continue;
            cn = trim_newline(c, cn);
            if (skip_space(c, cn) == cn)
                continue;
            cont = trim_continuation(c, &cn, p.esc);
            if ((rc = sb_add(&buf, c, cn)) != 0) {
                rc = rc == OCISYNC_ETOOBIG ? perr(&p, rc, start, "the instruction is too long")
                                           : oom(&p, start);
                goto fail;
            }
        }

        if (df->n_instrs == OCI_DF_MAX_INSTRS) {
            rc = perr(&p, OCISYNC_ETOOBIG, start, "more than %u instructions", OCI_DF_MAX_INSTRS);
            goto fail;
        }
        if (df->n_instrs == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct oci_df_instr *ni = realloc(df->instrs, ncap * sizeof(*ni));
            if (ni == NULL) {
                rc = oom(&p, start);
                goto fail;
            }
            df->instrs = ni;
            cap = ncap;
        }
        struct oci_df_instr *in = &df->instrs[df->n_instrs++];
        memset(in, 0, sizeof(*in));
        const char *line_s = buf.p != NULL ? buf.p : "";
        if ((rc = node_from_line(&p, line_s, buf.len, start, in)) != 0 ||
            (rc = read_heredocs(&p, in, line_s, buf.len)) != 0)
            goto fail;
        in->end_line = p.line;
        if (in->sub != NULL)
            in->sub->end_line = p.line;
        if ((rc = validate(&p, in, &seen_from)) != 0)
            goto fail;
    }
    if (rc < 0)
        goto fail;
    if (df->n_instrs == 0) {
        ocisync__errf(err, errlen, "Dockerfile: file with no instructions");
        rc = OCISYNC_EUSAGE;
        goto fail;
    }
    if (!seen_from) {
        ocisync__errf(err, errlen, "Dockerfile: no stages to build (no FROM instruction)");
        rc = OCISYNC_EUSAGE;
        goto fail;
    }
    sb_free(&buf);
    return 0;
fail:
    sb_free(&buf);
    oci_df_free(df);
    return rc;
}
