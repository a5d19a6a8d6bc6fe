/*
 * Manifests and indexes parsed with jansson, platform strings and matching,
 * and filtering an index down to a set of platforms.
 *
 * Everything here reads documents fetched from registries, so it treats them
 * as hostile: the size and the nesting depth are capped before jansson sees
 * the bytes, duplicate keys are refused, every field is type-checked, and
 * error messages quote document content only clipped and with control bytes
 * replaced.
 */
#include "oci/manifest.h"

#include "common/json_depth.h"
#include "common/msg.h"
#include "oci/imgconfig.h"
#include "ocisync.h"

#include <jansson.h>
#include <uv.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

/*
 * Real manifests nest four levels at most (index, manifests, descriptor,
 * platform). jansson's parser recurses up to 2048 levels, and freeing a tree
 * recurses again, so anything deeper than this is refused before parsing.
 */
#define MANIFEST_MAX_DEPTH 64

/* How many characters of a document's string an error message quotes. */
#define ERR_QUOTE_MAX 80

/* A media type is type "/" subtype, each at most this long (RFC 6838 4.2). */
#define MEDIA_TYPE_NAME_MAX 127

/* ---------------------------------------------------------------------------------------------
 * Media types
 */

static const char *const manifest_types[] = {
    OCI_MT_OCI_MANIFEST,
    OCI_MT_OCI_INDEX,
    OCI_MT_DOCKER_MANIFEST,
    OCI_MT_DOCKER_LIST,
};

bool oci_media_type_is_index(const char *mt)
{
    return mt != NULL && (strcmp(mt, OCI_MT_OCI_INDEX) == 0 || strcmp(mt, OCI_MT_DOCKER_LIST) == 0);
}

bool oci_media_type_is_manifest(const char *mt)
{
    return mt != NULL &&
           (strcmp(mt, OCI_MT_OCI_MANIFEST) == 0 || strcmp(mt, OCI_MT_DOCKER_MANIFEST) == 0);
}

static bool is_schema1(const char *mt)
{
    return strcmp(mt, OCI_MT_DOCKER_SCHEMA1) == 0 || strcmp(mt, OCI_MT_DOCKER_SCHEMA1_SIGNED) == 0;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool ascii_eq_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return false;
    }
    return *a == *b;
}

/* What a Content-Type header says about the body. */
enum ct_class {
    CT_GENERIC, /* absent, empty, application/json or application/octet-stream */
    CT_KNOWN,   /* one of manifest_types */
    CT_SCHEMA1,
    CT_UNKNOWN,
};

/*
 * Classifies a Content-Type value. buf receives its bare type (parameters and
 * surrounding whitespace removed), for messages; *canonical the matching
 * manifest type, since header values compare case-insensitively but the
 * document's own "mediaType" does not.
 */
static enum ct_class classify_content_type(const char *ct, char *buf, size_t len,
                                           const char **canonical)
{
    const char *start, *end;
    size_t n;

    *canonical = NULL;
    buf[0] = '\0';
    if (ct == NULL)
        return CT_GENERIC;
    start = ct;
    while (*start == ' ' || *start == '\t')
        start++;
    end = start;
    while (*end != '\0' && *end != ';')
        end++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    n = (size_t)(end - start);
    if (n >= len)
        return CT_UNKNOWN; /* longer than any type we know */
    memcpy(buf, start, n);
    buf[n] = '\0';

    if (n == 0 || ascii_eq_nocase(buf, "application/json") ||
        ascii_eq_nocase(buf, "application/octet-stream"))
        return CT_GENERIC;
    if (ascii_eq_nocase(buf, OCI_MT_DOCKER_SCHEMA1) ||
        ascii_eq_nocase(buf, OCI_MT_DOCKER_SCHEMA1_SIGNED))
        return CT_SCHEMA1;
    for (size_t i = 0; i < sizeof(manifest_types) / sizeof(manifest_types[0]); i++) {
        if (ascii_eq_nocase(buf, manifest_types[i])) {
            *canonical = manifest_types[i];
            return CT_KNOWN;
        }
    }
    return CT_UNKNOWN;
}

/* One half of a media type: [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}. */
static bool restricted_name(const char *s, size_t n)
{
    if (n == 0 || n > MEDIA_TYPE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum)
            continue;
        if (i == 0 || c == '\0' || strchr("!#$&^_.+-", c) == NULL)
            return false;
    }
    return true;
}

/*
 * The image spec's descriptor mediaType pattern. Being strict here matters:
 * a child's media type becomes the Content-Type of a later push, so a stray
 * CR or LF would be a header injection.
 */
static bool valid_media_type(const char *s)
{
    const char *slash = strchr(s, '/');

    if (slash == NULL)
        return false;
    return restricted_name(s, (size_t)(slash - s)) && restricted_name(slash + 1, strlen(slash + 1));
}

/* ---------------------------------------------------------------------------------------------
 * Platforms
 */

static void lower_str(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)ascii_lower((unsigned char)*s);
}

/* containerd's normalizeOS and normalizeArch, minus defaulting arm to v7. */
static void normalize(struct oci_platform *p)
{
    lower_str(p->os);
    lower_str(p->arch);
    lower_str(p->variant);
    if (strcmp(p->os, "macos") == 0)
        strcpy(p->os, "darwin");

    if (strcmp(p->arch, "aarch64") == 0) {
        strcpy(p->arch, "arm64");
    } else if (strcmp(p->arch, "x86_64") == 0 || strcmp(p->arch, "x86-64") == 0) {
        strcpy(p->arch, "amd64");
    } else if (strcmp(p->arch, "i386") == 0) {
        strcpy(p->arch, "386");
    } else if (strcmp(p->arch, "armhf") == 0) {
        strcpy(p->arch, "arm");
        strcpy(p->variant, "v7");
    } else if (strcmp(p->arch, "armel") == 0) {
        strcpy(p->arch, "arm");
        strcpy(p->variant, "v6");
    }

    /* ARM variants are also written bare ("7"); containerd spells them "v7". */
    if ((strcmp(p->arch, "arm") == 0 || strcmp(p->arch, "arm64") == 0) && p->variant[0] >= '0' &&
        p->variant[0] <= '9' && strlen(p->variant) + 1 < sizeof(p->variant)) {
        memmove(p->variant + 1, p->variant, strlen(p->variant) + 1);
        p->variant[0] = 'v';
    }
}

static bool platform_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

const char *oci_platform_problem(const char *s)
{
    static const size_t max = sizeof(((struct oci_platform *)0)->os) - 1;
    size_t parts = 0, n = 0;

    if (s == NULL)
        return "is missing";
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == '\0') {
            if (n == 0)
                return "is not os/arch[/variant]: a part is empty";
            parts++;
            n = 0;
            if (*p == '\0')
                break;
            if (parts == 3)
                return "is not os/arch[/variant]: it has more than three parts";
            continue;
        }
        if (!platform_char(*p))
            return "is not os/arch[/variant]: parts are letters, digits, '.', '_' and '-'";
        if (++n > max)
            return "is not os/arch[/variant]: a part is longer than 31 characters";
    }
    if (parts < 2)
        return "is not os/arch[/variant]: it needs at least an OS and an architecture";
    return NULL;
}

const struct oci_platform *oci_platform_host(void)
{
    static const struct {
        const char *machine, *arch, *variant;
    } names[] = {
        {"x86_64", "amd64", ""}, {"aarch64", "arm64", ""},   {"armv7l", "arm", "v7"},
        {"armv6l", "arm", "v6"}, {"i686", "386", ""},        {"ppc64le", "ppc64le", ""},
        {"s390x", "s390x", ""},  {"riscv64", "riscv64", ""}, {"loongarch64", "loong64", ""}};
    static struct oci_platform host;
    struct utsname u;

    if (host.os[0] != '\0')
        return &host;
    snprintf(host.os, sizeof(host.os), "linux");
    /* Others by their kernel name would rarely match an image's: amd64 is the usual fallback. */
    snprintf(host.arch, sizeof(host.arch), "amd64");
    if (uname(&u) == 0) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strcmp(u.machine, names[i].machine) == 0) {
                snprintf(host.arch, sizeof(host.arch), "%s", names[i].arch);
                snprintf(host.variant, sizeof(host.variant), "%s", names[i].variant);
            }
        }
    }
    return &host;
}

int oci_platform_parse(const char *s, struct oci_platform *out)
{
    char *fields[3];
    size_t n_fields = 0, n = 0;

    memset(out, 0, sizeof(*out));
    if (oci_platform_problem(s) != NULL)
        return OCISYNC_EPLATFORM;
    fields[0] = out->os;
    fields[1] = out->arch;
    fields[2] = out->variant;
    /* Checked: two or three parts, each of at most 31 bytes, so each fits its field. */
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '/') {
            n_fields++;
            n = 0;
            continue;
        }
        fields[n_fields][n++] = *p;
    }
    normalize(out);
    return 0;
}

int oci_platform_format(const struct oci_platform *p, char *buf, size_t len)
{
    if (p->variant[0] != '\0')
        return snprintf(buf, len, "%s/%s/%s", p->os, p->arch, p->variant);
    return snprintf(buf, len, "%s/%s", p->os, p->arch);
}

bool oci_platform_match(const struct oci_platform *want, const struct oci_platform *have)
{
    struct oci_platform w, h;

    if (want == NULL || have == NULL)
        return false;
    /* Index entries are written by many tools; some say "aarch64" or "x86_64". */
    w = *want;
    h = *have;
    normalize(&w);
    normalize(&h);
    if (strcmp(w.os, h.os) != 0 || strcmp(w.arch, h.arch) != 0)
        return false;
    if (w.variant[0] == '\0' || strcmp(w.variant, h.variant) == 0)
        return true;
    /* arm64 is v8 unless it says otherwise; images rarely write the variant. */
    return strcmp(w.arch, "arm64") == 0 && strcmp(w.variant, "v8") == 0 && h.variant[0] == '\0';
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 */

/*
 * Copies the string member key of obj into buf (of size len). Returns 0 with
 * *present false when the member is absent; OCISYNC_EMANIFEST when it is not
 * a string or does not fit. what names the object for messages.
 */
static int copy_string(json_t *obj, const char *key, char *buf, size_t len, bool *present,
                       const char *what, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    size_t n;

    *present = false;
    buf[0] = '\0';
    if (v == NULL)
        return 0;
    if (!json_is_string(v)) {
        ocisync__errf(err, errlen, "%s: \"%s\" is not a string", what, key);
        return OCISYNC_EMANIFEST;
    }
    /* jansson refuses \u0000 unless JSON_ALLOW_NUL is given, so this is strlen too. */
    n = json_string_length(v);
    if (n >= len) {
        ocisync__errf(err, errlen, "%s: \"%s\" is longer than %zu characters", what, key, len - 1);
        return OCISYNC_EMANIFEST;
    }
    memcpy(buf, json_string_value(v), n + 1);
    *present = true;
    return 0;
}

static int parse_platform(json_t *j, const char *what, struct oci_platform *p, char *err,
                          size_t errlen)
{
    struct {
        const char *key;
        char *buf;
        size_t len;
        bool required;
    } fields[] = {
        {"os", p->os, sizeof(p->os), true},
        {"architecture", p->arch, sizeof(p->arch), true},
        {"variant", p->variant, sizeof(p->variant), false},
        {"os.version", p->os_version, sizeof(p->os_version), false},
    };
    char ctx[128];
    int r;

    snprintf(ctx, sizeof(ctx), "%s platform", what);
    if (!json_is_object(j)) {
        ocisync__errf(err, errlen, "%s is not a JSON object", ctx);
        return OCISYNC_EMANIFEST;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        bool present;
        r = copy_string(j, fields[i].key, fields[i].buf, fields[i].len, &present, ctx, err, errlen);
        if (r != 0)
            return r;
        if (fields[i].required && (!present || fields[i].buf[0] == '\0')) {
            ocisync__errf(err, errlen, "%s: missing \"%s\"", ctx, fields[i].key);
            return OCISYNC_EMANIFEST;
        }
        /* These become "os/arch/variant" strings, which must split back the same way. */
        if (i < 3 && strchr(fields[i].buf, '/') != NULL) {
            ocisync__errf(err, errlen, "%s: \"%s\" contains '/'", ctx, fields[i].key);
            return OCISYNC_EMANIFEST;
        }
    }
    return 0;
}

/* Fills d from the descriptor object j; what ("manifest layer 3") names it in messages. */
static int parse_descriptor(json_t *j, const char *what, struct oci_descriptor *d, char *err,
                            size_t errlen)
{
    struct ocisync__clipped c;
    json_t *v;
    bool present;
    int r;

    memset(d, 0, sizeof(*d));
    if (!json_is_object(j)) {
        ocisync__errf(err, errlen, "%s is not a JSON object", what);
        return OCISYNC_EMANIFEST;
    }

    r = copy_string(j, "mediaType", d->media_type, sizeof(d->media_type), &present, what, err,
                    errlen);
    if (r != 0)
        return r;
    if (!present) {
        ocisync__errf(err, errlen, "%s: missing \"mediaType\"", what);
        return OCISYNC_EMANIFEST;
    }
    if (!valid_media_type(d->media_type)) {
        ocisync__errf(err, errlen, "%s: invalid mediaType \"%s\"", what,
                      ocisync__clip(d->media_type, ERR_QUOTE_MAX, &c));
        return OCISYNC_EMANIFEST;
    }

    v = json_object_get(j, "digest");
    if (v == NULL) {
        ocisync__errf(err, errlen, "%s: missing \"digest\"", what);
        return OCISYNC_EMANIFEST;
    }
    if (!json_is_string(v)) {
        ocisync__errf(err, errlen, "%s: \"digest\" is not a string", what);
        return OCISYNC_EMANIFEST;
    }
    if (oci_digest_parse_str(json_string_value(v), &d->digest) != 0) {
        ocisync__errf(err, errlen, "%s: invalid digest \"%s\"", what,
                      ocisync__clip(json_string_value(v), ERR_QUOTE_MAX, &c));
        return OCISYNC_EMANIFEST;
    }

    v = json_object_get(j, "size");
    if (v == NULL) {
        ocisync__errf(err, errlen, "%s: missing \"size\"", what);
        return OCISYNC_EMANIFEST;
    }
    /* 12.0 is a real to jansson, and sizes are integers. */
    if (!json_is_integer(v)) {
        ocisync__errf(err, errlen, "%s: \"size\" is not an integer", what);
        return OCISYNC_EMANIFEST;
    }
    if (json_integer_value(v) < 0) {
        ocisync__errf(err, errlen, "%s: negative size %" JSON_INTEGER_FORMAT, what,
                      json_integer_value(v));
        return OCISYNC_EMANIFEST;
    }
    d->size = (int64_t)json_integer_value(v);

    v = json_object_get(j, "platform");
    if (v != NULL) {
        r = parse_platform(v, what, &d->platform, err, errlen);
        if (r != 0)
            return r;
        d->has_platform = true;
    }
    return 0;
}

/*
 * Parses the array member key of root into a new array of descriptors.
 * noun is the message prefix for each entry ("manifest layer").
 */
static int parse_descriptor_array(json_t *root, const char *key, size_t max, const char *doc,
                                  const char *noun, struct oci_descriptor **out, size_t *n_out,
                                  char *err, size_t errlen)
{
    json_t *arr = json_object_get(root, key);
    struct oci_descriptor *descs = NULL;
    size_t n;
    int r = 0;

    if (arr == NULL) {
        ocisync__errf(err, errlen, "%s has no \"%s\"", doc, key);
        return OCISYNC_EMANIFEST;
    }
    if (!json_is_array(arr)) {
        ocisync__errf(err, errlen, "%s: \"%s\" is not an array", doc, key);
        return OCISYNC_EMANIFEST;
    }
    n = json_array_size(arr);
    if (n > max) {
        ocisync__errf(err, errlen, "%s lists %zu %s, over the limit of %zu", doc, n, key, max);
        return OCISYNC_ETOOBIG;
    }
    if (n > 0) {
        descs = calloc(n, sizeof(*descs));
        if (descs == NULL)
            return UV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s %zu", noun, i);
        r = parse_descriptor(json_array_get(arr, i), what, &descs[i], err, errlen);
        if (r != 0)
            goto out;
    }
    *out = descs;
    *n_out = n;
    descs = NULL;

out:
    free(descs);
    return r;
}

/* Decides kind and media type from the "mediaType" field, the Content-Type and the structure. */
static int detect_kind(json_t *root, const char *content_type, struct oci_manifest *out, char *err,
                       size_t errlen)
{
    char ct_buf[OCI_MEDIA_TYPE_MAX];
    const char *ct_canonical, *mt;
    enum ct_class ct_class;
    struct ocisync__clipped c;
    json_t *v;

    ct_class = classify_content_type(content_type, ct_buf, sizeof(ct_buf), &ct_canonical);
    v = json_object_get(root, "mediaType");
    if (v != NULL) {
        if (!json_is_string(v)) {
            ocisync__errf(err, errlen, "manifest \"mediaType\" is not a string");
            return OCISYNC_EMANIFEST;
        }
        mt = json_string_value(v);
        if (is_schema1(mt)) {
            ocisync__errf(err, errlen, "manifest is Docker schema 1 (%s), which is not supported",
                          mt);
            return OCISYNC_EMEDIATYPE;
        }
        if (!oci_media_type_is_index(mt) && !oci_media_type_is_manifest(mt)) {
            ocisync__errf(err, errlen, "unsupported manifest media type \"%s\"",
                          ocisync__clip(mt, ERR_QUOTE_MAX, &c));
            return OCISYNC_EMEDIATYPE;
        }
        /*
         * The digest covers the document, not the header: a document that
         * says one thing while the registry says another cannot be stored
         * under either type without lying about one of them.
         */
        if (ct_class != CT_GENERIC && (ct_canonical == NULL || strcmp(ct_canonical, mt) != 0)) {
            ocisync__errf(
                err, errlen, "manifest mediaType \"%s\" contradicts Content-Type \"%s\"", mt,
                content_type != NULL ? ocisync__clip(content_type, ERR_QUOTE_MAX, &c) : "");
            return OCISYNC_EMANIFEST;
        }
    } else if (ct_class == CT_KNOWN) {
        mt = ct_canonical;
    } else if (ct_class == CT_UNKNOWN) {
        ocisync__errf(err, errlen, "unsupported manifest media type \"%s\"",
                      ocisync__clip(ct_buf[0] != '\0' ? ct_buf : content_type, ERR_QUOTE_MAX, &c));
        return OCISYNC_EMEDIATYPE;
    } else if (json_object_get(root, "manifests") != NULL) {
        /* Docker's types require "mediaType", so an untyped document is OCI. */
        mt = OCI_MT_OCI_INDEX;
    } else if (json_object_get(root, "config") != NULL || json_object_get(root, "layers") != NULL) {
        mt = OCI_MT_OCI_MANIFEST;
    } else {
        ocisync__errf(
            err, errlen,
            "manifest has no \"mediaType\", \"manifests\", \"config\" or \"layers\"; it is "
            "neither an image manifest nor an index");
        return OCISYNC_EMANIFEST;
    }

    out->kind = oci_media_type_is_index(mt) ? OCI_KIND_INDEX : OCI_KIND_IMAGE;
    snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
    return 0;
}

int oci_manifest_parse(const char *content_type, const void *data, size_t len,
                       struct oci_manifest *out, char *err, size_t errlen)
{
    char ct_buf[OCI_MEDIA_TYPE_MAX];
    const char *ct_canonical, *doc;
    json_t *root = NULL, *v;
    json_error_t jerr;
    int r;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (data == NULL && len > 0) {
        ocisync__errf(err, errlen, "manifest data is NULL");
        r = OCISYNC_EUSAGE;
        goto out;
    }
    if (len > OCI_MANIFEST_MAX_SIZE) {
        ocisync__errf(err, errlen, "manifest is %zu bytes, over the limit of %d", len,
                      OCI_MANIFEST_MAX_SIZE);
        r = OCISYNC_ETOOBIG;
        goto out;
    }
    /* Schema 1 bodies are JWS-signed JSON that would half parse; say what they are first. */
    if (classify_content_type(content_type, ct_buf, sizeof(ct_buf), &ct_canonical) == CT_SCHEMA1) {
        ocisync__errf(err, errlen, "manifest is Docker schema 1 (%s), which is not supported",
                      ct_buf);
        r = OCISYNC_EMEDIATYPE;
        goto out;
    }
    if (ocisync__json_too_deep(data, len, MANIFEST_MAX_DEPTH)) {
        ocisync__errf(err, errlen, "manifest JSON nests deeper than %d levels", MANIFEST_MAX_DEPTH);
        r = OCISYNC_ETOOBIG;
        goto out;
    }
    if (ocisync__json_values(data, len, OCI_MANIFEST_MAX_VALUES) > OCI_MANIFEST_MAX_VALUES) {
        ocisync__errf(err, errlen,
                      "manifest JSON holds more than %d values (a descriptor list over its cap "
                      "of %d, or padding); refused before parsing",
                      OCI_MANIFEST_MAX_VALUES, OCI_MANIFEST_MAX_LAYERS);
        r = OCISYNC_ETOOBIG;
        goto out;
    }

    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            r = UV_ENOMEM;
            goto out;
        }
        ocisync__errf(err, errlen, "manifest is not valid JSON: %s at line %d, column %d",
                      jerr.text, jerr.line, jerr.column);
        r = OCISYNC_EMANIFEST;
        goto out;
    }
    if (!json_is_object(root)) {
        ocisync__errf(err, errlen, "manifest is not a JSON object");
        r = OCISYNC_EMANIFEST;
        goto out;
    }

    v = json_object_get(root, "schemaVersion");
    if (v == NULL) {
        ocisync__errf(err, errlen, "manifest has no \"schemaVersion\"");
        r = OCISYNC_EMANIFEST;
        goto out;
    }
    if (!json_is_integer(v)) {
        ocisync__errf(err, errlen, "manifest \"schemaVersion\" is not an integer");
        r = OCISYNC_EMANIFEST;
        goto out;
    }
    if (json_integer_value(v) == 1) {
        ocisync__errf(err, errlen, "manifest is Docker schema 1, which is not supported");
        r = OCISYNC_EMEDIATYPE;
        goto out;
    }
    if (json_integer_value(v) != 2) {
        ocisync__errf(err, errlen, "manifest has unsupported schemaVersion %" JSON_INTEGER_FORMAT,
                      json_integer_value(v));
        r = OCISYNC_EMANIFEST;
        goto out;
    }

    r = detect_kind(root, content_type, out, err, errlen);
    if (r != 0)
        goto out;

    /* Neither kind may pretend to be the other, whatever its mediaType says. */
    if (json_object_get(root, "manifests") != NULL &&
        (json_object_get(root, "layers") != NULL || json_object_get(root, "config") != NULL)) {
        ocisync__errf(err, errlen, "manifest has both \"manifests\" and \"%s\"",
                      json_object_get(root, "layers") != NULL ? "layers" : "config");
        r = OCISYNC_EMANIFEST;
        goto out;
    }

    if (out->kind == OCI_KIND_INDEX) {
        doc = "index";
        r = parse_descriptor_array(root, "manifests", OCI_INDEX_MAX_MANIFESTS, doc,
                                   "index manifest", &out->manifests, &out->n_manifests, err,
                                   errlen);
        if (r != 0)
            goto out;
    } else {
        doc = "manifest";
        v = json_object_get(root, "config");
        if (v == NULL) {
            ocisync__errf(err, errlen, "manifest has no \"config\"");
            r = OCISYNC_EMANIFEST;
            goto out;
        }
        r = parse_descriptor(v, "manifest config", &out->config, err, errlen);
        if (r != 0)
            goto out;
        /* An artifact may have no layers, but the array must be there. */
        r = parse_descriptor_array(root, "layers", OCI_MANIFEST_MAX_LAYERS, doc, "manifest layer",
                                   &out->layers, &out->n_layers, err, errlen);
        if (r != 0)
            goto out;
    }

    v = json_object_get(root, "subject");
    if (v != NULL) {
        char what[32];
        snprintf(what, sizeof(what), "%s subject", doc);
        r = parse_descriptor(v, what, &out->subject, err, errlen);
        if (r != 0)
            goto out;
        out->has_subject = true;
    }

out:
    json_decref(root);
    if (r != 0)
        oci_manifest_free(out);
    return r;
}

void oci_manifest_free(struct oci_manifest *m)
{
    if (m == NULL)
        return;
    free(m->layers);
    free(m->manifests);
    memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------------------------------
 * Filtering
 */

int oci_index_filter(const void *data, size_t len, const struct oci_platform *want, size_t n_want,
                     char **out, size_t *out_len)
{
    /* Objects keep insertion order in jansson >= 2.8; the flag documents the intent. */
    const size_t dump_flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    struct oci_manifest m;
    json_t *root = NULL, *arr;
    char *buf = NULL;
    size_t kept = 0, need;
    int r;

    memset(&m, 0, sizeof(m));
    if (out == NULL || out_len == NULL || (want == NULL && n_want > 0)) {
        r = OCISYNC_EUSAGE;
        goto out;
    }
    *out = NULL;
    *out_len = 0;

    /* Full validation first, so the edit below works on a document known to be sound. */
    r = oci_manifest_parse(NULL, data, len, &m, NULL, 0);
    if (r != 0)
        goto out;
    if (m.kind != OCI_KIND_INDEX) {
        r = OCISYNC_EMANIFEST;
        goto out;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        r = UV_ENOMEM; /* it parsed a moment ago */
        goto out;
    }
    /* The same bytes through the same parser: entry i is m.manifests[i]. */
    arr = json_object_get(root, "manifests");
    if (!json_is_array(arr) || json_array_size(arr) != m.n_manifests) {
        r = OCISYNC_EMANIFEST;
        goto out;
    }

    /* Backwards, so removing an entry does not shift the ones still to visit. */
    for (size_t i = m.n_manifests; i-- > 0;) {
        bool keep = false;
        /* Entries without a platform, such as attestations, belong to no platform. */
        for (size_t w = 0; w < n_want && m.manifests[i].has_platform && !keep; w++)
            keep = oci_platform_match(&want[w], &m.manifests[i].platform);
        if (keep) {
            kept++;
        } else if (json_array_remove(arr, i) != 0) {
            r = UV_ENOMEM;
            goto out;
        }
    }
    if (kept == 0) {
        r = OCISYNC_ENOPLATFORM;
        goto out;
    }
    /*
     * Nothing dropped: hand back the original bytes, so the copy keeps the
     * source's digest instead of minting a new one for a reformatting.
     */
    if (kept == m.n_manifests) {
        buf = malloc(len + 1);
        if (buf == NULL) {
            r = UV_ENOMEM;
            goto out;
        }
        memcpy(buf, data, len);
        buf[len] = '\0';
        *out = buf;
        *out_len = len;
        buf = NULL;
        goto out;
    }

    /* Our own buffer, so the caller's free() matches even if jansson's allocator is swapped. */
    need = json_dumpb(root, NULL, 0, dump_flags);
    if (need == 0) {
        r = UV_ENOMEM;
        goto out;
    }
    buf = malloc(need + 1);
    if (buf == NULL) {
        r = UV_ENOMEM;
        goto out;
    }
    if (json_dumpb(root, buf, need, dump_flags) != need) {
        r = UV_ENOMEM;
        goto out;
    }
    buf[need] = '\0';
    *out = buf;
    *out_len = need;
    buf = NULL;

out:
    free(buf);
    json_decref(root);
    oci_manifest_free(&m);
    return r;
}

/*
 * For the functions that write a document anew from (data, len): *out
 * cleared, the document validated as a whole into *m (so the edits work on
 * one known to be sound; err says why not) and loaded as JSON into *root.
 * *m is the caller's to free either way.
 */
static int load_checked(const void *data, size_t len, struct oci_manifest *m, json_t **root,
                        char **out, size_t *out_len, char *err, size_t errlen)
{
    int r;
    memset(m, 0, sizeof(*m));
    *root = NULL;
    *out = NULL;
    *out_len = 0;
    r = oci_manifest_parse(NULL, data, len, m, err, errlen);
    if (r != 0)
        return r;
    *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    return *root != NULL ? 0 : UV_ENOMEM; /* it parsed a moment ago */
}

/* doc as compact JSON, keys in their order: *out malloc'ed and NUL-terminated. */
static int dump_compact(json_t *doc, char **out, size_t *out_len)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t need = json_dumpb(doc, NULL, 0, flags);
    char *buf = need > 0 ? malloc(need + 1) : NULL;
    if (buf == NULL || json_dumpb(doc, buf, need, flags) != need) {
        free(buf);
        return UV_ENOMEM;
    }
    buf[need] = '\0';
    *out = buf;
    *out_len = need;
    return 0;
}

/* The OCI media type skopeo gives a Docker one when writing a layout; NULL: keep mt. */
static const char *oci_type_of(const char *mt)
{
    static const struct {
        const char *docker, *oci;
    } map[] = {
        {OCI_MT_DOCKER_MANIFEST, OCI_MT_OCI_MANIFEST},
        {OCI_MT_DOCKER_LIST, OCI_MT_OCI_INDEX},
        {OCI_MT_DOCKER_CONFIG, OCI_MT_OCI_CONFIG},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip",
         "application/vnd.oci.image.layer.v1.tar+gzip"},
        {"application/vnd.docker.image.rootfs.diff.tar", "application/vnd.oci.image.layer.v1.tar"},
        {"application/vnd.docker.image.rootfs.diff.tar.zstd",
         "application/vnd.oci.image.layer.v1.tar+zstd"},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar",
         "application/vnd.oci.image.layer.nondistributable.v1.tar"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(mt, map[i].docker) == 0)
            return map[i].oci;
    return NULL;
}

bool oci_media_type_is_docker(const char *mt)
{
    return strcmp(mt, OCI_MT_DOCKER_MANIFEST) == 0 || strcmp(mt, OCI_MT_DOCKER_LIST) == 0;
}

/* Sets d["mediaType"] to its OCI counterpart, if it has one. */
static int convert_desc(json_t *d)
{
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    const char *to = mt != NULL ? oci_type_of(mt) : NULL;
    if (to == NULL)
        return 0;
    return json_object_set_new(d, "mediaType", json_string(to)) == 0 ? 0 : UV_ENOMEM;
}

int oci_manifest_to_oci(const void *data, size_t len, const struct oci_converted *children,
                        size_t n_children, char **out, size_t *out_len)
{
    struct oci_manifest m;
    json_t *root = NULL, *arr, *v;
    size_t i;
    int r;

    r = load_checked(data, len, &m, &root, out, out_len, NULL, 0);
    if (r != 0)
        goto out;
    r = OCISYNC_EMANIFEST;
    if (json_object_set_new(
            root, "mediaType",
            json_string(m.kind == OCI_KIND_INDEX ? OCI_MT_OCI_INDEX : OCI_MT_OCI_MANIFEST)) != 0)
        goto out;
    if (m.kind == OCI_KIND_IMAGE) {
        if (convert_desc(json_object_get(root, "config")) != 0)
            goto out;
        arr = json_object_get(root, "layers");
        json_array_foreach(arr, i, v)
        {
            if (convert_desc(v) != 0)
                goto out;
        }
    } else {
        /* Each child converted before it: its entry names the new bytes. */
        arr = json_object_get(root, "manifests");
        json_array_foreach(arr, i, v)
        {
            const char *dg = json_string_value(json_object_get(v, "digest"));
            for (size_t k = 0; dg != NULL && k < n_children; k++) {
                if (strcmp(children[k].from.str, dg) != 0)
                    continue;
                if (json_object_set_new(v, "digest", json_string(children[k].to.str)) != 0 ||
                    json_object_set_new(v, "size", json_integer(children[k].size)) != 0)
                    goto out;
                break;
            }
            if (convert_desc(v) != 0)
                goto out;
        }
    }
    r = dump_compact(root, out, out_len);
out:
    json_decref(root);
    oci_manifest_free(&m);
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * OCI media types into Docker schema 2 (skopeo's -f v2s2)
 */

/* The Docker media type of an OCI layer or config type; NULL when schema 2 has none. */
static const char *docker_type_of(const char *mt)
{
    static const struct {
        const char *oci, *docker;
    } map[] = {
        {OCI_MT_OCI_CONFIG, OCI_MT_DOCKER_CONFIG},
        {OCI_MT_DOCKER_CONFIG, OCI_MT_DOCKER_CONFIG},
        {"application/vnd.oci.image.layer.v1.tar+gzip",
         "application/vnd.docker.image.rootfs.diff.tar.gzip"},
        {"application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar"},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
         "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar",
         "application/vnd.docker.image.rootfs.foreign.diff.tar"},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip",
         "application/vnd.docker.image.rootfs.diff.tar.gzip"},
        {"application/vnd.docker.image.rootfs.diff.tar",
         "application/vnd.docker.image.rootfs.diff.tar"},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(mt, map[i].oci) == 0)
            return map[i].docker;
    return NULL;
}

/*
 * A new descriptor object {mediaType, size, digest[, urls]} (schema 2's
 * field order, as containers/image writes it) for the OCI descriptor d, with
 * media type mt. Returns NULL without memory.
 */
static json_t *docker_desc(json_t *d, const char *mt, const char *digest, json_int_t size)
{
    json_t *o = json_object(), *urls = json_object_get(d, "urls");
    if (o == NULL || json_object_set_new(o, "mediaType", json_string(mt)) != 0 ||
        json_object_set_new(o, "size", json_integer(size)) != 0 ||
        json_object_set_new(o, "digest", json_string(digest)) != 0 ||
        (json_is_array(urls) && json_array_size(urls) > 0 &&
         json_object_set(o, "urls", urls) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The platform object of a manifest list entry, in schema 2's field order. */
static json_t *docker_platform(json_t *p)
{
    static const char *const keys[] = {"architecture", "os",      "os.version",
                                       "os.features",  "variant", "features"};
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(p, keys[i]);
        int r = 0;
        if (i < 2)
            r = json_object_set_new(
                o, keys[i],
                json_string(v != NULL && json_is_string(v) ? json_string_value(v) : ""));
        else if (v != NULL && !(json_is_string(v) && json_string_length(v) == 0) &&
                 !(json_is_array(v) && json_array_size(v) == 0))
            r = json_object_set(o, keys[i], v);
        if (r != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return OCISYNC_EMEDIATYPE;
}

/* An image manifest as schema 2: config and layers mapped, everything else dropped. */
static int image_to_docker(const struct oci_manifest *m, json_t *root, json_t *out,
                           bool zstd_to_gzip, char *err, size_t errlen)
{
    json_t *layers, *arr = json_object_get(root, "layers"), *v, *d;
    const char *mt;
    size_t i;

    if (json_object_get(root, "artifactType") != NULL || m->has_subject)
        return refuse(err, errlen,
                      "it is an OCI artifact (artifactType or subject), which Docker schema 2 "
                      "cannot describe");
    mt = docker_type_of(m->config.media_type);
    if (mt == NULL || strcmp(mt, OCI_MT_DOCKER_CONFIG) != 0)
        return refuse(err, errlen,
                      "its config is %s, not an image config: Docker schema 2 holds images only",
                      m->config.media_type);
    d = docker_desc(json_object_get(root, "config"), mt, m->config.digest.str, m->config.size);
    if (d == NULL || json_object_set_new(out, "config", d) != 0)
        return UV_ENOMEM;
    layers = json_array();
    if (layers == NULL || json_object_set_new(out, "layers", layers) != 0)
        return UV_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        const struct oci_descriptor *l = &m->layers[i];
        mt = docker_type_of(l->media_type);
        if (mt == NULL && zstd_to_gzip &&
            (strcmp(l->media_type, OCI_MT_OCI_LAYER_ZSTD) == 0 ||
             strcmp(l->media_type, OCI_MT_DOCKER_LAYER_ZSTD) == 0))
            mt = OCI_MT_DOCKER_LAYER_ZSTD; /* renamed once recompressed */
        if (mt == NULL || strcmp(mt, OCI_MT_DOCKER_CONFIG) == 0)
            return refuse(
                err, errlen, "layer %s is %s, which Docker schema 2 has no media type for%s",
                l->digest.str, l->media_type,
                strstr(l->media_type, "zstd") != NULL ? " (it knows gzip and plain tars only)"
                                                      : "");
        d = docker_desc(v, mt, l->digest.str, l->size);
        if (d == NULL || json_array_append_new(layers, d) != 0)
            return UV_ENOMEM;
    }
    return 0;
}

/* An index as a manifest list: each entry names its child's converted bytes. */
static int index_to_docker(const struct oci_manifest *m, json_t *root, json_t *out,
                           const struct oci_converted *children, size_t n_children, char *err,
                           size_t errlen)
{
    json_t *list, *arr = json_object_get(root, "manifests"), *v, *d, *p;
    size_t i;

    if (m->has_subject)
        return refuse(err, errlen, "it names a subject, which a Docker manifest list cannot");
    list = json_array();
    if (list == NULL || json_object_set_new(out, "manifests", list) != 0)
        return UV_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        const struct oci_descriptor *c = &m->manifests[i];
        const struct oci_digest *dg = &c->digest;
        int64_t size = c->size;
        if (!oci_media_type_is_manifest(c->media_type))
            return refuse(err, errlen,
                          "entry %s is %s; a Docker manifest list lists image manifests only",
                          c->digest.str, c->media_type);
        for (size_t k = 0; k < n_children; k++) {
            if (!oci_digest_equal(&children[k].from, dg))
                continue;
            dg = &children[k].to;
            size = children[k].size;
            break;
        }
        d = docker_desc(v, OCI_MT_DOCKER_MANIFEST, dg->str, size);
        p = d != NULL ? docker_platform(json_object_get(v, "platform")) : NULL;
        if (p == NULL || json_object_set_new(d, "platform", p) != 0 ||
            json_array_append_new(list, d) != 0) {
            json_decref(d);
            return UV_ENOMEM;
        }
    }
    return 0;
}

int oci_manifest_to_docker(const void *data, size_t len, const struct oci_converted *children,
                           size_t n_children, bool zstd_to_gzip, char **out, size_t *out_len,
                           char *err, size_t errlen)
{
    struct oci_manifest m;
    json_t *root = NULL, *doc = NULL;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    r = load_checked(data, len, &m, &root, out, out_len, err, errlen);
    if (r != 0)
        goto out;
    doc = json_object();
    if (doc == NULL) {
        r = UV_ENOMEM;
        goto out;
    }
    r = UV_ENOMEM;
    if (json_object_set_new(doc, "schemaVersion", json_integer(2)) != 0 ||
        json_object_set_new(doc, "mediaType",
                            json_string(m.kind == OCI_KIND_INDEX ? OCI_MT_DOCKER_LIST
                                                                 : OCI_MT_DOCKER_MANIFEST)) != 0)
        goto out;
    if (m.kind == OCI_KIND_IMAGE)
        r = image_to_docker(&m, root, doc, zstd_to_gzip, err, errlen);
    else
        r = index_to_docker(&m, root, doc, children, n_children, err, errlen);
    if (r != 0)
        goto out;
    r = dump_compact(doc, out, out_len);
out:
    json_decref(doc);
    json_decref(root);
    oci_manifest_free(&m);
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Descriptors renamed (recompressed layers, and the manifests that name them)
 */

/* Renames d if map has its digest. */
static int relink_desc(json_t *d, const struct oci_relink *map, size_t n)
{
    const char *dg = json_string_value(json_object_get(d, "digest"));
    for (size_t k = 0; dg != NULL && k < n; k++) {
        if (strcmp(map[k].from.str, dg) != 0)
            continue;
        if ((map[k].media_type[0] &&
             json_object_set_new(d, "mediaType", json_string(map[k].media_type)) != 0) ||
            json_object_set_new(d, "digest", json_string(map[k].to.str)) != 0 ||
            json_object_set_new(d, "size", json_integer(map[k].size)) != 0)
            return UV_ENOMEM;
        return 0;
    }
    return 0;
}

int oci_manifest_relink(const void *data, size_t len, const struct oci_relink *map, size_t n,
                        char **out, size_t *out_len)
{
    struct oci_manifest m;
    json_t *root = NULL, *v;
    size_t i;
    int r;

    r = load_checked(data, len, &m, &root, out, out_len, NULL, 0);
    if (r != 0)
        goto out;
    r = UV_ENOMEM;
    if (m.kind == OCI_KIND_IMAGE) {
        if (relink_desc(json_object_get(root, "config"), map, n) != 0)
            goto out;
        json_array_foreach(json_object_get(root, "layers"), i, v)
        {
            if (relink_desc(v, map, n) != 0)
                goto out;
        }
    } else {
        json_array_foreach(json_object_get(root, "manifests"), i, v)
        {
            if (relink_desc(v, map, n) != 0)
                goto out;
        }
    }
    r = dump_compact(root, out, out_len);
out:
    json_decref(root);
    oci_manifest_free(&m);
    return r;
}

const char *ocisync_platform_problem(const char *s)
{
    return oci_platform_problem(s);
}
