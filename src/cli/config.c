/*
 * The `ocisync sync` configuration file: skopeo sync's YAML, or ocisync's
 * own format (see config.h).
 *
 * The reader walks libyaml's event stream by recursive descent that follows
 * the schema: each function is entered on the first event of its value and
 * leaves on the event after it. Anything the schema does not expect is an
 * error at once, so the reader never descends deeper than the schema (four
 * levels), whatever the input nests; memory is bounded by the file size cap,
 * the entry and list caps and a budget on the bytes of strings kept.
 * Anchors and aliases are refused outright rather than expanded with a
 * budget: a sync list has no use for them, and refusing them removes the
 * "billion laughs" class of input entirely.
 */
#include "cli/config.h"

#include "ocisync.h"

#include <uv.h>
#include <yaml.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many bytes of a value an error message quotes. */
#define QUOTE_MAX 80
/* Mapping keys are names of at most 255 bytes; anything longer is refused. */
#define KEY_MAX 512
/* Room for "what" prefixes of messages, such as `images-by-semver: "alpine"`. */
#define WHAT_MAX 160
#define MSG_MAX 640
/* Bytes charged per allocated string on top of its length: malloc's own overhead. */
#define ALLOC_OVERHEAD 16

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_SEQ "tag:yaml.org,2002:seq"
#define TAG_MAP "tag:yaml.org,2002:map"
#define TRANSPORT_PREFIX "docker://"
#define LEGACY_HUB "index.docker.io"
#define HUB "docker.io"

#define LIT_LEN(s) (sizeof(s) - 1)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct rd {
    yaml_parser_t parser;
    yaml_event_t ev; /* the current event, valid while have_ev */
    bool have_ev;
    const char *data; /* the document, to find the line of a reader (encoding) error */
    size_t len;
    const char *name; /* the file name, for messages */
    char *err;
    size_t errlen;
    struct cli_sync_config *cfg;
    size_t cap_entries, cap_registries;
    /* Format 1: the registry each entry came from, by index (registries move as they grow). */
    size_t *entry_reg;
    size_t bytes; /* charged against CLI_SYNC_MAX_BYTES */
};

/* ---------------------------------------------------------------------------------------------
 * Messages
 */

/* A value quoted in a message: itself, or its first QUOTE_MAX bytes and "...". */
struct clipped {
    char s[QUOTE_MAX + 4];
};

/*
 * printf into err (when err is non-NULL), then any control or non-ASCII byte
 * becomes '?': messages quote the file, and end up on terminals and in logs.
 */
static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f)
            *p = '?';
    }
}

static int fail(struct rd *r, int rc, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct rd *r, int rc, unsigned line, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        errf(r->err, r->errlen, "%s:%u: %s", r->name, line, msg);
    else
        errf(r->err, r->errlen, "%s: %s", r->name, msg);
    return rc;
}

static int no_memory(struct rd *r)
{
    return fail(r, UV_ENOMEM, 0, "out of memory");
}

/* s clipped for a message; the result lives in c (or is s). */
static const char *q(const char *s, struct clipped *c)
{
    if (strlen(s) <= QUOTE_MAX)
        return s;
    memcpy(c->s, s, QUOTE_MAX);
    memcpy(c->s + QUOTE_MAX, "...", 4);
    return c->s;
}

/* ---------------------------------------------------------------------------------------------
 * Events
 */

static unsigned ev_line(const struct rd *r)
{
    return (unsigned)r->ev.start_mark.line + 1;
}

/* The 1-based line of byte offset off in the document. */
static unsigned line_at(const struct rd *r, size_t off)
{
    unsigned line = 1;

    for (size_t i = 0; i < off && i < r->len; i++) {
        if (r->data[i] == '\n')
            line++;
    }
    return line;
}

static int syntax_error(struct rd *r)
{
    const yaml_parser_t *p = &r->parser;
    const char *problem = p->problem != NULL ? p->problem : "syntax error";
    unsigned line;

    if (p->error == YAML_MEMORY_ERROR)
        return no_memory(r);
    if (p->error == YAML_READER_ERROR)
        line = line_at(r, p->problem_offset);
    else
        line = (unsigned)p->problem_mark.line + 1;
    /* An unclosed quote or bracket is found far from where it began: say both. */
    if (p->context != NULL && p->context_mark.line + 1 != line)
        return fail(r, OCISYNC_EUSAGE, line, "invalid YAML: %s (from line %u) %s", p->context,
                    (unsigned)p->context_mark.line + 1, problem);
    if (p->context != NULL)
        return fail(r, OCISYNC_EUSAGE, line, "invalid YAML: %s %s", p->context, problem);
    return fail(r, OCISYNC_EUSAGE, line, "invalid YAML: %s", problem);
}

/*
 * Moves to the next event, refusing what this reader does not support:
 * aliases and anchors, explicit tags other than the standard string,
 * sequence and mapping ones, and over-long scalars.
 */
static int advance(struct rd *r)
{
    struct clipped c;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    const char *allowed = NULL;

    if (r->have_ev) {
        yaml_event_delete(&r->ev);
        r->have_ev = false;
    }
    if (!yaml_parser_parse(&r->parser, &r->ev))
        return syntax_error(r);
    r->have_ev = true;

    switch (r->ev.type) {
    case YAML_ALIAS_EVENT:
        return fail(r, OCISYNC_EUSAGE, ev_line(r),
                    "YAML aliases (*%s) are not supported: write the value out in full",
                    q((const char *)r->ev.data.alias.anchor, &c));
    case YAML_SCALAR_EVENT:
        anchor = r->ev.data.scalar.anchor;
        tag = r->ev.data.scalar.tag;
        allowed = TAG_STR;
        if (r->ev.data.scalar.length > CLI_SYNC_MAX_STRING)
            return fail(r, OCISYNC_ETOOBIG, ev_line(r), "a value is longer than %d bytes",
                        CLI_SYNC_MAX_STRING);
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = r->ev.data.sequence_start.anchor;
        tag = r->ev.data.sequence_start.tag;
        allowed = TAG_SEQ;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = r->ev.data.mapping_start.anchor;
        tag = r->ev.data.mapping_start.tag;
        allowed = TAG_MAP;
        break;
    default:
        break;
    }
    if (anchor != NULL)
        return fail(r, OCISYNC_EUSAGE, ev_line(r),
                    "YAML anchors (&%s) are not supported: write every value out in full",
                    q((const char *)anchor, &c));
    if (tag != NULL && strcmp((const char *)tag, allowed) != 0)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "the YAML tag %s is not supported here",
                    q((const char *)tag, &c));
    return 0;
}

static const char *sval(const struct rd *r)
{
    return (const char *)r->ev.data.scalar.value;
}

static size_t slen(const struct rd *r)
{
    return r->ev.data.scalar.length;
}

/* An untagged plain scalar: the only kind YAML resolves to null, booleans or numbers. */
static bool is_plain(const struct rd *r)
{
    return r->ev.type == YAML_SCALAR_EVENT && r->ev.data.scalar.tag == NULL &&
           r->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null(const struct rd *r)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (!is_plain(r))
        return false;
    for (size_t i = 0; i < COUNT(nulls); i++) {
        if (strcmp(sval(r), nulls[i]) == 0)
            return true;
    }
    return false;
}

/* What the current event is, for "needs a mapping, not ..." messages. */
static const char *found(const struct rd *r)
{
    switch (r->ev.type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_SCALAR_EVENT:
        return is_null(r) ? "null" : "a string";
    default:
        return "nothing";
    }
}

/* ---------------------------------------------------------------------------------------------
 * Allocation
 */

/* Counts n more bytes against the budget. */
static int charge(struct rd *r, size_t n)
{
    r->bytes += n + ALLOC_OVERHEAD;
    if (r->bytes > CLI_SYNC_MAX_BYTES)
        return fail(r, OCISYNC_ETOOBIG, 0, "the configuration expands to more than %u MiB",
                    CLI_SYNC_MAX_BYTES >> 20);
    return 0;
}

/* A charged copy of s[0..n) into *out. */
static int dup_n(struct rd *r, const char *s, size_t n, char **out)
{
    int rc = charge(r, n + 1);

    if (rc != 0)
        return rc;
    *out = malloc(n + 1);
    if (*out == NULL)
        return no_memory(r);
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

/*
 * Makes room for one more element in an array of n elements whose capacity
 * is implicit: 4, then doubled whenever n reaches a power of two.
 */
static int grow(struct rd *r, void **arr, size_t n, size_t elem)
{
    size_t cap;
    void *p;

    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return 0;
    cap = n == 0 ? 4 : n * 2;
    p = realloc(*arr, cap * elem);
    if (p == NULL)
        return no_memory(r);
    *arr = p;
    return 0;
}

static int push_str(struct rd *r, char ***items, size_t *n, const char *s, size_t len)
{
    int rc = grow(r, (void **)items, *n, sizeof(**items));

    if (rc == 0)
        rc = charge(r, sizeof(char *));
    if (rc == 0)
        rc = dup_n(r, s, len, &(*items)[*n]);
    if (rc == 0)
        (*n)++;
    return rc;
}

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static int copy_list(struct rd *r, char **src, size_t n, char ***dst, size_t *dn)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = push_str(r, dst, dn, src[i], strlen(src[i]));
    return rc;
}

/* A new zeroed entry at the end of the config; its index goes to *idx. */
static int new_entry(struct rd *r, unsigned line, size_t reg, size_t *idx)
{
    struct cli_sync_config *cfg = r->cfg;
    size_t cap;
    void *p;

    if (cfg->n_entries >= CLI_SYNC_MAX_ENTRIES)
        return fail(r, OCISYNC_ETOOBIG, line, "more than %d entries", CLI_SYNC_MAX_ENTRIES);
    if (cfg->n_entries == r->cap_entries) {
        cap = r->cap_entries ? r->cap_entries * 2 : 16;
        p = realloc(cfg->entries, cap * sizeof(*cfg->entries));
        if (p == NULL)
            return no_memory(r);
        cfg->entries = p;
        p = realloc(r->entry_reg, cap * sizeof(*r->entry_reg));
        if (p == NULL)
            return no_memory(r);
        r->entry_reg = p;
        r->cap_entries = cap;
    }
    *idx = cfg->n_entries++;
    memset(&cfg->entries[*idx], 0, sizeof(cfg->entries[*idx]));
    cfg->entries[*idx].line = line;
    r->entry_reg[*idx] = reg;
    return charge(r, sizeof(struct cli_sync_entry));
}

static int new_registry(struct rd *r, const char *name, unsigned line, size_t *idx)
{
    struct cli_sync_config *cfg = r->cfg;
    struct cli_registry_conf *reg;
    size_t cap;
    void *p;

    if (cfg->n_registries >= CLI_SYNC_MAX_REGISTRIES)
        return fail(r, OCISYNC_ETOOBIG, line, "more than %d registries", CLI_SYNC_MAX_REGISTRIES);
    if (cfg->n_registries == r->cap_registries) {
        cap = r->cap_registries ? r->cap_registries * 2 : 8;
        p = realloc(cfg->registries, cap * sizeof(*cfg->registries));
        if (p == NULL)
            return no_memory(r);
        cfg->registries = p;
        r->cap_registries = cap;
    }
    *idx = cfg->n_registries++;
    reg = &cfg->registries[*idx];
    memset(reg, 0, sizeof(*reg));
    reg->tls_verify = -1;
    reg->line = line;
    return dup_n(r, name, strlen(name), &reg->name);
}

/* ---------------------------------------------------------------------------------------------
 * Duplicate keys of open mappings (registries, images), found by sorting once
 * the mapping is read: deterministic O(n log n) whatever the keys are.
 */

struct keyent {
    char *key;
    unsigned line;
};

struct keyset {
    struct keyent *v;
    size_t n;
};

static int keyset_add(struct rd *r, struct keyset *ks, const char *key, unsigned line)
{
    int rc = grow(r, (void **)&ks->v, ks->n, sizeof(*ks->v));

    if (rc != 0)
        return rc;
    ks->v[ks->n].key = strdup(key);
    if (ks->v[ks->n].key == NULL)
        return no_memory(r);
    ks->v[ks->n++].line = line;
    return 0;
}

static int keyent_cmp(const void *a, const void *b)
{
    const struct keyent *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Fails on the duplicate that comes first in the file. */
static int keyset_check(struct rd *r, struct keyset *ks, const char *where, const char *noun)
{
    struct clipped c;
    const struct keyent *dup = NULL, *first = NULL;

    if (ks->n < 2)
        return 0;
    qsort(ks->v, ks->n, sizeof(*ks->v), keyent_cmp);
    for (size_t i = 1; i < ks->n; i++) {
        if (strcmp(ks->v[i - 1].key, ks->v[i].key) == 0 &&
            (dup == NULL || ks->v[i].line < dup->line)) {
            dup = &ks->v[i];
            /* The first occurrence is the first of its run. */
            first = &ks->v[i - 1];
            while (first > ks->v && strcmp(first[-1].key, dup->key) == 0)
                first--;
        }
    }
    if (dup == NULL)
        return 0;
    return fail(r, OCISYNC_EUSAGE, dup->line, "%s: duplicate %s \"%s\" (first at line %u)", where,
                noun, q(dup->key, &c), first->line);
}

static void keyset_free(struct keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->v[i].key);
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Keys and values
 */

/* Reads the mapping key at the current event into key and moves to its value. */
static int read_key(struct rd *r, const char *where, char key[KEY_MAX], unsigned *line)
{
    struct clipped c;
    size_t n;

    *line = ev_line(r);
    if (r->ev.type != YAML_SCALAR_EVENT)
        return fail(r, OCISYNC_EUSAGE, *line, "%s: keys must be strings, not %s", where, found(r));
    n = slen(r);
    if (n >= KEY_MAX)
        return fail(r, OCISYNC_EUSAGE, *line, "%s: a key is longer than %d bytes", where,
                    KEY_MAX - 1);
    if (memchr(sval(r), '\0', n) != NULL)
        return fail(r, OCISYNC_EUSAGE, *line, "%s: the key \"%s\" contains a NUL byte", where,
                    q(sval(r), &c));
    memcpy(key, sval(r), n + 1);
    return advance(r);
}

static int find_key(const char *key, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, names[i]) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * Looks key up among the names a fixed mapping allows, failing on an unknown
 * or repeated key. first_line[] holds where each was seen (0: not yet).
 */
static int fixed_key(struct rd *r, const char *where, const char *key, unsigned line,
                     const char *const *names, size_t n, unsigned *first_line, int *which)
{
    struct clipped c;
    char expected[256];
    size_t off = 0;

    *which = find_key(key, names, n);
    if (*which >= 0 && first_line[*which] != 0)
        return fail(r, OCISYNC_EUSAGE, line, "%s: duplicate key \"%s\" (first at line %u)", where,
                    key, first_line[*which]);
    if (*which >= 0) {
        first_line[*which] = line;
        return 0;
    }
    expected[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof(expected); i++) {
        off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s%s",
                                i == 0       ? ""
                                : i + 1 == n ? " or "
                                             : ", ",
                                names[i]);
    }
    return fail(r, OCISYNC_EUSAGE, line, "%s: unknown key \"%s\" (expected %s)", where, q(key, &c),
                expected);
}

/* The current scalar, copied into *out; then moves on. */
static int take_string(struct rd *r, const char *what, char **out)
{
    int rc;

    if (memchr(sval(r), '\0', slen(r)) != NULL)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s contains a NUL byte", what);
    if ((rc = dup_n(r, sval(r), slen(r), out)) != 0)
        return rc;
    return advance(r);
}

/* A string value; null leaves *out NULL if nullable, and is an error otherwise. */
static int string_value(struct rd *r, const char *what, bool nullable, char **out)
{
    if (r->ev.type != YAML_SCALAR_EVENT || (!nullable && is_null(r)))
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs a string, not %s", what, found(r));
    if (is_null(r))
        return advance(r);
    return take_string(r, what, out);
}

/*
 * A boolean. skopeo decodes tls-verify with yaml.v3, which takes YAML 1.2's
 * true/false spellings and, for a typed bool, YAML 1.1's yes/no/on/off/y/n.
 */
static int bool_value(struct rd *r, const char *what, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};
    struct clipped c;

    if (r->ev.type != YAML_SCALAR_EVENT || is_null(r))
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs true or false, not %s", what,
                    found(r));
    if (find_key(sval(r), yes, COUNT(yes)) >= 0)
        *out = 1;
    else if (find_key(sval(r), no, COUNT(no)) >= 0)
        *out = 0;
    else
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs true or false, not \"%s\"", what,
                    q(sval(r), &c));
    return advance(r);
}

/* A plain decimal integer in [1, max]. */
static int uint_value(struct rd *r, const char *what, unsigned max, unsigned *out)
{
    struct clipped c;
    const char *s;
    uint64_t v = 0;

    if (r->ev.type != YAML_SCALAR_EVENT || is_null(r))
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs a positive integer, not %s", what,
                    found(r));
    s = sval(r);
    if (!is_plain(r) || *s == '\0')
        goto bad;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            goto bad;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s must be at most %u, not \"%s\"", what,
                        max, q(sval(r), &c));
    }
    if (v == 0)
        goto bad;
    *out = (unsigned)v;
    return advance(r);

bad:
    return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs a positive integer, not \"%s\"", what,
                q(sval(r), &c));
}

/* Checks one list item; returns NULL if it is fine, else why not (a predicate). */
typedef const char *(*check_fn)(const char *s);

static int list_item(struct rd *r, const char *what, check_fn check, char ***items, size_t *n)
{
    struct clipped c;
    const char *why;
    int rc;

    if (r->ev.type != YAML_SCALAR_EVENT || is_null(r))
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s: list items need to be strings, not %s",
                    what, found(r));
    if (*n >= CLI_SYNC_MAX_LIST)
        return fail(r, OCISYNC_ETOOBIG, ev_line(r), "%s has more than %d items", what,
                    CLI_SYNC_MAX_LIST);
    if (memchr(sval(r), '\0', slen(r)) != NULL)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s: an item contains a NUL byte", what);
    if (check != NULL && (why = check(sval(r))) != NULL)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s: \"%s\" %s", what, q(sval(r), &c), why);
    if ((rc = push_str(r, items, n, sval(r), slen(r))) != 0)
        return rc;
    return advance(r);
}

/*
 * A list of strings appended to *items. Null is an empty list; a single
 * string counts as a list of one when scalar_ok.
 */
static int list_value(struct rd *r, const char *what, bool scalar_ok, check_fn check, char ***items,
                      size_t *n)
{
    int rc;

    if (is_null(r))
        return advance(r);
    if (r->ev.type == YAML_SCALAR_EVENT && scalar_ok)
        return list_item(r, what, check, items, n);
    if (r->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs a list%s, not %s", what,
                    scalar_ok ? " or a string" : "", found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_SEQUENCE_END_EVENT) {
        if ((rc = list_item(r, what, check, items, n)) != 0)
            return rc;
    }
    return advance(r);
}

/* ---------------------------------------------------------------------------------------------
 * Names
 */

/* The tag grammar [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, or a digest. */
static const char *check_tag(const char *s)
{
    size_t n = 0;

    if (strchr(s, ':') != NULL)
        return ocisync_digest_check(s) == 0
                   ? NULL
                   : "is not a valid digest (sha256: or sha512: and lowercase hex)";
    for (const char *p = s; *p != '\0'; p++, n++) {
        char ch = *p;
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_';
        if (!word && (n == 0 || (ch != '.' && ch != '-')))
            return "is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) or digest";
    }
    if (n == 0)
        return "is an empty tag";
    if (n > OCISYNC_REF_TAG_MAX - 1)
        return "is longer than 128 characters, the most a tag may have";
    return NULL;
}

/* A repository path under a prefix ("busybox", "team/app"), without tag or digest. */
static const char *check_repo_path(const char *s)
{
    char buf[OCISYNC_REF_REPOSITORY_MAX + 16];
    struct ocisync_ref ref;

    if (*s == '\0')
        return "is empty";
    if (strpbrk(s, ":@") != NULL)
        return "names a tag or digest: list repository names alone";
    if (strlen(s) >= OCISYNC_REF_REPOSITORY_MAX)
        return "is too long for a repository name";
    snprintf(buf, sizeof(buf), "localhost/%s", s);
    if (ocisync_ref_parse(buf, &ref, NULL, 0) != 0)
        return "is not a valid repository name (lowercase letters and digits, separated by "
               "'.', '_' or '-', components by '/')";
    return NULL;
}

static const char *skip_transport(const char *s)
{
    return strncmp(s, TRANSPORT_PREFIX, LIT_LEN(TRANSPORT_PREFIX)) == 0
               ? s + LIT_LEN(TRANSPORT_PREFIX)
               : s;
}

/* True if s has a ":tag" or "@digest" after its last '/'. */
static bool names_version(const char *s)
{
    const char *slash;

    s = skip_transport(s);
    if (strchr(s, '@') != NULL)
        return true;
    slash = strrchr(s, '/');
    return strchr(slash != NULL ? slash + 1 : s, ':') != NULL;
}

/*
 * Checks that host[0..n) is a registry (host[:port]) and not, as the
 * reference grammar would read a dotless name, a Docker Hub namespace.
 * Writes its normalised spelling into norm.
 */
static int registry_host(struct rd *r, unsigned line, const char *what, const char *host, size_t n,
                         char norm[OCISYNC_REF_REGISTRY_MAX])
{
    char buf[OCISYNC_REF_REGISTRY_MAX + 8], name[OCISYNC_REF_REGISTRY_MAX];
    struct clipped c;
    struct ocisync_ref ref;

    if (n == 0)
        return fail(r, OCISYNC_EUSAGE, line, "%s: the registry name is empty", what);
    if (n >= OCISYNC_REF_REGISTRY_MAX)
        return fail(r, OCISYNC_EUSAGE, line, "%s: the registry name is longer than %d bytes", what,
                    OCISYNC_REF_REGISTRY_MAX - 1);
    memcpy(name, host, n);
    name[n] = '\0';
    snprintf(buf, sizeof(buf), "%s/x", name);
    if (ocisync_ref_parse(buf, &ref, NULL, 0) != 0)
        return fail(r, OCISYNC_EUSAGE, line, "%s: \"%s\" is not a valid registry name", what,
                    q(name, &c));
    if (strcmp(ref.registry, strcmp(name, LEGACY_HUB) == 0 ? HUB : name) != 0)
        return fail(r, OCISYNC_EUSAGE, line,
                    "%s: \"%s\" is not a registry host: a registry name has a '.' or a ':port', "
                    "or is localhost (otherwise it names a Docker Hub namespace)",
                    what, q(name, &c));
    memcpy(norm, ref.registry, strlen(ref.registry) + 1);
    return 0;
}

/* Parses s as a repository without tag or digest; *out gets "registry/repository". */
static int parse_repo(struct rd *r, unsigned line, const char *what, const char *s, char **out)
{
    char why[512], buf[OCISYNC_REF_REGISTRY_MAX + OCISYNC_REF_REPOSITORY_MAX + 2];
    struct clipped c;
    struct ocisync_ref ref;
    int n;

    if (ocisync_ref_parse(s, &ref, why, sizeof(why)) != 0)
        return fail(r, OCISYNC_EUSAGE, line, "%s: %s", what, why);
    if (names_version(s))
        return fail(r, OCISYNC_EUSAGE, line,
                    "%s: \"%s\" names a tag or digest; give the repository alone", what, q(s, &c));
    n = snprintf(buf, sizeof(buf), "%s/%s", ref.registry, ref.repository);
    return dup_n(r, buf, (size_t)n, out);
}

/*
 * Parses s as a prefix, "registry" or "registry/namespace", for
 * `repositories`; *out gets it with the registry normalised.
 */
static int parse_prefix(struct rd *r, unsigned line, const char *what, const char *s, char **out)
{
    char host[OCISYNC_REF_REGISTRY_MAX], why[512],
        buf[OCISYNC_REF_REGISTRY_MAX + OCISYNC_REF_REPOSITORY_MAX + 2];
    struct clipped c;
    struct ocisync_ref ref;
    const char *p = skip_transport(s), *slash = strchr(p, '/');
    int rc, n;

    rc = registry_host(r, line, what, p, slash != NULL ? (size_t)(slash - p) : strlen(p), host);
    if (rc != 0)
        return rc;
    if (slash == NULL)
        return dup_n(r, host, strlen(host), out);
    if (strpbrk(slash, ":@") != NULL)
        return fail(r, OCISYNC_EUSAGE, line,
                    "%s: \"%s\" names a tag or digest; give the repository prefix alone", what,
                    q(s, &c));
    if (ocisync_ref_parse(p, &ref, why, sizeof(why)) != 0)
        return fail(r, OCISYNC_EUSAGE, line, "%s: %s", what, why);
    n = snprintf(buf, sizeof(buf), "%s%s", host, slash);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return fail(r, OCISYNC_EUSAGE, line, "%s: \"%s\" is too long", what, q(s, &c));
    return dup_n(r, buf, (size_t)n, out);
}

/* ---------------------------------------------------------------------------------------------
 * Registry settings (both formats)
 */

static struct cli_registry_conf *reg_at(struct rd *r, size_t idx)
{
    return &r->cfg->registries[idx];
}

/* A credentials mapping; line is where its key was written. */
static int credentials_value(struct rd *r, const char *where, unsigned line, size_t reg)
{
    static const char *const names[] = {"username", "password", "identitytoken"};
    unsigned seen[COUNT(names)] = {0}, kline;
    char key[KEY_MAX], what[WHAT_MAX];
    char **field;
    int rc, which;

    if (is_null(r))
        return advance(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s: credentials needs a mapping, not %s", where,
                    found(r));
    snprintf(what, sizeof(what), "%s: credentials", where);
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, what, key, &kline)) != 0 ||
            (rc = fixed_key(r, what, key, kline, names, COUNT(names), seen, &which)) != 0)
            return rc;
        field = which == 0   ? &reg_at(r, reg)->username
                : which == 1 ? &reg_at(r, reg)->password
                             : &reg_at(r, reg)->identity_token;
        snprintf(what, sizeof(what), "%s: credentials: %s", where, names[which]);
        if ((rc = string_value(r, what, true, field)) != 0)
            return rc;
        snprintf(what, sizeof(what), "%s: credentials", where);
    }
    if (reg_at(r, reg)->password != NULL && reg_at(r, reg)->username == NULL)
        return fail(r, OCISYNC_EUSAGE, line, "%s: credentials: a password needs a username", where);
    return advance(r);
}

/* ---------------------------------------------------------------------------------------------
 * Format 1: skopeo sync
 */

enum image_kind { IMAGES_TAGS, IMAGES_REGEX, IMAGES_SEMVER };

/* One of a registry's images, images-by-tag-regex or images-by-semver mappings. */
static int skopeo_images(struct rd *r, const char *regkey, size_t reg, const char *section,
                         enum image_kind kind)
{
    struct clipped c;
    struct keyset names = {0};
    struct cli_sync_entry *e;
    char key[KEY_MAX], what[WHAT_MAX], where[WHAT_MAX];
    char full[KEY_MAX * 2 + 2];
    unsigned line;
    size_t idx;
    int rc;

    snprintf(where, sizeof(where), "\"%s\": %s", q(regkey, &c), section);
    if (is_null(r))
        return advance(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs a mapping of image names, not %s",
                    where, found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, where, key, &line)) != 0 ||
            (rc = keyset_add(r, &names, key, line)) != 0 ||
            (rc = new_entry(r, line, reg, &idx)) != 0)
            goto out;
        e = &r->cfg->entries[idx];
        snprintf(what, sizeof(what), "%s: \"%s\"", section, q(key, &c));
        snprintf(full, sizeof(full), "%s/%s", regkey, key);
        if ((rc = parse_repo(r, line, what, full, &e->source)) != 0)
            goto out;
        switch (kind) {
        case IMAGES_TAGS:
            rc = list_value(r, what, false, check_tag, &e->tags, &e->n_tags);
            break;
        case IMAGES_REGEX:
            if ((rc = charge(r, sizeof(char *))) != 0)
                break;
            if ((e->include_regex = calloc(1, sizeof(char *))) == NULL) {
                rc = no_memory(r);
                break;
            }
            rc = string_value(r, what, false, &e->include_regex[0]);
            e->n_include = e->include_regex[0] != NULL;
            break;
        case IMAGES_SEMVER:
            rc = string_value(r, what, false, &e->semver);
            break;
        }
        if (rc != 0)
            goto out;
    }
    if ((rc = keyset_check(r, &names, where, "key")) == 0)
        rc = advance(r);
out:
    keyset_free(&names);
    return rc;
}

/* Keys of ocisync's format, which are never registry names. */
static const char *const top_keys[] = {"jobs", "registries", "mirrors"};

static int skopeo_registry(struct rd *r, const char *key, unsigned line)
{
    static const char *const names[] = {"images",      "images-by-tag-regex", "images-by-semver",
                                        "credentials", "tls-verify",          "cert-dir"};
    unsigned seen[COUNT(names)] = {0}, kline;
    struct clipped c;
    char host[OCISYNC_REF_REGISTRY_MAX], where[WHAT_MAX], what[WHAT_MAX], field[KEY_MAX];
    const char *slash = strchr(key, '/');
    size_t reg;
    int rc, which;

    snprintf(where, sizeof(where), "\"%s\"", q(key, &c));
    if (find_key(key, top_keys, COUNT(top_keys)) >= 0)
        return fail(r, OCISYNC_EUSAGE, line,
                    "\"%s\" is a key of ocisync's own format, but this file is in skopeo's format "
                    "(its first key is a registry); the two cannot be mixed",
                    key);
    rc = registry_host(r, line, where, key, slash ? (size_t)(slash - key) : strlen(key), host);
    if (rc != 0 || (rc = new_registry(r, key, line, &reg)) != 0)
        return rc;
    /* skopeo accepts a registry with nothing under it and syncs nothing from it. */
    if (is_null(r))
        return advance(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "registry %s needs a mapping, not %s", where,
                    found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, where, field, &kline)) != 0 ||
            (rc = fixed_key(r, where, field, kline, names, COUNT(names), seen, &which)) != 0)
            return rc;
        snprintf(what, sizeof(what), "%s: %s", where, names[which]);
        switch (which) {
        case 0:
        case 1:
        case 2:
            rc = skopeo_images(r, key, reg, names[which], (enum image_kind)which);
            break;
        case 3:
            rc = credentials_value(r, where, kline, reg);
            break;
        case 4:
            rc = bool_value(r, what, &reg_at(r, reg)->tls_verify);
            break;
        default:
            rc = string_value(r, what, true, &reg_at(r, reg)->cert_dir);
            break;
        }
        if (rc != 0)
            return rc;
    }
    return advance(r);
}

/* Entered on the first key of the top-level mapping (or its end). */
static int parse_skopeo(struct rd *r)
{
    struct keyset names = {0};
    char key[KEY_MAX];
    unsigned line;
    int rc;

    r->cfg->format = CLI_SYNC_SKOPEO;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, "top level", key, &line)) != 0 ||
            (rc = keyset_add(r, &names, key, line)) != 0 ||
            (rc = skopeo_registry(r, key, line)) != 0)
            goto out;
    }
    if ((rc = keyset_check(r, &names, "top level", "key")) == 0)
        rc = advance(r);
out:
    keyset_free(&names);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Format 2: ocisync
 */

static int ocisync_registry(struct rd *r, const char *where, size_t reg)
{
    static const char *const names[] = {"tls-verify", "cert-dir", "credentials", "max-concurrency"};
    unsigned seen[COUNT(names)] = {0}, kline;
    char what[WHAT_MAX], key[KEY_MAX];
    int rc, which;

    if (is_null(r))
        return advance(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "%s needs a mapping, not %s", where, found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, where, key, &kline)) != 0 ||
            (rc = fixed_key(r, where, key, kline, names, COUNT(names), seen, &which)) != 0)
            return rc;
        snprintf(what, sizeof(what), "%s: %s", where, names[which]);
        switch (which) {
        case 0:
            rc = bool_value(r, what, &reg_at(r, reg)->tls_verify);
            break;
        case 1:
            rc = string_value(r, what, true, &reg_at(r, reg)->cert_dir);
            break;
        case 2:
            rc = credentials_value(r, where, kline, reg);
            break;
        default:
            rc = uint_value(r, what, CLI_SYNC_MAX_JOBS, &reg_at(r, reg)->max_concurrency);
            break;
        }
        if (rc != 0)
            return rc;
    }
    return advance(r);
}

static int ocisync_registries(struct rd *r)
{
    struct clipped c;
    struct keyset names = {0};
    char key[KEY_MAX], host[OCISYNC_REF_REGISTRY_MAX], where[WHAT_MAX];
    unsigned line;
    size_t reg;
    int rc;

    if (is_null(r))
        return advance(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r),
                    "registries needs a mapping of registry names, not %s", found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, "registries", key, &line)) != 0)
            goto out;
        if (strchr(key, '/') != NULL) {
            rc = fail(r, OCISYNC_EUSAGE, line,
                      "registries: \"%s\" is not a registry host[:port] (settings apply to a "
                      "whole registry)",
                      q(key, &c));
            goto out;
        }
        snprintf(where, sizeof(where), "registries: \"%s\"", q(key, &c));
        /* Duplicates are found on the normalised name, so index.docker.io clashes with docker.io.
         */
        if ((rc = registry_host(r, line, "registries", key, strlen(key), host)) != 0 ||
            (rc = keyset_add(r, &names, host, line)) != 0 ||
            (rc = new_registry(r, host, line, &reg)) != 0 ||
            (rc = ocisync_registry(r, where, reg)) != 0)
            goto out;
    }
    if ((rc = keyset_check(r, &names, "registries", "registry")) == 0)
        rc = advance(r);
out:
    keyset_free(&names);
    return rc;
}

/* One item of `mirrors`, as written, before it becomes entries. */
struct mirror {
    unsigned line;
    char *from, *to;
    char **tags, **include, **exclude, **platforms, **repos;
    size_t n_tags, n_include, n_exclude, n_platforms, n_repos;
    char *semver;
    unsigned latest;
    bool has_repos, all;
};

static void mirror_free(struct mirror *m)
{
    free(m->from);
    free(m->to);
    free_list(m->tags, m->n_tags);
    free_list(m->include, m->n_include);
    free_list(m->exclude, m->n_exclude);
    free_list(m->platforms, m->n_platforms);
    free_list(m->repos, m->n_repos);
    free(m->semver);
}

/* One entry from m, with a copy of its filters. */
static int mirror_entry(struct rd *r, const struct mirror *m, size_t *idx)
{
    struct cli_sync_entry *e;
    int rc;

    if ((rc = new_entry(r, m->line, SIZE_MAX, idx)) != 0)
        return rc;
    e = &r->cfg->entries[*idx];
    e->latest = m->latest;
    if ((rc = copy_list(r, m->tags, m->n_tags, &e->tags, &e->n_tags)) != 0 ||
        (rc = copy_list(r, m->include, m->n_include, &e->include_regex, &e->n_include)) != 0 ||
        (rc = copy_list(r, m->exclude, m->n_exclude, &e->exclude_regex, &e->n_exclude)) != 0 ||
        (rc = copy_list(r, m->platforms, m->n_platforms, &e->platforms, &e->n_platforms)) != 0)
        return rc;
    if (m->semver != NULL)
        rc = dup_n(r, m->semver, strlen(m->semver), &e->semver);
    return rc;
}

/* Turns a mirror into its entries: one, one per repository, or one catalog entry. */
static int mirror_expand(struct rd *r, const struct mirror *m)
{
    struct keyset seen = {0};
    char *from_prefix = NULL, *to_prefix = NULL;
    char *full = NULL, host[OCISYNC_REF_REGISTRY_MAX];
    const char *to;
    size_t idx, n;
    int rc;

    if (!m->has_repos) {
        /*
         * A short source name means Docker Hub, as docker reads it; a short
         * destination would push there by accident, so it must name its
         * registry.
         */
        to = skip_transport(m->to);
        if ((rc = registry_host(r, m->line, "mirrors: to", to, strcspn(to, "/"), host)) != 0 ||
            (rc = mirror_entry(r, m, &idx)) != 0 ||
            (rc = parse_repo(r, m->line, "mirrors: from", m->from, &r->cfg->entries[idx].source)) !=
                0)
            return rc;
        return parse_repo(r, m->line, "mirrors: to", m->to, &r->cfg->entries[idx].dest);
    }
    /* The prefixes are checked on their own first, so a bad one is named as such. */
    if ((rc = parse_prefix(r, m->line, "mirrors: from", m->from, &from_prefix)) != 0 ||
        (rc = parse_prefix(r, m->line, "mirrors: to", m->to, &to_prefix)) != 0)
        goto out;
    if (m->all) {
        if ((rc = mirror_entry(r, m, &idx)) != 0)
            goto out;
        r->cfg->entries[idx].catalog = true;
        r->cfg->entries[idx].source = from_prefix;
        r->cfg->entries[idx].dest = to_prefix;
        from_prefix = to_prefix = NULL;
        goto out;
    }
    for (size_t i = 0; i < m->n_repos; i++) {
        if ((rc = keyset_add(r, &seen, m->repos[i], m->line)) != 0)
            goto out;
    }
    if ((rc = keyset_check(r, &seen, "mirrors: repositories", "repository")) != 0)
        goto out;
    for (size_t i = 0; i < m->n_repos; i++) {
        n = strlen(m->from) + strlen(m->to) + strlen(m->repos[i]) + 2;
        if ((full = malloc(n)) == NULL) {
            rc = no_memory(r);
            goto out;
        }
        if ((rc = mirror_entry(r, m, &idx)) != 0)
            goto out;
        snprintf(full, n, "%s/%s", m->from, m->repos[i]);
        if ((rc = parse_repo(r, m->line, "mirrors: repositories", full,
                             &r->cfg->entries[idx].source)) != 0)
            goto out;
        snprintf(full, n, "%s/%s", m->to, m->repos[i]);
        if ((rc = parse_repo(r, m->line, "mirrors: repositories", full,
                             &r->cfg->entries[idx].dest)) != 0)
            goto out;
        free(full);
        full = NULL;
    }
out:
    free(full);
    free(from_prefix);
    free(to_prefix);
    keyset_free(&seen);
    return rc;
}

static int mirror_value(struct rd *r)
{
    static const char *const names[] = {"from",          "to",     "tags",   "tags-regex",
                                        "exclude-regex", "semver", "latest", "platforms",
                                        "repositories"};
    unsigned seen[COUNT(names)] = {0}, kline;
    struct clipped c;
    struct mirror m;
    char key[KEY_MAX], what[WHAT_MAX];
    int rc, which;

    memset(&m, 0, sizeof(m));
    m.line = ev_line(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, m.line,
                    "mirrors: each item needs a mapping with from and to, not %s", found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, "mirrors", key, &kline)) != 0 ||
            (rc = fixed_key(r, "mirrors", key, kline, names, COUNT(names), seen, &which)) != 0)
            goto out;
        snprintf(what, sizeof(what), "mirrors: %s", names[which]);
        switch (which) {
        case 0:
            rc = string_value(r, what, false, &m.from);
            break;
        case 1:
            rc = string_value(r, what, false, &m.to);
            break;
        case 2:
            rc = list_value(r, what, true, check_tag, &m.tags, &m.n_tags);
            break;
        case 3:
            rc = list_value(r, what, true, NULL, &m.include, &m.n_include);
            break;
        case 4:
            rc = list_value(r, what, true, NULL, &m.exclude, &m.n_exclude);
            break;
        case 5:
            rc = string_value(r, what, false, &m.semver);
            break;
        case 6:
            rc = uint_value(r, what, CLI_SYNC_MAX_LATEST, &m.latest);
            break;
        case 7:
            rc = list_value(r, what, true, ocisync_platform_problem, &m.platforms, &m.n_platforms);
            break;
        default:
            if (is_null(r)) {
                rc = advance(r);
            } else if (r->ev.type == YAML_SCALAR_EVENT) {
                m.has_repos = m.all = strcmp(sval(r), "all") == 0;
                rc = m.all ? advance(r)
                           : fail(r, OCISYNC_EUSAGE, ev_line(r),
                                  "%s needs a list of repository names or all, not \"%s\"", what,
                                  q(sval(r), &c));
            } else {
                m.has_repos = true;
                rc = list_value(r, what, false, check_repo_path, &m.repos, &m.n_repos);
            }
            break;
        }
        if (rc != 0)
            goto out;
    }
    if (m.from == NULL || m.to == NULL) {
        rc = fail(r, OCISYNC_EUSAGE, m.line, "mirrors: a mirror needs %s",
                  m.from == NULL && m.to == NULL ? "from and to"
                  : m.from == NULL               ? "from"
                                                 : "to");
        goto out;
    }
    if ((rc = advance(r)) == 0)
        rc = mirror_expand(r, &m);
out:
    mirror_free(&m);
    return rc;
}

static int ocisync_mirrors(struct rd *r)
{
    int rc;

    if (is_null(r))
        return advance(r);
    if (r->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r), "mirrors needs a list, not %s", found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    while (r->ev.type != YAML_SEQUENCE_END_EVENT) {
        if ((rc = mirror_value(r)) != 0)
            return rc;
    }
    return advance(r);
}

/* Entered on the first key of the top-level mapping. */
static int parse_ocisync(struct rd *r, unsigned line)
{
    unsigned seen[COUNT(top_keys)] = {0}, kline;
    char key[KEY_MAX];
    int rc, which;

    r->cfg->format = CLI_SYNC_OCISYNC;
    while (r->ev.type != YAML_MAPPING_END_EVENT) {
        if ((rc = read_key(r, "top level", key, &kline)) != 0 ||
            (rc = fixed_key(r, "top level", key, kline, top_keys, COUNT(top_keys), seen, &which)) !=
                0)
            return rc;
        switch (which) {
        case 0:
            rc = uint_value(r, "jobs", CLI_SYNC_MAX_JOBS, &r->cfg->jobs);
            break;
        case 1:
            rc = ocisync_registries(r);
            break;
        default:
            rc = ocisync_mirrors(r);
            break;
        }
        if (rc != 0)
            return rc;
    }
    if (seen[2] == 0)
        return fail(r, OCISYNC_EUSAGE, line,
                    "the file has %s but no mirrors list (ocisync's format needs mirrors)",
                    seen[0] != 0 ? "jobs" : "registries");
    return advance(r);
}

/* ---------------------------------------------------------------------------------------------
 * Entry points
 */

/* Points every entry at its source registry's settings, now that the array stopped moving. */
static void link_registries(struct rd *r)
{
    struct cli_sync_config *cfg = r->cfg;
    char host[OCISYNC_REF_REGISTRY_MAX];
    size_t n;

    for (size_t i = 0; i < cfg->n_entries; i++) {
        struct cli_sync_entry *e = &cfg->entries[i];

        if (cfg->format == CLI_SYNC_SKOPEO) {
            e->src_conf = &cfg->registries[r->entry_reg[i]];
            continue;
        }
        n = strcspn(e->source, "/");
        if (n >= sizeof(host))
            continue;
        memcpy(host, e->source, n);
        host[n] = '\0';
        e->src_conf = cli_sync_config_registry(cfg, host);
    }
}

static int parse_document(struct rd *r)
{
    int rc;
    unsigned line;

    if ((rc = advance(r)) != 0) /* stream start */
        return rc;
    if ((rc = advance(r)) != 0)
        return rc;
    if (r->ev.type == YAML_STREAM_END_EVENT)
        return fail(r, OCISYNC_EUSAGE, 0, "the file has no configuration in it");
    if ((rc = advance(r)) != 0) /* past the document start */
        return rc;
    line = ev_line(r);
    if (is_null(r))
        return fail(r, OCISYNC_EUSAGE, line, "the file has no configuration in it");
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return fail(r, OCISYNC_EUSAGE, line,
                    "the top level needs a mapping (of registries, or with mirrors), not %s",
                    found(r));
    if ((rc = advance(r)) != 0)
        return rc;
    /*
     * ocisync's keys are never registry names (those have a '.' or a ':port',
     * or are localhost), so the first key tells the formats apart.
     */
    if (r->ev.type == YAML_SCALAR_EVENT && find_key(sval(r), top_keys, COUNT(top_keys)) >= 0)
        rc = parse_ocisync(r, line);
    else
        rc = parse_skopeo(r);
    if (rc != 0)
        return rc;
    /* Now on the document end. */
    if ((rc = advance(r)) != 0)
        return rc;
    if (r->ev.type != YAML_STREAM_END_EVENT)
        return fail(r, OCISYNC_EUSAGE, ev_line(r),
                    "the file has more than one YAML document; put everything in one");
    link_registries(r);
    return 0;
}

int cli_sync_config_parse(const char *data, size_t len, const char *name,
                          struct cli_sync_config *cfg, char *err, size_t errlen)
{
    struct rd r;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    memset(&r, 0, sizeof(r));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    r.name = name != NULL ? name : "(configuration)";
    r.err = err;
    r.errlen = errlen;
    r.cfg = cfg;
    if (data == NULL) {
        if (len != 0)
            return fail(&r, UV_EINVAL, 0, "no data");
        data = "";
    }
    r.data = data;
    r.len = len;
    if (len > CLI_SYNC_MAX_FILE)
        return fail(&r, OCISYNC_ETOOBIG, 0, "the file is larger than %u MiB",
                    CLI_SYNC_MAX_FILE >> 20);
    if (!yaml_parser_initialize(&r.parser))
        return no_memory(&r);
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)data, len);

    rc = parse_document(&r);

    if (r.have_ev)
        yaml_event_delete(&r.ev);
    yaml_parser_delete(&r.parser);
    free(r.entry_reg);
    if (rc != 0)
        cli_sync_config_free(cfg);
    else if (err != NULL && errlen > 0)
        err[0] = '\0';
    return rc;
}

int cli_sync_config_load(const char *path, struct cli_sync_config *cfg, char *err, size_t errlen)
{
    struct clipped c;
    struct stat st;
    char *buf = NULL, *p;
    size_t len = 0, cap;
    ssize_t n;
    int fd = -1, rc;

    memset(cfg, 0, sizeof(*cfg));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL) {
        errf(err, errlen, "no configuration file given");
        return UV_EINVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = uv_translate_sys_error(errno);
        errf(err, errlen, "cannot open %s: %s", q(path, &c), uv_strerror(rc));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = uv_translate_sys_error(errno);
        errf(err, errlen, "cannot read %s: %s", q(path, &c), uv_strerror(rc));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = UV_EISDIR;
        errf(err, errlen, "%s is a directory, not a configuration file", q(path, &c));
        goto out;
    }
    /*
     * A pipe has no size: start small and grow. Reading up to one byte past
     * the cap is how an oversized file (or one that grew) is noticed.
     */
    cap = S_ISREG(st.st_mode) && st.st_size >= 0 && (uint64_t)st.st_size < CLI_SYNC_MAX_FILE
              ? (size_t)st.st_size + 1
              : 65536;
    if ((buf = malloc(cap)) == NULL)
        goto nomem;
    for (;;) {
        if (len == cap) {
            if (cap > CLI_SYNC_MAX_FILE)
                break;
            cap = cap * 2 > CLI_SYNC_MAX_FILE + 1 ? CLI_SYNC_MAX_FILE + 1 : cap * 2;
            if ((p = realloc(buf, cap)) == NULL)
                goto nomem;
            buf = p;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = uv_translate_sys_error(errno);
            errf(err, errlen, "cannot read %s: %s", q(path, &c), uv_strerror(rc));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CLI_SYNC_MAX_FILE) {
        rc = OCISYNC_ETOOBIG;
        errf(err, errlen, "%s is larger than %u MiB", q(path, &c), CLI_SYNC_MAX_FILE >> 20);
        goto out;
    }
    rc = cli_sync_config_parse(buf, len, path, cfg, err, errlen);
    goto out;

nomem:
    rc = UV_ENOMEM;
    errf(err, errlen, "out of memory reading %s", q(path, &c));
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static void free_entry(struct cli_sync_entry *e)
{
    free(e->source);
    free(e->dest);
    free_list(e->tags, e->n_tags);
    free_list(e->include_regex, e->n_include);
    free_list(e->exclude_regex, e->n_exclude);
    free(e->semver);
    free_list(e->platforms, e->n_platforms);
}

void cli_sync_config_free(struct cli_sync_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_entries; i++)
        free_entry(&cfg->entries[i]);
    free(cfg->entries);
    for (size_t i = 0; i < cfg->n_registries; i++) {
        struct cli_registry_conf *reg = &cfg->registries[i];

        free(reg->name);
        free(reg->cert_dir);
        free(reg->username);
        free(reg->password);
        free(reg->identity_token);
    }
    free(cfg->registries);
    memset(cfg, 0, sizeof(*cfg));
}

/* "index.docker.io" is another spelling of "docker.io". */
static const char *hub_alias(const char *name)
{
    return strcmp(name, LEGACY_HUB) == 0 ? HUB : name;
}

const struct cli_registry_conf *cli_sync_config_registry(const struct cli_sync_config *cfg,
                                                         const char *name)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    /* skopeo's keys are kept as written, so both sides are normalised. */
    name = hub_alias(name);
    for (size_t i = 0; i < cfg->n_registries; i++) {
        if (strcmp(hub_alias(cfg->registries[i].name), name) == 0)
            return &cfg->registries[i];
    }
    return NULL;
}
