/*
 * index create / append: single-platform images (or the children of
 * indexes) from any repositories, joined into one OCI image index that is
 * pushed under every tag.
 *
 * 1. Resolve: each source's manifest (and, for an image, its config, whose
 *    os, architecture, variant, os.version and os.features become the
 *    entry's platform), on a session of its own, one small GET at a time.
 *    With append, the document at the first tag comes first. Two entries
 *    for one platform are an error unless replace says the later wins.
 * 2. Children: each child not already in a tag's repository is copied
 *    there by digest with the copy engine (blobs mounted within a
 *    registry, relayed across registries; one run for all).
 * 3. The index, written here, goes to each tag last (a HEAD first: a tag
 *    that already names it is left alone). A failure before this step
 *    leaves every tag as it was.
 */
#include "common/json_depth.h"
#include "common/log.h"
#include "engine/copy.h"
#include "engine/endpoint.h"
#include "engine/stop.h"
#include "engine/transport.h"
#include "oci/imgconfig.h"
#include "oci/oci.h"
#include "ocisync.h"
#include "proto/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOURCES 64
#define MAX_TAGS 16
#define MAX_ANNOTATIONS 64
/* Configs are read whole to find a platform; deeper nesting than this is not a config. */
#define CONFIG_MAX_DEPTH 64

/* One entry of the index being made. */
struct child {
    struct oci_ref from; /* the repository it is read from; digest: the child's */
    const struct ocisync_registry_opts *from_opts;
    json_t *desc;    /* owned: the descriptor as the index lists it */
    char key[320];   /* what makes two platforms the same; "" for none */
    char label[192]; /* "os/arch[/variant] [os.version]" */
    char media_type[OCI_MEDIA_TYPE_MAX];
    struct oci_digest digest;
    int64_t size;
    const char *given; /* the source as the caller named it */
};

struct ix {
    const struct ocisync_index_opts *o;
    struct ocisync_index_result *res;
    struct engine_session s;
    bool s_open;
    struct oci_ref tags[MAX_TAGS];
    struct child *kids; /* owned, n_kids of OCI_INDEX_MAX_MANIFESTS */
    size_t n_kids;
    json_t *ann; /* owned: the index's annotations */
};

static void seterr(struct ix *x, const char *fmt, const char *a, const char *b)
{
    if (x->res->error[0] == '\0')
        snprintf(x->res->error, sizeof(x->res->error), fmt, a, b);
}

/* A repository's endpoint on the session, with scope actions. */
static int open_repo(struct ix *x, const struct oci_ref *ref,
                     const struct ocisync_registry_opts *ro, const char *actions,
                     struct proto_registry **reg, char *msg, size_t msglen)
{
    int err = engine_endpoint_get(&x->s.endpoints, ref->registry, ref->repository, ro,
                                  ro == &x->o->copy.dst, reg, msg, msglen);
    if (err == 0)
        snprintf((*reg)->scope, sizeof((*reg)->scope), "repository:%s:%s", ref->repository,
                 actions);
    return err;
}

static void close_repo(struct proto_registry *reg)
{
    if (reg != NULL) {
        proto_registry_dispose(reg);
        free(reg);
    }
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/*
 * The key and label of a descriptor's platform object. arm64 without a
 * variant is arm64/v8, as containerd matches them.
 */
static void platform_names(json_t *p, char *key, size_t keylen, char *label, size_t labellen)
{
    const char *os = jstr(p, "os"), *arch = jstr(p, "architecture"), *var = jstr(p, "variant");
    const char *osv = jstr(p, "os.version");
    json_t *feat = json_object_get(p, "os.features"), *f;
    size_t i, n;
    if (strcmp(arch, "arm64") == 0 && strcmp(var, "v8") == 0)
        var = "";
    n = (size_t)snprintf(key, keylen, "%s/%s/%s|%s|", os, arch, var, osv);
    json_array_foreach(feat, i, f)
    {
        if (n < keylen)
            n += (size_t)snprintf(key + n, keylen - n, "%s,",
                                  json_is_string(f) ? json_string_value(f) : "");
    }
    snprintf(label, labellen, "%s/%s%s%s%s%s", os, arch, *jstr(p, "variant") ? "/" : "",
             jstr(p, "variant"), *osv ? " " : "", osv);
}

/*
 * The platform object of an image from its config: architecture, os and,
 * when present, os.version, os.features and variant. NULL with msg set when
 * the config has no os or architecture.
 */
static json_t *config_platform(const char *cfg, size_t len, char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *root = NULL, *p = NULL, *v;
    if (ocisync__json_too_deep(cfg, len, CONFIG_MAX_DEPTH)) {
        snprintf(msg, msglen, "its config nests deeper than %d levels", CONFIG_MAX_DEPTH);
        return NULL;
    }
    root = json_loadb(cfg, len, 0, &jerr);
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "its config is not a JSON object");
        goto out;
    }
    if (!json_is_string(json_object_get(root, "os")) ||
        !json_is_string(json_object_get(root, "architecture")) || *jstr(root, "os") == '\0' ||
        *jstr(root, "architecture") == '\0') {
        snprintf(msg, msglen, "its config names no os and architecture");
        goto out;
    }
    p = json_object();
    if (p == NULL)
        goto out;
    json_object_set(p, "architecture", json_object_get(root, "architecture"));
    json_object_set(p, "os", json_object_get(root, "os"));
    if (json_is_string(v = json_object_get(root, "os.version")))
        json_object_set(p, "os.version", v);
    if (json_is_array(v = json_object_get(root, "os.features")) && json_array_size(v) > 0)
        json_object_set_new(p, "os.features", json_deep_copy(v));
    if (json_is_string(v = json_object_get(root, "variant")) && *json_string_value(v) != '\0')
        json_object_set(p, "variant", v);
out:
    json_decref(root);
    return p;
}

/* Adds c (taken over) to the index, or settles a second entry for its platform. */
static int add_child(struct ix *x, struct child *c)
{
    char msg[1024];
    for (size_t i = 0; c->key[0] != '\0' && i < x->n_kids; i++) {
        struct child *k = &x->kids[i];
        if (strcmp(k->key, c->key) != 0)
            continue;
        if (oci_digest_equal(&k->digest, &c->digest)) {
            LOG_DEBUG("index: %s %s given again by %s", c->label, c->digest.str, c->given);
            json_decref(c->desc);
            return 0;
        }
        if (!x->o->replace) {
            snprintf(msg, sizeof(msg),
                     "platform %s is given twice: by %s (%s) and by %s (%s); pass --replace "
                     "to keep the later one",
                     c->label, k->given, k->digest.str, c->given, c->digest.str);
            json_decref(c->desc);
            seterr(x, "%s%s", msg, "");
            return OCISYNC_EUSAGE;
        }
        LOG_DEBUG("index: %s from %s replaces %s", c->label, c->given, k->given);
        json_decref(k->desc);
        *k = *c;
        return 0;
    }
    if (x->n_kids == OCI_INDEX_MAX_MANIFESTS) {
        json_decref(c->desc);
        snprintf(msg, sizeof(msg), "an index holds at most %d manifests", OCI_INDEX_MAX_MANIFESTS);
        seterr(x, "%s%s", msg, "");
        return OCISYNC_ETOOBIG;
    }
    x->kids[x->n_kids++] = *c;
    return 0;
}

/*
 * The platform of the image manifest raw (from ref's repository), read
 * from its config. *plat is the caller's.
 */
static int image_platform(struct ix *x, struct proto_registry *reg, const struct oci_ref *ref,
                          const char *raw, size_t len, const char *ct, json_t **plat, char *msg,
                          size_t msglen)
{
    struct oci_manifest m;
    char *cfg = NULL;
    size_t cfg_len = 0;
    struct oci_digest got;
    int err = oci_manifest_parse(ct, raw, len, &m, msg, msglen);
    if (err != 0)
        return err;
    if (m.kind != OCI_KIND_IMAGE) {
        snprintf(msg, msglen, "an index inside an index is not taken");
        err = OCISYNC_EMEDIATYPE;
        goto out;
    }
    err = engine_session_get(&x->s, reg, ref->repository, m.config.digest.str, true, &cfg, &cfg_len,
                             NULL, 0, msg, msglen);
    if (err != 0)
        goto out;
    err = oci_digest_buffer(m.config.digest.alg, cfg, cfg_len, &got);
    if (err == 0 && !oci_digest_equal(&got, &m.config.digest)) {
        snprintf(msg, msglen, "its config %s does not match its digest", m.config.digest.str);
        err = OCISYNC_EDIGESTMISMATCH;
    }
    if (err == 0 && (*plat = config_platform(cfg, cfg_len, msg, msglen)) == NULL)
        err = OCISYNC_EMANIFEST;
out:
    free(cfg);
    oci_manifest_free(&m);
    return err;
}

/* A descriptor for an entry: mediaType, digest, size and platform (taken over). */
static json_t *make_desc(const char *mt, const struct oci_digest *d, int64_t size, json_t *plat)
{
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(plat);
        return NULL;
    }
    json_object_set_new(o, "mediaType", json_string(mt));
    json_object_set_new(o, "digest", json_string(d->str));
    json_object_set_new(o, "size", json_integer(size));
    if (plat != NULL)
        json_object_set_new(o, "platform", plat);
    return o;
}

/*
 * One source: an image becomes one entry, an index its children. existing
 * marks the document at the first tag (append): its descriptors are kept as
 * they are, annotations and platformless entries included, and so are its
 * annotations.
 */
static int add_source(struct ix *x, const char *given, const struct oci_ref *ref,
                      const struct ocisync_registry_opts *ro, bool existing)
{
    struct proto_registry *reg = NULL;
    char *raw = NULL, *craw = NULL;
    size_t len = 0, clen = 0;
    char ct[OCI_MEDIA_TYPE_MAX], cct[OCI_MEDIA_TYPE_MAX], msg[1024], where[700];
    struct oci_manifest m;
    bool parsed = false;
    json_t *root = NULL, *e, *plat = NULL;
    struct oci_digest d;
    size_t i;
    int err;

    snprintf(where, sizeof(where), "%s", given);
    err = open_repo(x, ref, ro, existing ? "pull,push" : "pull", &reg, msg, sizeof(msg));
    if (err == 0)
        err = engine_session_get(&x->s, reg, ref->repository, oci_ref_target(ref), false, &raw,
                                 &len, ct, sizeof(ct), msg, sizeof(msg));
    if (err == OCISYNC_ENOTFOUND && existing) {
        seterr(x, "%s: nothing to append to (%s); use index create", where, msg);
        goto out;
    }
    if (err == 0)
        err = oci_manifest_parse(ct[0] ? ct : NULL, raw, len, &m, msg, sizeof(msg));
    if (err != 0) {
        seterr(x, "%s: %s", where, msg);
        goto out;
    }
    parsed = true;
    err = oci_digest_buffer(ref->has_digest ? ref->digest.alg : OCI_DIGEST_SHA256, raw, len, &d);
    if (err != 0)
        goto out;
    if (m.kind == OCI_KIND_IMAGE) {
        struct child c;
        memset(&c, 0, sizeof(c));
        err = image_platform(x, reg, ref, raw, len, ct[0] ? ct : NULL, &plat, msg, sizeof(msg));
        if (err != 0) {
            seterr(x, "%s: %s", where, msg);
            goto out;
        }
        c.from = *ref;
        c.from.has_digest = true;
        c.from.digest = d;
        c.from.tag[0] = '\0';
        c.from_opts = ro;
        c.given = given;
        c.digest = d;
        c.size = (int64_t)len;
        snprintf(c.media_type, sizeof(c.media_type), "%s", m.media_type[0] ? m.media_type : ct);
        platform_names(plat, c.key, sizeof(c.key), c.label, sizeof(c.label));
        c.desc = make_desc(c.media_type, &d, c.size, plat);
        plat = NULL;
        if (c.desc == NULL) {
            err = UV_ENOMEM;
            goto out;
        }
        err = add_child(x, &c);
        goto out;
    }
    /* An index: its descriptors, in order, read again with jansson for their platform objects. */
    root = json_loadb(raw, len, 0, NULL);
    if (root == NULL) {
        err = OCISYNC_EJSON;
        goto out;
    }
    if (existing && json_is_object(json_object_get(root, "annotations")))
        json_object_update(x->ann, json_object_get(root, "annotations"));
    json_array_foreach(json_object_get(root, "manifests"), i, e)
    {
        struct child c;
        const struct oci_descriptor *md;
        json_t *p = json_object_get(e, "platform");
        if (i >= m.n_manifests)
            break;
        md = &m.manifests[i];
        memset(&c, 0, sizeof(c));
        if (!existing && json_is_object(p) && strcmp(jstr(p, "os"), "unknown") == 0 &&
            strcmp(jstr(p, "architecture"), "unknown") == 0) {
            LOG_DEBUG("index: %s: %s is for unknown/unknown (an attestation?): left out", where,
                      md->digest.str);
            continue;
        }
        if (!existing && oci_media_type_is_index(md->media_type)) {
            seterr(x, "%s: child %s is an index; an index inside an index is not taken", where,
                   md->digest.str);
            err = OCISYNC_EMEDIATYPE;
            goto out;
        }
        c.from = *ref;
        c.from.has_digest = true;
        c.from.digest = md->digest;
        c.from.tag[0] = '\0';
        c.from_opts = ro;
        c.given = given;
        c.digest = md->digest;
        c.size = md->size;
        snprintf(c.media_type, sizeof(c.media_type), "%s", md->media_type);
        if (json_is_object(p)) {
            plat = json_deep_copy(p);
        } else if (!existing) {
            /* No platform listed: the child's own config says. */
            err = engine_session_get(&x->s, reg, ref->repository, md->digest.str, false, &craw,
                                     &clen, cct, sizeof(cct), msg, sizeof(msg));
            if (err == 0)
                err = image_platform(x, reg, ref, craw, clen, cct[0] ? cct : NULL, &plat, msg,
                                     sizeof(msg));
            free(craw);
            craw = NULL;
            if (err != 0) {
                snprintf(where, sizeof(where), "%s: child %s", given, md->digest.str);
                seterr(x, "%s: %s", where, msg);
                goto out;
            }
        }
        if (plat != NULL)
            platform_names(plat, c.key, sizeof(c.key), c.label, sizeof(c.label));
        else
            snprintf(c.label, sizeof(c.label), "(no platform)");
        if (existing) {
            c.desc = json_deep_copy(e);
            json_decref(plat);
        } else {
            c.desc = make_desc(c.media_type, &c.digest, c.size, plat);
        }
        plat = NULL;
        if (c.desc == NULL) {
            err = UV_ENOMEM;
            goto out;
        }
        err = add_child(x, &c);
        if (err != 0)
            goto out;
    }
out:
    json_decref(plat);
    json_decref(root);
    if (parsed)
        oci_manifest_free(&m);
    free(raw);
    close_repo(reg);
    return err;
}

/* Step 2: every child into every tag's repository that lacks it, in one copy run. */
static int copy_children(struct ix *x)
{
    const struct ocisync_index_opts *o = x->o;
    struct engine_copy_item *items = NULL;
    struct engine_transport *sides = NULL;
    struct ocisync_copy_result *cres = NULL;
    char(*names)[2][600] = NULL;
    size_t n = 0, cap = o->n_tags * x->n_kids;
    int err = 0;

    if (cap == 0)
        return 0;
    items = calloc(cap, sizeof(*items));
    sides = calloc(2 * cap, sizeof(*sides));
    cres = calloc(cap, sizeof(*cres));
    names = calloc(cap, sizeof(*names));
    if (items == NULL || sides == NULL || cres == NULL || names == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    for (size_t t = 0; t < o->n_tags; t++) {
        const struct oci_ref *dst = &x->tags[t];
        bool seen = false;
        /* Two tags of one repository need the children there once. */
        for (size_t u = 0; u < t && !seen; u++)
            seen = strcmp(x->tags[u].registry, dst->registry) == 0 &&
                   strcmp(x->tags[u].repository, dst->repository) == 0;
        if (seen)
            continue;
        for (size_t i = 0; i < x->n_kids; i++) {
            struct child *c = &x->kids[i];
            struct engine_transport *from = &sides[2 * n], *to = &sides[2 * n + 1];
            if (strcmp(c->from.registry, dst->registry) == 0 &&
                strcmp(c->from.repository, dst->repository) == 0)
                continue;
            from->kind = to->kind = ENGINE_TRANSPORT_REGISTRY;
            from->ref = c->from;
            to->ref = *dst;
            to->ref.tag[0] = '\0';
            to->ref.has_digest = true;
            to->ref.digest = c->digest;
            oci_ref_format(&from->ref, names[n][0], sizeof(names[n][0]));
            oci_ref_format(&to->ref, names[n][1], sizeof(names[n][1]));
            items[n].it.src = names[n][0];
            items[n].it.dst = names[n][1];
            items[n].it.src_opts = c->from_opts;
            items[n].src = from;
            items[n].dst = to;
            n++;
        }
    }
    if (n > 0) {
        struct ocisync_copy_opts copts = o->copy;
        copts.platforms = NULL;
        copts.n_platforms = 0;
        copts.referrers = 0;
        err = engine_copy_many(items, n, &copts, cres);
        for (size_t i = 0; i < n; i++) {
            x->res->blobs_copied += cres[i].blobs_copied;
            x->res->blobs_mounted += cres[i].blobs_mounted;
            x->res->blobs_skipped += cres[i].blobs_skipped;
            if (err != 0 && cres[i].error[0] != '\0')
                seterr(x, "child %s: %s", names[i][0], cres[i].error);
        }
        if (err != 0)
            seterr(x, "children: %s%s", ocisync_strerror(err), "");
    }
out:
    free(items);
    free(sides);
    free(cres);
    free(names);
    return err;
}

/* The index document (malloc'ed, compact JSON) over the children, with the annotations. */
static int make_index(struct ix *x, char **out, size_t *len)
{
    json_t *root = json_object(), *arr = json_array();
    int err = 0;
    *out = NULL;
    if (root == NULL || arr == NULL) {
        json_decref(root);
        json_decref(arr);
        return UV_ENOMEM;
    }
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string(OCI_MT_OCI_INDEX));
    for (size_t i = 0; i < x->n_kids; i++)
        json_array_append(arr, x->kids[i].desc);
    json_object_set_new(root, "manifests", arr);
    if (json_object_size(x->ann) > 0)
        json_object_set(root, "annotations", x->ann);
    *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (*out == NULL)
        return UV_ENOMEM;
    *len = strlen(*out);
    if (*len > OCI_MANIFEST_MAX_SIZE) {
        seterr(x, "the index would be larger than %s%s", "4 MiB", "");
        err = OCISYNC_ETOOBIG;
    }
    return err;
}

/* Step 3: the index under each tag that does not name it yet. */
static int push_index(struct ix *x, const char *doc, size_t len, const struct oci_digest *d)
{
    char msg[1024], name[700];
    int err = 0;
    for (size_t t = 0; t < x->o->n_tags && err == 0; t++) {
        struct oci_ref *tag = &x->tags[t];
        struct proto_registry *reg = NULL;
        struct proto_reg_op op;
        const char *dcd = NULL;
        oci_ref_format(tag, name, sizeof(name));
        err = open_repo(x, tag, &x->o->copy.dst, "pull,push", &reg, msg, sizeof(msg));
        if (err == 0 && proto_reg_manifest_get(&op, reg, tag->repository, tag->tag, true) == 0) {
            if (engine_session_run(&x->s, &op, msg, sizeof(msg)) == 0)
                dcd = proto_reg_header(&op, "Docker-Content-Digest");
            if (dcd != NULL && strcmp(dcd, d->str) == 0) {
                LOG_DEBUG("index: %s already names %s", name, d->str);
                proto_reg_op_dispose(&op);
                close_repo(reg);
                continue;
            }
            proto_reg_op_dispose(&op);
        }
        if (err == 0)
            err = proto_reg_manifest_put(&op, reg, tag->repository, tag->tag, OCI_MT_OCI_INDEX, doc,
                                         len);
        if (err == 0) {
            err = engine_session_run(&x->s, &op, msg, sizeof(msg));
            proto_reg_op_dispose(&op);
        }
        if (err == 0)
            x->res->tags_changed++;
        else
            seterr(x, "%s: %s", name, msg[0] ? msg : ocisync_strerror(err));
        close_repo(reg);
    }
    return err;
}

static int fill_result(struct ix *x)
{
    struct ocisync_index_result *res = x->res;
    res->entries = calloc(x->n_kids > 0 ? x->n_kids : 1, sizeof(*res->entries));
    if (res->entries == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < x->n_kids; i++) {
        struct child *c = &x->kids[i];
        struct ocisync_index_entry *e = &res->entries[i];
        snprintf(e->digest, sizeof(e->digest), "%s", c->digest.str);
        snprintf(e->media_type, sizeof(e->media_type), "%s", c->media_type);
        e->size = c->size;
        snprintf(e->platform, sizeof(e->platform), "%s", c->label);
        oci_ref_format(&c->from, e->source, sizeof(e->source));
    }
    res->n_entries = x->n_kids;
    return 0;
}

/* Checks the options and parses the tags and annotations (step 0: nothing sent yet). */
static int check_opts(struct ix *x)
{
    const struct ocisync_index_opts *o = x->o;
    char msg[1024], key[256];
    int err;
    if (o->n_tags == 0 || o->n_tags > MAX_TAGS) {
        snprintf(msg, sizeof(msg), "give from 1 to %d tags, not %zu", MAX_TAGS, o->n_tags);
        seterr(x, "%s%s", msg, "");
        return OCISYNC_EUSAGE;
    }
    if ((o->n_sources == 0 && !o->append) || o->n_sources > MAX_SOURCES) {
        snprintf(msg, sizeof(msg), "give from 1 to %d sources, not %zu", MAX_SOURCES, o->n_sources);
        seterr(x, "%s%s", msg, "");
        return OCISYNC_EUSAGE;
    }
    if (o->n_annotations > MAX_ANNOTATIONS) {
        snprintf(msg, sizeof(msg), "at most %d annotations", MAX_ANNOTATIONS);
        seterr(x, "%s%s", msg, "");
        return OCISYNC_EUSAGE;
    }
    for (size_t t = 0; t < o->n_tags; t++) {
        err = oci_ref_parse(o->tags[t], &x->tags[t], msg, sizeof(msg));
        if (err == 0 && (x->tags[t].has_digest || x->tags[t].tag[0] == '\0')) {
            snprintf(msg, sizeof(msg), "the index goes to a tag, not a digest");
            err = OCISYNC_EUSAGE;
        }
        if (err != 0) {
            seterr(x, "--tag %s: %s", o->tags[t], msg);
            return err;
        }
    }
    for (size_t i = 0; i < o->n_annotations; i++) {
        struct oci_annotation a;
        err = oci_annotation_parse(o->annotations[i], &a, key, sizeof(key), msg, sizeof(msg));
        if (err != 0) {
            seterr(x, "--annotation: %s%s", msg, "");
            return err;
        }
    }
    return 0;
}

int ocisync_index(const struct ocisync_index_opts *o, struct ocisync_index_result *result)
{
    struct ocisync_index_result local;
    struct ocisync_index_result *res = result != NULL ? result : &local;
    struct ix x;
    char *doc = NULL;
    size_t doc_len = 0;
    struct oci_digest d;
    int err;

    memset(res, 0, sizeof(*res));
    memset(&x, 0, sizeof(x));
    x.o = o;
    x.res = res;
    if (o->copy.debug)
        ocisync_set_debug(1);
    err = check_opts(&x);
    if (err != 0)
        return err;
    if (o->copy.handle_signals)
        engine_stop_enter();
    x.kids = calloc(OCI_INDEX_MAX_MANIFESTS, sizeof(*x.kids));
    x.ann = json_object();
    if (x.kids == NULL || x.ann == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    err = engine_session_init(&x.s, &o->copy);
    if (err != 0)
        goto out;
    x.s_open = true;
    /* Step 1: what the index lists. */
    if (o->append)
        err = add_source(&x, o->tags[0], &x.tags[0], &o->copy.dst, true);
    for (size_t i = 0; err == 0 && i < o->n_sources; i++) {
        struct oci_ref ref;
        char msg[1024];
        err = oci_ref_parse(o->sources[i], &ref, msg, sizeof(msg));
        if (err != 0)
            seterr(&x, "%s%s", msg, "");
        else
            err = add_source(&x, o->sources[i], &ref, &o->copy.src, false);
    }
    if (err == 0 && x.n_kids == 0) {
        seterr(&x, "the sources hold no image with a platform%s%s", "", "");
        err = OCISYNC_ENOPLATFORM;
    }
    for (size_t i = 0; err == 0 && i < o->n_annotations; i++) {
        struct oci_annotation a;
        char key[256], msg[256];
        if (oci_annotation_parse(o->annotations[i], &a, key, sizeof(key), msg, sizeof(msg)) == 0)
            json_object_set_new(x.ann, a.key, json_string(a.value));
    }
    if (err == 0)
        err = make_index(&x, &doc, &doc_len);
    if (err == 0)
        err = oci_digest_buffer(OCI_DIGEST_SHA256, doc, doc_len, &d);
    if (err == 0) {
        snprintf(res->digest, sizeof(res->digest), "%s", d.str);
        err = fill_result(&x);
    }
    if (err != 0)
        goto out;
    /* The session's connections would idle through the copy: closed now, opened again after. */
    engine_session_close(&x.s);
    x.s_open = false;
    err = copy_children(&x);
    if (err != 0)
        goto out;
    err = engine_session_init(&x.s, &o->copy);
    if (err != 0)
        goto out;
    x.s_open = true;
    err = push_index(&x, doc, doc_len, &d);
out:
    free(doc);
    if (x.s_open)
        engine_session_close(&x.s);
    for (size_t i = 0; x.kids != NULL && i < x.n_kids; i++)
        json_decref(x.kids[i].desc);
    free(x.kids);
    json_decref(x.ann);
    if (o->copy.handle_signals) {
        if (err != 0 && engine_stop_requested() != 0) {
            err = OCISYNC_EINTERRUPTED;
            snprintf(res->error, sizeof(res->error),
                     "interrupted by %s; the tags not yet written were left as they were",
                     engine_stop_name());
        }
        engine_stop_leave();
    }
    if (err != 0 && res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "%s", ocisync_strerror(err));
    return err;
}

void ocisync_index_result_free(struct ocisync_index_result *result)
{
    if (result == NULL)
        return;
    free(result->entries);
    result->entries = NULL;
    result->n_entries = 0;
}
