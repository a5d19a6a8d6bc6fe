/*
 * skopeo inspect's documents, built from the bytes read: pure functions of
 * their input (the unit tests call them), with every input capped.
 *
 * skopeo 1.9.3 prints, in this order: Name (omitted when empty), Digest,
 * RepoTags, Created, DockerVersion, Labels, Architecture, Os, Layers, Env,
 * with null for a missing Created, Labels or Env. Later versions add
 * Variant (after Architecture, omitted when empty) and LayersData (after
 * Layers); both are printed here too, and Platforms for an index, so the
 * 1.9.3 fields keep their names, shapes and order.
 */
#include "engine/read.h"

#include "common/json_depth.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A config or manifest parsed with its caps checked first; NULL with err set. */
static json_t *load_capped(const char *what, const char *data, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc;
    if (len > ENGINE_READ_CONFIG_MAX) {
        snprintf(err, errlen, "the %s is %zu bytes, more than the %d allowed", what, len,
                 ENGINE_READ_CONFIG_MAX);
        return NULL;
    }
    if (ocisync__json_values(data, len, ENGINE_READ_CONFIG_MAX_VALUES) >
            ENGINE_READ_CONFIG_MAX_VALUES ||
        ocisync__json_too_deep(data, len, 32)) {
        snprintf(err, errlen, "the %s holds more than %d JSON values or nests deeper than 32", what,
                 ENGINE_READ_CONFIG_MAX_VALUES);
        return NULL;
    }
    doc = json_loadb(data, len, 0, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        snprintf(err, errlen, "the %s is not a JSON object%s%s", what, doc == NULL ? ": " : "",
                 doc == NULL ? jerr.text : "");
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* v if it is a string, else "". */
static const char *str_of(json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : "";
}

/* A copy of v when it has type t (JSON_OBJECT, JSON_ARRAY), else null. */
static json_t *copy_or_null(json_t *v, json_type t)
{
    if (v != NULL && json_typeof(v) == t)
        return json_deep_copy(v);
    return json_null();
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A copy of object v with its keys sorted, as Go marshals maps; with
 * strings_only, values that are not strings are left out (Go's
 * map[string]string). null when v is not an object.
 */
static json_t *sorted_object(json_t *v, bool strings_only)
{
    const char *k, **keys;
    json_t *x, *out;
    size_t n = 0;
    if (!json_is_object(v))
        return json_null();
    out = json_object();
    keys = malloc((json_object_size(v) + 1) * sizeof(*keys));
    if (keys == NULL)
        return out;
    json_object_foreach(v, k, x)
    {
        keys[n++] = k;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (size_t i = 0; i < n; i++) {
        x = json_object_get(v, keys[i]);
        if (!strings_only || json_is_string(x))
            json_object_set_new(out, keys[i], json_deep_copy(x));
    }
    free(keys);
    return out;
}

static json_t *string_map(json_t *v)
{
    return sorted_object(v, true);
}

/* A list of strings (Env, Cmd), or null when absent or not a list. */
static json_t *string_list(json_t *v)
{
    size_t i;
    json_t *x, *out;
    if (!json_is_array(v))
        return json_null();
    out = json_array();
    json_array_foreach(v, i, x)
    {
        if (json_is_string(x))
            json_array_append(out, x);
    }
    return out;
}

static int dump(json_t *doc, char **out, size_t *out_len, char *err, size_t errlen)
{
    char *s = json_dumps(doc, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    size_t n;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    n = strlen(s);
    *out = malloc(n + 2);
    if (*out == NULL) {
        free(s);
        return UV_ENOMEM;
    }
    memcpy(*out, s, n);
    (*out)[n] = '\n';
    (*out)[n + 1] = '\0';
    *out_len = n + 1;
    free(s);
    return 0;
}

int engine_inspect_json(const char *name, const char *digest, const char *const *tags,
                        size_t n_tags, const char *manifest, size_t manifest_len,
                        const char *config, size_t config_len, const struct oci_manifest *index,
                        char **out, size_t *out_len, char *err, size_t errlen)
{
    json_t *man = NULL, *cfg = NULL, *doc = NULL, *cc, *layers, *data, *repotags, *l;
    size_t i;
    int rc = OCISYNC_EMANIFEST;
    *out = NULL;
    man = load_capped("manifest", manifest, manifest_len, err, errlen);
    if (man == NULL)
        goto out;
    cfg = load_capped("config", config, config_len, err, errlen);
    if (cfg == NULL) {
        rc = OCISYNC_EJSON;
        goto out;
    }
    cc = json_object_get(cfg, "config");
    doc = json_object();
    if (name != NULL && *name != '\0')
        json_object_set_new(doc, "Name", json_string(name));
    json_object_set_new(doc, "Digest", json_string(digest));
    repotags = json_array();
    for (i = 0; i < n_tags; i++)
        json_array_append_new(repotags, json_string(tags[i]));
    json_object_set_new(doc, "RepoTags", repotags);
    /* Go's time.Time marshals as RFC 3339 (the config's own string, which is RFC 3339 too). */
    json_object_set_new(doc, "Created",
                        json_is_string(json_object_get(cfg, "created"))
                            ? json_deep_copy(json_object_get(cfg, "created"))
                            : json_null());
    json_object_set_new(doc, "DockerVersion",
                        json_string(str_of(json_object_get(cfg, "docker_version"))));
    json_object_set_new(doc, "Labels", string_map(json_object_get(cc, "Labels")));
    json_object_set_new(doc, "Architecture",
                        json_string(str_of(json_object_get(cfg, "architecture"))));
    if (*str_of(json_object_get(cfg, "variant")) != '\0')
        json_object_set(doc, "Variant", json_object_get(cfg, "variant"));
    json_object_set_new(doc, "Os", json_string(str_of(json_object_get(cfg, "os"))));
    layers = json_array();
    data = json_array();
    json_array_foreach(json_object_get(man, "layers"), i, l)
    {
        json_t *d = json_object(), *size = json_object_get(l, "size");
        json_array_append(layers, json_object_get(l, "digest"));
        json_object_set_new(d, "MIMEType", json_string(str_of(json_object_get(l, "mediaType"))));
        json_object_set(d, "Digest", json_object_get(l, "digest"));
        json_object_set_new(d, "Size",
                            json_is_integer(size) ? json_deep_copy(size) : json_integer(0));
        json_object_set_new(d, "Annotations", string_map(json_object_get(l, "annotations")));
        json_array_append_new(data, d);
    }
    json_object_set_new(doc, "Layers", layers);
    json_object_set_new(doc, "LayersData", data);
    json_object_set_new(doc, "Env", string_list(json_object_get(cc, "Env")));
    if (index != NULL) {
        json_t *plats = json_array();
        for (i = 0; i < index->n_manifests; i++) {
            const struct oci_descriptor *m = &index->manifests[i];
            json_t *p = json_object();
            json_object_set_new(p, "Os", json_string(m->has_platform ? m->platform.os : ""));
            json_object_set_new(p, "Architecture",
                                json_string(m->has_platform ? m->platform.arch : ""));
            if (m->has_platform && m->platform.variant[0] != '\0')
                json_object_set_new(p, "Variant", json_string(m->platform.variant));
            json_object_set_new(p, "Digest", json_string(m->digest.str));
            json_object_set_new(p, "MediaType", json_string(m->media_type));
            json_object_set_new(p, "Size", json_integer(m->size));
            json_array_append_new(plats, p);
        }
        json_object_set_new(doc, "Platforms", plats);
    }
    rc = dump(doc, out, out_len, err, errlen);
out:
    json_decref(doc);
    json_decref(man);
    json_decref(cfg);
    return rc;
}

/* Copies a non-empty string, as Go's omitempty keeps it. */
static void copy_str(json_t *to, json_t *from, const char *key)
{
    json_t *v = json_object_get(from, key);
    if (json_is_string(v) && *json_string_value(v) != '\0')
        json_object_set(to, key, v);
}

/* Copies a non-empty list or object (omitempty). */
static void copy_nonempty(json_t *to, json_t *from, const char *key, json_type t)
{
    json_t *v = json_object_get(from, key);
    if (v == NULL || json_typeof(v) != t)
        return;
    if (t == JSON_ARRAY && json_array_size(v) > 0)
        json_object_set_new(to, key, json_deep_copy(v));
    else if (t == JSON_OBJECT && json_object_size(v) > 0)
        json_object_set_new(to, key, sorted_object(v, false));
}

int engine_inspect_config_json(const char *config, size_t len, char **out, size_t *out_len,
                               char *err, size_t errlen)
{
    json_t *cfg, *doc, *c, *ic, *rootfs, *r, *hist, *h;
    size_t i;
    int rc;
    *out = NULL;
    cfg = load_capped("config", config, len, err, errlen);
    if (cfg == NULL)
        return OCISYNC_EJSON;
    /*
     * The OCI image-spec Image, as skopeo marshals it: its fields in its
     * order, omitempty ones left out when empty; Docker-only fields gone.
     */
    doc = json_object();
    copy_str(doc, cfg, "created");
    copy_str(doc, cfg, "author");
    json_object_set_new(doc, "architecture",
                        json_string(str_of(json_object_get(cfg, "architecture"))));
    copy_str(doc, cfg, "variant");
    json_object_set_new(doc, "os", json_string(str_of(json_object_get(cfg, "os"))));
    copy_str(doc, cfg, "os.version");
    copy_nonempty(doc, cfg, "os.features", JSON_ARRAY);
    c = json_object_get(cfg, "config");
    ic = json_object();
    if (json_is_object(c)) {
        copy_str(ic, c, "User");
        copy_nonempty(ic, c, "ExposedPorts", JSON_OBJECT);
        copy_nonempty(ic, c, "Env", JSON_ARRAY);
        copy_nonempty(ic, c, "Entrypoint", JSON_ARRAY);
        copy_nonempty(ic, c, "Cmd", JSON_ARRAY);
        copy_nonempty(ic, c, "Volumes", JSON_OBJECT);
        copy_str(ic, c, "WorkingDir");
        copy_nonempty(ic, c, "Labels", JSON_OBJECT);
        copy_str(ic, c, "StopSignal");
        if (json_is_true(json_object_get(c, "ArgsEscaped")))
            json_object_set_new(ic, "ArgsEscaped", json_true());
    }
    json_object_set_new(doc, "config", ic);
    rootfs = json_object_get(cfg, "rootfs");
    r = json_object();
    json_object_set_new(r, "type", json_string(str_of(json_object_get(rootfs, "type"))));
    json_object_set_new(r, "diff_ids",
                        copy_or_null(json_object_get(rootfs, "diff_ids"), JSON_ARRAY));
    json_object_set_new(doc, "rootfs", r);
    hist = json_object_get(cfg, "history");
    if (json_is_array(hist) && json_array_size(hist) > 0) {
        json_t *hs = json_array();
        json_array_foreach(hist, i, h)
        {
            json_t *e = json_object();
            copy_str(e, h, "created");
            copy_str(e, h, "created_by");
            copy_str(e, h, "author");
            copy_str(e, h, "comment");
            if (json_is_true(json_object_get(h, "empty_layer")))
                json_object_set_new(e, "empty_layer", json_true());
            json_array_append_new(hs, e);
        }
        json_object_set_new(doc, "history", hs);
    }
    rc = dump(doc, out, out_len, err, errlen);
    json_decref(doc);
    json_decref(cfg);
    return rc;
}
