/*
 * .dockerignore matching, step by step as docker does it:
 *   - ignorefile.ReadAll turns the file into patterns (lines, comments,
 *     trimming, filepath.Clean, a leading '/' dropped);
 *   - patternmatcher.New trims and cleans each again, splits off '!' and
 *     checks the rest with filepath.Match's syntax rules;
 *   - Pattern.compile turns a pattern into an exact, prefix or suffix
 *     comparison, or into a Go regular expression;
 *   - MatchesUsingParentResults decides a path from its own matches and its
 *     parent directory's, as fsutil's walk (BuildKit) calls it.
 * Go's regular expressions are not POSIX's, so the expression docker builds
 * is parsed here with Go's rules (regexp/syntax, Perl flags) into a small
 * program that runs as a bit-parallel NFA over the path's runes: linear in
 * the path for any pattern, with no recursion and no backtracking.
 */
#include "oci/dockerignore.h"

#include "common/msg.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* How many bytes of a pattern or expression an error message quotes. */
#define QUOTE_MAX 120

#define RUNE_ERROR 0xFFFDu
#define RUNE_MAX 0x10FFFFu
/* The rune before the start or after the end of a path. */
#define NO_RUNE 0xFFFFFFFFu

/*
 * Docker's expression for a pattern has at most 5 runes per pattern byte
 * ("*" becomes "[^/]*") plus "^" and "$". Counted repetitions ("x{1000}")
 * make programs larger than their expressions: one pattern's program is
 * capped, and so are all of them together.
 */
#define RX_RUNES_MAX (5 * OCI_IGNORE_PATTERN_MAX + 2)
#define PROG_MAX 65536
#define PROG_WORDS (PROG_MAX / 64)
#define PROG_TOTAL_MAX (1 << 21)
/* Ranges of one program (pairs), before a class is merged; generous. */
#define RANGES_MAX (8 * RX_RUNES_MAX)
/* Go's largest repetition count. */
#define REPEAT_MAX 1000
/* A jump whose target is set when the alternation ends. */
#define TARGET_LATER UINT32_MAX

/* ---------------------------------------------------------------------------------------------
 * Go's string primitives
 */

/* utf8.DecodeRune: the rune at s[0..n) (n > 0) and its width; RuneError and 1 when not UTF-8. */
static uint32_t decode(const unsigned char *s, size_t n, size_t *w)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    uint32_t r;

    *w = 1;
    if (c < 0x80)
        return c;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        r = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        r = c & 0x0F;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        r = c & 0x07;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return RUNE_ERROR;
    }
    if (n < need)
        return RUNE_ERROR;
    for (size_t k = 1; k < need; k++) {
        unsigned b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return RUNE_ERROR;
        r = r << 6 | (b & 0x3F);
    }
    *w = need;
    return r;
}

/* unicode.IsSpace for runes encoded in three bytes (the others are ASCII, U+0085 and U+00A0). */
static bool is_wide_space(uint32_t r)
{
    return r == 0x1680 || (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 ||
           r == 0x202F || r == 0x205F || r == 0x3000;
}

/* The width of the Unicode space s[0..n) starts with, or 0. */
static size_t space_at(const unsigned char *s, size_t n)
{
    size_t w;

    if (n == 0)
        return 0;
    if (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (n >= 3 && is_wide_space(decode(s, n, &w)) && w == 3)
        return 3;
    return 0;
}

/* The width of the Unicode space s[0..n) ends with, or 0. */
static size_t space_before(const unsigned char *s, size_t n)
{
    size_t w;

    if (n >= 1 && space_at(s + n - 1, 1) == 1)
        return 1;
    if (n >= 2 && space_at(s + n - 2, 2) == 2)
        return 2;
    if (n >= 3 && is_wide_space(decode(s + n - 3, 3, &w)) && w == 3)
        return 3;
    return 0;
}

/* strings.TrimSpace on the span *p, *n. */
static void trim_space(const char **p, size_t *n)
{
    const unsigned char *s = (const unsigned char *)*p;
    size_t len = *n, w;

    while ((w = space_at(s, len)) > 0) {
        s += w;
        len -= w;
    }
    while ((w = space_before(s, len)) > 0)
        len -= w;
    *p = (const char *)s;
    *n = len;
}

/* filepath.Clean on Unix: p[0..n) into out, which has room for n + 1 bytes; returns the length. */
static size_t clean(const char *p, size_t n, char *out)
{
    bool rooted;
    size_t r = 0, w = 0, dotdot = 0;

    if (n == 0) {
        out[0] = '.';
        return 1;
    }
    rooted = p[0] == '/';
    if (rooted) {
        out[w++] = '/';
        r = dotdot = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++; /* a "." element */
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2; /* a ".." element: remove the last element, or keep ".." if there is none */
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            for (; r < n && p[r] != '/'; r++)
                out[w++] = p[r];
        }
    }
    if (w == 0)
        out[w++] = '.';
    return w;
}

/* ---------------------------------------------------------------------------------------------
 * Error messages
 */

struct quote {
    char s[QUOTE_MAX + 4];
};

/* p[0..n) for a message: at most QUOTE_MAX bytes, NUL bytes shown as '?' (errf does the rest). */
static const char *quote(const char *p, size_t n, struct quote *q)
{
    size_t k = n < QUOTE_MAX ? n : QUOTE_MAX;

    for (size_t i = 0; i < k; i++)
        q->s[i] = p[i] == '\0' ? '?' : p[i];
    memcpy(q->s + k, n > QUOTE_MAX ? "..." : "", n > QUOTE_MAX ? 4 : 1);
    return q->s;
}

/* Runes for a message: ASCII as is, the rest as '?'. */
static const char *quote_runes(const uint32_t *r, size_t n, struct quote *q)
{
    size_t k = n < QUOTE_MAX ? n : QUOTE_MAX;

    for (size_t i = 0; i < k; i++)
        q->s[i] = r[i] > 0 && r[i] < 0x80 ? (char)r[i] : '?';
    memcpy(q->s + k, n > QUOTE_MAX ? "..." : "", n > QUOTE_MAX ? 4 : 1);
    return q->s;
}

/* ---------------------------------------------------------------------------------------------
 * filepath.Match's syntax check
 *
 * patternmatcher.New calls filepath.Match(pattern, ".") only for its error,
 * and Match (since Go 1.16) checks the whole pattern, chunk by chunk, even
 * after a mismatch. Only its errors matter here.
 */

/* getEsc: one possibly escaped class character at p[*k]. */
static const char *class_char_ok(const char *p, size_t n, size_t *k)
{
    size_t w;

    if (*k >= n)
        return "'[' has no closing ']'";
    if (p[*k] == '-' || p[*k] == ']')
        return "a character class has ']' or '-' where a character belongs (escape it with '\\')";
    if (p[*k] == '\\' && ++*k >= n)
        return "'[' has no closing ']'";
    if (decode((const unsigned char *)p + *k, n - *k, &w) == RUNE_ERROR && w == 1)
        return "a character class holds a byte that is not UTF-8";
    *k += w;
    if (*k >= n)
        return "'[' has no closing ']'";
    return NULL;
}

/* matchChunk's checks on one chunk (a run without unbracketed '*'). */
static const char *chunk_ok(const char *p, size_t n)
{
    const char *why;
    size_t k = 0;

    while (k < n) {
        if (p[k] == '[') {
            int nrange = 0;
            k++;
            if (k < n && p[k] == '^')
                k++;
            for (;;) {
                if (k < n && p[k] == ']' && nrange > 0) {
                    k++;
                    break;
                }
                if ((why = class_char_ok(p, n, &k)) != NULL)
                    return why;
                if (p[k] == '-') {
                    k++;
                    if ((why = class_char_ok(p, n, &k)) != NULL)
                        return why;
                }
                nrange++;
            }
        } else if (p[k] == '\\') {
            if (k + 1 >= n)
                return "it ends with a lone '\\'";
            k += 2;
        } else {
            k++;
        }
    }
    return NULL;
}

/* filepath.Match(p, "."): NULL, or why p is malformed. */
static const char *glob_ok(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t start, j;
        bool inrange = false;
        const char *why;

        while (i < n && p[i] == '*')
            i++;
        /* scanChunk: up to the next '*' outside brackets; '\' protects the next byte. */
        start = i;
        for (j = i; j < n; j++) {
            if (p[j] == '\\') {
                if (j + 1 < n)
                    j++;
            } else if (p[j] == '[') {
                inrange = true;
            } else if (p[j] == ']') {
                inrange = false;
            } else if (p[j] == '*' && !inrange) {
                break;
            }
        }
        if ((why = chunk_ok(p + start, j - start)) != NULL)
            return why;
        i = j;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Programs: what a Go expression compiles to
 *
 * Docker's expressions are alternations (docker leaves '|' unescaped) of
 * concatenations of runes, classes, assertions, repeated classes and the
 * optional group it writes for "**" (any run of runes but '\n' that ends in
 * '/'). None needs a backward jump, so the epsilon closure of a set of
 * instructions takes one pass in program order.
 */

enum op {
    OP_CLASS,  /* one rune in ranges [a, a + n) */
    OP_STAR,   /* any number of runes in the ranges, then on */
    OP_SPLIT,  /* on, and also to instruction a (a > this one) */
    OP_JMP,    /* to instruction a (a > this one) */
    OP_ASSERT, /* on if assertion as holds here */
    OP_MATCH,
};

enum assertion { AS_BEGIN, AS_END, AS_WORD, AS_NOT_WORD };

struct inst {
    uint8_t op;
    uint8_t as;
    uint32_t a, n;
};

struct prog {
    struct inst *inst; /* owned, n_inst entries, the last one OP_MATCH */
    size_t n_inst, cap_inst;
    uint32_t *rng; /* owned, n_rng (lo, hi) pairs, each class sorted and merged */
    size_t n_rng, cap_rng;
};

static void prog_free(struct prog *pg)
{
    free(pg->inst);
    free(pg->rng);
    memset(pg, 0, sizeof(*pg));
}

static int emit(struct prog *pg, enum op op, uint32_t a, uint32_t n, enum assertion as)
{
    if (pg->n_inst == pg->cap_inst) {
        size_t cap = pg->cap_inst ? 2 * pg->cap_inst : 16;
        struct inst *p;
        if (pg->n_inst >= PROG_MAX)
            return OCISYNC_ETOOBIG;
        if (cap > PROG_MAX)
            cap = PROG_MAX;
        if ((p = realloc(pg->inst, cap * sizeof(*p))) == NULL)
            return UV_ENOMEM;
        pg->inst = p;
        pg->cap_inst = cap;
    }
    pg->inst[pg->n_inst++] = (struct inst){.op = (uint8_t)op, .as = (uint8_t)as, .a = a, .n = n};
    return 0;
}

/*
 * Inserts an OP_SPLIT at at that skips to what is now instruction end. Jumps
 * to instructions after at follow them; a jump to at now reaches the split.
 */
static int insert_split(struct prog *pg, size_t at, size_t end)
{
    int rc = emit(pg, OP_MATCH, 0, 0, AS_BEGIN); /* makes room */
    if (rc != 0)
        return rc;
    memmove(pg->inst + at + 1, pg->inst + at, (pg->n_inst - 1 - at) * sizeof(*pg->inst));
    for (size_t k = 0; k < pg->n_inst; k++) {
        struct inst *in = &pg->inst[k];
        if ((in->op == OP_SPLIT || in->op == OP_JMP) && in->a != TARGET_LATER && in->a > at)
            in->a++;
    }
    pg->inst[at] = (struct inst){.op = OP_SPLIT, .a = (uint32_t)(end + 1)};
    return 0;
}

static int add_range(struct prog *pg, uint32_t lo, uint32_t hi)
{
    if (pg->n_rng == pg->cap_rng) {
        size_t cap = pg->cap_rng ? 2 * pg->cap_rng : 16;
        uint32_t *p;
        if (pg->n_rng >= RANGES_MAX)
            return OCISYNC_ETOOBIG;
        if (cap > RANGES_MAX)
            cap = RANGES_MAX;
        if ((p = realloc(pg->rng, cap * 2 * sizeof(*p))) == NULL)
            return UV_ENOMEM;
        pg->rng = p;
        pg->cap_rng = cap;
    }
    pg->rng[2 * pg->n_rng] = lo;
    pg->rng[2 * pg->n_rng + 1] = hi;
    pg->n_rng++;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return (x[1] < y[1]) - (x[1] > y[1]); /* wider first, as Go's cleanClass */
}

/*
 * Ends the class whose ranges start at pair first: sorts and merges them (Go's
 * cleanClass), negates them if asked, shares an identical earlier class, and
 * emits op for it.
 */
static int end_class(struct prog *pg, size_t first, bool negate, enum op op)
{
    uint32_t *r = pg->rng + 2 * first;
    size_t n = pg->n_rng - first, w = 0;
    int rc;

    qsort(r, n, 2 * sizeof(*r), cmp_range);
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && r[2 * i] <= r[2 * w - 1] + 1) {
            if (r[2 * i + 1] > r[2 * w - 1])
                r[2 * w - 1] = r[2 * i + 1];
            continue;
        }
        r[2 * w] = r[2 * i];
        r[2 * w + 1] = r[2 * i + 1];
        w++;
    }
    pg->n_rng = first + w;
    if (negate) {
        /* Go's negateClass, in place: each write lands at or before the pair just read. */
        uint32_t next = 0;
        size_t k = 0;
        for (size_t i = 0; i < w; i++) {
            uint32_t lo = r[2 * i], hi = r[2 * i + 1];
            if (lo > next) {
                r[2 * k] = next;
                r[2 * k + 1] = lo - 1;
                k++;
            }
            next = hi + 1;
        }
        pg->n_rng = first + k;
        if (next <= RUNE_MAX && (rc = add_range(pg, next, RUNE_MAX)) != 0)
            return rc;
        r = pg->rng + 2 * first;
        w = pg->n_rng - first;
    }
    /* Docker's expressions repeat a few classes ("[^/]" for every '*'): share them. */
    for (size_t back = 0, k = pg->n_inst; k-- > 0 && back < 4;) {
        const struct inst *in = &pg->inst[k];
        if (in->op != OP_CLASS && in->op != OP_STAR)
            continue;
        back++;
        if (in->n == w && in->a != first &&
            memcmp(pg->rng + 2 * in->a, r, w * 2 * sizeof(*r)) == 0) {
            pg->n_rng = first;
            return emit(pg, op, in->a, (uint32_t)w, AS_BEGIN);
        }
    }
    return emit(pg, op, (uint32_t)first, (uint32_t)w, AS_BEGIN);
}

static int emit_rune(struct prog *pg, uint32_t c)
{
    size_t first = pg->n_rng;
    int rc = add_range(pg, c, c);
    return rc != 0 ? rc : end_class(pg, first, false, OP_CLASS);
}

static bool in_class(const struct prog *pg, const struct inst *in, uint32_t c)
{
    const uint32_t *r = pg->rng + 2 * in->a;
    size_t lo = 0, hi = in->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[2 * mid])
            hi = mid;
        else if (c > r[2 * mid + 1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* \b and \B: Go's word characters are ASCII only. */
static bool is_word(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

#define BIT_SET(b, i) ((b)[(i) >> 6] |= (uint64_t)1 << ((i)&63))
#define BIT_GET(b, i) (((b)[(i) >> 6] >> ((i)&63)) & 1)

/*
 * Go's regexp.MatchString(s): true if the program matches somewhere in
 * s[0..len) (docker's expressions anchor themselves with ^ and $). Runes are
 * decoded as Go decodes them: an invalid byte is one RuneError. The set of
 * live instructions is a bitmap, so a step costs one pass over the program.
 */
static bool prog_run(const struct prog *pg, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    uint64_t a[PROG_WORDS], b[PROG_WORDS], *cur = a, *nxt = b;
    size_t words = (pg->n_inst + 63) / 64, pos = 0, n = pg->n_inst;
    uint32_t prev = NO_RUNE;
    bool anchored = pg->inst[0].op == OP_ASSERT && pg->inst[0].as == AS_BEGIN;

    memset(cur, 0, words * sizeof(*cur));
    for (;;) {
        size_t w = 0;
        uint32_t c = pos < len ? decode(s + pos, len - pos, &w) : NO_RUNE;
        bool any = false;

        /* A match may start anywhere, though ^ lets only the first one live. */
        if (pos == 0 || !anchored)
            BIT_SET(cur, 0);
        /* Epsilon closure: every jump goes forward, so one pass in order reaches them all. */
        for (size_t pc = 0; pc < n; pc++) {
            const struct inst *in = &pg->inst[pc];
            bool holds = false;
            if ((pc & 63) == 0 && cur[pc >> 6] == 0) {
                pc += 63;
                continue;
            }
            if (!BIT_GET(cur, pc))
                continue;
            switch (in->op) {
            case OP_STAR:
                BIT_SET(cur, pc + 1);
                break;
            case OP_SPLIT:
                BIT_SET(cur, pc + 1);
                BIT_SET(cur, in->a);
                break;
            case OP_JMP:
                BIT_SET(cur, in->a);
                break;
            case OP_ASSERT:
                switch (in->as) {
                case AS_BEGIN:
                    holds = pos == 0;
                    break;
                case AS_END:
                    holds = pos == len;
                    break;
                case AS_WORD:
                    holds = is_word(prev) != is_word(c);
                    break;
                default:
                    holds = is_word(prev) == is_word(c);
                    break;
                }
                if (holds)
                    BIT_SET(cur, pc + 1);
                break;
            case OP_MATCH:
                return true;
            default:
                break;
            }
        }
        if (pos == len)
            return false;
        memset(nxt, 0, words * sizeof(*nxt));
        for (size_t pc = 0; pc < n; pc++) {
            const struct inst *in = &pg->inst[pc];
            if ((pc & 63) == 0 && cur[pc >> 6] == 0) {
                pc += 63;
                continue;
            }
            if (!BIT_GET(cur, pc) || (in->op != OP_CLASS && in->op != OP_STAR))
                continue;
            if (in_class(pg, in, c)) {
                BIT_SET(nxt, in->op == OP_STAR ? pc : pc + 1);
                any = true;
            }
        }
        if (!any && anchored)
            return false;
        cur = cur == a ? b : a;
        nxt = nxt == a ? b : a;
        pos += w;
        prev = c;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Go's regexp parser, for the expressions docker builds
 */

/* A class group (Go's perl_groups.go): sign and ranges. */
struct group {
    const char *name;
    int sign;
    const uint32_t *r;
    size_t n;
};

static const uint32_t g_digit[] = {'0', '9'};
static const uint32_t g_space[] = {'\t', '\n', '\f', '\r', ' ', ' '};
static const uint32_t g_word[] = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};
static const uint32_t g_alnum[] = {'0', '9', 'A', 'Z', 'a', 'z'};
static const uint32_t g_alpha[] = {'A', 'Z', 'a', 'z'};
static const uint32_t g_ascii[] = {0, 0x7F};
static const uint32_t g_blank[] = {'\t', '\t', ' ', ' '};
static const uint32_t g_cntrl[] = {0, 0x1F, 0x7F, 0x7F};
static const uint32_t g_graph[] = {'!', '~'};
static const uint32_t g_lower[] = {'a', 'z'};
static const uint32_t g_print[] = {' ', '~'};
static const uint32_t g_punct[] = {'!', '/', ':', '@', '[', '`', '{', '~'};
static const uint32_t g_pspace[] = {'\t', '\r', ' ', ' '};
static const uint32_t g_upper[] = {'A', 'Z'};
static const uint32_t g_xdigit[] = {'0', '9', 'A', 'F', 'a', 'f'};

#define GROUP(name, sign, r)                                                                       \
    {                                                                                              \
        name, sign, r, sizeof(r) / sizeof(r[0]) / 2                                                \
    }

static const struct group perl_groups[] = {
    GROUP("\\d", 1, g_digit),  GROUP("\\D", -1, g_digit), GROUP("\\s", 1, g_space),
    GROUP("\\S", -1, g_space), GROUP("\\w", 1, g_word),   GROUP("\\W", -1, g_word),
};

static const struct group posix_groups[] = {
    GROUP("[:alnum:]", 1, g_alnum),   GROUP("[:^alnum:]", -1, g_alnum),
    GROUP("[:alpha:]", 1, g_alpha),   GROUP("[:^alpha:]", -1, g_alpha),
    GROUP("[:ascii:]", 1, g_ascii),   GROUP("[:^ascii:]", -1, g_ascii),
    GROUP("[:blank:]", 1, g_blank),   GROUP("[:^blank:]", -1, g_blank),
    GROUP("[:cntrl:]", 1, g_cntrl),   GROUP("[:^cntrl:]", -1, g_cntrl),
    GROUP("[:digit:]", 1, g_digit),   GROUP("[:^digit:]", -1, g_digit),
    GROUP("[:graph:]", 1, g_graph),   GROUP("[:^graph:]", -1, g_graph),
    GROUP("[:lower:]", 1, g_lower),   GROUP("[:^lower:]", -1, g_lower),
    GROUP("[:print:]", 1, g_print),   GROUP("[:^print:]", -1, g_print),
    GROUP("[:punct:]", 1, g_punct),   GROUP("[:^punct:]", -1, g_punct),
    GROUP("[:space:]", 1, g_pspace),  GROUP("[:^space:]", -1, g_pspace),
    GROUP("[:upper:]", 1, g_upper),   GROUP("[:^upper:]", -1, g_upper),
    GROUP("[:word:]", 1, g_word),     GROUP("[:^word:]", -1, g_word),
    GROUP("[:xdigit:]", 1, g_xdigit), GROUP("[:^xdigit:]", -1, g_xdigit),
};

static const struct group *find_group(const struct group *g, size_t ng, const uint32_t *s, size_t n)
{
    for (size_t i = 0; i < ng; i++) {
        size_t k = 0;
        while (k < n && g[i].name[k] != '\0' && (uint32_t)(unsigned char)g[i].name[k] == s[k])
            k++;
        if (k == n && g[i].name[k] == '\0')
            return &g[i];
    }
    return NULL;
}

/* Appends a group's runes (or, for a negative one, all the others) to the open class. */
static int add_group(struct prog *pg, const struct group *g)
{
    uint32_t next = 0;
    int rc;

    for (size_t i = 0; i < g->n; i++) {
        uint32_t lo = g->r[2 * i], hi = g->r[2 * i + 1];
        if (g->sign > 0)
            rc = add_range(pg, lo, hi);
        else
            rc = lo > next ? add_range(pg, next, lo - 1) : 0;
        if (rc != 0)
            return rc;
        next = hi + 1;
    }
    return g->sign < 0 ? add_range(pg, next, RUNE_MAX) : 0;
}

/* What a repetition operator applies to: the last atom, and what it has become. */
enum atom_kind {
    AT_NONE,      /* nothing yet in this alternative */
    AT_EMPTY,     /* an assertion repeated zero times */
    AT_CLASS,     /* one OP_CLASS */
    AT_STAR,      /* one OP_STAR */
    AT_OPT,       /* OP_SPLIT, OP_CLASS */
    AT_ASSERT,    /* one OP_ASSERT */
    AT_GROUP,     /* OP_STAR (not '\n'), OP_CLASS ('/'): docker's group for "**" */
    AT_GROUP_OPT, /* OP_SPLIT and the group */
    AT_REPEATED,  /* a class or group repeated by counts */
};

struct atom {
    enum atom_kind kind;
    size_t at; /* its first instruction */
};

struct rxp {
    const uint32_t *s; /* the expression's runes */
    size_t n, i;
    struct prog *pg;
    char why[QUOTE_MAX + 80]; /* what is wrong, when a function returned OCISYNC_EUSAGE */
};

/* Records Go's error text ("what: `expr`") for the runes s[from..to) and returns OCISYNC_EUSAGE. */
static int rx_fail(struct rxp *x, const char *what, size_t from, size_t to)
{
    struct quote q;
    if (to > x->n)
        to = x->n;
    snprintf(x->why, sizeof(x->why), "%s: `%s`", what, quote_runes(x->s + from, to - from, &q));
    return OCISYNC_EUSAGE;
}

static int hexval(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Go's parseEscape: the rune of the escape at s[x->i] == '\\'. */
static int rx_escape(struct rxp *x, uint32_t *out)
{
    const uint32_t *s = x->s;
    size_t start = x->i, i = x->i + 1, n = x->n;
    uint32_t c, r = 0;

    if (i >= n)
        return rx_fail(x, "trailing backslash at end of expression", start, n);
    c = s[i++];
    if (c < 0x80 && !(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z')) {
        *out = c; /* escaped punctuation is itself */
        x->i = i;
        return 0;
    }
    switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        /* A single non-zero digit would be a backreference, which Go refuses. */
        if (i >= n || s[i] < '0' || s[i] > '7')
            break;
        /* fall through */
    case '0':
        r = c - '0';
        for (int k = 1; k < 3 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
            r = r * 8 + (s[i++] - '0');
        *out = r;
        x->i = i;
        return 0;
    case 'x':
        if (i >= n)
            break;
        if (s[i] == '{') {
            int nhex = 0;
            for (i++;; i++) {
                int v;
                if (i >= n)
                    goto bad;
                if (s[i] == '}')
                    break;
                if ((v = hexval(s[i])) < 0 || (r = r * 16 + (uint32_t)v) > RUNE_MAX)
                    goto bad;
                nhex++;
            }
            if (nhex == 0)
                break;
            *out = r;
            x->i = i + 1;
            return 0;
        }
        if (i + 1 >= n || hexval(s[i]) < 0 || hexval(s[i + 1]) < 0) {
            i = i + 1 < n ? i + 2 : n;
            break;
        }
        *out = (uint32_t)(hexval(s[i]) * 16 + hexval(s[i + 1]));
        x->i = i + 2;
        return 0;
    case 'a':
        r = '\a';
        goto simple;
    case 'f':
        r = '\f';
        goto simple;
    case 'n':
        r = '\n';
        goto simple;
    case 'r':
        r = '\r';
        goto simple;
    case 't':
        r = '\t';
        goto simple;
    case 'v':
        r = '\v';
        goto simple;
    default:
        break;
    }
bad:
    return rx_fail(x, "invalid escape sequence", start, i);
simple:
    *out = r;
    x->i = i;
    return 0;
}

/* Go's parseClassChar. */
static int rx_class_char(struct rxp *x, size_t whole, uint32_t *out)
{
    if (x->i >= x->n)
        return rx_fail(x, "missing closing ]", whole, x->n);
    if (x->s[x->i] == '\\')
        return rx_escape(x, out);
    *out = x->s[x->i++];
    return 0;
}

static bool is_perl_class(const uint32_t *s, size_t i, size_t n)
{
    return i + 1 < n && s[i] == '\\' && find_group(perl_groups, 6, s + i, 2) != NULL;
}

static int rx_unicode_class(struct rxp *x)
{
    return rx_fail(x,
                   "a Unicode class, which Go accepts but ocisync does not support (write the "
                   "characters out)",
                   x->i, x->i + 2);
}

/* Go's parseClass, with Perl flags (no case folding, '-' fine anywhere, classes match '\n'). */
static int rx_class(struct rxp *x)
{
    const uint32_t *s = x->s;
    size_t n = x->n, whole = x->i, first = x->pg->n_rng;
    bool negate = false, at_start = true;
    int rc;

    x->i++;
    if (x->i < n && s[x->i] == '^') {
        negate = true;
        x->i++;
    }
    while (x->i >= n || s[x->i] != ']' || at_start) {
        size_t i = x->i, from;
        uint32_t lo, hi;

        at_start = false; /* ']' is an ordinary character first in a class */
        if (i + 2 < n && s[i] == '[' && s[i + 1] == ':') {
            /* "[:name:]", the name running to the first ":]" anywhere after it, as in Go. */
            size_t j = i + 2;
            while (j + 1 < n && !(s[j] == ':' && s[j + 1] == ']'))
                j++;
            if (j + 1 < n) {
                const struct group *g = find_group(posix_groups, 28, s + i, j + 2 - i);
                if (g == NULL)
                    return rx_fail(x, "invalid character class range", i, j + 2);
                if ((rc = add_group(x->pg, g)) != 0)
                    return rc;
                x->i = j + 2;
                continue;
            }
        }
        if (i + 1 < n && s[i] == '\\' && (s[i + 1] == 'p' || s[i + 1] == 'P'))
            return rx_unicode_class(x);
        if (is_perl_class(s, i, n)) {
            if ((rc = add_group(x->pg, find_group(perl_groups, 6, s + i, 2))) != 0)
                return rc;
            x->i += 2;
            continue;
        }
        from = i;
        if ((rc = rx_class_char(x, whole, &lo)) != 0)
            return rc;
        hi = lo;
        /* "a-" before ']' is 'a' and '-'. */
        if (x->i + 1 < n && s[x->i] == '-' && s[x->i + 1] != ']') {
            x->i++;
            if ((rc = rx_class_char(x, whole, &hi)) != 0)
                return rc;
            if (hi < lo)
                return rx_fail(x, "invalid character class range", from, x->i);
        }
        if ((rc = add_range(x->pg, lo, hi)) != 0)
            return rc;
    }
    x->i++; /* ']' */
    return end_class(x->pg, first, negate, OP_CLASS);
}

/* Emits the instructions from..from + n (copies, as the program may move) count times. */
static int emit_copies(struct prog *pg, const struct inst *unit, size_t n, int count)
{
    for (int k = 0; k < count; k++) {
        for (size_t j = 0; j < n; j++) {
            int rc = emit(pg, (enum op)unit[j].op, unit[j].a, unit[j].n, AS_BEGIN);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/*
 * Applies a repetition, min to max times (max -1: no limit), to the last
 * atom: '*' is {0,-1} and '?' is {0,1}. The atom is rewritten as min copies
 * and then the optional rest.
 */
static int rx_repeat(struct rxp *x, struct atom *t, int min, int max, size_t from, size_t to)
{
    struct prog *pg = x->pg;
    struct inst unit[2];
    size_t n_unit = 1;
    int rc, n_opt;

    switch (t->kind) {
    case AT_EMPTY:
    case AT_STAR:
    case AT_GROUP_OPT:
        /* Nothing, c* and the optional group repeated are themselves. */
        return 0;
    case AT_ASSERT:
        /* An assertion holds or not; repeated zero times it is the empty string. */
        if (min == 0) {
            pg->n_inst = t->at;
            t->kind = AT_EMPTY;
        }
        return 0;
    case AT_OPT:
        /* (c?){min,max} is c{0,max}. */
        unit[0] = pg->inst[t->at + 1];
        min = 0;
        break;
    case AT_CLASS:
        unit[0] = pg->inst[t->at];
        break;
    case AT_GROUP:
        unit[0] = pg->inst[t->at];
        unit[1] = pg->inst[t->at + 1];
        n_unit = 2;
        break;
    default:
        return rx_fail(x, "a repetition of a repetition, which ocisync does not support", from, to);
    }
    pg->n_inst = t->at;
    if ((rc = emit_copies(pg, unit, n_unit, min)) != 0)
        return rc;
    if (n_unit == 2) {
        /* The group repeated any number of times matches what it matches optionally. */
        n_opt = max == -1 || max > min ? 1 : 0;
    } else if (max == -1) {
        unit[0].op = OP_STAR;
        if ((rc = emit_copies(pg, unit, 1, 1)) != 0)
            return rc;
        n_opt = 0;
    } else {
        n_opt = max - min;
    }
    for (int k = 0; k < n_opt; k++) {
        size_t start = pg->n_inst;
        if ((rc = emit_copies(pg, unit, n_unit, 1)) != 0 ||
            (rc = insert_split(pg, start, pg->n_inst)) != 0)
            return rc;
    }
    if (pg->n_inst == t->at)
        t->kind = AT_EMPTY;
    else if (n_unit == 1 && min == 0 && max == -1)
        t->kind = AT_STAR;
    else if (n_unit == 1 && min == 0 && max == 1)
        t->kind = AT_OPT;
    else if (n_unit == 1 && min == 1 && max == 1)
        t->kind = AT_CLASS;
    else if (n_unit == 2 && min == 0)
        t->kind = AT_GROUP_OPT;
    else if (n_unit == 2 && min == 1 && max == 1)
        t->kind = AT_GROUP;
    else
        t->kind = AT_REPEATED;
    return 0;
}

/* Go's parseInt: decimal digits without a leading zero; -1 when too large. */
static bool rx_int(const uint32_t *s, size_t n, size_t *i, int *out)
{
    size_t k = *i;
    long v = 0;

    if (k >= n || s[k] < '0' || s[k] > '9')
        return false;
    if (k + 1 < n && s[k] == '0' && s[k + 1] >= '0' && s[k + 1] <= '9')
        return false;
    for (; k < n && s[k] >= '0' && s[k] <= '9'; k++) {
        if (v >= 100000000)
            v = -1;
        if (v >= 0)
            v = v * 10 + (long)(s[k] - '0');
    }
    *out = (int)v;
    *i = k;
    return true;
}

/* Go's parseRepeat: "{min}", "{min,}" or "{min,max}" at s[i]; *end is after the '}'. */
static bool rx_counts(const uint32_t *s, size_t n, size_t i, int *min, int *max, size_t *end)
{
    i++;
    if (!rx_int(s, n, &i, min) || i >= n)
        return false;
    if (s[i] != ',') {
        *max = *min;
    } else {
        i++;
        if (i >= n)
            return false;
        if (s[i] == '}') {
            *max = -1;
        } else {
            if (!rx_int(s, n, &i, max))
                return false;
            if (*max < 0)
                *min = -1;
        }
    }
    if (i >= n || s[i] != '}')
        return false;
    *end = i + 1;
    return true;
}

/*
 * Parses docker's expression x->s into x->pg. Docker escapes '.', '+', '(',
 * ')' and '$' of what the user wrote, so a raw '(' always opens the group it
 * writes for "**"; '|', '{' and '}' reach the expression as written, as
 * alternation and repetition counts, and so do '[', ']', '^' and what follows
 * a backslash.
 */
static int rx_parse(struct rxp *x)
{
    static const uint32_t dirs[] = {'(', '.', '*', '/', ')'};
    const uint32_t *s = x->s;
    size_t n = x->n, last_repeat = SIZE_MAX, alt = 0, n_jmp = 0;
    struct atom t = {AT_NONE, 0};
    int rc = 0;

    while (x->i < n) {
        size_t i = x->i, repeat = SIZE_MAX, first;
        struct atom now = {AT_NONE, x->pg->n_inst};
        uint32_t c = s[i], r;
        int min, max;

        switch (c) {
        case '(':
            if (n - i < 5 || memcmp(s + i, dirs, sizeof(dirs)) != 0)
                return rx_fail(x, "a group that ocisync does not support", i, i + 1);
            first = x->pg->n_rng;
            if ((rc = add_range(x->pg, 0, '\n' - 1)) != 0 ||
                (rc = add_range(x->pg, '\n' + 1, RUNE_MAX)) != 0 ||
                (rc = end_class(x->pg, first, false, OP_STAR)) != 0 ||
                (rc = emit_rune(x->pg, '/')) != 0)
                return rc;
            x->i += 5;
            now.kind = AT_GROUP;
            break;
        case ')':
            return rx_fail(x, "unexpected )", i, i + 1);
        case '|':
            /* Ends this alternative: it jumps to the end, and a split before it tries the next. */
            if ((rc = emit(x->pg, OP_JMP, TARGET_LATER, 0, AS_BEGIN)) != 0 ||
                (rc = insert_split(x->pg, alt, x->pg->n_inst)) != 0)
                return rc;
            n_jmp++;
            alt = x->pg->n_inst;
            x->i++;
            t.kind = AT_NONE;
            last_repeat = SIZE_MAX;
            continue;
        case '^':
        case '$':
            if ((rc = emit(x->pg, OP_ASSERT, 0, 0, c == '^' ? AS_BEGIN : AS_END)) != 0)
                return rc;
            x->i++;
            now.kind = AT_ASSERT;
            break;
        case '.':
            first = x->pg->n_rng;
            if ((rc = add_range(x->pg, 0, '\n' - 1)) != 0 ||
                (rc = add_range(x->pg, '\n' + 1, RUNE_MAX)) != 0 ||
                (rc = end_class(x->pg, first, false, OP_CLASS)) != 0)
                return rc;
            x->i++;
            now.kind = AT_CLASS;
            break;
        case '[':
            if ((rc = rx_class(x)) != 0)
                return rc;
            now.kind = AT_CLASS;
            break;
        case '{':
        case '*':
        case '?': {
            size_t end = i + 1;
            if (c == '{') {
                if (!rx_counts(s, n, i, &min, &max, &end)) {
                    /* Not a repetition: a literal '{'. */
                    if ((rc = emit_rune(x->pg, '{')) != 0)
                        return rc;
                    x->i++;
                    now.kind = AT_CLASS;
                    break;
                }
                if (min < 0 || min > REPEAT_MAX || max > REPEAT_MAX || (max >= 0 && min > max))
                    return rx_fail(x, "invalid repeat count", i, end);
            } else {
                min = 0;
                max = c == '*' ? -1 : 1;
            }
            if (last_repeat != SIZE_MAX)
                return rx_fail(x, "invalid nested repetition operator", last_repeat, end);
            if (t.kind == AT_NONE)
                return rx_fail(x, "missing argument to repetition operator", i, end);
            if ((rc = rx_repeat(x, &t, min, max, i, end)) != 0)
                return rc;
            x->i = end;
            if (x->i < n && s[x->i] == '?')
                x->i++; /* non-greedy: the same strings match */
            repeat = i;
            now = t;
            break;
        }
        case '\\':
            if (i + 1 < n &&
                (s[i + 1] == 'A' || s[i + 1] == 'z' || s[i + 1] == 'b' || s[i + 1] == 'B')) {
                enum assertion as = s[i + 1] == 'A'   ? AS_BEGIN
                                    : s[i + 1] == 'z' ? AS_END
                                    : s[i + 1] == 'b' ? AS_WORD
                                                      : AS_NOT_WORD;
                if ((rc = emit(x->pg, OP_ASSERT, 0, 0, as)) != 0)
                    return rc;
                x->i += 2;
                now.kind = AT_ASSERT;
                break;
            }
            if (i + 1 < n && s[i + 1] == 'C')
                return rx_fail(x, "invalid escape sequence", i, i + 2);
            if (i + 1 < n && s[i + 1] == 'Q') {
                /* \Q...\E: literal runes up to \E or the end. */
                size_t j = i + 2;
                while (j < n && !(s[j] == '\\' && j + 1 < n && s[j + 1] == 'E'))
                    j++;
                now = t; /* nothing quoted: the last atom stays the last */
                for (size_t k = i + 2; k < j; k++) {
                    now = (struct atom){AT_CLASS, x->pg->n_inst};
                    if ((rc = emit_rune(x->pg, s[k])) != 0)
                        return rc;
                }
                x->i = j < n ? j + 2 : n;
                break;
            }
            if (i + 1 < n && (s[i + 1] == 'p' || s[i + 1] == 'P'))
                return rx_unicode_class(x);
            if (is_perl_class(s, i, n)) {
                first = x->pg->n_rng;
                if ((rc = add_group(x->pg, find_group(perl_groups, 6, s + i, 2))) != 0 ||
                    (rc = end_class(x->pg, first, false, OP_CLASS)) != 0)
                    return rc;
                x->i += 2;
                now.kind = AT_CLASS;
                break;
            }
            if ((rc = rx_escape(x, &r)) != 0 || (rc = emit_rune(x->pg, r)) != 0)
                return rc;
            now.kind = AT_CLASS;
            break;
        default:
            if ((rc = emit_rune(x->pg, c)) != 0)
                return rc;
            x->i++;
            now.kind = AT_CLASS;
            break;
        }
        t = now;
        last_repeat = repeat;
    }
    /* Every alternative's jump goes to the MATCH at the end. */
    for (size_t k = 0; n_jmp > 0 && k < x->pg->n_inst; k++) {
        if (x->pg->inst[k].op == OP_JMP && x->pg->inst[k].a == TARGET_LATER)
            x->pg->inst[k].a = (uint32_t)x->pg->n_inst;
    }
    return emit(x->pg, OP_MATCH, 0, 0, AS_BEGIN);
}

/* ---------------------------------------------------------------------------------------------
 * Patterns
 */

enum kind { K_EXACT, K_PREFIX, K_SUFFIX, K_REGEXP };

struct pattern {
    char *text; /* owned: the cleaned pattern without its '!', docker's Pattern.String() */
    size_t len;
    bool exception;
    enum kind kind;
    struct prog prog; /* K_REGEXP */
};

struct oci_ignore {
    struct pattern *pats; /* owned, n entries */
    size_t n;
    bool exceptions;  /* some pattern is an exception */
    bool only_prefix; /* no exception has a wildcard outside a trailing glob (fsutil) */
};

/* Appends rune c to the expression being built (room is reserved by the caller). */
#define PUT(c) (re[nre++] = (uint32_t)(c))

/*
 * Pattern.compile: the comparison docker makes for p, and for K_REGEXP the
 * expression it builds (into re, RX_RUNES_MAX runes) and its program.
 */
static int compile(struct pattern *pat, uint32_t *re, size_t *n_re, char *why, size_t whylen)
{
    const unsigned char *p = (const unsigned char *)pat->text;
    size_t len = pat->len, pos = 0, w, nre = 0;
    enum kind kind = K_EXACT;
    int rc;

    PUT('^');
    /* text/scanner drops a byte order mark at the very start. */
    if (len > 0 && decode(p, len, &w) == 0xFEFF)
        pos = w;
    for (size_t i = 0; pos < len; i++) {
        uint32_t c = decode(p + pos, len - pos, &w);
        pos += w;
        if (c == '*' && pos < len && p[pos] == '*') {
            pos++;
            if (pos < len && p[pos] == '/')
                pos++; /* "**" + "/" is "**" */
            if (pos == len) {
                if (kind == K_EXACT) {
                    kind = K_PREFIX;
                } else {
                    PUT('.'), PUT('*');
                    kind = K_REGEXP;
                }
            } else {
                PUT('('), PUT('.'), PUT('*'), PUT('/'), PUT(')'), PUT('?');
                kind = K_REGEXP;
            }
            if (i == 0)
                kind = K_SUFFIX;
        } else if (c == '*' || c == '?') {
            PUT('['), PUT('^'), PUT('/'), PUT(']');
            if (c == '*')
                PUT('*');
            kind = K_REGEXP;
        } else if (c == '.' || c == '+' || c == '(' || c == ')' || c == '$') {
            /*
             * patternmatcher means to escape ".+()|{}$", but its bitmap
             * (escapeBytes[b%8] |= 1 << (b/8), a byte) loses the bits of '|',
             * '{' and '}': those reach the expression as they are.
             */
            PUT('\\'), PUT(c);
        } else if (c == '\\') {
            /* Escapes the next rune in Go's syntax; glob_ok refused a trailing '\'. */
            PUT('\\');
            if (pos < len) {
                PUT(decode(p + pos, len - pos, &w));
                pos += w;
                kind = K_REGEXP;
            }
        } else if (c == '[' || c == ']') {
            PUT(c);
            kind = K_REGEXP;
        } else {
            PUT(c);
        }
    }
    pat->kind = kind;
    *n_re = nre;
    if (kind != K_REGEXP)
        return 0;
    PUT('$');
    *n_re = nre;
    {
        struct rxp x = {.s = re, .n = nre, .pg = &pat->prog};
        if ((rc = rx_parse(&x)) != 0) {
            snprintf(why, whylen, "%s", x.why);
            prog_free(&pat->prog);
        }
        return rc;
    }
}
#undef PUT

static bool pattern_match(const struct pattern *p, const char *s, size_t n)
{
    switch (p->kind) {
    case K_EXACT:
        return n == p->len && memcmp(s, p->text, n) == 0;
    case K_PREFIX:
        /* The pattern without its final "**". */
        return n >= p->len - 2 && memcmp(s, p->text, p->len - 2) == 0;
    case K_SUFFIX: {
        /* The pattern without its first two bytes ("**"); "**" + "/foo" also matches "foo". */
        const char *suf = p->text + 2;
        size_t sl = p->len - 2;
        if (n >= sl && memcmp(s + n - sl, suf, sl) == 0)
            return true;
        return sl > 0 && suf[0] == '/' && n == sl - 1 && memcmp(s, suf + 1, n) == 0;
    }
    default:
        return prog_run(&p->prog, s, n);
    }
}

/* fsutil's patternWithoutTrailingGlob: the length of p without a final '/' and "**", then '/' and
 * '*'. */
static size_t without_trailing_glob(const char *p, size_t n)
{
    if (n >= 3 && memcmp(p + n - 3, "/**", 3) == 0)
        n -= 3;
    if (n >= 2 && memcmp(p + n - 2, "/*", 2) == 0)
        n -= 2;
    return n;
}

void oci_ignore_free(struct oci_ignore *ig)
{
    if (ig == NULL)
        return;
    for (size_t i = 0; i < ig->n; i++) {
        free(ig->pats[i].text);
        prog_free(&ig->pats[i].prog);
    }
    free(ig->pats);
    free(ig);
}

/* What the parse of one file needs besides the result. */
struct parse {
    struct oci_ignore *ig;
    size_t cap;
    char *buf1, *buf2; /* owned scratch, each OCI_IGNORE_LINE_MAX + 8 bytes */
    uint32_t *re;      /* owned scratch, RX_RUNES_MAX runes */
    size_t total;      /* instructions of all programs so far */
    char *err;
    size_t errlen;
};

/*
 * patternmatcher.New for one pattern that ReadAll produced (p[0..n), from
 * line; line_text is what the user wrote, for messages).
 */
static int add_pattern(struct parse *ps, const char *p, size_t n, unsigned line,
                       const char *line_text, size_t line_len)
{
    struct oci_ignore *ig = ps->ig;
    struct pattern pat = {0};
    struct quote q1, q2;
    char why[QUOTE_MAX + 200];
    const char *bad;
    size_t n_re = 0;
    int rc;

    trim_space(&p, &n);
    if (n == 0)
        return 0;
    n = clean(p, n, ps->buf2);
    p = ps->buf2;
    if (p[0] == '!') {
        if (n == 1) {
            ocisync__errf(ps->err, ps->errlen,
                          "line %u: pattern \"%s\": a '!' with nothing after it, which docker "
                          "refuses (illegal exclusion pattern)",
                          line, quote(line_text, line_len, &q1));
            return OCISYNC_EUSAGE;
        }
        pat.exception = true;
        p++;
        n--;
    }
    if (n > OCI_IGNORE_PATTERN_MAX) {
        ocisync__errf(ps->err, ps->errlen, "line %u: pattern \"%s\" is longer than %d bytes", line,
                      quote(line_text, line_len, &q1), OCI_IGNORE_PATTERN_MAX);
        return OCISYNC_ETOOBIG;
    }
    if ((bad = glob_ok(p, n)) != NULL) {
        ocisync__errf(ps->err, ps->errlen, "line %u: pattern \"%s\": %s", line,
                      quote(line_text, line_len, &q1), bad);
        return OCISYNC_EUSAGE;
    }
    if (ig->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 16;
        struct pattern *np;
        if (ig->n >= OCI_IGNORE_PATTERNS_MAX) {
            ocisync__errf(ps->err, ps->errlen, "line %u: more than %d patterns", line,
                          OCI_IGNORE_PATTERNS_MAX);
            return OCISYNC_ETOOBIG;
        }
        if (cap > OCI_IGNORE_PATTERNS_MAX)
            cap = OCI_IGNORE_PATTERNS_MAX;
        if ((np = realloc(ig->pats, cap * sizeof(*np))) == NULL)
            return UV_ENOMEM;
        ig->pats = np;
        ps->cap = cap;
    }
    if ((pat.text = malloc(n + 1)) == NULL)
        return UV_ENOMEM;
    memcpy(pat.text, p, n);
    pat.text[n] = '\0';
    pat.len = n;
    if ((rc = compile(&pat, ps->re, &n_re, why, sizeof(why))) == 0 &&
        pat.prog.n_inst > PROG_TOTAL_MAX - ps->total)
        rc = OCISYNC_ETOOBIG;
    if (rc != 0) {
        if (rc == OCISYNC_EUSAGE)
            ocisync__errf(ps->err, ps->errlen,
                          "line %u: pattern \"%s\": docker matches with the Go regular "
                          "expression \"%s\", and %s",
                          line, quote(line_text, line_len, &q1), quote_runes(ps->re, n_re, &q2),
                          why);
        else if (rc == OCISYNC_ETOOBIG)
            ocisync__errf(ps->err, ps->errlen,
                          "line %u: pattern \"%s\": the Go regular expression docker matches "
                          "with, \"%s\", is larger than ocisync handles (%d instructions, %d "
                          "for all patterns)",
                          line, quote(line_text, line_len, &q1), quote_runes(ps->re, n_re, &q2),
                          PROG_MAX, PROG_TOTAL_MAX);
        prog_free(&pat.prog);
        free(pat.text);
        return rc;
    }
    ps->total += pat.prog.n_inst;
    if (pat.exception) {
        ig->exceptions = true;
        size_t k = without_trailing_glob(pat.text, pat.len);
        for (size_t i = 0; i < k; i++) {
            if (strchr("*[]?^\\", pat.text[i]) != NULL && pat.text[i] != '\0')
                ig->only_prefix = false;
        }
    }
    ig->pats[ig->n++] = pat;
    return 0;
}

/* ignorefile.ReadAll, handing each pattern to add_pattern. */
static int read_all(struct parse *ps, const char *text, size_t len)
{
    static const char bom[] = "\xEF\xBB\xBF";
    size_t pos = 0;
    unsigned line = 0;
    int rc;

    /* bufio.ScanLines: lines end at '\n'; a last line without one still counts. */
    while (pos < len) {
        const char *eol = memchr(text + pos, '\n', len - pos);
        const char *p = text + pos;
        size_t n = eol ? (size_t)(eol - p) : len - pos, m;
        bool invert;

        pos += n + (eol != NULL);
        line++;
        if (n > OCI_IGNORE_LINE_MAX) {
            ocisync__errf(ps->err, ps->errlen,
                          "line %u is longer than %d bytes, which docker refuses (bufio.Scanner: "
                          "token too long)",
                          line, OCI_IGNORE_LINE_MAX);
            return OCISYNC_ETOOBIG;
        }
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (line == 1 && n >= 3 && memcmp(p, bom, 3) == 0) {
            p += 3;
            n -= 3;
        }
        if (n > 0 && p[0] == '#')
            continue;
        trim_space(&p, &n);
        if (n == 0)
            continue;
        {
            const char *line_text = p;
            size_t line_len = n;
            invert = p[0] == '!';
            if (invert) {
                p++;
                n--;
                trim_space(&p, &n);
            }
            m = 0;
            if (invert)
                ps->buf1[m++] = '!';
            if (n > 0) {
                size_t c = clean(p, n, ps->buf1 + m);
                /* Patterns are relative to the context root: "/a" is "a". */
                if (c > 1 && ps->buf1[m] == '/') {
                    memmove(ps->buf1 + m, ps->buf1 + m + 1, c - 1);
                    c--;
                }
                m += c;
            }
            if ((rc = add_pattern(ps, ps->buf1, m, line, line_text, line_len)) != 0)
                return rc;
        }
    }
    return 0;
}

int oci_ignore_parse(struct oci_ignore **out, const char *text, size_t len, char *err,
                     size_t errlen)
{
    struct parse ps = {.err = err, .errlen = errlen};
    int rc;

    ocisync__errf(err, errlen, "%s", "");
    *out = NULL;
    if (len > OCI_IGNORE_TEXT_MAX) {
        ocisync__errf(err, errlen, "ignore file is larger than %d bytes (%zu bytes)",
                      OCI_IGNORE_TEXT_MAX, len);
        return OCISYNC_ETOOBIG;
    }
    if (text == NULL && len > 0) {
        ocisync__errf(err, errlen, "ignore file text is missing (NULL)");
        return OCISYNC_EUSAGE;
    }
    if ((ps.ig = calloc(1, sizeof(*ps.ig))) == NULL)
        return UV_ENOMEM;
    ps.ig->only_prefix = true;
    ps.buf1 = malloc(OCI_IGNORE_LINE_MAX + 8);
    ps.buf2 = malloc(OCI_IGNORE_LINE_MAX + 8);
    ps.re = malloc(RX_RUNES_MAX * sizeof(*ps.re));
    if (ps.buf1 == NULL || ps.buf2 == NULL || ps.re == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    if ((rc = read_all(&ps, text, len)) != 0)
        goto out;
    *out = ps.ig;
    ps.ig = NULL;
out:
    if (rc == UV_ENOMEM)
        ocisync__errf(err, errlen, "out of memory reading ignore patterns");
    oci_ignore_free(ps.ig);
    free(ps.buf1);
    free(ps.buf2);
    free(ps.re);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Matching
 */

#define STATE_SET(st, i, v)                                                                        \
    ((v) ? ((st)[(i) >> 3] |= (unsigned char)(1u << ((i)&7)))                                      \
         : ((st)[(i) >> 3] &= (unsigned char)~(1u << ((i)&7))))
#define STATE_GET(st, i) (((st)[(i) >> 3] >> ((i)&7)) & 1)

size_t oci_ignore_state_size(const struct oci_ignore *ig)
{
    return ig == NULL ? 0 : (ig->n + 7) / 8;
}

/*
 * MatchesUsingParentResults for path[0..len): each pattern matched by the
 * parent directory stays matched; the others are tried on the path unless
 * they could not change the result so far. Without parent results, each
 * parent directory of the path is tried too.
 */
static bool match_step(const struct oci_ignore *ig, const char *path, size_t len,
                       const unsigned char *parent, unsigned char *state)
{
    bool matched = false;

    for (size_t i = 0; i < ig->n; i++) {
        const struct pattern *p = &ig->pats[i];
        bool m = parent != NULL && STATE_GET(parent, i);
        if (!m) {
            if (p->exception != matched) {
                if (state != NULL)
                    STATE_SET(state, i, false);
                continue;
            }
            m = pattern_match(p, path, len);
            for (size_t k = 0; !m && parent == NULL && k < len; k++) {
                if (path[k] == '/')
                    m = pattern_match(p, path, k);
            }
        }
        if (state != NULL)
            STATE_SET(state, i, m);
        if (m)
            matched = !p->exception;
    }
    return matched;
}

bool oci_ignore_excluded_under(const struct oci_ignore *ig, const char *path,
                               const unsigned char *parent, unsigned char *state)
{
    if (ig == NULL || ig->n == 0 || path == NULL || path[0] == '\0')
        return false;
    return match_step(ig, path, strlen(path), parent, state);
}

bool oci_ignore_excluded(const struct oci_ignore *ig, const char *path)
{
    unsigned char a[OCI_IGNORE_PATTERNS_MAX / 8], b[OCI_IGNORE_PATTERNS_MAX / 8];
    unsigned char *cur = a, *next = b;
    size_t len, end;
    bool m;

    if (ig == NULL || ig->n == 0 || path == NULL || path[0] == '\0')
        return false;
    /* As docker's walk meets it: the top directory, then each one below with its parent's state. */
    len = strlen(path);
    for (end = 0; end < len && path[end] != '/'; end++)
        ;
    m = match_step(ig, path, end, NULL, cur);
    while (end < len) {
        for (end++; end < len && path[end] != '/'; end++)
            ;
        m = match_step(ig, path, end, cur, next);
        cur = cur == a ? b : a;
        next = next == a ? b : a;
    }
    return m;
}

bool oci_ignore_must_descend(const struct oci_ignore *ig, const char *dir)
{
    size_t dlen;

    if (ig == NULL || !ig->exceptions || dir == NULL)
        return false;
    if (!ig->only_prefix)
        return true;
    /* Descend if some exception, as "p/", starts with "dir/". */
    dlen = strlen(dir);
    for (size_t i = 0; i < ig->n; i++) {
        const struct pattern *p = &ig->pats[i];
        size_t k = without_trailing_glob(p->text, p->len);
        if (p->exception && k >= dlen && memcmp(p->text, dir, dlen) == 0 &&
            (k == dlen || p->text[dlen] == '/'))
            return true;
    }
    return false;
}
