/*
 * Tag selection for sync: semantic versions and Masterminds-style ranges,
 * Go-syntax regular expressions translated to POSIX ones, and the filter
 * that combines them with "latest N".
 */
#include "oci/tagfilter.h"

#include "common/msg.h"
#include "ocisync.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* How many bytes of a user's range or expression an error message quotes. */
#define QUOTE_MAX 120
/*
 * A translated expression grows, at worst about 33 times ("\w" becomes a
 * 65-byte list of members); no real one comes near this cap, which keeps a
 * hostile pattern from costing more.
 */
#define RX_OUT_MAX (16 * 1024)
/* Go refuses repetition counts above 1000; so do we. */
#define RX_REPEAT_MAX 1000
/* Groups nested deeper than this are refused (Go allows 1000; no tag pattern needs 100). */
#define RX_DEPTH_MAX 100
/*
 * regcomp copies a{n,m} m times, so nested counts multiply: ((a{1000}){1000})
 * would be a million nodes. This caps the estimated size of the compiled form.
 */
#define RX_SIZE_MAX 20000
/* Bytes 1..127: tags are ASCII, so character sets are computed over ASCII. */
#define ASCII_N 128

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Go's \s: the whitespace RE2 knows, also what separates parts of a range. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* Characters of a semver identifier (prerelease or build): [0-9A-Za-z-]. */
static bool is_ident(char c)
{
    return is_digit(c) || is_alpha(c) || c == '-';
}

static bool is_wild(char c)
{
    return c == 'x' || c == 'X' || c == '*';
}

/* ASCII punctuation, which Go lets a backslash escape to itself. */
static bool is_punct(int c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

/* ---------------------------------------------------------------------------------------------
 * Versions
 */

/* A version as written in a tag or a range: unset or wildcard parts are 0. */
struct partial {
    struct oci_semver v;
    int n; /* how many numbers were given before a wildcard or the end: 0 ("*") to 3 */
};

/*
 * Reads dot-separated identifiers at s[*i..len) up to a '+' or the end. A
 * prerelease's numeric identifiers may not have leading zeros: semver 2.0.0
 * forbids it and Masterminds checks it even in its lax parser.
 */
static const char *scan_idents(const char *s, size_t len, size_t *i, bool pre)
{
    size_t p = *i;

    for (;;) {
        size_t start = p;
        bool numeric = true;
        while (p < len && is_ident(s[p])) {
            numeric = numeric && is_digit(s[p]);
            p++;
        }
        if (p == start)
            return pre ? "a prerelease identifier is empty" : "a build identifier is empty";
        if (pre && numeric && p - start > 1 && s[start] == '0')
            return "a numeric prerelease identifier has a leading zero";
        if (p < len && s[p] == '.') {
            p++;
            continue;
        }
        break;
    }
    *i = p;
    return NULL;
}

/*
 * Parses exactly len bytes at s. With wild (ranges), a part may be x, X or
 * '*', and every part after a wildcard must be one too. Returns NULL, or a
 * static phrase saying what is wrong.
 */
static const char *parse_version(const char *s, size_t len, bool wild, struct partial *out)
{
    uint64_t num[3] = {0, 0, 0};
    bool seen_wild = false;
    size_t i = 0, pre_start = 0, pre_len = 0;
    const char *why;

    memset(out, 0, sizeof(*out));
    if (i < len && s[i] == 'v')
        i++;
    for (int k = 0;; k++) {
        if (i < len && wild && is_wild(s[i])) {
            seen_wild = true;
            i++;
        } else if (i < len && is_digit(s[i])) {
            uint64_t x = 0;
            if (seen_wild)
                return "a number follows a wildcard";
            while (i < len && is_digit(s[i])) {
                unsigned d = (unsigned)(s[i] - '0');
                if (x > (UINT64_MAX - d) / 10)
                    return "a number is larger than 2^64-1";
                x = x * 10 + d;
                i++;
            }
            num[k] = x;
            out->n++;
        } else if (k == 0) {
            return "it does not start with a number";
        } else {
            return wild ? "a dot is not followed by a number or wildcard"
                        : "a dot is not followed by a number";
        }
        if (i < len && s[i] == '.') {
            if (k == 2)
                return "it has more than three numbers";
            i++;
            continue;
        }
        break;
    }
    if (i < len && s[i] == '-') {
        pre_start = ++i;
        if ((why = scan_idents(s, len, &i, true)) != NULL)
            return why;
        pre_len = i - pre_start;
        if (pre_len >= OCI_SEMVER_PRE_MAX)
            return "the prerelease is longer than 127 bytes";
    }
    if (i < len && s[i] == '+') {
        i++;
        if ((why = scan_idents(s, len, &i, false)) != NULL)
            return why;
    }
    if (i != len)
        return "it has an unexpected character";
    out->v.major = num[0];
    out->v.minor = num[1];
    out->v.patch = num[2];
    memcpy(out->v.pre, s + pre_start, pre_len);
    out->v.pre[pre_len] = '\0';
    return NULL;
}

int oci_semver_parse(const char *s, struct oci_semver *v)
{
    struct partial p;
    size_t len;

    memset(v, 0, sizeof(*v));
    if (s == NULL)
        return OCISYNC_EUSAGE;
    /* strnlen bounds the scan of a hostile string; nothing that long is a tag. */
    len = strnlen(s, OCI_SEMVER_MAX + 1);
    if (len > OCI_SEMVER_MAX || parse_version(s, len, false, &p) != NULL)
        return OCISYNC_EUSAGE;
    *v = p.v;
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return n > 0;
}

/*
 * Numeric identifiers can be longer than any integer type ("20240101123456"
 * is fine, so is a 100-digit one), so they compare as digit strings: without
 * leading zeros the longer is the larger, and equal lengths compare by bytes.
 */
static int cmp_numeric(const char *a, size_t la, const char *b, size_t lb)
{
    int c;

    /* Parsed versions have no leading zeros; a hand-filled struct might. */
    while (la > 1 && *a == '0') {
        a++;
        la--;
    }
    while (lb > 1 && *b == '0') {
        b++;
        lb--;
    }
    if (la != lb)
        return la < lb ? -1 : 1;
    c = memcmp(a, b, la);
    return (c > 0) - (c < 0);
}

static int cmp_pre(const char *a, const char *b)
{
    for (;;) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = all_digits(a, la), nb = all_digits(b, lb);
        int c;

        if (na && nb) {
            c = cmp_numeric(a, la, b, lb);
        } else if (na || nb) {
            /* Numeric identifiers have lower precedence than alphanumeric ones. */
            c = na ? -1 : 1;
        } else {
            c = memcmp(a, b, la < lb ? la : lb);
            c = c != 0 ? (c > 0) - (c < 0) : (la > lb) - (la < lb);
        }
        if (c != 0)
            return c;
        a += la;
        b += lb;
        /* A prefix of a longer identifier list is lower: 1.0.0-alpha < 1.0.0-alpha.1. */
        if (*a == '\0' || *b == '\0')
            return (*a != '\0') - (*b != '\0');
        a++;
        b++;
    }
}

int oci_semver_cmp(const struct oci_semver *a, const struct oci_semver *b)
{
    int c;

    if ((c = cmp_u64(a->major, b->major)) != 0 || (c = cmp_u64(a->minor, b->minor)) != 0 ||
        (c = cmp_u64(a->patch, b->patch)) != 0)
        return c;
    if (a->pre[0] == '\0' || b->pre[0] == '\0')
        return (a->pre[0] == '\0') - (b->pre[0] == '\0');
    return cmp_pre(a->pre, b->pre);
}

/* ---------------------------------------------------------------------------------------------
 * Ranges
 *
 * Every comparison becomes an interval (or everything, or nothing), possibly
 * negated, when it is parsed; matching is then only version comparisons.
 */

enum term_kind {
    TERM_SPAN,
    TERM_ALL,
    TERM_NONE,
};

struct bound {
    struct oci_semver v;
    bool set;  /* false: no bound on this side */
    bool incl; /* the bound itself is inside */
};

struct oci_semver_term {
    enum term_kind kind;
    bool negate;
    struct bound lo, hi;
    size_t group;   /* which "||" alternative the comparison belongs to */
    bool group_pre; /* some comparison of that alternative names a prerelease */
};

enum op {
    OP_EQ,
    OP_NE,
    OP_GT,
    OP_GE,
    OP_LT,
    OP_LE,
    OP_TILDE,
    OP_CARET,
};

/* Longer spellings first, so ">=" is not read as ">" followed by "=1.2". */
static const struct {
    const char *text;
    enum op op;
} ops[] = {
    {"!=", OP_NE}, {">=", OP_GE}, {"=>", OP_GE}, {"<=", OP_LE},   {"=<", OP_LE},   {"~>", OP_TILDE},
    {">", OP_GT},  {"<", OP_LT},  {"=", OP_EQ},  {"~", OP_TILDE}, {"^", OP_CARET},
};

/*
 * The exclusive upper end of p's x-range at a level (1: next major, 2: next
 * minor, 3: next patch), as "X.Y.Z-0": the lowest version with those numbers,
 * so the next version's prereleases stay out, as Masterminds' equality tests
 * on major and minor keep them out. A number that cannot grow moves the end to
 * the level above (~1.<max> ends before 2.0.0-0); no end at all past the top.
 */
static void next_bound(const struct partial *p, int level, struct bound *b)
{
    memset(b, 0, sizeof(*b));
    if (level == 3 && p->v.patch == UINT64_MAX)
        level = 2;
    if (level == 2 && p->v.minor == UINT64_MAX)
        level = 1;
    if (level == 1 && p->v.major == UINT64_MAX)
        return;
    b->v.major = p->v.major + (level == 1);
    b->v.minor = level == 1 ? 0 : p->v.minor + (level == 2);
    b->v.patch = level == 3 ? p->v.patch + 1 : 0;
    memcpy(b->v.pre, "0", 2);
    b->set = true;
    b->incl = false;
}

static void make_term(enum op op, const struct partial *p, struct oci_semver_term *t)
{
    const struct bound as_written = {p->v, true, true};
    int level;

    memset(t, 0, sizeof(*t));
    t->kind = TERM_SPAN;
    switch (op) {
    case OP_EQ:
    case OP_NE:
        /* "=1.2" is the x-range 1.2.x; "!=1.2" is everything else. */
        t->negate = op == OP_NE;
        if (p->n == 0) {
            t->kind = TERM_ALL;
        } else {
            t->lo = as_written;
            if (p->n == 3) {
                t->hi = as_written;
            } else {
                next_bound(p, p->n, &t->hi);
                /* As in Masterminds, "!=1.x" leaves out all of 1.x, prereleases too. */
                if (op == OP_NE)
                    memcpy(t->lo.v.pre, "0", 2);
            }
        }
        break;
    case OP_GT:
        /* ">1.2" is above all of 1.2.x: from 1.3.0-0 on. ">*" leaves nothing. */
        if (p->n == 3) {
            t->lo = as_written;
            t->lo.incl = false;
        } else if (p->n == 0) {
            t->kind = TERM_NONE;
        } else {
            next_bound(p, p->n, &t->lo);
            t->lo.incl = true;
            if (!t->lo.set)
                t->kind = TERM_NONE;
        }
        break;
    case OP_GE:
        t->lo = as_written;
        break;
    case OP_LT:
        t->hi = as_written;
        t->hi.incl = false;
        break;
    case OP_LE:
        /* "<=1.2" takes all of 1.2.x. */
        if (p->n == 3)
            t->hi = as_written;
        else if (p->n == 0)
            t->kind = TERM_ALL;
        else
            next_bound(p, p->n, &t->hi);
        break;
    case OP_TILDE:
        /* Masterminds makes "~0.0.0" (and "~*") mean ">=0.0.0"; so do we. */
        if (p->n == 0 || (p->n == 3 && p->v.major == 0 && p->v.minor == 0 && p->v.patch == 0)) {
            t->lo = as_written;
        } else {
            t->lo = as_written;
            next_bound(p, p->n == 1 ? 1 : 2, &t->hi);
        }
        break;
    case OP_CARET:
        if (p->n == 0) {
            t->kind = TERM_ALL;
        } else {
            /* The first non-zero number given is the one that may not change. */
            if (p->v.major > 0 || p->n == 1)
                level = 1;
            else if (p->v.minor > 0 || p->n == 2)
                level = 2;
            else
                level = 3;
            t->lo = as_written;
            next_bound(p, level, &t->hi);
        }
        break;
    }
}

static bool term_match(const struct oci_semver_term *t, const struct oci_semver *v)
{
    bool in = t->kind == TERM_ALL;
    int c;

    if (t->kind == TERM_SPAN) {
        in = true;
        if (t->lo.set) {
            c = oci_semver_cmp(v, &t->lo.v);
            in = c > 0 || (c == 0 && t->lo.incl);
        }
        if (in && t->hi.set) {
            c = oci_semver_cmp(v, &t->hi.v);
            in = c < 0 || (c == 0 && t->hi.incl);
        }
    }
    return in != t->negate;
}

struct rparser {
    const char *s; /* the whole range, quoted in messages */
    char *err;
    size_t errlen;
    struct oci_semver_term *terms; /* owned until handed to the range */
    size_t n, cap;
};

/* Writes `semver range "RANGE": MESSAGE` and returns rc. */
__attribute__((format(printf, 3, 4))) static int rfail(struct rparser *rp, int rc, const char *fmt,
                                                       ...)
{
    struct ocisync__clipped c;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ocisync__errf(rp->err, rp->errlen, "semver range \"%s\": %s",
                  ocisync__clip(rp->s, QUOTE_MAX, &c), msg);
    return rc;
}

static int add_term(struct rparser *rp, enum op op, const struct partial *p, size_t group)
{
    struct oci_semver_term *grown;
    size_t cap;

    if (rp->n == OCI_SEMVER_RANGE_MAX_TERMS)
        return rfail(rp, OCISYNC_ETOOBIG, "more than %d comparisons", OCI_SEMVER_RANGE_MAX_TERMS);
    if (rp->n == rp->cap) {
        cap = rp->cap ? rp->cap * 2 : 4;
        grown = realloc(rp->terms, cap * sizeof(*grown));
        if (grown == NULL)
            return rfail(rp, UV_ENOMEM, "out of memory");
        rp->terms = grown;
        rp->cap = cap;
    }
    make_term(op, p, &rp->terms[rp->n]);
    rp->terms[rp->n].group = group;
    rp->n++;
    return 0;
}

static bool is_vchar(char c)
{
    return is_ident(c) || c == '.' || c == '+' || c == '*';
}

static size_t skip_spaces(const char *s, size_t i, size_t end)
{
    while (i < end && is_space(s[i]))
        i++;
    return i;
}

/*
 * Reads the version token at s[*i..end) and parses it; *i moves past it.
 * after is the operator before it, quoted in messages, or NULL.
 */
static int read_version(struct rparser *rp, size_t *i, size_t end, const char *after,
                        struct partial *p)
{
    size_t start = *i, k = *i;
    const char *why;

    while (k < end && is_vchar(rp->s[k]))
        k++;
    if (k == start) {
        if (k < end && after != NULL)
            return rfail(rp, OCISYNC_EUSAGE, "unexpected \"%c\" after \"%s\"", rp->s[k], after);
        if (k < end)
            return rfail(rp, OCISYNC_EUSAGE, "unexpected \"%c\"", rp->s[k]);
        return rfail(rp, OCISYNC_EUSAGE, "no version after \"%s\"", after ? after : "");
    }
    if ((why = parse_version(rp->s + start, k - start, true, p)) != NULL)
        return rfail(rp, OCISYNC_EUSAGE, "\"%.*s\" is not a version: %s",
                     (int)(k - start < QUOTE_MAX ? k - start : QUOTE_MAX), rp->s + start, why);
    *i = k;
    return 0;
}

/*
 * Parses one "||" alternative, s[start..end): comparisons separated by
 * whitespace or a comma, as Masterminds' validConstraintRegex has them.
 */
static int parse_group(struct rparser *rp, size_t start, size_t end, size_t group)
{
    const char *s = rp->s;
    size_t i = skip_spaces(s, start, end), first = rp->n, opstart;
    struct partial p, upper;
    bool pre = false;
    int rc;

    if (i == end)
        return rfail(rp, OCISYNC_EUSAGE, "an alternative of \"||\" is empty");
    for (;;) {
        enum op op = OP_EQ;
        size_t oplen = 0, j;
        char after[4];

        opstart = i;
        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
            size_t l = strlen(ops[k].text);
            if (end - i >= l && memcmp(s + i, ops[k].text, l) == 0) {
                op = ops[k].op;
                oplen = l;
                break;
            }
        }
        i = skip_spaces(s, i + oplen, end);
        memcpy(after, s + opstart, oplen);
        after[oplen] = '\0';
        if ((rc = read_version(rp, &i, end, oplen > 0 ? after : NULL, &p)) != 0)
            return rc;
        pre = pre || p.v.pre[0] != '\0';
        /* A hyphen range: a bare version, " - " (spaces required) and another. */
        j = skip_spaces(s, i, end);
        if (j > i && j + 1 < end && s[j] == '-' && is_space(s[j + 1])) {
            if (oplen > 0)
                return rfail(rp, OCISYNC_EUSAGE,
                             "a hyphen range takes bare versions, not \"%.*s\" before one",
                             (int)oplen, s + opstart);
            i = skip_spaces(s, j + 1, end);
            if ((rc = read_version(rp, &i, end, "-", &upper)) != 0)
                return rc;
            pre = pre || upper.v.pre[0] != '\0';
            if ((rc = add_term(rp, OP_GE, &p, group)) != 0 ||
                (rc = add_term(rp, OP_LE, &upper, group)) != 0)
                return rc;
        } else if ((rc = add_term(rp, op, &p, group)) != 0) {
            return rc;
        }
        j = skip_spaces(s, i, end);
        if (j == end)
            break;
        if (s[j] == ',') {
            j = skip_spaces(s, j + 1, end);
            if (j == end)
                return rfail(rp, OCISYNC_EUSAGE, "a comma is not followed by a comparison");
        } else if (j == i) {
            return rfail(rp, OCISYNC_EUSAGE, "unexpected \"%c\" after \"%.*s\"", s[j],
                         (int)(i - opstart < QUOTE_MAX ? i - opstart : QUOTE_MAX), s + opstart);
        }
        i = j;
    }
    for (size_t k = first; k < rp->n; k++)
        rp->terms[k].group_pre = pre;
    return 0;
}

int oci_semver_range_parse(const char *s, struct oci_semver_range *r, char *err, size_t errlen)
{
    struct rparser rp = {s ? s : "", err, errlen, NULL, 0, 0};
    size_t len, start = 0, group = 0;
    int rc;

    memset(r, 0, sizeof(*r));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (s == NULL) {
        rc = rfail(&rp, OCISYNC_EUSAGE, "no range given");
        goto out;
    }
    len = strnlen(s, OCI_SEMVER_RANGE_MAX + 1);
    if (len > OCI_SEMVER_RANGE_MAX) {
        rc = rfail(&rp, OCISYNC_ETOOBIG, "longer than %d bytes", OCI_SEMVER_RANGE_MAX);
        goto out;
    }
    if (skip_spaces(s, 0, len) == len) {
        rc = rfail(&rp, OCISYNC_EUSAGE, "it is empty");
        goto out;
    }
    for (size_t i = 0;; i++) {
        if (i == len || (s[i] == '|' && i + 1 < len && s[i + 1] == '|')) {
            if ((rc = parse_group(&rp, start, i, group++)) != 0)
                goto out;
            if (i == len)
                break;
            start = ++i + 1;
        }
    }
    r->terms = rp.terms;
    r->n_terms = rp.n;
    rp.terms = NULL;
    rc = 0;
out:
    free(rp.terms);
    return rc;
}

bool oci_semver_range_match(const struct oci_semver_range *r, const struct oci_semver *v)
{
    size_t i = 0;

    if (r == NULL || v == NULL)
        return false;
    while (i < r->n_terms) {
        size_t g = r->terms[i].group;
        /*
         * Masterminds v3: a prerelease version needs an alternative that asks
         * for prereleases; a plain "<2" must not pull in 2.0.0-rc1.
         */
        bool ok = v->pre[0] == '\0' || r->terms[i].group_pre;
        for (; i < r->n_terms && r->terms[i].group == g; i++)
            ok = ok && term_match(&r->terms[i], v);
        if (ok)
            return true;
    }
    return false;
}

void oci_semver_range_free(struct oci_semver_range *r)
{
    if (r == NULL)
        return;
    free(r->terms);
    r->terms = NULL;
    r->n_terms = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Regular expressions: Go (RE2) syntax to POSIX ERE
 */

struct sbuf {
    char *p; /* owned, NUL-terminated */
    size_t len, cap;
    int rc; /* sticky: UV_ENOMEM or OCISYNC_ETOOBIG */
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    size_t need = b->len + n + 1, cap;
    char *grown;

    if (b->rc != 0)
        return;
    if (need > RX_OUT_MAX) {
        b->rc = OCISYNC_ETOOBIG;
        return;
    }
    if (need > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        if (cap > RX_OUT_MAX)
            cap = RX_OUT_MAX;
        grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->rc = UV_ENOMEM;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_putc(struct sbuf *b, char c)
{
    sb_put(b, &c, 1);
}

struct rx {
    const char *s; /* the user's expression */
    size_t len, i;
    struct sbuf out;
    char why[160]; /* what is wrong, when translation fails */
    /* Size estimates of the open groups (see RX_SIZE_MAX) and of their last item. */
    size_t depth;
    uint64_t size[RX_DEPTH_MAX + 1], last[RX_DEPTH_MAX + 1];
    /* An open group holds ^ or $ somewhere; the last item is a group that does. */
    bool anchor[RX_DEPTH_MAX + 1], last_anchor[RX_DEPTH_MAX + 1];
};

__attribute__((format(printf, 2, 3))) static int rx_fail(struct rx *x, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->why, sizeof(x->why), fmt, ap);
    va_end(ap);
    return OCISYNC_EUSAGE;
}

/* A set of ASCII characters (index 0, NUL, is never a member). */
struct cset {
    bool has[ASCII_N];
};

static bool in_class(char cls, int c)
{
    switch (cls) {
    case 'd':
        return is_digit((char)c);
    case 'w':
        return is_digit((char)c) || is_alpha((char)c) || c == '_';
    case 's':
        return is_space((char)c);
    }
    return false;
}

/* Adds Go's \d \w \s, or with an uppercase letter their complements within ASCII. */
static void add_class(struct cset *set, char cls)
{
    bool neg = cls >= 'A' && cls <= 'Z';
    char base = neg ? (char)(cls - 'A' + 'a') : cls;

    for (int c = 1; c < ASCII_N; c++) {
        if (in_class(base, c) != neg)
            set->has[c] = true;
    }
}

/* Go's ASCII classes for [[:name:]]; returns false for an unknown name. */
static bool posix_class(const char *name, size_t n, int c, bool *member)
{
    static const char *const names[] = {"alnum", "alpha", "ascii", "blank", "cntrl",
                                        "digit", "graph", "lower", "print", "punct",
                                        "space", "upper", "word",  "xdigit"};
    size_t k;
    bool m = false;

    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (strlen(names[k]) == n && memcmp(names[k], name, n) == 0)
            break;
    }
    switch (k) {
    case 0:
        m = is_digit((char)c) || is_alpha((char)c);
        break;
    case 1:
        m = is_alpha((char)c);
        break;
    case 2:
        m = true;
        break;
    case 3:
        m = c == ' ' || c == '\t';
        break;
    case 4:
        m = c < 0x20 || c == 0x7f;
        break;
    case 5:
        m = is_digit((char)c);
        break;
    case 6:
        m = c > 0x20 && c < 0x7f;
        break;
    case 7:
        m = c >= 'a' && c <= 'z';
        break;
    case 8:
        m = c >= 0x20 && c < 0x7f;
        break;
    case 9:
        m = is_punct(c);
        break;
    case 10:
        m = is_space((char)c) || c == '\v';
        break;
    case 11:
        m = c >= 'A' && c <= 'Z';
        break;
    case 12:
        m = in_class('w', c);
        break;
    case 13:
        m = is_digit((char)c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        break;
    default:
        return false;
    }
    *member = m;
    return true;
}

/* Characters that a POSIX ERE reads as operators outside brackets. */
static bool ere_special(int c)
{
    return c != '\0' && strchr(".[()*+?{|^$\\", c) != NULL;
}

static void emit_literal(struct sbuf *b, int c)
{
    if (ere_special(c))
        sb_putc(b, '\\');
    sb_putc(b, (char)c);
}

/*
 * Writes the members of set as a POSIX bracket expression. Inside POSIX
 * brackets a backslash is an ordinary character and ']', '^', '-' and '['
 * only mean themselves in certain places, so members are listed one by one
 * (no ranges, which would depend on the locale's collation) with ']' first,
 * '[' before '^' and '-' last. No character ever precedes "." ":" "=" after
 * '[', so no collating element can appear by accident.
 */
static void emit_members(struct sbuf *b, const bool *has, bool negated)
{
    bool only_caret_dash = true;

    for (int c = 1; c < ASCII_N; c++) {
        if (has[c] && c != '^' && c != '-')
            only_caret_dash = false;
    }
    sb_putc(b, '[');
    if (negated)
        sb_putc(b, '^');
    if (!negated && only_caret_dash) {
        /* Only "^-" is possible here (a single member is a literal): "[^-]" would negate. */
        sb_put(b, "-^]", 3);
        return;
    }
    if (has[']'])
        sb_putc(b, ']');
    for (int c = 1; c < ASCII_N; c++) {
        if (has[c] && c != ']' && c != '[' && c != '^' && c != '-')
            sb_putc(b, (char)c);
    }
    if (has['['])
        sb_putc(b, '[');
    if (has['^'])
        sb_putc(b, '^');
    if (has['-'])
        sb_putc(b, '-');
    sb_putc(b, ']');
}

/*
 * Writes set in its shorter form: a literal for one member, else the members
 * or, for big sets, "[^...]" of the rest. Both forms agree on every ASCII
 * byte; they differ only on bytes above 0x7f, which a tag never contains.
 */
static void emit_set(struct sbuf *b, const struct cset *set)
{
    struct cset rest;
    int n = 0, last = 0;

    for (int c = 1; c < ASCII_N; c++) {
        rest.has[c] = !set->has[c];
        if (set->has[c]) {
            n++;
            last = c;
        }
    }
    rest.has[0] = false;
    if (n == 1)
        emit_literal(b, last);
    else if (n == 0 || (n > (ASCII_N - 1) / 2 && n < ASCII_N - 1))
        emit_members(b, rest.has, true);
    else
        emit_members(b, set->has, false);
}

/*
 * Reads the escape at s[i] == '\\' where a single character or a class may
 * stand. Sets *lit to the character it means, or *cls to d, D, w, W, s or S.
 */
static int read_escape(struct rx *x, int *lit, char *cls)
{
    unsigned char c;

    *lit = 0;
    *cls = 0;
    if (x->i + 1 >= x->len)
        return rx_fail(x, "it ends with a backslash");
    c = (unsigned char)x->s[x->i + 1];
    x->i += 2;
    if (strchr("dDwWsS", c) != NULL) {
        *cls = (char)c;
        return 0;
    }
    switch (c) {
    case 'n':
        *lit = '\n';
        return 0;
    case 't':
        *lit = '\t';
        return 0;
    case 'r':
        *lit = '\r';
        return 0;
    case 'f':
        *lit = '\f';
        return 0;
    case 'v':
        *lit = '\v';
        return 0;
    case 'a':
        *lit = '\a';
        return 0;
    case 'b':
    case 'B':
        return rx_fail(x, "word boundaries (\\%c) have no POSIX equivalent", c);
    case 'p':
    case 'P':
        return rx_fail(x, "Unicode classes (\\%c) are not supported", c);
    case 'x':
        return rx_fail(x, "hex escapes (\\x) are not supported; write the character");
    case 'Q':
    case 'E':
        return rx_fail(x, "\\Q...\\E quoting is not supported; escape each character");
    case 'A':
    case 'z':
        return rx_fail(x, "\\%c is only allowed outside brackets", c);
    }
    if (is_digit((char)c))
        return rx_fail(x, "octal escapes and backreferences (\\%c) are not supported", c);
    /* As in Go, any other ASCII character that is not a letter stands for itself ("\\ "). */
    if (c < 0x80 && !is_alpha((char)c)) {
        *lit = c;
        return 0;
    }
    if (c >= 0x80)
        return rx_fail(x, "it has a non-ASCII character (tags are ASCII)");
    return rx_fail(x, "\\%c is not a supported escape", c);
}

static bool is_ascii_ok(unsigned char c)
{
    return c != 0 && c < 0x80;
}

/* One ordinary character of a bracket range end, or -1 (with x->why set). */
static int read_class_char(struct rx *x, int *ch)
{
    unsigned char c = (unsigned char)x->s[x->i];
    char cls;
    int rc;

    if (c == '\\') {
        if ((rc = read_escape(x, ch, &cls)) != 0)
            return rc;
        if (cls != 0)
            return rx_fail(x, "a range cannot end at a class (\\%c)", cls);
        return 0;
    }
    if (!is_ascii_ok(c))
        return rx_fail(x, "it has a non-ASCII character (tags are ASCII)");
    *ch = c;
    x->i++;
    return 0;
}

/* Parses Go's bracket expression at s[i] == '[' into set. */
static int parse_bracket(struct rx *x, struct cset *set)
{
    const char *s = x->s;
    bool neg = false, first = true;
    int rc;

    memset(set, 0, sizeof(*set));
    x->i++;
    if (x->i < x->len && s[x->i] == '^') {
        neg = true;
        x->i++;
    }
    for (;;) {
        int lo, hi;
        char cls = 0;

        if (x->i >= x->len)
            return rx_fail(x, "a [ is not closed");
        /* As in Go, a ']' right after "[" or "[^" is a member. */
        if (s[x->i] == ']' && !first) {
            x->i++;
            break;
        }
        first = false;
        if (s[x->i] == '[' && x->i + 1 < x->len && s[x->i + 1] == ':') {
            const char *end = NULL;
            size_t name = x->i + 2, n;
            bool cneg = false, member;

            for (size_t k = name; k + 1 < x->len; k++) {
                if (s[k] == ':' && s[k + 1] == ']') {
                    end = s + k;
                    break;
                }
            }
            if (end != NULL) {
                if (s[name] == '^') {
                    cneg = true;
                    name++;
                }
                n = (size_t)(end - (s + name));
                for (int c = 1; c < ASCII_N; c++) {
                    if (!posix_class(s + name, n, c, &member))
                        return rx_fail(x, "unknown class [:%.*s:]", (int)(n < 32 ? n : 32),
                                       s + name);
                    if (member != cneg)
                        set->has[c] = true;
                }
                x->i = (size_t)(end - s) + 2;
                if (x->i + 1 < x->len && s[x->i] == '-' && s[x->i + 1] != ']')
                    return rx_fail(x, "a range cannot start at a class ([:%.*s:])",
                                   (int)(n < 32 ? n : 32), s + name);
                continue;
            }
        }
        if (s[x->i] == '\\') {
            if ((rc = read_escape(x, &lo, &cls)) != 0)
                return rc;
        } else if ((rc = read_class_char(x, &lo)) != 0) {
            return rc;
        }
        if (cls != 0) {
            add_class(set, cls);
            if (x->i + 1 < x->len && s[x->i] == '-' && s[x->i + 1] != ']')
                return rx_fail(x, "a range cannot start at a class (\\%c)", cls);
            continue;
        }
        hi = lo;
        if (x->i + 1 < x->len && s[x->i] == '-' && s[x->i + 1] != ']') {
            x->i++;
            if ((rc = read_class_char(x, &hi)) != 0)
                return rc;
            if (hi < lo)
                return rx_fail(x, "the range %c-%c is reversed", lo, hi);
        }
        for (int c = lo; c <= hi; c++)
            set->has[c] = true;
    }
    if (neg) {
        for (int c = 1; c < ASCII_N; c++)
            set->has[c] = !set->has[c];
    }
    return 0;
}

/*
 * Go's repetition "{n}", "{n,}" or "{n,m}" at s[i] == '{'; anything else
 * there is a literal '{' in Go. max is -1 for "{n,}". Counts past
 * RX_REPEAT_MAX are clamped to RX_REPEAT_MAX + 1, which the caller refuses.
 */
static bool parse_repeat(const struct rx *x, size_t *end, long *min, long *max)
{
    const char *s = x->s;
    size_t i = x->i + 1;
    long v[2] = {0, -1};
    int k = 0;

    for (;;) {
        size_t start = i;
        long n = 0;
        while (i < x->len && is_digit(s[i])) {
            n = n * 10 + (s[i] - '0');
            if (n > RX_REPEAT_MAX)
                n = RX_REPEAT_MAX + 1;
            i++;
        }
        if (i > start)
            v[k] = n;
        else if (k == 0)
            return false;
        if (i >= x->len)
            return false;
        if (s[i] == '}') {
            if (k == 0)
                v[1] = v[0];
            break;
        }
        if (s[i] != ',' || k == 1)
            return false;
        k = 1;
        i++;
    }
    *end = i + 1;
    *min = v[0];
    *max = v[1];
    return true;
}

/* Saturating arithmetic for the size estimate. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* Counts one item of the given size in the current group. */
static void add_item(struct rx *x, uint64_t size)
{
    x->size[x->depth] = sat_add(x->size[x->depth], size);
    x->last[x->depth] = size;
    x->last_anchor[x->depth] = false;
}

/*
 * Applies a quantifier that repeats the last item up to copies times
 * (UINT64_MAX: no limit), as regcomp expands it, and checks the estimate.
 */
static int add_repeat(struct rx *x, uint64_t copies)
{
    uint64_t last = x->last[x->depth];

    /*
     * glibc's regexec loses anchors inside a group that can match more than
     * once: it finds "(^a){2}" and "(^a)+$" in "aa", where Go finds neither.
     * Refusing is better than selecting other tags than skopeo would.
     */
    if (copies > 1 && x->last_anchor[x->depth])
        return rx_fail(x, "a group with ^ or $ inside may not repeat (POSIX regexec gets it "
                          "wrong); move the anchor out of the group");
    if (copies > 1 && copies != UINT64_MAX) {
        x->size[x->depth] = sat_add(x->size[x->depth], sat_mul(last, copies - 1));
        x->last[x->depth] = sat_mul(last, copies);
    }
    for (size_t d = 0; d <= x->depth; d++) {
        if (x->size[d] > RX_SIZE_MAX)
            return rx_fail(x, "its repetitions are too large (more than %d copies)", RX_SIZE_MAX);
    }
    return 0;
}

static int translate(struct rx *x)
{
    const char *s = x->s;
    /* can_repeat: the last item takes a quantifier; quant, lazy: it was one (and a lazy one). */
    bool can_repeat = false, quant = false, lazy = false;
    struct cset set;
    int rc, lit;
    char cls;

    while (x->i < x->len) {
        unsigned char c = (unsigned char)s[x->i];
        size_t end = 0;
        long min = 0, max = 0;

        if (!is_ascii_ok(c))
            return rx_fail(x, "it has a non-ASCII character (tags are ASCII)");
        if (c == '*' || c == '+' || c == '?' || (c == '{' && parse_repeat(x, &end, &min, &max))) {
            if (quant && c == '?' && !lazy) {
                /*
                 * A lazy quantifier changes which match is reported, never
                 * whether there is one, and only the latter matters here.
                 */
                lazy = true;
                x->i++;
                continue;
            }
            if (quant)
                return rx_fail(x, "a quantifier (%c) follows another one", c);
            if (!can_repeat)
                return rx_fail(x, "a quantifier (%c) has nothing to repeat", c);
            if (c == '{') {
                if (min > RX_REPEAT_MAX || max > RX_REPEAT_MAX || (max >= 0 && max < min))
                    return rx_fail(x, "the repetition %.*s is invalid (at most %d, min <= max)",
                                   (int)(end - x->i), s + x->i, RX_REPEAT_MAX);
                char rep[32];
                if (max < 0)
                    snprintf(rep, sizeof(rep), "{%ld,}", min);
                else if (max == min)
                    snprintf(rep, sizeof(rep), "{%ld}", min);
                else
                    snprintf(rep, sizeof(rep), "{%ld,%ld}", min, max);
                sb_put(&x->out, rep, strlen(rep));
                x->i = end;
                if ((rc = add_repeat(x, (uint64_t)(max < 0 ? min + 1 : max))) != 0)
                    return rc;
            } else {
                if ((rc = add_repeat(x, c == '?' ? 1 : UINT64_MAX)) != 0)
                    return rc;
                sb_putc(&x->out, (char)c);
                x->i++;
            }
            quant = true;
            lazy = false;
            can_repeat = false;
            continue;
        }
        quant = lazy = false;
        can_repeat = true;
        switch (c) {
        case '\\':
            if (x->i + 1 < x->len && (s[x->i + 1] == 'A' || s[x->i + 1] == 'z')) {
                /* Without flags, Go's ^ and $ are \A and \z, and so are POSIX's. */
                sb_putc(&x->out, s[x->i + 1] == 'A' ? '^' : '$');
                x->i += 2;
                x->anchor[x->depth] = true;
                can_repeat = false;
                break;
            }
            if ((rc = read_escape(x, &lit, &cls)) != 0)
                return rc;
            if (cls != 0) {
                memset(&set, 0, sizeof(set));
                add_class(&set, cls);
                emit_set(&x->out, &set);
            } else {
                emit_literal(&x->out, lit);
            }
            add_item(x, 1);
            break;
        case '[':
            if ((rc = parse_bracket(x, &set)) != 0)
                return rc;
            emit_set(&x->out, &set);
            add_item(x, 1);
            break;
        case '(':
            x->i++;
            if (x->i < x->len && s[x->i] == '?') {
                size_t k = x->i + 1;
                if (k < x->len && s[k] == ':') {
                    x->i = k + 1;
                } else if (k < x->len &&
                           (s[k] == '<' || (s[k] == 'P' && k + 1 < x->len && s[k + 1] == '<'))) {
                    /* A named group: the name is irrelevant without submatches. */
                    k += s[k] == 'P' ? 2 : 1;
                    size_t name = k;
                    while (k < x->len && in_class('w', (unsigned char)s[k]))
                        k++;
                    if (k == name || k >= x->len || s[k] != '>')
                        return rx_fail(x, "a named group (?P<name>...) is malformed");
                    x->i = k + 1;
                } else {
                    /* Quote the group's opening up to its ':' or ')': "(?i)", "(?i:". */
                    size_t e = k;
                    while (e < x->len && e - k < 8 && s[e] != ':' && s[e] != ')')
                        e++;
                    return rx_fail(x, "flags and special groups \"(?%.*s\" are not supported",
                                   (int)(e < x->len ? e + 1 - k : e - k), s + k);
                }
            }
            if (x->depth == RX_DEPTH_MAX)
                return rx_fail(x, "groups are nested more than %d deep", RX_DEPTH_MAX);
            sb_putc(&x->out, '(');
            x->depth++;
            x->size[x->depth] = 0;
            x->last[x->depth] = 0;
            x->anchor[x->depth] = false;
            x->last_anchor[x->depth] = false;
            can_repeat = false;
            break;
        case ')':
            if (x->depth == 0)
                return rx_fail(x, "a ) has no matching (");
            sb_putc(&x->out, ')');
            x->i++;
            x->depth--;
            add_item(x, sat_add(x->size[x->depth + 1], 1));
            x->last_anchor[x->depth] = x->anchor[x->depth + 1];
            x->anchor[x->depth] = x->anchor[x->depth] || x->anchor[x->depth + 1];
            break;
        case '^':
        case '$':
            x->anchor[x->depth] = true;
            /* fall through */
        case '|':
            sb_putc(&x->out, (char)c);
            x->i++;
            can_repeat = false;
            break;
        case '.':
            sb_putc(&x->out, '.');
            x->i++;
            add_item(x, 1);
            break;
        default:
            /* '{' that is not a repetition, '}', ']' and ordinary characters. */
            emit_literal(&x->out, c);
            x->i++;
            add_item(x, 1);
            break;
        }
    }
    if (x->depth != 0)
        return rx_fail(x, "a ( is not closed");
    sb_put(&x->out, "", 0);
    return x->out.rc;
}

/* Translates and compiles one expression; which is "include" or "exclude". */
static int compile_one(const char *which, const char *re, regex_t *out, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    struct rx *x = NULL;
    size_t len;
    int rc;

    if (re == NULL) {
        ocisync__errf(err, errlen, "%s regex is missing (NULL)", which);
        return OCISYNC_EUSAGE;
    }
    len = strnlen(re, OCI_TAGFILTER_REGEX_MAX + 1);
    if (len > OCI_TAGFILTER_REGEX_MAX) {
        ocisync__errf(err, errlen, "%s regex \"%s\": longer than %d bytes", which,
                      ocisync__clip(re, QUOTE_MAX, &c), OCI_TAGFILTER_REGEX_MAX);
        return OCISYNC_ETOOBIG;
    }
    /* The translator's size-estimate stacks make it too big for the stack of a deep caller. */
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        ocisync__errf(err, errlen, "%s regex: out of memory", which);
        return UV_ENOMEM;
    }
    x->s = re;
    x->len = len;
    rc = translate(x);
    if (rc == UV_ENOMEM) {
        ocisync__errf(err, errlen, "%s regex: out of memory", which);
        goto out;
    }
    if (rc == OCISYNC_ETOOBIG) {
        ocisync__errf(err, errlen, "%s regex \"%s\": too large once translated to POSIX", which,
                      ocisync__clip(re, QUOTE_MAX, &c));
        goto out;
    }
    if (rc != 0) {
        ocisync__errf(err, errlen, "%s regex \"%s\": %s", which, ocisync__clip(re, QUOTE_MAX, &c),
                      x->why);
        goto out;
    }
    rc = regcomp(out, x->out.p, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[256];
        regerror(rc, out, msg, sizeof(msg));
        ocisync__errf(err, errlen, "%s regex \"%s\": %s", which, ocisync__clip(re, QUOTE_MAX, &c),
                      msg);
        rc = rc == REG_ESPACE ? UV_ENOMEM : OCISYNC_EUSAGE;
        goto out;
    }
out:
    free(x->out.p);
    free(x);
    return rc;
}

/* Compiles n expressions into a new array *out; *n_out counts those compiled, even on error. */
static int compile_list(const char *which, const char *const *res, size_t n, regex_t **out,
                        size_t *n_out, char *err, size_t errlen)
{
    int rc;

    if (n == 0)
        return 0;
    if (res == NULL) {
        ocisync__errf(err, errlen, "%s regexes are missing (NULL list)", which);
        return OCISYNC_EUSAGE;
    }
    if (n > OCI_TAGFILTER_MAX_REGEXES) {
        ocisync__errf(err, errlen, "more than %d %s regexes", OCI_TAGFILTER_MAX_REGEXES, which);
        return OCISYNC_ETOOBIG;
    }
    *out = calloc(n, sizeof(**out));
    if (*out == NULL) {
        ocisync__errf(err, errlen, "%s regexes: out of memory", which);
        return UV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = compile_one(which, res[i], &(*out)[i], err, errlen)) != 0)
            return rc;
        (*n_out)++;
    }
    return 0;
}

int oci_tagfilter_init(struct oci_tagfilter *f, const struct oci_tagfilter_spec *spec, char *err,
                       size_t errlen)
{
    int rc;

    memset(f, 0, sizeof(*f));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (spec == NULL) {
        ocisync__errf(err, errlen, "no tag filter given");
        return OCISYNC_EUSAGE;
    }
    if ((rc = compile_list("include", spec->include_regex, spec->n_include, &f->include,
                           &f->n_include, err, errlen)) != 0 ||
        (rc = compile_list("exclude", spec->exclude_regex, spec->n_exclude, &f->exclude,
                           &f->n_exclude, err, errlen)) != 0)
        goto fail;
    if (spec->semver != NULL) {
        if ((rc = oci_semver_range_parse(spec->semver, &f->semver, err, errlen)) != 0)
            goto fail;
        f->has_semver = true;
    }
    f->latest = spec->latest;
    return 0;

fail:
    oci_tagfilter_free(f);
    return rc;
}

void oci_tagfilter_free(struct oci_tagfilter *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_include; i++)
        regfree(&f->include[i]);
    for (size_t i = 0; i < f->n_exclude; i++)
        regfree(&f->exclude[i]);
    free(f->include);
    free(f->exclude);
    oci_semver_range_free(&f->semver);
    memset(f, 0, sizeof(*f));
}

struct cand {
    const char *tag;
    size_t idx;
    struct oci_semver v; /* set when the filter orders by version */
};

static int cmp_tag(const struct cand *a, const struct cand *b)
{
    int c = strcmp(a->tag, b->tag);

    if (c != 0)
        return c;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int by_tag(const void *pa, const void *pb)
{
    return cmp_tag(pa, pb);
}

/* Highest version first; equal versions by tag bytes, then index. */
static int by_version(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    int c = oci_semver_cmp(&b->v, &a->v);

    return c != 0 ? c : cmp_tag(a, b);
}

static bool any_match(const regex_t *res, size_t n, const char *tag)
{
    for (size_t i = 0; i < n; i++) {
        if (regexec(&res[i], tag, 0, NULL, 0) == 0)
            return true;
    }
    return false;
}

int oci_tagfilter_apply(const struct oci_tagfilter *f, const char *const *tags, size_t n,
                        size_t *sel, size_t *n_sel)
{
    bool versions;
    struct cand *cands = NULL;
    size_t m = 0;

    if (n_sel != NULL)
        *n_sel = 0;
    if (f == NULL || n_sel == NULL || (n > 0 && (tags == NULL || sel == NULL)))
        return UV_EINVAL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof(*cands))
        return UV_ENOMEM;
    cands = malloc(n * sizeof(*cands));
    if (cands == NULL)
        return UV_ENOMEM;
    versions = f->has_semver || f->latest > 0;
    for (size_t i = 0; i < n; i++) {
        struct cand *c = &cands[m];
        if (tags[i] == NULL)
            continue;
        if (f->n_include > 0 && !any_match(f->include, f->n_include, tags[i]))
            continue;
        if (any_match(f->exclude, f->n_exclude, tags[i]))
            continue;
        if (versions) {
            if (oci_semver_parse(tags[i], &c->v) != 0)
                continue;
            if (f->has_semver && !oci_semver_range_match(&f->semver, &c->v))
                continue;
        }
        c->tag = tags[i];
        c->idx = i;
        m++;
    }
    qsort(cands, m, sizeof(*cands), versions ? by_version : by_tag);
    if (f->latest > 0 && m > f->latest)
        m = f->latest;
    for (size_t i = 0; i < m; i++)
        sel[i] = cands[i].idx;
    *n_sel = m;
    free(cands);
    return 0;
}
