/*
 * Tag lists and catalogs: GET /v2/<repo>/tags/list and /v2/_catalog, page
 * after page as the Link header says, every page capped, on one loop.
 */
#include "engine/read.h"

#include "common/json_depth.h"
#include "oci/ref.h"
#include "oci/tagfilter.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ocisync_list_result_free(struct ocisync_list_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    r->names = NULL;
    r->n = 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int engine_list_take_page(const char *body, size_t len, bool tags, char ***names, size_t *n,
                          size_t *cap, size_t *invalid, char *first_invalid, size_t fi_len,
                          char *err, size_t errlen)
{
    const char *key = tags ? "tags" : "repositories";
    json_error_t jerr;
    json_t *doc, *arr, *v;
    size_t i;
    int rc = 0;
    if (ocisync__json_values(body, len, ENGINE_LIST_PAGE_MAX_VALUES) >
        ENGINE_LIST_PAGE_MAX_VALUES) {
        snprintf(err, errlen, "a page of the listing holds more than %d values",
                 ENGINE_LIST_PAGE_MAX_VALUES);
        return OCISYNC_ETOOBIG;
    }
    if (ocisync__json_too_deep(body, len, 16)) {
        snprintf(err, errlen, "a page of the listing nests too deep");
        return OCISYNC_EREGISTRY;
    }
    doc = json_loadb(body, len, 0, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        snprintf(err, errlen, "the listing is not a JSON object (%s)",
                 doc == NULL ? jerr.text : "another JSON value");
        json_decref(doc);
        return OCISYNC_EREGISTRY;
    }
    arr = json_object_get(doc, key);
    /* distribution answers "tags": null for a repository without tags. */
    if (arr != NULL && !json_is_array(arr) && !json_is_null(arr)) {
        snprintf(err, errlen, "\"%s\" in the listing is not a list", key);
        rc = OCISYNC_EREGISTRY;
        goto out;
    }
    json_array_foreach(arr, i, v)
    {
        const char *name = json_string_value(v);
        /* Names go into requests, paths and terminals: one that breaks the grammar is dropped. */
        if (name == NULL || strlen(name) > 255 ||
            (tags ? !oci_ref_tag_valid(name) : !oci_ref_path_valid(name))) {
            if ((*invalid)++ == 0 && first_invalid != NULL)
                oci_ref_quote(name != NULL ? name : "(not a string)", first_invalid, fi_len);
            continue;
        }
        if (*n >= ENGINE_LIST_MAX_NAMES) {
            snprintf(err, errlen, "the listing holds more than %d names", ENGINE_LIST_MAX_NAMES);
            rc = OCISYNC_ETOOBIG;
            goto out;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            char **nn = realloc(*names, ncap * sizeof(*nn));
            if (nn == NULL) {
                rc = UV_ENOMEM;
                goto out;
            }
            *names = nn;
            *cap = ncap;
        }
        if (((*names)[*n] = strdup(name)) == NULL) {
            rc = UV_ENOMEM;
            goto out;
        }
        (*n)++;
    }
out:
    json_decref(doc);
    return rc;
}

struct list_wait {
    bool done;
    int err;
};

static void on_page(struct proto_reg_op *op, int err)
{
    struct list_wait *w = op->data;
    w->done = true;
    w->err = err;
}

int engine__list(struct engine_session *s, struct proto_registry *reg, const char *repo,
                 char ***names, size_t *n, char *err, size_t errlen)
{
    char scope[PROTO_REG_SCOPE_MAX], first_invalid[400] = "", msg[512];
    char *next = NULL;
    size_t cap = 0, invalid = 0;
    unsigned pages = 0;
    int rc = 0;
    *names = NULL;
    *n = 0;
    /* A catalog needs a scope of its own; the tags of a repository its pull scope. */
    snprintf(scope, sizeof(scope), "%s", reg->scope);
    if (repo == NULL)
        snprintf(reg->scope, sizeof(reg->scope), "registry:catalog:*");
    for (;;) {
        struct proto_reg_op op;
        struct list_wait w = {false, 0};
        char *following = NULL;
        rc = proto_reg_list(&op, reg, repo, next);
        op.data = &w;
        if (rc == 0)
            rc = proto_reg_op_start(&op, on_page);
        if (rc == 0) {
            while (!w.done)
                uv_run(&s->uv, UV_RUN_ONCE);
            rc = w.err;
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s", op.errmsg[0] ? op.errmsg : ocisync_strerror(rc));
        } else {
            size_t len;
            const char *body = proto_reg_body(&op, &len);
            rc = engine_list_take_page(body != NULL ? body : "", body != NULL ? len : 0,
                                       repo != NULL, names, n, &cap, &invalid, first_invalid,
                                       sizeof(first_invalid), msg, sizeof(msg));
            if (rc != 0)
                snprintf(err, errlen, "registry %s: %s: %s", reg->name, op.what, msg);
        }
        if (rc == 0) {
            following = proto_reg_next_page(&op, &rc);
            if (rc != 0)
                snprintf(err, errlen, "%s", op.errmsg);
        }
        engine_endpoint_learn(&s->endpoints, reg);
        proto_reg_op_dispose(&op);
        /* A page that names itself as the next one would be asked for again and again. */
        if (rc == 0 && following != NULL && next != NULL && strcmp(following, next) == 0) {
            snprintf(err, errlen, "registry %s: its next page is the page it just sent (%.200s)",
                     reg->name, next);
            rc = OCISYNC_EREGISTRY;
        }
        free(next);
        next = following;
        if (rc != 0 || next == NULL)
            break;
        if (++pages >= ENGINE_LIST_MAX_PAGES) {
            snprintf(err, errlen, "registry %s: the listing takes more than %d pages", reg->name,
                     ENGINE_LIST_MAX_PAGES);
            rc = OCISYNC_ETOOBIG;
            break;
        }
    }
    free(next);
    snprintf(reg->scope, sizeof(reg->scope), "%s", scope);
    if (rc != 0) {
        free_names(*names, *n);
        *names = NULL;
        *n = 0;
    } else if (invalid > 0) {
        fprintf(stderr,
                "ocisync: registry %s listed %zu name%s that %s not valid (the first: \"%s\"); "
                "skipped\n",
                reg->name, invalid, invalid == 1 ? "" : "s", invalid == 1 ? "is" : "are",
                first_invalid);
    }
    return rc;
}

/* A registry and its session for a listing; *repo_out is the repository part of s, or NULL. */
static int list_open(struct engine_read_src *r, const char *spec, bool tags,
                     const struct ocisync_read_opts *o, char *err, size_t errlen)
{
    char buf[700];
    int rc;
    if (tags)
        return engine_read_open(r, spec, o, false, err, errlen);
    /* A registry name alone is no reference: parse it with a repository to check it. */
    if (strncmp(spec, "docker://", 9) == 0)
        spec += 9;
    if (*spec == '\0' || strchr(spec, '/') != NULL || strlen(spec) > 255) {
        char q[400];
        oci_ref_quote(spec, q, sizeof(q));
        snprintf(err, errlen, "\"%s\": expected a registry (\"host[:port]\")", q);
        memset(r, 0, sizeof(*r));
        r->layout.dirfd = -1;
        return OCISYNC_EUSAGE;
    }
    snprintf(buf, sizeof(buf), "%s/x", spec);
    rc = engine_read_open(r, buf, o, false, err, errlen);
    if (rc == 0 && strcmp(r->t.ref.registry, spec) != 0) {
        char q[400];
        oci_ref_quote(spec, q, sizeof(q));
        snprintf(err, errlen,
                 "\"%s\": expected a registry (\"host[:port]\", with a dot, a port "
                 "or localhost)",
                 q);
        rc = OCISYNC_EUSAGE;
    }
    return rc;
}

int ocisync_list_tags(const char *repo, const struct ocisync_read_opts *opts,
                      const struct ocisync_tag_filter *filter, struct ocisync_list_result *res)
{
    struct engine_read_src r;
    struct oci_tagfilter f;
    bool filtering = filter != NULL &&
                     (filter->n_include > 0 || filter->n_exclude > 0 ||
                      (filter->semver != NULL && *filter->semver != '\0') || filter->latest > 0);
    size_t *sel = NULL, n_sel = 0;
    int rc;
    memset(res, 0, sizeof(*res));
    memset(&f, 0, sizeof(f));
    rc = list_open(&r, repo, true, opts, res->error, sizeof(res->error));
    if (rc == 0 && (r.t.ref.has_digest || strcmp(r.t.ref.tag, "latest") != 0 ||
                    strstr(repo, ":latest") != NULL)) {
        snprintf(res->error, sizeof(res->error),
                 "%s: expected a repository, without a tag or digest", r.shown);
        rc = OCISYNC_EUSAGE;
    }
    if (rc == 0 && filtering) {
        struct oci_tagfilter_spec spec = {
            .include_regex = filter->include_regex,
            .n_include = filter->n_include,
            .exclude_regex = filter->exclude_regex,
            .n_exclude = filter->n_exclude,
            .semver = filter->semver != NULL && *filter->semver ? filter->semver : NULL,
            .latest = filter->latest,
        };
        rc = oci_tagfilter_init(&f, &spec, res->error, sizeof(res->error));
    }
    if (rc == 0) {
        snprintf(res->repository, sizeof(res->repository), "%s/%s", r.t.ref.registry,
                 r.t.ref.repository);
        rc = engine__list(&r.s, r.reg, r.t.ref.repository, &res->names, &res->n, res->error,
                          sizeof(res->error));
    }
    if (rc == 0 && filtering) {
        char **kept;
        sel = malloc((res->n ? res->n : 1) * sizeof(*sel));
        rc = sel == NULL
                 ? UV_ENOMEM
                 : oci_tagfilter_apply(&f, (const char *const *)res->names, res->n, sel, &n_sel);
        kept = rc == 0 ? calloc(n_sel ? n_sel : 1, sizeof(*kept)) : NULL;
        if (rc == 0 && kept == NULL)
            rc = UV_ENOMEM;
        if (rc == 0) {
            for (size_t i = 0; i < n_sel; i++) {
                kept[i] = res->names[sel[i]];
                res->names[sel[i]] = NULL;
            }
            ocisync_list_result_free(res);
            res->names = kept;
            res->n = n_sel;
        }
    }
    if (rc != 0)
        ocisync_list_result_free(res);
    free(sel);
    oci_tagfilter_free(&f);
    engine_read_close(&r);
    return rc;
}

int ocisync_catalog(const char *registry, const char *prefix, const struct ocisync_read_opts *opts,
                    struct ocisync_list_result *res)
{
    struct engine_read_src r;
    size_t plen = prefix != NULL ? strlen(prefix) : 0, kept = 0;
    int rc;
    memset(res, 0, sizeof(*res));
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    rc = list_open(&r, registry, false, opts, res->error, sizeof(res->error));
    if (rc == 0)
        rc = engine__list(&r.s, r.reg, NULL, &res->names, &res->n, res->error, sizeof(res->error));
    if (rc == 0 && plen > 0) {
        for (size_t i = 0; i < res->n; i++) {
            const char *name = res->names[i];
            if (strncmp(name, prefix, plen) == 0 && (name[plen] == '/' || name[plen] == '\0'))
                res->names[kept++] = res->names[i];
            else
                free(res->names[i]);
        }
        res->n = kept;
    }
    engine_read_close(&r);
    return rc;
}
