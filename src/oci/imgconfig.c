/*
 * The config, manifest and index of a built image.
 *
 * The base config comes from a registry and is treated as hostile (size and
 * depth capped before jansson sees it, duplicate keys refused, every field
 * this code touches type-checked), but is otherwise kept as it is: fields
 * this code does not know are the base's business. What the caller gives
 * comes from command lines and build files, so each entry is validated and
 * an error names it. Output is compact JSON; the config's keys are sorted so
 * that equal inputs give equal bytes and thus equal digests.
 */
#include "oci/imgconfig.h"

#include "common/json_depth.h"
#include "common/msg.h"
#include "ocisync.h"

#include <jansson.h>
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Configs nest a few levels (config, Labels, a value); unknown fields may nest more, not this much.
 */
#define CONFIG_MAX_DEPTH 64

/* How many characters of a user's or document's string an error message quotes. */
#define ERR_QUOTE_MAX 80

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what four-digit RFC 3339 years can say. */
#define TIME_MIN (-62167219200LL)
#define TIME_MAX 253402300799LL

#define HISTORY_COMMENT "ocisync"
#define PLACEHOLDER_COMMENT "ocisync: placeholder for a base layer the base history does not list"

/* ---------------------------------------------------------------------------------------------
 * Text checks
 */

/*
 * Length of the UTF-8 sequence starting at s, or 0 if it is not a valid one
 * (overlong, surrogate, above U+10FFFF, cut short). jansson refuses invalid
 * UTF-8 too, but only with a failed allocation-like NULL; checking first
 * gives the user a message.
 */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        /* The terminating NUL fails the continuation test, so nothing past it is read. */
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

enum {
    TXT_CTL = 1,   /* control characters refused */
    TXT_SPACE = 2, /* spaces refused (with TXT_CTL: all whitespace) */
};

/* NULL if s is acceptable under flags, else the reason, to follow the thing's name. */
static const char *text_problem(const char *s, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        size_t n = utf8_seq(p);
        if (n == 0)
            return "is not valid UTF-8";
        if ((flags & TXT_CTL) && is_ctl(*p))
            return "contains a control character";
        if ((flags & TXT_SPACE) && *p == ' ')
            return "contains a space";
        p += n;
    }
    return NULL;
}

/*
 * A copy of s for history text, which is built from file names that need
 * not be UTF-8: invalid bytes and control characters become '?' rather than
 * failing a build over a description.
 */
static char *sanitized_copy(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    size_t i = 0;

    if (copy == NULL)
        return NULL;
    while (i < len) {
        size_t n = utf8_seq((const unsigned char *)s + i);
        if (n == 0 || is_ctl((unsigned char)s[i])) {
            copy[i++] = '?';
            continue;
        }
        memcpy(copy + i, s + i, n);
        i += n;
    }
    copy[len] = '\0';
    return copy;
}

/* Checks a list of strings given by the caller: count under the cap, no NULL entries. */
static int check_list(const char *const *list, size_t n, const char *what, char *err, size_t errlen)
{
    if (n > OCI_BUILD_MAX_LIST) {
        ocisync__errf(err, errlen, "%zu %s entries, over the limit of %d", n, what,
                      OCI_BUILD_MAX_LIST);
        return OCISYNC_ETOOBIG;
    }
    if (n > 0 && list == NULL) {
        ocisync__errf(err, errlen, "%s list is NULL", what);
        return OCISYNC_EUSAGE;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i] == NULL) {
            ocisync__errf(err, errlen, "%s entry %zu is NULL", what, i);
            return OCISYNC_EUSAGE;
        }
    }
    return 0;
}

/*
 * Checks a "KEY=VALUE" entry (env or label, named by what): a '=', a
 * non-empty key without whitespace or control characters, UTF-8 all through.
 * Values may hold anything else: a newline is a fine thing in a certificate.
 */
static int check_kv(const char *kv, const char *what, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    const char *eq = strchr(kv, '=');
    const char *why;
    char key[256];
    size_t klen;

    if (eq == NULL) {
        ocisync__errf(err, errlen, "%s \"%s\" has no '=': write it as KEY=VALUE", what,
                      ocisync__clip(kv, ERR_QUOTE_MAX, &c));
        return OCISYNC_EUSAGE;
    }
    if (eq == kv) {
        ocisync__errf(err, errlen, "%s \"%s\" has an empty key", what,
                      ocisync__clip(kv, ERR_QUOTE_MAX, &c));
        return OCISYNC_EUSAGE;
    }
    why = text_problem(kv, 0);
    if (why != NULL) {
        ocisync__errf(err, errlen, "%s \"%s\" %s", what, ocisync__clip(kv, ERR_QUOTE_MAX, &c), why);
        return OCISYNC_EUSAGE;
    }
    klen = (size_t)(eq - kv);
    if (klen >= sizeof(key))
        klen = sizeof(key) - 1; /* the key's start is enough for the message */
    memcpy(key, kv, klen);
    key[klen] = '\0';
    for (const char *p = kv; p < eq; p++) {
        unsigned char ch = (unsigned char)*p;
        /* A label key may hold spaces (docker takes LABEL "a b"=c); an env name may not. */
        if (is_ctl(ch) || (ch == ' ' && strcmp(what, "label") != 0)) {
            ocisync__errf(err, errlen, "%s key \"%s\" contains %s", what,
                          ocisync__clip(key, ERR_QUOTE_MAX, &c),
                          ch == ' ' || ch == '\t' ? "whitespace" : "a control character");
            return OCISYNC_EUSAGE;
        }
    }
    return 0;
}

/*
 * Parses an exposed port ("8080", "8080/tcp", "53/UDP") into its canonical
 * ExposedPorts key ("8080/tcp") in buf.
 */
static int parse_port(const char *s, char *buf, size_t len, char *err, size_t errlen)
{
    static const char *const protocols[] = {"tcp", "udp", "sctp"};
    struct ocisync__clipped c;
    const char *p = s, *proto = "tcp";
    unsigned long port = 0;
    size_t digits = 0;

    /* Digits only: strtoul would take signs, spaces and "0x". */
    while (*p >= '0' && *p <= '9' && digits < 6) {
        port = port * 10 + (unsigned long)(*p - '0');
        p++;
        digits++;
    }
    if (*p == '-' && digits > 0) {
        ocisync__errf(err, errlen, "port \"%s\": ranges are not supported; list each port",
                      ocisync__clip(s, ERR_QUOTE_MAX, &c));
        return OCISYNC_EUSAGE;
    }
    if (digits == 0 || digits > 5 || port < 1 || port > 65535 || (*p != '\0' && *p != '/')) {
        ocisync__errf(err, errlen, "port \"%s\" is not a number from 1 to 65535",
                      ocisync__clip(s, ERR_QUOTE_MAX, &c));
        return OCISYNC_EUSAGE;
    }
    if (*p == '/') {
        proto = NULL;
        for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
            if (strcasecmp(p + 1, protocols[i]) == 0)
                proto = protocols[i];
        }
        if (proto == NULL) {
            ocisync__errf(err, errlen, "port \"%s\" has protocol \"%s\": use tcp, udp or sctp",
                          ocisync__clip(s, ERR_QUOTE_MAX, &c), p + 1);
            return OCISYNC_EUSAGE;
        }
    }
    snprintf(buf, len, "%lu/%s", port, proto);
    return 0;
}

/* Checks the command-line arguments of Entrypoint or Cmd. */
static int check_args(const char *const *args, size_t n, const char *what, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    const char *why;
    int r = check_list(args, n, what, err, errlen);

    if (r != 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        /* Arguments may hold newlines (sh -c scripts), but must be text. */
        why = text_problem(args[i], 0);
        if (why != NULL) {
            ocisync__errf(err, errlen, "%s argument %zu (\"%s\") %s", what, i,
                          ocisync__clip(args[i], ERR_QUOTE_MAX, &c), why);
            return OCISYNC_EUSAGE;
        }
    }
    return 0;
}

/* The explicit history: text entries, within the cap. Its layer count is checked with the layers.
 */
static int check_history(const struct oci_build_changes *ch, char *err, size_t errlen)
{
    if (ch->n_history > OCI_BUILD_MAX_LIST) {
        ocisync__errf(err, errlen, "%zu history entries, over the limit of %d", ch->n_history,
                      OCI_BUILD_MAX_LIST);
        return OCISYNC_ETOOBIG;
    }
    if (ch->n_history > 0 && ch->history == NULL) {
        ocisync__errf(err, errlen, "history list is NULL");
        return OCISYNC_EUSAGE;
    }
    return 0;
}

static int check_changes(const struct oci_build_changes *ch, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    char port[32];
    const char *why;
    int r;

    if ((r = check_list(ch->env, ch->n_env, "env", err, errlen)) != 0 ||
        (r = check_list(ch->labels, ch->n_labels, "label", err, errlen)) != 0 ||
        (r = check_list(ch->expose, ch->n_expose, "port", err, errlen)) != 0)
        return r;
    for (size_t i = 0; i < ch->n_env; i++) {
        if ((r = check_kv(ch->env[i], "env", err, errlen)) != 0)
            return r;
    }
    for (size_t i = 0; i < ch->n_labels; i++) {
        if ((r = check_kv(ch->labels[i], "label", err, errlen)) != 0)
            return r;
    }
    for (size_t i = 0; i < ch->n_expose; i++) {
        if ((r = parse_port(ch->expose[i], port, sizeof(port), err, errlen)) != 0)
            return r;
    }
    if (ch->set_entrypoint) {
        if ((r = check_args(ch->entrypoint, ch->n_entrypoint, "entrypoint", err, errlen)) != 0)
            return r;
        if (ch->n_entrypoint > 0 && ch->entrypoint[0][0] == '\0') {
            ocisync__errf(err, errlen, "entrypoint program (argument 0) is empty");
            return OCISYNC_EUSAGE;
        }
    }
    if (ch->set_cmd && (r = check_args(ch->cmd, ch->n_cmd, "cmd", err, errlen)) != 0)
        return r;
    if (ch->workdir != NULL) {
        why = text_problem(ch->workdir, TXT_CTL);
        if (why == NULL && ch->workdir[0] != '/')
            why = "is not an absolute path";
        if (why != NULL) {
            ocisync__errf(err, errlen, "workdir \"%s\" %s", ocisync__clip(ch->workdir, 80, &c),
                          why);
            return OCISYNC_EUSAGE;
        }
    }
    if (ch->user != NULL && (why = text_problem(ch->user, TXT_CTL | TXT_SPACE)) != NULL) {
        ocisync__errf(err, errlen, "user \"%s\" %s", ocisync__clip(ch->user, ERR_QUOTE_MAX, &c),
                      why);
        return OCISYNC_EUSAGE;
    }
    if (ch->author != NULL && (why = text_problem(ch->author, TXT_CTL)) != NULL) {
        ocisync__errf(err, errlen, "author \"%s\" %s", ocisync__clip(ch->author, ERR_QUOTE_MAX, &c),
                      why);
        return OCISYNC_EUSAGE;
    }
    if ((r = check_list(ch->volumes, ch->n_volumes, "volume", err, errlen)) != 0)
        return r;
    for (size_t i = 0; i < ch->n_volumes; i++) {
        why = text_problem(ch->volumes[i], TXT_CTL);
        if (why == NULL && ch->volumes[i][0] != '/')
            why = "is not an absolute path";
        if (why != NULL) {
            ocisync__errf(err, errlen, "volume \"%s\" %s",
                          ocisync__clip(ch->volumes[i], ERR_QUOTE_MAX, &c), why);
            return OCISYNC_EUSAGE;
        }
    }
    if (ch->stop_signal != NULL &&
        ((why = text_problem(ch->stop_signal, TXT_CTL | TXT_SPACE)) != NULL ||
         ch->stop_signal[0] == '\0')) {
        ocisync__errf(err, errlen, "stop signal \"%s\" %s",
                      ocisync__clip(ch->stop_signal, ERR_QUOTE_MAX, &c), why ? why : "is empty");
        return OCISYNC_EUSAGE;
    }
    if (ch->set_shell) {
        if ((r = check_args(ch->shell, ch->n_shell, "shell", err, errlen)) != 0)
            return r;
        if (ch->n_shell == 0) {
            ocisync__errf(err, errlen, "a shell needs at least its program");
            return OCISYNC_EUSAGE;
        }
    }
    if (ch->healthcheck != NULL) {
        const struct oci_healthcheck *h = ch->healthcheck;
        if ((r = check_args(h->test, h->n_test, "healthcheck", err, errlen)) != 0)
            return r;
        if (h->n_test == 0 || h->interval_ns < 0 || h->timeout_ns < 0 || h->start_period_ns < 0 ||
            h->start_interval_ns < 0 || h->retries < 0) {
            ocisync__errf(err, errlen, "a healthcheck needs a test and no negative durations");
            return OCISYNC_EUSAGE;
        }
    }
    if ((r = check_history(ch, err, errlen)) != 0)
        return r;
    if (ch->created < 0 || ch->created > TIME_MAX) {
        ocisync__errf(err, errlen,
                      "creation time %lld is outside 0 (1970) to %lld (9999-12-31T23:59:59Z)",
                      (long long)ch->created, TIME_MAX);
        return OCISYNC_EUSAGE;
    }
    return 0;
}

/* The characters oci_platform_parse accepts in os, architecture and variant. */
static bool platform_word(const char *s, size_t cap, bool required)
{
    size_t n = strnlen(s, cap);

    if (n == cap || (required && n == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int check_platform(const struct oci_platform *p, const char *what, char *err, size_t errlen)
{
    if (!platform_word(p->os, sizeof(p->os), true) ||
        !platform_word(p->arch, sizeof(p->arch), true) ||
        !platform_word(p->variant, sizeof(p->variant), false) ||
        strnlen(p->os_version, sizeof(p->os_version)) == sizeof(p->os_version) ||
        text_problem(p->os_version, TXT_CTL | TXT_SPACE) != NULL) {
        ocisync__errf(err, errlen, "%s platform is invalid (it needs os and architecture)", what);
        return OCISYNC_EUSAGE;
    }
    return 0;
}

/* A caller's digest: the struct must hold a well-formed one, not zeroes. */
static bool digest_ok(const struct oci_digest *d)
{
    struct oci_digest tmp;

    return strnlen(d->str, sizeof(d->str)) < sizeof(d->str) &&
           oci_digest_parse_str(d->str, &tmp) == 0 && tmp.alg == d->alg;
}

/* ---------------------------------------------------------------------------------------------
 * Layer media types
 */

/*
 * The same blob under each family's name. A NULL Docker name means a Docker
 * manifest cannot say it; alias is a Docker spelling that exists (containerd
 * reads it) but that Docker itself does not pull, so it is read, never written.
 */
static const struct layer_type {
    const char *oci, *docker, *alias;
} layer_types[] = {
    {OCI_MT_OCI_LAYER_GZIP, OCI_MT_DOCKER_LAYER_GZIP, NULL},
    {OCI_MT_OCI_LAYER, OCI_MT_DOCKER_LAYER, NULL},
    {OCI_MT_OCI_LAYER_ZSTD, NULL, OCI_MT_DOCKER_LAYER_ZSTD},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", OCI_MT_DOCKER_LAYER_FOREIGN,
     NULL},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", NULL, NULL},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", NULL, NULL},
};

static const struct layer_type *find_layer_type(const char *mt)
{
    for (size_t i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++) {
        const struct layer_type *t = &layer_types[i];
        if (strcmp(mt, t->oci) == 0 || (t->docker != NULL && strcmp(mt, t->docker) == 0) ||
            (t->alias != NULL && strcmp(mt, t->alias) == 0))
            return t;
    }
    return NULL;
}

/*
 * The name of layer type mt in the manifest's family. A type this table
 * does not know is kept in an OCI manifest when known_only is false (an
 * encrypted layer, say: the base's business), and refused otherwise.
 * what names the layer for messages.
 */
static int layer_type_for(const char *mt, bool docker, bool known_only, const char *what,
                          const char **name, char *err, size_t errlen)
{
    const struct layer_type *t = find_layer_type(mt);
    struct ocisync__clipped c;

    if (t == NULL && (docker || known_only)) {
        ocisync__errf(err, errlen, "%s has media type \"%s\", which %s", what,
                      ocisync__clip(mt, ERR_QUOTE_MAX, &c),
                      docker ? "a Docker manifest cannot name; use --format oci"
                             : "is not a layer type");
        return OCISYNC_EUSAGE;
    }
    if (t == NULL) {
        *name = mt;
    } else if (!docker) {
        *name = t->oci;
    } else if (t->docker != NULL) {
        *name = t->docker;
    } else {
        ocisync__errf(err, errlen,
                      "%s is %s (%s), which a Docker manifest cannot hold; use --format oci", what,
                      strstr(t->oci, "zstd") != NULL ? "zstd-compressed" : "of a type", mt);
        return OCISYNC_EUSAGE;
    }
    return 0;
}

static int check_layers(const struct oci_build_layer *layers, size_t n, size_t base_layers,
                        char *err, size_t errlen)
{
    const char *name;
    char what[64];
    int r;

    if (n > 0 && layers == NULL) {
        ocisync__errf(err, errlen, "layer list is NULL");
        return OCISYNC_EUSAGE;
    }
    if (base_layers > OCI_MANIFEST_MAX_LAYERS || n > OCI_MANIFEST_MAX_LAYERS - base_layers) {
        ocisync__errf(err, errlen, "%zu base layers and %zu new ones are over the limit of %d",
                      base_layers, n, OCI_MANIFEST_MAX_LAYERS);
        return OCISYNC_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "new layer %zu", i);
        if (!digest_ok(&layers[i].digest) || !digest_ok(&layers[i].diff_id)) {
            ocisync__errf(err, errlen, "%s has an invalid %s", what,
                          digest_ok(&layers[i].digest) ? "diff_id" : "digest");
            return OCISYNC_EUSAGE;
        }
        if (layers[i].size > (uint64_t)INT64_MAX) {
            ocisync__errf(err, errlen, "%s has size %llu, too large", what,
                          (unsigned long long)layers[i].size);
            return OCISYNC_EUSAGE;
        }
        if (layers[i].media_type == NULL) {
            ocisync__errf(err, errlen, "%s has no media type", what);
            return OCISYNC_EUSAGE;
        }
        r = layer_type_for(layers[i].media_type, false, true, what, &name, err, errlen);
        if (r != 0)
            return r;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * JSON helpers
 */

/* json_object_set_new, whose failure (with valid UTF-8 keys and values) can only be memory. */
static int set_new(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) == 0 ? 0 : UV_ENOMEM;
}

static int append_new(json_t *arr, json_t *v)
{
    return json_array_append_new(arr, v) == 0 ? 0 : UV_ENOMEM;
}

/*
 * Serialises root into a malloc'ed, NUL-terminated buffer of at most max
 * bytes. Our own buffer, so that the caller's free() matches even if
 * jansson's allocator is swapped.
 */
static int dump(json_t *root, size_t flags, size_t max, const char *what, char **out,
                size_t *out_len, char *err, size_t errlen)
{
    size_t need = json_dumpb(root, NULL, 0, flags);
    char *buf;

    if (need == 0)
        return UV_ENOMEM;
    if (need > max) {
        ocisync__errf(err, errlen, "the %s would be %zu bytes, over the limit of %zu", what, need,
                      max);
        return OCISYNC_ETOOBIG;
    }
    buf = malloc(need + 1);
    if (buf == NULL)
        return UV_ENOMEM;
    if (json_dumpb(root, buf, need, flags) != need) {
        free(buf);
        return UV_ENOMEM;
    }
    buf[need] = '\0';
    *out = buf;
    *out_len = need;
    return 0;
}

/* A JSON array of the strings args[0..n). */
static json_t *string_array(const char *const *args, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, json_string(args[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/*
 * The object member key of parent, created empty when absent or null (Docker
 * writes "Labels": null). OCISYNC_EMANIFEST if it is something else.
 */
static int member_object(json_t *parent, const char *key, const char *what, json_t **obj, char *err,
                         size_t errlen)
{
    json_t *v = json_object_get(parent, key);
    int r;

    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            ocisync__errf(err, errlen, "base config: %s is not an object", what);
            return OCISYNC_EMANIFEST;
        }
        *obj = v;
        return 0;
    }
    v = json_object();
    if ((r = set_new(parent, key, v)) != 0)
        return r;
    *obj = v;
    return 0;
}

/* The string member key of obj, or NULL if absent; OCISYNC_EMANIFEST if not a string. */
static int member_string(json_t *obj, const char *key, const char *what, const char **s, char *err,
                         size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    *s = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v)) {
        ocisync__errf(err, errlen, "%s: \"%s\" is not a string", what, key);
        return OCISYNC_EMANIFEST;
    }
    *s = json_string_value(v);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The config
 */

static int load_base_config(const char *base, size_t len, json_t **root, char *err, size_t errlen)
{
    json_error_t jerr;

    if (len > OCI_CONFIG_MAX_SIZE) {
        ocisync__errf(err, errlen, "base config is %zu bytes, over the limit of %d", len,
                      OCI_CONFIG_MAX_SIZE);
        return OCISYNC_ETOOBIG;
    }
    if (ocisync__json_too_deep(base, len, CONFIG_MAX_DEPTH)) {
        ocisync__errf(err, errlen, "base config JSON nests deeper than %d levels",
                      CONFIG_MAX_DEPTH);
        return OCISYNC_ETOOBIG;
    }
    *root = json_loadb(base, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return UV_ENOMEM;
        ocisync__errf(err, errlen, "base config is not valid JSON: %s at line %d, column %d",
                      jerr.text, jerr.line, jerr.column);
        return OCISYNC_EMANIFEST;
    }
    if (!json_is_object(*root)) {
        ocisync__errf(err, errlen, "base config is not a JSON object");
        return OCISYNC_EMANIFEST;
    }
    return 0;
}

/*
 * Checks that the base was built for the same platform and writes the
 * build's. A field the base lacks agrees with anything; a variant on one
 * side only agrees (arm with v7, arm64 with v8), and the known one is kept.
 */
static int apply_platform(json_t *root, const struct oci_platform *want, char *err, size_t errlen)
{
    struct oci_platform have;
    const char *os, *arch, *variant, *os_version;
    char a[128], b[128];
    int r;

    if ((r = member_string(root, "os", "base config", &os, err, errlen)) != 0 ||
        (r = member_string(root, "architecture", "base config", &arch, err, errlen)) != 0 ||
        (r = member_string(root, "variant", "base config", &variant, err, errlen)) != 0 ||
        (r = member_string(root, "os.version", "base config", &os_version, err, errlen)) != 0)
        return r;

    memset(&have, 0, sizeof(have));
    snprintf(have.os, sizeof(have.os), "%s", os != NULL ? os : want->os);
    snprintf(have.arch, sizeof(have.arch), "%s", arch != NULL ? arch : want->arch);
    snprintf(have.variant, sizeof(have.variant), "%s", variant != NULL ? variant : "");
    /* A longer string than the struct holds was cut, so it cannot compare equal by accident. */
    bool fits = (os == NULL || strlen(os) < sizeof(have.os)) &&
                (arch == NULL || strlen(arch) < sizeof(have.arch)) &&
                (variant == NULL || strlen(variant) < sizeof(have.variant));
    bool agree = fits && (oci_platform_match(want, &have) || oci_platform_match(&have, want));
    if (agree && want->os_version[0] != '\0' && os_version != NULL)
        agree = strcmp(want->os_version, os_version) == 0;
    if (!agree) {
        oci_platform_format(&have, a, sizeof(a));
        oci_platform_format(want, b, sizeof(b));
        ocisync__errf(err, errlen, "base image is for %s%s%s, not %s%s%s", a,
                      os_version != NULL ? " " : "", os_version != NULL ? os_version : "", b,
                      want->os_version[0] != '\0' ? " " : "", want->os_version);
        return OCISYNC_EMANIFEST;
    }

    if ((r = set_new(root, "os", json_string(want->os))) != 0 ||
        (r = set_new(root, "architecture", json_string(want->arch))) != 0)
        return r;
    if (want->variant[0] != '\0' && (r = set_new(root, "variant", json_string(want->variant))) != 0)
        return r;
    if (want->os_version[0] != '\0' &&
        (r = set_new(root, "os.version", json_string(want->os_version))) != 0)
        return r;
    return 0;
}

/* True if the Env entry e sets the variable of the same name as kv ("KEY=..."). */
static bool same_env_key(const char *e, const char *kv)
{
    size_t klen = (size_t)(strchr(kv, '=') - kv);

    return strncmp(e, kv, klen) == 0 && (e[klen] == '=' || e[klen] == '\0');
}

static int apply_env(json_t *cfg, const struct oci_build_changes *ch, char *err, size_t errlen)
{
    json_t *env, *v;
    size_t i;
    int r;

    if (ch->n_env == 0)
        return 0;
    env = json_object_get(cfg, "Env");
    if (env == NULL || json_is_null(env)) {
        env = json_array();
        if ((r = set_new(cfg, "Env", env)) != 0)
            return r;
    }
    if (!json_is_array(env)) {
        ocisync__errf(err, errlen, "base config: config.Env is not an array");
        return OCISYNC_EMANIFEST;
    }
    json_array_foreach(env, i, v)
    {
        if (!json_is_string(v)) {
            ocisync__errf(err, errlen, "base config: config.Env entry %zu is not a string", i);
            return OCISYNC_EMANIFEST;
        }
    }
    for (size_t k = 0; k < ch->n_env; k++) {
        bool replaced = false;
        json_array_foreach(env, i, v)
        {
            if (!same_env_key(json_string_value(v), ch->env[k]))
                continue;
            if (json_string_set(v, ch->env[k]) != 0)
                return UV_ENOMEM;
            replaced = true;
        }
        if (!replaced && (r = append_new(env, json_string(ch->env[k]))) != 0)
            return r;
    }
    return 0;
}

/* Sets obj[key] = value for each "key=value" of kvs. */
static int apply_kvs(json_t *obj, const char *const *kvs, size_t n)
{
    char *key;
    int r;

    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(kvs[i], '=');
        key = strndup(kvs[i], (size_t)(eq - kvs[i]));
        if (key == NULL)
            return UV_ENOMEM;
        r = set_new(obj, key, json_string(eq + 1));
        free(key);
        if (r != 0)
            return r;
    }
    return 0;
}

/* config.Healthcheck as docker writes it (durations in nanoseconds, zero ones left out). */
static json_t *healthcheck(const struct oci_healthcheck *h)
{
    json_t *o = json_object();
    const struct {
        const char *key;
        int64_t v;
    } n[] = {{"Interval", h->interval_ns},
             {"Timeout", h->timeout_ns},
             {"StartPeriod", h->start_period_ns},
             {"StartInterval", h->start_interval_ns},
             {"Retries", h->retries}};

    if (o == NULL || set_new(o, "Test", string_array(h->test, h->n_test)) != 0) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
        if (n[i].v != 0 && set_new(o, n[i].key, json_integer(n[i].v)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int apply_config(json_t *root, const struct oci_build_changes *ch, char *err, size_t errlen)
{
    json_t *cfg, *obj;
    char port[32];
    int r;

    if ((r = member_object(root, "config", "config", &cfg, err, errlen)) != 0)
        return r;
    if ((r = apply_env(cfg, ch, err, errlen)) != 0)
        return r;

    if (ch->set_entrypoint) {
        if (ch->n_entrypoint == 0)
            json_object_del(cfg, "Entrypoint");
        else if ((r = set_new(cfg, "Entrypoint", string_array(ch->entrypoint, ch->n_entrypoint))) !=
                 0)
            return r;
        /* The base's Cmd was arguments for the base's entrypoint; Docker drops it too. */
        if (!ch->set_cmd)
            json_object_del(cfg, "Cmd");
    }
    if (ch->set_cmd) {
        if (ch->n_cmd == 0)
            json_object_del(cfg, "Cmd");
        else if ((r = set_new(cfg, "Cmd", string_array(ch->cmd, ch->n_cmd))) != 0)
            return r;
    }
    /* A Windows quoting hint about the old command line, wrong for a new one. */
    if (ch->set_entrypoint || ch->set_cmd)
        json_object_del(cfg, "ArgsEscaped");

    if (ch->workdir != NULL && (r = set_new(cfg, "WorkingDir", json_string(ch->workdir))) != 0)
        return r;
    if (ch->user != NULL && (r = set_new(cfg, "User", json_string(ch->user))) != 0)
        return r;

    if (ch->n_labels > 0) {
        if ((r = member_object(cfg, "Labels", "config.Labels", &obj, err, errlen)) != 0)
            return r;
        if ((r = apply_kvs(obj, ch->labels, ch->n_labels)) != 0)
            return r;
    }
    if (ch->n_volumes > 0) {
        if ((r = member_object(cfg, "Volumes", "config.Volumes", &obj, err, errlen)) != 0)
            return r;
        for (size_t i = 0; i < ch->n_volumes; i++) {
            if ((r = set_new(obj, ch->volumes[i], json_object())) != 0)
                return r;
        }
    }
    if (ch->stop_signal != NULL &&
        (r = set_new(cfg, "StopSignal", json_string(ch->stop_signal))) != 0)
        return r;
    if (ch->set_shell && (r = set_new(cfg, "Shell", string_array(ch->shell, ch->n_shell))) != 0)
        return r;
    if (ch->healthcheck != NULL &&
        (r = set_new(cfg, "Healthcheck", healthcheck(ch->healthcheck))) != 0)
        return r;
    if (ch->n_expose > 0) {
        if ((r = member_object(cfg, "ExposedPorts", "config.ExposedPorts", &obj, err, errlen)) != 0)
            return r;
        for (size_t i = 0; i < ch->n_expose; i++) {
            /* Validated in check_changes; this only formats. */
            if ((r = parse_port(ch->expose[i], port, sizeof(port), err, errlen)) != 0)
                return r;
            if ((r = set_new(obj, port, json_object())) != 0)
                return r;
        }
    }
    return 0;
}

/* Appends the new layers' diff_ids after checking the base's against base_layers. */
static int apply_rootfs(json_t *root, bool scratch, size_t base_layers,
                        const struct oci_build_layer *layers, size_t n_layers, char *err,
                        size_t errlen)
{
    struct oci_digest d;
    json_t *rootfs, *ids, *v;
    const char *type;
    size_t i;
    int r;

    rootfs = json_object_get(root, "rootfs");
    if (scratch) {
        rootfs = json_object();
        if ((r = set_new(root, "rootfs", rootfs)) != 0)
            return r;
        if ((r = set_new(rootfs, "type", json_string("layers"))) != 0)
            return r;
        if ((r = set_new(rootfs, "diff_ids", json_array())) != 0)
            return r;
    }
    if (!json_is_object(rootfs)) {
        ocisync__errf(err, errlen, "base config has no \"rootfs\" object");
        return OCISYNC_EMANIFEST;
    }
    if ((r = member_string(rootfs, "type", "base config rootfs", &type, err, errlen)) != 0)
        return r;
    if (type == NULL || strcmp(type, "layers") != 0) {
        ocisync__errf(err, errlen, "base config rootfs type is not \"layers\"");
        return OCISYNC_EMANIFEST;
    }
    ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_array(ids)) {
        ocisync__errf(err, errlen, "base config rootfs has no \"diff_ids\" array");
        return OCISYNC_EMANIFEST;
    }
    json_array_foreach(ids, i, v)
    {
        if (!json_is_string(v) || oci_digest_parse_str(json_string_value(v), &d) != 0) {
            ocisync__errf(err, errlen, "base config rootfs diff_id %zu is not a digest", i);
            return OCISYNC_EMANIFEST;
        }
    }
    if (json_array_size(ids) != base_layers) {
        ocisync__errf(err, errlen,
                      "base config lists %zu diff_ids but the base manifest has %zu layers",
                      json_array_size(ids), base_layers);
        return OCISYNC_EMANIFEST;
    }
    for (i = 0; i < n_layers; i++) {
        if ((r = append_new(ids, json_string(layers[i].diff_id.str))) != 0)
            return r;
    }
    return 0;
}

/*
 * Lines the base history up with its layers, then appends an entry per new
 * layer. Engines pair history entries without empty_layer with layers in
 * order, so a mismatch would attach descriptions to the wrong layers.
 */
static int apply_history(json_t *root, size_t base_layers, const struct oci_build_changes *ch,
                         const struct oci_build_layer *layers, size_t n_layers, const char *created,
                         char *err, size_t errlen)
{
    json_t *hist, *v, *e, *entry;
    size_t i, with_layer = 0;
    int r;

    hist = json_object_get(root, "history");
    if (hist == NULL || json_is_null(hist)) {
        hist = json_array();
        if ((r = set_new(root, "history", hist)) != 0)
            return r;
    }
    if (!json_is_array(hist)) {
        ocisync__errf(err, errlen, "base config: \"history\" is not an array");
        return OCISYNC_EMANIFEST;
    }
    json_array_foreach(hist, i, v)
    {
        if (!json_is_object(v)) {
            ocisync__errf(err, errlen, "base config: history entry %zu is not an object", i);
            return OCISYNC_EMANIFEST;
        }
        e = json_object_get(v, "empty_layer");
        if (e != NULL && !json_is_boolean(e)) {
            ocisync__errf(err, errlen,
                          "base config: history entry %zu empty_layer is not a boolean", i);
            return OCISYNC_EMANIFEST;
        }
        if (!json_is_true(e))
            with_layer++;
    }
    /* As BuildKit's normalizeLayersAndHistory: pad the front, or demote the oldest extras. */
    for (; with_layer < base_layers; with_layer++) {
        entry = json_pack("{s:s}", "comment", PLACEHOLDER_COMMENT);
        if (entry == NULL || json_array_insert_new(hist, 0, entry) != 0)
            return UV_ENOMEM;
    }
    json_array_foreach(hist, i, v)
    {
        if (with_layer <= base_layers)
            break;
        if (!json_is_true(json_object_get(v, "empty_layer"))) {
            if ((r = set_new(v, "empty_layer", json_true())) != 0)
                return r;
            with_layer--;
        }
    }

    if (ch->n_history > 0) {
        size_t layered = 0;
        for (i = 0; i < ch->n_history; i++)
            layered += !ch->history[i].empty_layer;
        if (layered != n_layers) {
            ocisync__errf(err, errlen, "the history lists %zu new layers but the build has %zu",
                          layered, n_layers);
            return OCISYNC_EUSAGE;
        }
    }
    for (i = 0; i < (ch->n_history > 0 ? ch->n_history : n_layers); i++) {
        const char *by = ch->n_history > 0 ? ch->history[i].created_by : layers[i].created_by;
        entry = json_object();
        if (entry == NULL || json_array_append_new(hist, entry) != 0)
            return UV_ENOMEM;
        if ((r = set_new(entry, "created", json_string(created))) != 0)
            return r;
        if (ch->n_history > 0 && ch->history[i].empty_layer &&
            (r = set_new(entry, "empty_layer", json_true())) != 0)
            return r;
        if (by != NULL) {
            char *text = sanitized_copy(by);
            if (text == NULL)
                return UV_ENOMEM;
            r = set_new(entry, "created_by", json_string(text));
            free(text);
            if (r != 0)
                return r;
        }
        if (ch->author != NULL && (r = set_new(entry, "author", json_string(ch->author))) != 0)
            return r;
        if ((r = set_new(entry, "comment", json_string(HISTORY_COMMENT))) != 0)
            return r;
    }
    return 0;
}

int oci_build_config(const char *base, size_t base_len, size_t base_layers,
                     const struct oci_platform *platform, const struct oci_build_changes *ch,
                     const struct oci_build_layer *layers, size_t n_layers, char **out,
                     size_t *out_len, char *err, size_t errlen)
{
    char created[32];
    json_t *root = NULL;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || out_len == NULL || platform == NULL || ch == NULL ||
        (base == NULL && base_len > 0)) {
        ocisync__errf(err, errlen, "oci_build_config: missing argument");
        return OCISYNC_EUSAGE;
    }
    *out = NULL;
    *out_len = 0;

    if ((r = check_platform(platform, "target", err, errlen)) != 0 ||
        (r = check_changes(ch, err, errlen)) != 0 ||
        (r = check_layers(layers, n_layers, base_layers, err, errlen)) != 0)
        goto out;
    if (base == NULL && base_layers > 0) {
        ocisync__errf(err, errlen, "an image built on scratch has no base layers, not %zu",
                      base_layers);
        r = OCISYNC_EUSAGE;
        goto out;
    }
    /*
     * Engines cannot run an image without a filesystem; from flags this is an
     * empty build, not a choice. A Dockerfile (an explicit history) may say
     * so: FROM scratch with only LABELs is an image docker builds too.
     */
    if (base == NULL && n_layers == 0 && ch->n_history == 0) {
        ocisync__errf(err, errlen, "an image built on scratch needs at least one layer");
        r = OCISYNC_EUSAGE;
        goto out;
    }

    if (base != NULL) {
        r = load_base_config(base, base_len, &root, err, errlen);
    } else {
        root = json_object();
        r = root == NULL ? UV_ENOMEM : 0;
    }
    if (r != 0)
        goto out;

    oci_time_rfc3339(ch->created, created, sizeof(created));
    if ((r = apply_platform(root, platform, err, errlen)) != 0 ||
        (r = apply_rootfs(root, base == NULL, base_layers, layers, n_layers, err, errlen)) != 0 ||
        (r = apply_config(root, ch, err, errlen)) != 0 ||
        (r = apply_history(root, base_layers, ch, layers, n_layers, created, err, errlen)) != 0)
        goto out;
    if ((r = set_new(root, "created", json_string(created))) != 0)
        goto out;
    if (ch->author != NULL)
        r = set_new(root, "author", json_string(ch->author));
    else
        json_object_del(root, "author");
    if (r != 0)
        goto out;

    r = dump(root, JSON_COMPACT | JSON_SORT_KEYS, OCI_CONFIG_MAX_SIZE, "image config", out, out_len,
             err, errlen);

out:
    json_decref(root);
    if (r == UV_ENOMEM)
        ocisync__errf(err, errlen, "out of memory writing the image config");
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Annotations
 */

/* The keys a builder computes and a user may therefore not give. */
static const char *const computed_keys[] = {
    OCI_ANN_BASE_NAME,
    OCI_ANN_BASE_DIGEST,
};

bool oci_annotation_is_computed(const char *key)
{
    for (size_t i = 0; key != NULL && i < sizeof(computed_keys) / sizeof(computed_keys[0]); i++) {
        if (strcmp(key, computed_keys[i]) == 0)
            return true;
    }
    return false;
}

/* The checks a key and a value get wherever they come from; what names the annotation. */
static int check_annotation(const char *key, const char *value, const char *what, char *err,
                            size_t errlen)
{
    struct ocisync__clipped c;
    const char *why;

    if (key[0] == '\0') {
        ocisync__errf(err, errlen, "%s has an empty key", what);
        return OCISYNC_EUSAGE;
    }
    why = text_problem(key, TXT_CTL | TXT_SPACE);
    if (why != NULL) {
        ocisync__errf(err, errlen, "%s key \"%s\" %s", what, ocisync__clip(key, ERR_QUOTE_MAX, &c),
                      why);
        return OCISYNC_EUSAGE;
    }
    why = text_problem(value, 0);
    if (why != NULL) {
        ocisync__errf(err, errlen, "%s \"%s\": the value %s", what,
                      ocisync__clip(key, ERR_QUOTE_MAX, &c), why);
        return OCISYNC_EUSAGE;
    }
    return 0;
}

int oci_annotation_parse(const char *kv, struct oci_annotation *out, char *keybuf, size_t keylen,
                         char *err, size_t errlen)
{
    struct ocisync__clipped c;
    const char *eq;
    size_t n;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (kv == NULL || out == NULL || keybuf == NULL || keylen == 0) {
        ocisync__errf(err, errlen, "oci_annotation_parse: missing argument");
        return OCISYNC_EUSAGE;
    }
    out->key = out->value = NULL;
    eq = strchr(kv, '=');
    if (eq == NULL) {
        ocisync__errf(err, errlen, "annotation \"%s\" has no '=': write it as KEY=VALUE",
                      ocisync__clip(kv, ERR_QUOTE_MAX, &c));
        return OCISYNC_EUSAGE;
    }
    n = (size_t)(eq - kv);
    if (n >= keylen) {
        ocisync__errf(err, errlen, "annotation key \"%.*s...\" is longer than %zu characters", 40,
                      kv, keylen - 1);
        return OCISYNC_EUSAGE;
    }
    memcpy(keybuf, kv, n);
    keybuf[n] = '\0';
    r = check_annotation(keybuf, eq + 1, "annotation", err, errlen);
    if (r != 0)
        return r;
    if (oci_annotation_is_computed(keybuf)) {
        ocisync__errf(err, errlen, "annotation \"%s\" is set by ocisync and cannot be given",
                      keybuf);
        return OCISYNC_EUSAGE;
    }
    out->key = keybuf;
    out->value = eq + 1;
    return 0;
}

/*
 * Checks the annotations of a manifest or index (doc) and adds them to root.
 * has_base is false for an image on scratch, which has no base to name.
 */
static int add_annotations(json_t *root, const struct oci_annotation *ann, size_t n, bool docker,
                           bool has_base, const char *doc, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    struct oci_digest d;
    char what[64];
    json_t *obj;
    int r;

    if (n == 0)
        return 0;
    if (ann == NULL) {
        ocisync__errf(err, errlen, "annotation list is NULL");
        return OCISYNC_EUSAGE;
    }
    if (n > OCI_BUILD_MAX_ANNOTATIONS) {
        ocisync__errf(err, errlen, "%zu annotations, over the limit of %d", n,
                      OCI_BUILD_MAX_ANNOTATIONS);
        return OCISYNC_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "annotation %zu", i);
        if (ann[i].key == NULL || ann[i].value == NULL) {
            ocisync__errf(err, errlen, "%s has no %s", what, ann[i].key == NULL ? "key" : "value");
            return OCISYNC_EUSAGE;
        }
        if ((r = check_annotation(ann[i].key, ann[i].value, what, err, errlen)) != 0)
            return r;
        /* At most OCI_BUILD_MAX_ANNOTATIONS squared comparisons: a fraction of a millisecond. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ann[i].key, ann[j].key) == 0) {
                ocisync__errf(err, errlen, "annotation \"%s\" is given twice",
                              ocisync__clip(ann[i].key, ERR_QUOTE_MAX, &c));
                return OCISYNC_EUSAGE;
            }
        }
        if (!has_base && oci_annotation_is_computed(ann[i].key)) {
            ocisync__errf(err, errlen,
                          "annotation \"%s\" names a base image, but the image is "
                          "built on scratch",
                          ann[i].key);
            return OCISYNC_EUSAGE;
        }
        if (strcmp(ann[i].key, OCI_ANN_BASE_DIGEST) == 0 &&
            oci_digest_parse_str(ann[i].value, &d) != 0) {
            ocisync__errf(err, errlen, "annotation \"%s\" is not a digest: \"%s\"", ann[i].key,
                          ocisync__clip(ann[i].value, ERR_QUOTE_MAX, &c));
            return OCISYNC_EUSAGE;
        }
    }
    /* BuildKit refuses them too: Docker's formats define no annotations, and some readers choke. */
    if (docker) {
        ocisync__errf(err, errlen,
                      "a Docker %s cannot carry annotations (\"%s\" given); use --format oci", doc,
                      ocisync__clip(ann[0].key, ERR_QUOTE_MAX, &c));
        return OCISYNC_EUSAGE;
    }

    obj = json_object();
    if ((r = set_new(root, "annotations", obj)) != 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if ((r = set_new(obj, ann[i].key, json_string(ann[i].value))) != 0)
            return r;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The manifest and the index
 */

/* {"mediaType": mt, "digest": d, "size": size}, the order the specs' examples use. */
static json_t *descriptor(const char *mt, const struct oci_digest *d, uint64_t size)
{
    return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", d->str, "size",
                     (json_int_t)size);
}

/*
 * Appends the base manifest's layers to arr: each descriptor object as the
 * base wrote it, with only its media type renamed into the target family.
 */
static int copy_base_layers(const char *base, size_t len, bool docker, json_t *arr, size_t n_new,
                            char *err, size_t errlen)
{
    struct oci_manifest m;
    json_t *root = NULL, *layers, *copy;
    const char *name;
    char msg[256], what[64];
    int r;

    r = oci_manifest_parse(NULL, base, len, &m, msg, sizeof(msg));
    if (r != 0) {
        ocisync__errf(err, errlen, "base manifest: %s", msg);
        return r;
    }
    if (m.kind != OCI_KIND_IMAGE) {
        ocisync__errf(err, errlen, "base manifest is an index, not the manifest of one platform");
        r = OCISYNC_EMANIFEST;
        goto out;
    }
    if (n_new > OCI_MANIFEST_MAX_LAYERS - m.n_layers) {
        ocisync__errf(err, errlen, "%zu base layers and %zu new ones are over the limit of %d",
                      m.n_layers, n_new, OCI_MANIFEST_MAX_LAYERS);
        r = OCISYNC_ETOOBIG;
        goto out;
    }
    /* The same bytes through the same parser: element i is m.layers[i]. */
    root = json_loadb(base, len, JSON_REJECT_DUPLICATES, NULL);
    layers = json_object_get(root, "layers");
    if (root == NULL || !json_is_array(layers) || json_array_size(layers) != m.n_layers) {
        r = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        snprintf(what, sizeof(what), "base layer %zu", i);
        r = layer_type_for(m.layers[i].media_type, docker, false, what, &name, err, errlen);
        if (r != 0)
            goto out;
        copy = json_deep_copy(json_array_get(layers, i));
        if ((r = append_new(arr, copy)) != 0)
            goto out;
        if (strcmp(name, m.layers[i].media_type) != 0 &&
            (r = set_new(copy, "mediaType", json_string(name))) != 0)
            goto out;
    }

out:
    json_decref(root);
    oci_manifest_free(&m);
    return r;
}

int oci_build_manifest(const char *base_manifest, size_t base_len,
                       const struct oci_digest *config_digest, size_t config_size, bool docker,
                       const struct oci_build_layer *layers, size_t n_layers,
                       const struct oci_annotation *ann, size_t n_ann, char **out, size_t *out_len,
                       char *err, size_t errlen)
{
    json_t *root = NULL, *arr;
    const char *name;
    char what[64];
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || out_len == NULL || config_digest == NULL ||
        (base_manifest == NULL && base_len > 0)) {
        ocisync__errf(err, errlen, "oci_build_manifest: missing argument");
        return OCISYNC_EUSAGE;
    }
    *out = NULL;
    *out_len = 0;
    if (!digest_ok(config_digest)) {
        ocisync__errf(err, errlen, "the config digest is invalid");
        return OCISYNC_EUSAGE;
    }
    if ((uint64_t)config_size > (uint64_t)INT64_MAX) {
        ocisync__errf(err, errlen, "the config size %zu is too large", config_size);
        return OCISYNC_EUSAGE;
    }
    if ((r = check_layers(layers, n_layers, 0, err, errlen)) != 0)
        return r;

    root = json_pack(
        "{s:i, s:s, s:o, s:[]}", "schemaVersion", 2, "mediaType",
        docker ? OCI_MT_DOCKER_MANIFEST : OCI_MT_OCI_MANIFEST, "config",
        descriptor(docker ? OCI_MT_DOCKER_CONFIG : OCI_MT_OCI_CONFIG, config_digest, config_size),
        "layers");
    if (root == NULL) {
        r = UV_ENOMEM;
        goto out;
    }
    arr = json_object_get(root, "layers");
    if (base_manifest != NULL &&
        (r = copy_base_layers(base_manifest, base_len, docker, arr, n_layers, err, errlen)) != 0)
        goto out;
    for (size_t i = 0; i < n_layers; i++) {
        snprintf(what, sizeof(what), "new layer %zu", i);
        r = layer_type_for(layers[i].media_type, docker, true, what, &name, err, errlen);
        if (r != 0)
            goto out;
        if ((r = append_new(arr, descriptor(name, &layers[i].digest, layers[i].size))) != 0)
            goto out;
    }
    if ((r = add_annotations(root, ann, n_ann, docker, base_manifest != NULL, "manifest", err,
                             errlen)) != 0)
        goto out;

    r = dump(root, JSON_COMPACT | JSON_PRESERVE_ORDER, OCI_MANIFEST_MAX_SIZE, "manifest", out,
             out_len, err, errlen);

out:
    json_decref(root);
    if (r == UV_ENOMEM)
        ocisync__errf(err, errlen, "out of memory writing the manifest");
    return r;
}

static bool same_platform(const struct oci_platform *a, const struct oci_platform *b)
{
    return strcmp(a->os, b->os) == 0 && strcmp(a->arch, b->arch) == 0 &&
           strcmp(a->variant, b->variant) == 0 && strcmp(a->os_version, b->os_version) == 0;
}

int oci_build_index(const struct oci_index_entry *m, size_t n, bool docker,
                    const struct oci_annotation *ann, size_t n_ann, char **out, size_t *out_len,
                    char *err, size_t errlen)
{
    const char *want_mt = docker ? OCI_MT_DOCKER_MANIFEST : OCI_MT_OCI_MANIFEST;
    struct ocisync__clipped c;
    json_t *root = NULL, *arr, *desc, *plat;
    char what[64], pf[128];
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || out_len == NULL || (m == NULL && n > 0)) {
        ocisync__errf(err, errlen, "oci_build_index: missing argument");
        return OCISYNC_EUSAGE;
    }
    *out = NULL;
    *out_len = 0;
    if (n == 0) {
        ocisync__errf(err, errlen, "an index needs at least one manifest");
        return OCISYNC_EUSAGE;
    }
    if (n > OCI_INDEX_MAX_MANIFESTS) {
        ocisync__errf(err, errlen, "%zu manifests, over the index limit of %d", n,
                      OCI_INDEX_MAX_MANIFESTS);
        return OCISYNC_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        const char *mt = m[i].media_type != NULL ? m[i].media_type : want_mt;
        snprintf(what, sizeof(what), "index entry %zu", i);
        if (!digest_ok(&m[i].digest)) {
            ocisync__errf(err, errlen, "%s has an invalid digest", what);
            return OCISYNC_EUSAGE;
        }
        if ((uint64_t)m[i].size > (uint64_t)INT64_MAX) {
            ocisync__errf(err, errlen, "%s has size %zu, too large", what, m[i].size);
            return OCISYNC_EUSAGE;
        }
        /* One family throughout: engines that read one rarely expect the other inside it. */
        if (strcmp(mt, want_mt) != 0) {
            ocisync__errf(err, errlen, "%s has media type \"%s\"; a%s lists %s", what,
                          ocisync__clip(mt, ERR_QUOTE_MAX, &c),
                          docker ? " Docker manifest list" : "n OCI index", want_mt);
            return OCISYNC_EUSAGE;
        }
        if ((r = check_platform(&m[i].platform, what, err, errlen)) != 0)
            return r;
        for (size_t j = 0; j < i; j++) {
            if (same_platform(&m[i].platform, &m[j].platform)) {
                oci_platform_format(&m[i].platform, pf, sizeof(pf));
                ocisync__errf(err, errlen, "index entries %zu and %zu are both for %s", j, i, pf);
                return OCISYNC_EUSAGE;
            }
        }
    }

    root = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
                     docker ? OCI_MT_DOCKER_LIST : OCI_MT_OCI_INDEX, "manifests");
    if (root == NULL) {
        r = UV_ENOMEM;
        goto out;
    }
    arr = json_object_get(root, "manifests");
    for (size_t i = 0; i < n; i++) {
        const struct oci_platform *p = &m[i].platform;
        desc = descriptor(want_mt, &m[i].digest, m[i].size);
        if ((r = append_new(arr, desc)) != 0)
            goto out;
        plat = json_pack("{s:s, s:s}", "architecture", p->arch, "os", p->os);
        if ((r = set_new(desc, "platform", plat)) != 0)
            goto out;
        if (p->os_version[0] != '\0' &&
            (r = set_new(plat, "os.version", json_string(p->os_version))) != 0)
            goto out;
        if (p->variant[0] != '\0' && (r = set_new(plat, "variant", json_string(p->variant))) != 0)
            goto out;
    }
    if ((r = add_annotations(root, ann, n_ann, docker, true, docker ? "manifest list" : "index",
                             err, errlen)) != 0)
        goto out;

    r = dump(root, JSON_COMPACT | JSON_PRESERVE_ORDER, OCI_MANIFEST_MAX_SIZE, "index", out, out_len,
             err, errlen);

out:
    json_decref(root);
    if (r == UV_ENOMEM)
        ocisync__errf(err, errlen, "out of memory writing the index");
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Time
 */

void oci_time_rfc3339(int64_t t, char *buf, size_t len)
{
    int64_t days, secs, era, doe, yoe, doy, mp, y, m, d;

    if (buf == NULL || len == 0)
        return;
    if (t < TIME_MIN)
        t = TIME_MIN;
    if (t > TIME_MAX)
        t = TIME_MAX;
    days = t / 86400;
    secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    /*
     * Days to a proleptic Gregorian date in 400-year eras counted from
     * 0000-03-01 (Howard Hinnant's civil_from_days): no gmtime, so neither
     * the time zone nor a 32-bit time_t can get in the way.
     */
    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);
    snprintf(buf, len, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)y, (long long)m,
             (long long)d, (long long)(secs / 3600), (long long)(secs / 60 % 60),
             (long long)(secs % 60));
}
