#include "oci/ref.h"

#include "ocisync.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * distribution/reference's name length limit, applied as containers/image
 * (and so skopeo) applies it: to registry + '/' + repository together. That
 * is also what guarantees both parts fit their buffers in struct oci_ref.
 */
#define NAME_TOTAL_MAX 255
#define TAG_MAX (OCI_REF_TAG_MAX - 1)
/*
 * The longest valid reference is "docker://", a 255-byte name, ':', a
 * 128-byte tag, '@' and a 135-byte digest: 529 bytes. Input past this cap
 * cannot be valid, and stopping there bounds the scan of a hostile string.
 */
#define INPUT_MAX 1024
/* How many bytes of the user's input an error message quotes. */
#define QUOTE_MAX 96
/* Room for QUOTE_MAX bytes escaped as "\xNN", "..." and the NUL. */
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)

#define TRANSPORT_PREFIX "docker://"
#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DOMAIN "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DEFAULT_TAG "latest"
#define HUB_API_HOST "registry-1.docker.io"

#define LIT_LEN(s) (sizeof(s) - 1)

struct parser {
    const char *input; /* the user's string, quoted in error messages */
    char *err;
    size_t errlen;
};

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || is_upper(c);
}

/* Go's \w, which the tag grammar uses: ASCII letters, digits and '_'. */
static int is_word(char c)
{
    return is_alnum(c) || c == '_';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static int is_path_sep(char c)
{
    return c == '.' || c == '_' || c == '-';
}

static bool span_eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/*
 * Copies at most QUOTE_MAX bytes of s into buf for an error message. Anything
 * unprintable is escaped so that a hostile reference cannot put terminal
 * control sequences into a log line; a longer input ends in "...".
 */
static void quote(const char *s, size_t n, char *buf, size_t cap)
{
    static const char hexdigits[] = "0123456789abcdef";
    size_t o = 0, i;

    for (i = 0; i < n && i < QUOTE_MAX && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hexdigits[c >> 4];
            buf[o++] = hexdigits[c & 0x0f];
        } else {
            buf[o++] = (char)c;
        }
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

/* Writes `invalid reference "INPUT": MESSAGE` into the caller's buffer and returns rc. */
__attribute__((format(printf, 3, 4))) static int fail(const struct parser *ps, int rc,
                                                      const char *fmt, ...)
{
    char q[QUOTE_BUF], msg[QUOTE_BUF + 256];
    va_list ap;

    if (ps->err == NULL || ps->errlen == 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    quote(ps->input, strnlen(ps->input, QUOTE_MAX + 1), q, sizeof(q));
    snprintf(ps->err, ps->errlen, "invalid reference \"%s\": %s", q, msg);
    return rc;
}

/*
 * splitDockerDomain's test: the first path component names a registry if it
 * could not be a Docker Hub namespace, that is if it has a '.' or ':', is
 * "localhost", or has an uppercase letter (namespaces are lowercase).
 */
static bool looks_like_domain(const char *p, size_t n)
{
    if (span_eq(p, n, "localhost"))
        return true;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.' || p[i] == ':' || is_upper(p[i]))
            return true;
    }
    return false;
}

/*
 * distribution/reference's domainAndPort: dot-separated labels of letters,
 * digits and inner '-', or an IPv6 address of hex digits and ':' in brackets
 * (no zone, no dotted IPv4 tail); then an optional ':' and decimal port.
 * Returns NULL if p is valid, else why not.
 */
static const char *check_domain(const char *p, size_t n)
{
    size_t i = 0, start;

    if (n > 0 && p[0] == '[') {
        i = 1;
        while (i < n && (is_hex(p[i]) || p[i] == ':'))
            i++;
        if (i == 1 || i == n || p[i] != ']')
            return "an IPv6 address must be hex digits and ':' inside brackets, with no zone";
        i++;
    } else {
        for (;;) {
            if (i == n || p[i] == '.' || p[i] == ':')
                return "a host name part is empty";
            if (!is_alnum(p[i]))
                return p[i] == '-' ? "a host name part must not start with '-'"
                                   : "a host name may only contain letters, digits, '-' and '.'";
            while (i < n && (is_alnum(p[i]) || p[i] == '-'))
                i++;
            if (p[i - 1] == '-')
                return "a host name part must not end with '-'";
            if (i < n && p[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i < n && p[i] == ':') {
        start = ++i;
        while (i < n && is_digit(p[i]))
            i++;
        if (i == start || i != n)
            return "the port must be a decimal number";
    }
    if (i != n)
        return "a host name may only contain letters, digits, '-' and '.'";
    return NULL;
}

/*
 * distribution/reference's remoteName: '/'-separated components, each runs of
 * [a-z0-9] joined by exactly one separator: '.', '_', '__' or any number of
 * '-'. Returns NULL if p is valid, else why not.
 */
static const char *check_path(const char *p, size_t n)
{
    static const char bad_char[] =
        "only lowercase letters, digits, '/' and the separators '.', '_', '__' and '-' are allowed";
    static const char bad_sep[] =
        "a separator ('.', '_', '__' or dashes) must stand between letters or digits";
    size_t i = 0;

    if (n == 0)
        return "the repository name is missing";
    for (;;) {
        if (i == n || p[i] == '/')
            return "a path component is empty";
        if (!is_lower_alnum(p[i]))
            return is_path_sep(p[i]) ? bad_sep : bad_char;
        for (;;) {
            while (i < n && is_lower_alnum(p[i]))
                i++;
            if (i == n)
                return NULL;
            if (p[i] == '/')
                break;
            if (p[i] == '.') {
                i++;
            } else if (p[i] == '_') {
                i++;
                if (i < n && p[i] == '_')
                    i++;
            } else if (p[i] == '-') {
                while (i < n && p[i] == '-')
                    i++;
            } else {
                return bad_char;
            }
            if (i == n || !is_lower_alnum(p[i]))
                return (i == n || p[i] == '/' || is_path_sep(p[i])) ? bad_sep : bad_char;
        }
        i++;
    }
}

/* The tag grammar [\w][\w.-]{0,127}. Returns NULL if p is valid, else why not. */
static const char *check_tag(const char *p, size_t n)
{
    if (n == 0)
        return "the tag after ':' is empty";
    if (n > TAG_MAX)
        return "a tag must not be more than 128 characters";
    if (!is_word(p[0]))
        return "a tag must start with a letter, digit or '_'";
    for (size_t i = 1; i < n; i++) {
        if (!is_word(p[i]) && p[i] != '.' && p[i] != '-')
            return "a tag may only contain letters, digits, '_', '.' and '-'";
    }
    return NULL;
}

bool oci_ref_tag_valid(const char *s)
{
    return check_tag(s, strnlen(s, TAG_MAX + 1)) == NULL;
}

bool oci_ref_path_valid(const char *s)
{
    size_t n = strnlen(s, NAME_TOTAL_MAX + 1);
    return n <= NAME_TOTAL_MAX && check_path(s, n) == NULL;
}

void oci_ref_quote(const char *s, char *buf, size_t cap)
{
    quote(s, strnlen(s, QUOTE_MAX + 1), buf, cap);
}

int oci_ref_parse(const char *s, struct oci_ref *out, char *err, size_t errlen)
{
    struct parser ps = {s ? s : "", err, errlen};
    struct oci_ref r;
    char q[QUOTE_BUF];
    const char *p, *domain, *rest, *path, *tag = NULL, *dg, *slash, *why;
    size_t n, domain_n, rest_n, path_n, tag_n = 0, i, total;
    bool library;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (s == NULL) {
        rc = fail(&ps, OCISYNC_EREF, "no reference given");
        goto out;
    }
    n = strnlen(s, INPUT_MAX + 1);
    if (n > INPUT_MAX) {
        rc = fail(&ps, OCISYNC_EREF, "a reference must not be more than %d bytes", INPUT_MAX);
        goto out;
    }
    p = s;
    /*
     * Only skopeo's full "docker://" is a transport prefix. A bare "docker:"
     * is not, because "docker:alpine" is itself a valid reference (the image
     * docker, tag alpine).
     */
    if (n >= LIT_LEN(TRANSPORT_PREFIX) &&
        memcmp(p, TRANSPORT_PREFIX, LIT_LEN(TRANSPORT_PREFIX)) == 0) {
        p += LIT_LEN(TRANSPORT_PREFIX);
        n -= LIT_LEN(TRANSPORT_PREFIX);
    }
    if (n == 0) {
        rc = fail(&ps, OCISYNC_EREF, "the reference is empty");
        goto out;
    }
    /* ParseNormalizedNamed refuses a bare image ID, which would otherwise be a valid name. */
    if (n == 64) {
        for (i = 0; i < n && is_lower_hex(p[i]); i++)
            ;
        if (i == n) {
            rc = fail(&ps, OCISYNC_EREF,
                      "a 64-character hexadecimal string is an image ID, not a repository name");
            goto out;
        }
    }

    slash = memchr(p, '/', n);
    if (slash != NULL && looks_like_domain(p, (size_t)(slash - p))) {
        domain = p;
        domain_n = (size_t)(slash - p);
        rest = slash + 1;
        rest_n = n - domain_n - 1;
    } else {
        domain = DEFAULT_DOMAIN;
        domain_n = LIT_LEN(DEFAULT_DOMAIN);
        rest = p;
        rest_n = n;
    }
    if (span_eq(domain, domain_n, LEGACY_DOMAIN)) {
        domain = DEFAULT_DOMAIN;
        domain_n = LIT_LEN(DEFAULT_DOMAIN);
    }

    /* The repository runs up to the tag's ':' or the digest's '@'. */
    for (path_n = 0; path_n < rest_n && rest[path_n] != ':' && rest[path_n] != '@'; path_n++)
        ;
    path = rest;
    /* Checked before the grammar, as docker does, to give the likeliest reason. */
    for (i = 0; i < path_n; i++) {
        if (is_upper(path[i])) {
            rc = fail(&ps, OCISYNC_EREF, "repository name must be lowercase");
            goto out;
        }
    }
    /*
     * docker would accept a first component such as "my_host.com" that fails
     * the domain grammar but fits the path grammar, leaving the reference with
     * no registry at all; with nowhere to connect to, that is an error here.
     */
    why = check_domain(domain, domain_n);
    if (why != NULL) {
        quote(domain, domain_n, q, sizeof(q));
        rc = fail(&ps, OCISYNC_EREF, "invalid registry \"%s\": %s", q, why);
        goto out;
    }
    why = check_path(path, path_n);
    if (why != NULL) {
        quote(path, path_n, q, sizeof(q));
        rc = fail(&ps, OCISYNC_EREF, "invalid repository name \"%s\": %s", q, why);
        goto out;
    }

    i = path_n;
    if (i < rest_n && rest[i] == ':') {
        tag = rest + i + 1;
        while (i + 1 + tag_n < rest_n && tag[tag_n] != '@')
            tag_n++;
        why = check_tag(tag, tag_n);
        if (why != NULL) {
            quote(tag, tag_n, q, sizeof(q));
            rc = fail(&ps, OCISYNC_EREF, "invalid tag \"%s\": %s", q, why);
            goto out;
        }
        i += 1 + tag_n;
    }
    if (i < rest_n && rest[i] == '@') {
        dg = rest + i + 1;
        if (oci_digest_parse(dg, rest_n - i - 1, &r.digest) < 0) {
            quote(dg, rest_n - i - 1, q, sizeof(q));
            rc = fail(&ps, OCISYNC_EDIGEST,
                      "invalid digest \"%s\": expected sha256:<64 lowercase hex digits> or "
                      "sha512:<128 lowercase hex digits>",
                      q);
            goto out;
        }
        r.has_digest = true;
    }

    library = span_eq(domain, domain_n, DEFAULT_DOMAIN) && memchr(path, '/', path_n) == NULL;
    total = domain_n + 1 + (library ? LIT_LEN(OFFICIAL_PREFIX) : 0) + path_n;
    if (total > NAME_TOTAL_MAX) {
        rc = fail(&ps, OCISYNC_EREF,
                  "the name (registry and repository) is %zu characters; at most %d are allowed",
                  total, NAME_TOTAL_MAX);
        goto out;
    }

    memcpy(r.registry, domain, domain_n);
    if (library)
        memcpy(r.repository, OFFICIAL_PREFIX, LIT_LEN(OFFICIAL_PREFIX));
    memcpy(r.repository + (library ? LIT_LEN(OFFICIAL_PREFIX) : 0), path, path_n);
    if (tag != NULL)
        memcpy(r.tag, tag, tag_n);
    else if (!r.has_digest)
        memcpy(r.tag, DEFAULT_TAG, LIT_LEN(DEFAULT_TAG));
    *out = r;
    rc = 0;
out:
    return rc;
}

int oci_ref_format(const struct oci_ref *r, char *buf, size_t len)
{
    if (r->has_digest && r->tag[0] != '\0')
        return snprintf(buf, len, "%s/%s:%s@%s", r->registry, r->repository, r->tag, r->digest.str);
    if (r->has_digest)
        return snprintf(buf, len, "%s/%s@%s", r->registry, r->repository, r->digest.str);
    if (r->tag[0] != '\0')
        return snprintf(buf, len, "%s/%s:%s", r->registry, r->repository, r->tag);
    return snprintf(buf, len, "%s/%s", r->registry, r->repository);
}

const char *oci_ref_api_host(const struct oci_ref *r)
{
    if (strcmp(r->registry, DEFAULT_DOMAIN) == 0)
        return HUB_API_HOST;
    return r->registry;
}

bool oci_ref_is_loopback(const struct oci_ref *r)
{
    char host[OCI_REF_REGISTRY_MAX];
    const char *reg = r->registry, *end;
    struct in6_addr a6;
    struct in_addr a4;
    size_t n;

    if (reg[0] == '[') {
        end = memchr(reg, ']', strnlen(reg, sizeof(r->registry)));
        if (end == NULL)
            return false;
        n = (size_t)(end - reg - 1);
        memcpy(host, reg + 1, n);
        host[n] = '\0';
        /* inet_pton accepts every spelling of ::1, such as 0:0:0:0:0:0:0:1. */
        return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    n = strcspn(reg, ":");
    if (n >= sizeof(host))
        return false;
    memcpy(host, reg, n);
    host[n] = '\0';
    /* Host names are case-insensitive; "LOCALHOST" resolves the same way. */
    if (strcasecmp(host, "localhost") == 0)
        return true;
    /*
     * inet_pton takes only four plain decimal parts without leading zeros, so
     * spellings the resolver would read as octal or short forms ("0127.0.0.1",
     * "127.1") are refused rather than guessed at.
     */
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

const char *oci_ref_target(const struct oci_ref *r)
{
    return r->has_digest ? r->digest.str : r->tag;
}

int ocisync_ref_parse(const char *s, struct ocisync_ref *ref, char *err, size_t errlen)
{
    struct oci_ref r;
    int rc;

    memset(ref, 0, sizeof(*ref));
    rc = oci_ref_parse(s, &r, err, errlen);
    if (rc != 0)
        return rc;
    /* The public sizes are the internal ones; the static asserts keep them so. */
    memcpy(ref->registry, r.registry, sizeof(ref->registry));
    memcpy(ref->repository, r.repository, sizeof(ref->repository));
    memcpy(ref->tag, r.tag, sizeof(ref->tag));
    if (r.has_digest)
        snprintf(ref->digest, sizeof(ref->digest), "%s", r.digest.str);
    return 0;
}

_Static_assert(OCISYNC_REF_REGISTRY_MAX == OCI_REF_REGISTRY_MAX, "registry size");
_Static_assert(OCISYNC_REF_REPOSITORY_MAX == OCI_REF_REPO_MAX, "repository size");
_Static_assert(OCISYNC_REF_TAG_MAX == OCI_REF_TAG_MAX, "tag size");
_Static_assert(sizeof(((struct ocisync_ref *)0)->digest) >= OCI_DIGEST_MAX, "digest size");
