/*
 * Sync: from sources (repositories and tag rules, or whole catalogs) to one
 * plan of images, then one copy run for all of them.
 *
 * Planning lists what it must on one loop, a few listings at a time: the
 * catalog of a registry (for catalog sources), then the tags of each
 * repository that has filters or no exact tags, page by page (Link
 * headers). Sharding is by repository name, so each shard lists only its own
 * repositories. A listing that fails is reported as a failed item; the rest
 * goes on.
 */
/* nftw, for dir: source trees. */
#define _XOPEN_SOURCE 700
#include "ocisync.h"

#include "common/json_depth.h"
#include "common/log.h"
#include "common/queue.h"
#include "engine/endpoint.h"
#include "engine/read.h"
#include "engine/transport.h"
#include "oci/layout.h"
#include "oci/ref.h"
#include "oci/oci.h"
#include "oci/tagfilter.h"

#include <ctype.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Listings in flight at once. */
#define LISTINGS_AT_ONCE 8
/* Pages one listing may take; a registry that keeps linking is cut off. */
#define LIST_MAX_PAGES 10000

struct sync_run;

struct sync_item {
    char *src, *dst;
    size_t source; /* index in the sources */
    int listing;   /* a failed listing rather than an image */
    int err;
    char *msg;
};

/* One listing: a catalog, or the tags of one repository. */
struct sync_list {
    struct sync_run *run;
    size_t source;
    char *repo;     /* owned: the source repository; NULL for a catalog */
    char *dst_repo; /* owned: where its images go (NULL for a catalog) */
    struct proto_registry *reg;
    struct proto_reg_op op;
    char **names; /* owned */
    size_t n_names, cap_names;
    unsigned pages;
    /* Names that are not valid tags or repositories: skipped, and reported once. */
    size_t n_invalid;
    char first_invalid[400]; /* quoted for messages */
    struct queue link;
};

struct sync_run {
    struct engine_session s;
    const struct ocisync_sync_source *sources;
    const struct ocisync_sync_opts *opts;
    struct oci_tagfilter *filters; /* one per source; has_filter says which are used */
    bool *has_filter;
    struct queue pending; /* listings not started */
    unsigned active;
    struct sync_item *items; /* owned */
    size_t n_items, cap_items;
    int err; /* out of memory and the like: ends the run */
};

static int add_item(struct sync_run *run, size_t source, const char *src, const char *sep,
                    const char *ref, const char *dst, int listing, const char *msg)
{
    struct sync_item *it;
    const char *suffix;
    size_t ls, ld;
    if (run->n_items == run->cap_items) {
        size_t cap = run->cap_items ? run->cap_items * 2 : 64;
        struct sync_item *n = realloc(run->items, cap * sizeof(*n));
        if (n == NULL)
            return UV_ENOMEM;
        run->items = n;
        run->cap_items = cap;
    }
    it = &run->items[run->n_items];
    memset(it, 0, sizeof(*it));
    /* The suffix goes on tags only: a digest stays the image's. */
    if (listing || run->opts->append_suffix == NULL ||
        (strcmp(sep, ":") != 0 && !(sep[0] == '\0' && ref[0] == ':')))
        suffix = "";
    else
        suffix = run->opts->append_suffix;
    ls = strlen(src) + strlen(sep) + strlen(ref) + 1;
    ld = strlen(dst) + strlen(sep) + strlen(ref) + strlen(suffix) + 1;
    it->src = malloc(ls);
    it->dst = malloc(ld);
    it->msg = msg != NULL ? strdup(msg) : NULL;
    if (it->src == NULL || it->dst == NULL || (msg != NULL && it->msg == NULL)) {
        free(it->src);
        free(it->dst);
        free(it->msg);
        return UV_ENOMEM;
    }
    snprintf(it->src, ls, "%s%s%s", src, sep, ref);
    snprintf(it->dst, ld, "%s%s%s%s", dst, listing ? "" : sep, listing ? "" : ref, suffix);
    it->source = source;
    it->listing = listing;
    if (listing)
        it->err = OCISYNC_EREGISTRY;
    run->n_items++;
    return 0;
}

/* An image for a tag or a digest ("sha256:..." goes by digest on both sides). */
static int add_image(struct sync_run *run, size_t source, const char *src_repo,
                     const char *dst_repo, const char *tag)
{
    const char *sep = strchr(tag, ':') != NULL ? "@" : ":";
    return add_item(run, source, src_repo, sep, tag, dst_repo, 0, NULL);
}

/* FNV-1a of the repository name: stable across machines and runs, as shards must be. */
static bool in_shard(const struct ocisync_sync_opts *o, const char *repo)
{
    uint64_t h = 1469598103934665603ULL;
    if (o->shard_count == 0)
        return true;
    for (const char *p = repo; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h % o->shard_count == o->shard_index;
}

static void list_free(struct sync_list *l)
{
    for (size_t i = 0; i < l->n_names; i++)
        free(l->names[i]);
    free(l->names);
    free(l->repo);
    free(l->dst_repo);
    if (l->reg != NULL) {
        engine_endpoint_learn(&l->run->s.endpoints, l->reg);
        proto_registry_dispose(l->reg);
        free(l->reg);
    }
    free(l);
}

static void pump(struct sync_run *run);

/* Splits "registry/rest" (rest may be empty). */
static void split_registry(const char *s, char *reg, size_t reglen, const char **rest)
{
    const char *slash = strchr(s, '/');
    size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
    snprintf(reg, reglen, "%.*s", (int)n, s);
    *rest = slash != NULL ? slash + 1 : "";
}

static int queue_list(struct sync_run *run, size_t source, const char *repo, const char *dst_repo)
{
    struct sync_list *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return UV_ENOMEM;
    l->run = run;
    l->source = source;
    if (repo != NULL) {
        l->repo = strdup(repo);
        l->dst_repo = strdup(dst_repo);
        if (l->repo == NULL || l->dst_repo == NULL) {
            list_free(l);
            return UV_ENOMEM;
        }
    }
    queue_insert_tail(&run->pending, &l->link);
    return 0;
}

/*
 * What to do with one repository of a source: its exact tags become images
 * at once; filters (or no tags at all) need its tag list.
 */
static int plan_repo(struct sync_run *run, size_t source, const char *src_repo,
                     const char *dst_repo)
{
    const struct ocisync_sync_source *s = &run->sources[source];
    int err = 0;
    if (!in_shard(run->opts, src_repo))
        return 0;
    for (size_t i = 0; err == 0 && i < s->n_tags; i++)
        err = add_image(run, source, src_repo, dst_repo, s->tags[i]);
    if (err == 0 && (run->has_filter[source] || s->n_tags == 0))
        err = queue_list(run, source, src_repo, dst_repo);
    return err;
}

static int list_fail(struct sync_list *l, const char *msg)
{
    const struct ocisync_sync_source *s = &l->run->sources[l->source];
    return add_item(l->run, l->source, l->repo != NULL ? l->repo : s->src, "", "",
                    l->dst_repo != NULL ? l->dst_repo : s->dst, 1, msg);
}

/* The tags (or repositories) of one complete listing, turned into images (or listings). */
static int list_finish(struct sync_list *l)
{
    struct sync_run *run = l->run;
    const struct ocisync_sync_source *s = &run->sources[l->source];
    int err = 0;
    if (l->n_invalid > 0) {
        char msg[600];
        snprintf(msg, sizeof(msg),
                 "the registry listed %zu name%s that %s not valid %s (the first: \"%s\"); "
                 "skipped",
                 l->n_invalid, l->n_invalid == 1 ? "" : "s", l->n_invalid == 1 ? "is" : "are",
                 l->repo != NULL ? "tags" : "repository names", l->first_invalid);
        err = list_fail(l, msg);
        if (err != 0)
            return err;
    }
    if (l->repo == NULL) {
        /* A catalog: every repository under the prefix, renamed under the destination's. */
        char reg[300];
        const char *prefix;
        size_t plen;
        split_registry(s->src, reg, sizeof(reg), &prefix);
        plen = strlen(prefix);
        for (size_t i = 0; err == 0 && i < l->n_names; i++) {
            const char *name = l->names[i], *rest;
            char src_repo[600], dst_repo[600];
            if (plen > 0 &&
                (strncmp(name, prefix, plen) != 0 || (name[plen] != '/' && name[plen] != '\0')))
                continue;
            rest = name + plen;
            if (*rest == '/')
                rest++;
            snprintf(src_repo, sizeof(src_repo), "%s/%s", reg, name);
            if (*rest == '\0')
                snprintf(dst_repo, sizeof(dst_repo), "%s", s->dst);
            else
                snprintf(dst_repo, sizeof(dst_repo), "%s/%s", s->dst, rest);
            err = plan_repo(run, l->source, src_repo, dst_repo);
        }
        return err;
    }
    if (!run->has_filter[l->source]) {
        for (size_t i = 0; err == 0 && i < l->n_names; i++)
            err = add_image(run, l->source, l->repo, l->dst_repo, l->names[i]);
        return err;
    }
    {
        size_t *sel = malloc((l->n_names ? l->n_names : 1) * sizeof(*sel)), n_sel = 0;
        if (sel == NULL)
            return UV_ENOMEM;
        err = oci_tagfilter_apply(&run->filters[l->source], (const char *const *)l->names,
                                  l->n_names, sel, &n_sel);
        for (size_t i = 0; err == 0 && i < n_sel; i++) {
            const char *tag = l->names[sel[i]];
            bool dup = false;
            /* An exact tag that the filters also select is one image, not two. */
            for (size_t k = 0; k < s->n_tags && !dup; k++)
                dup = strcmp(s->tags[k], tag) == 0;
            if (!dup)
                err = add_image(run, l->source, l->repo, l->dst_repo, tag);
        }
        free(sel);
    }
    return err;
}

/* Appends the names of a page ({"tags": [...]} or {"repositories": [...]}): list.c's parser. */
static int take_page(struct sync_list *l, char *msg, size_t msglen)
{
    char why[512];
    size_t len;
    const char *body = proto_reg_body(&l->op, &len);
    int err = engine_list_take_page(
        body != NULL ? body : "", body != NULL ? len : 0, l->repo != NULL, &l->names, &l->n_names,
        &l->cap_names, &l->n_invalid, l->first_invalid, sizeof(l->first_invalid), why, sizeof(why));
    if (err != 0)
        snprintf(msg, msglen, "%s: %s", l->op.what, why);
    return err;
}

static int list_send(struct sync_list *l, const char *next);

static void on_list(struct proto_reg_op *op, int err)
{
    struct sync_list *l = op->data;
    struct sync_run *run = l->run;
    char msg[1024];
    char *next = NULL;
    msg[0] = '\0';
    if (err != 0) {
        snprintf(msg, sizeof(msg), "%s", op->errmsg);
    } else {
        err = take_page(l, msg, sizeof(msg));
        if (err == 0) {
            next = proto_reg_next_page(op, &err);
            if (err != 0)
                snprintf(msg, sizeof(msg), "%s", op->errmsg);
        }
    }
    proto_reg_op_dispose(op);
    if (err == 0 && next != NULL) {
        if (++l->pages >= LIST_MAX_PAGES) {
            err = OCISYNC_ETOOBIG;
            snprintf(msg, sizeof(msg), "%s: more than %d pages", l->op.what, LIST_MAX_PAGES);
        } else {
            err = list_send(l, next);
            if (err == 0) {
                free(next);
                return;
            }
            snprintf(msg, sizeof(msg), "%s", l->op.errmsg);
        }
    }
    free(next);
    run->active--;
    if (err == 0)
        err = list_finish(l);
    else
        err = list_fail(l, msg[0] ? msg : ocisync_strerror(err));
    if (err != 0 && run->err == 0)
        run->err = err;
    list_free(l);
    pump(run);
}

static int list_send(struct sync_list *l, const char *next)
{
    char repo[600];
    const char *rest;
    int err;
    if (l->repo != NULL) {
        char reg[300];
        split_registry(l->repo, reg, sizeof(reg), &rest);
        snprintf(repo, sizeof(repo), "%s", rest);
    }
    err = proto_reg_list(&l->op, l->reg, l->repo != NULL ? repo : NULL, next);
    l->op.data = l;
    if (err == 0)
        err = proto_reg_op_start(&l->op, on_list);
    if (err != 0)
        proto_reg_op_dispose(&l->op);
    return err;
}

static void list_start(struct sync_list *l)
{
    struct sync_run *run = l->run;
    const struct ocisync_sync_source *s = &run->sources[l->source];
    const struct ocisync_registry_opts *ro = s->src_opts ? s->src_opts : &run->opts->copy.src;
    char reg[300], msg[1024];
    const char *rest;
    int err;
    split_registry(l->repo != NULL ? l->repo : s->src, reg, sizeof(reg), &rest);
    err = engine_endpoint_get(&run->s.endpoints, reg, l->repo != NULL ? rest : NULL, ro, false,
                              &l->reg, msg, sizeof(msg));
    if (err == 0) {
        if (l->repo != NULL)
            snprintf(l->reg->scope, sizeof(l->reg->scope), "repository:%s:pull", rest);
        else
            snprintf(l->reg->scope, sizeof(l->reg->scope), "registry:catalog:*");
        err = list_send(l, NULL);
        if (err != 0)
            snprintf(msg, sizeof(msg), "%s", l->op.errmsg);
    }
    if (err == 0) {
        run->active++;
        return;
    }
    err = list_fail(l, msg);
    if (err != 0 && run->err == 0)
        run->err = err;
    list_free(l);
}

/* Whether SIGINT or SIGTERM stopped the run (when it handles them). */
static bool stopped(const struct sync_run *run)
{
    return run->opts->copy.handle_signals && engine_stop_requested() != 0;
}

static void pump(struct sync_run *run)
{
    while (run->err == 0 && !stopped(run) && run->active < LISTINGS_AT_ONCE &&
           !queue_empty(&run->pending)) {
        struct queue *q = queue_head(&run->pending);
        queue_remove(q);
        list_start(container_of(q, struct sync_list, link));
    }
    if (run->active == 0)
        loop_ctx_close(&run->s.loop);
}

/* Source rules that are wrong whatever the registry says: checked before anything is listed. */
static int check_sources(struct sync_run *run, size_t n, char *msg, size_t msglen)
{
    for (size_t i = 0; i < n; i++) {
        const struct ocisync_sync_source *s = &run->sources[i];
        struct oci_tagfilter_spec spec;
        int err;
        if (s->src == NULL || s->dst == NULL || *s->src == '\0' || *s->dst == '\0') {
            snprintf(msg, msglen, "sync source %zu: both a source and a destination are needed",
                     i + 1);
            return OCISYNC_EUSAGE;
        }
        run->has_filter[i] = s->n_include > 0 || s->n_exclude > 0 ||
                             (s->semver != NULL && *s->semver != '\0') || s->latest > 0;
        if (!run->has_filter[i])
            continue;
        memset(&spec, 0, sizeof(spec));
        spec.include_regex = s->include_regex;
        spec.n_include = s->n_include;
        spec.exclude_regex = s->exclude_regex;
        spec.n_exclude = s->n_exclude;
        spec.semver = s->semver != NULL && *s->semver != '\0' ? s->semver : NULL;
        spec.latest = s->latest;
        err = oci_tagfilter_init(&run->filters[i], &spec, msg, msglen);
        if (err != 0) {
            char what[1024];
            snprintf(what, sizeof(what), "%s", msg);
            snprintf(msg, msglen, "%s: %s", s->src, what);
            return err;
        }
    }
    return 0;
}

static bool is_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

/*
 * A layout as a source: every image its index.json names (or, with tags,
 * those), each to the destination under its name.
 */
static int plan_layout(struct sync_run *run, size_t source, char *msg, size_t msglen)
{
    const struct ocisync_sync_source *s = &run->sources[source];
    struct oci_layout lay;
    struct engine_transport t;
    int err = engine_transport_parse(s->src, &t, NULL, 0);
    if (err != 0 || t.kind != ENGINE_TRANSPORT_LAYOUT || t.name[0] != '\0') {
        snprintf(msg, msglen, "%s: a sync source layout is a directory (oci:DIR), without a name",
                 s->src);
        return OCISYNC_EUSAGE;
    }
    if (!in_shard(run->opts, s->src))
        return 0;
    if (s->n_tags > 0) {
        for (size_t i = 0; err == 0 && i < s->n_tags; i++)
            err = add_image(run, source, s->src, s->dst, s->tags[i]);
        return err;
    }
    err = oci_layout_open(&lay, t.path, false, msg, msglen);
    if (err != 0)
        return err == UV_ENOMEM ? err : OCISYNC_EUSAGE;
    for (size_t i = 0; err == 0 && i < oci_layout_count(&lay); i++) {
        struct oci_descriptor d;
        const char *name = NULL;
        if (oci_layout_entry(&lay, i, &d, &name) != 0 || name == NULL)
            continue;
        if (is_tag(name))
            err = add_item(run, source, s->src, ":", name, s->dst, 0, NULL);
        else
            /* A ref.name such as "team/app:v1" names no tag at the destination. */
            err = add_item(run, source, s->src, ":", name, s->dst, 1,
                           "the layout's image name is not a tag (a tag is [A-Za-z0-9_]"
                           "[A-Za-z0-9_.-]{0,127})");
    }
    oci_layout_close(&lay);
    return err;
}

/* The sync being planned, for nftw's callback (which takes no argument). */
static struct {
    struct sync_run *run;
    size_t source;
    int err;
} walk;

/*
 * One image directory (path/manifest.json exists), to dst/<its name>: "app:v1"
 * is repository app, tag v1 (so the suffix applies), "app" is app:latest.
 */
static int add_dir_image(struct sync_run *run, size_t source, const char *path)
{
    const struct ocisync_sync_source *s = &run->sources[source];
    const char *base = strrchr(path, '/');
    const char *at, *colon, *ref;
    char src[4200], dst[1200];
    base = base != NULL ? base + 1 : path;
    at = strchr(base, '@');
    colon = strchr(base, ':');
    ref = at != NULL ? at : colon;
    if (ref == NULL) {
        snprintf(src, sizeof(src), "dir:%s", path);
        snprintf(dst, sizeof(dst), "%s/%s:latest", s->dst, base);
        return add_item(run, source, src, "", "", dst, 0, NULL);
    }
    snprintf(src, sizeof(src), "dir:%.*s", (int)(ref - path), path);
    snprintf(dst, sizeof(dst), "%s/%.*s", s->dst, (int)(ref - base), base);
    return add_item(run, source, src, ref == at ? "@" : ":", ref + 1, dst, 0, NULL);
}

static int on_walk(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    const char *base = path + ftw->base;
    (void)st;
    if (flag != FTW_F || strcmp(base, "manifest.json") != 0)
        return 0;
    {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%.*s", (int)(ftw->base > 0 ? ftw->base - 1 : 0), path);
        if (!in_shard(walk.run->opts, dir))
            return 0;
        walk.err = add_dir_image(walk.run, walk.source, dir);
    }
    return walk.err != 0;
}

/* A dir: source: the image directories of the tree (see ocisync_sync_source). */
static int plan_dir(struct sync_run *run, size_t source, char *msg, size_t msglen)
{
    const struct ocisync_sync_source *s = &run->sources[source];
    struct engine_transport t;
    struct stat st;
    size_t before = run->n_items;
    int err = engine_transport_parse(s->src, &t, msg, msglen);
    if (err != 0)
        return err;
    if (stat(t.path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, msglen, "%s: not a directory", s->src);
        return OCISYNC_EUSAGE;
    }
    walk.run = run;
    walk.source = source;
    walk.err = 0;
    if (nftw(t.path, on_walk, 16, FTW_PHYS) != 0 && walk.err == 0) {
        snprintf(msg, msglen, "%s: cannot read the directory tree", s->src);
        return OCISYNC_EUSAGE;
    }
    if (walk.err != 0)
        return walk.err;
    if (run->n_items == before) {
        snprintf(msg, msglen, "%s: no image directory (one holding manifest.json) in it", s->src);
        return OCISYNC_EUSAGE;
    }
    return 0;
}

/* Plans every source: direct images at once, listings on the loop. */
static int plan(struct sync_run *run, size_t n, char *msg, size_t msglen)
{
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        const struct ocisync_sync_source *s = &run->sources[i];
        const char *last = strrchr(s->src, '/');
        if (ocisync_location_of(s->src) == OCISYNC_LOC_DIR) {
            err = plan_dir(run, i, msg, msglen);
            if (err != 0)
                return err;
            continue;
        }
        if (ocisync_location_of(s->src) == OCISYNC_LOC_LAYOUT) {
            err = plan_layout(run, i, msg, msglen);
            if (err != 0)
                return err;
            continue;
        }
        if (s->catalog) {
            err = queue_list(run, i, NULL, NULL);
            continue;
        }
        if (last != NULL && (strchr(last, ':') != NULL || strchr(last, '@') != NULL)) {
            /* One image named in full: copied as it is, to the same tag or digest. */
            const char *at = strchr(last, '@');
            const char *ref = at != NULL ? at : strchr(last, ':');
            char repo[600];
            snprintf(repo, sizeof(repo), "%.*s", (int)(ref - s->src), s->src);
            if (in_shard(run->opts, repo))
                err = add_item(run, i, repo, "", ref, s->dst, 0, NULL);
            continue;
        }
        err = plan_repo(run, i, s->src, s->dst);
    }
    if (err != 0) {
        snprintf(msg, msglen, "cannot plan the sync: %s", ocisync_strerror(err));
        return err;
    }
    pump(run);
    uv_run(&run->s.uv, UV_RUN_DEFAULT);
    if (run->err != 0) {
        snprintf(msg, msglen, "cannot plan the sync: %s", ocisync_strerror(run->err));
        return run->err;
    }
    return 0;
}

static struct sync_item *sort_base;

static int cmp_item(const void *a, const void *b)
{
    const struct sync_item *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
    int c = strcmp(x->src, y->src);
    if (c == 0)
        c = strcmp(x->dst, y->dst);
    if (c == 0)
        c = x->listing - y->listing;
    if (c == 0)
        c = *(const size_t *)a < *(const size_t *)b ? -1 : 1;
    return c;
}

/*
 * Two rules that select the same image (a regex and a semver range that both
 * take a tag) make one copy: later duplicates are dropped, order kept.
 */
static void dedup(struct sync_run *run)
{
    size_t *idx = malloc((run->n_items ? run->n_items : 1) * sizeof(*idx)), k = 0;
    bool *drop = calloc(run->n_items ? run->n_items : 1, sizeof(*drop));
    if (idx != NULL && drop != NULL) {
        for (size_t i = 0; i < run->n_items; i++)
            idx[i] = i;
        sort_base = run->items;
        qsort(idx, run->n_items, sizeof(*idx), cmp_item);
        for (size_t i = 1; i < run->n_items; i++) {
            const struct sync_item *p = &run->items[idx[i - 1]], *c = &run->items[idx[i]];
            if (strcmp(p->src, c->src) == 0 && strcmp(p->dst, c->dst) == 0 &&
                p->listing == c->listing)
                drop[idx[i]] = true;
        }
        for (size_t i = 0; i < run->n_items; i++) {
            if (drop[i]) {
                free(run->items[i].src);
                free(run->items[i].dst);
                free(run->items[i].msg);
            } else {
                run->items[k++] = run->items[i];
            }
        }
        run->n_items = k;
    }
    free(idx);
    free(drop);
}

int ocisync_sync(const struct ocisync_sync_source *sources, size_t n,
                 const struct ocisync_sync_opts *opts, struct ocisync_sync_result *result)
{
    struct sync_run *run;
    struct ocisync_copy_item *citems = NULL;
    struct ocisync_copy_result *cres = NULL;
    size_t n_copy = 0;
    int err;

    memset(result, 0, sizeof(*result));
    if (opts->shard_count > 0 && opts->shard_index >= opts->shard_count) {
        snprintf(result->error, sizeof(result->error), "shard %u/%u: the index must be below %u",
                 opts->shard_index, opts->shard_count, opts->shard_count);
        return OCISYNC_EUSAGE;
    }
    ocisync__debug = opts->copy.debug;
    run = calloc(1, sizeof(*run));
    if (run == NULL)
        return UV_ENOMEM;
    if (opts->copy.handle_signals)
        engine_stop_enter();
    run->sources = sources;
    run->opts = opts;
    run->filters = calloc(n ? n : 1, sizeof(*run->filters));
    run->has_filter = calloc(n ? n : 1, sizeof(*run->has_filter));
    queue_init(&run->pending);
    if (run->filters == NULL || run->has_filter == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    err = check_sources(run, n, result->error, sizeof(result->error));
    if (err != 0)
        goto out;

    err = engine_session_init(&run->s, &opts->copy);
    if (err != 0)
        goto out;
    err = plan(run, n, result->error, sizeof(result->error));
    /* Listings a failure left unstarted hold no request: freed before the pool stops. */
    while (!queue_empty(&run->pending)) {
        struct queue *q = queue_head(&run->pending);
        queue_remove(q);
        list_free(container_of(q, struct sync_list, link));
    }
    engine_session_close(&run->s);
    if (stopped(run)) {
        err = OCISYNC_EINTERRUPTED;
        snprintf(result->error, sizeof(result->error),
                 "interrupted by %s while listing the sources; nothing was copied",
                 engine_stop_name());
        goto out;
    }
    if (err != 0)
        goto out;

    dedup(run);
    /* The plan, copied in one run; failed listings go after the images. */
    result->images = calloc(run->n_items ? run->n_items : 1, sizeof(*result->images));
    citems = calloc(run->n_items ? run->n_items : 1, sizeof(*citems));
    if (result->images == NULL || citems == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < run->n_items; i++) {
            struct sync_item *it = &run->items[i];
            struct ocisync_sync_image *im;
            if (it->listing != pass)
                continue;
            im = &result->images[result->n_images++];
            im->src = it->src;
            im->dst = it->dst;
            it->src = it->dst = NULL;
            im->listing = it->listing;
            im->err = it->err;
            if (it->msg != NULL)
                snprintf(im->res.error, sizeof(im->res.error), "%s", it->msg);
            if (!it->listing) {
                const struct ocisync_sync_source *s = &sources[it->source];
                struct ocisync_copy_item *ci = &citems[n_copy++];
                ci->src = im->src;
                ci->dst = im->dst;
                ci->platforms = s->platforms;
                ci->n_platforms = s->n_platforms;
                ci->src_opts = s->src_opts;
                ci->dst_opts = s->dst_opts;
            } else {
                result->n_failed++;
            }
        }
    }
    result->n_planned = n_copy;
    if (opts->dry_run || n_copy == 0) {
        err = result->n_failed > 0 ? OCISYNC_EPARTIAL : 0;
        goto out;
    }
    cres = calloc(n_copy, sizeof(*cres));
    if (cres == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    err = ocisync_copy_many(citems, n_copy, &opts->copy, cres);
    for (size_t i = 0; i < n_copy; i++) {
        struct ocisync_sync_image *im = &result->images[i];
        im->res = cres[i];
        if (cres[i].error[0] != '\0' || (err != 0 && cres[i].digest[0] == '\0')) {
            /* What the signal stopped (or never started) is told apart from what failed. */
            bool stopped =
                err == OCISYNC_EINTERRUPTED &&
                (cres[i].error[0] == '\0' || strncmp(cres[i].error, "interrupted by ", 15) == 0);
            im->err = stopped ? OCISYNC_EINTERRUPTED : OCISYNC_EPARTIAL;
            result->n_failed++;
        }
    }
    if (err == OCISYNC_EINTERRUPTED)
        goto out;
    err = result->n_failed > 0 ? OCISYNC_EPARTIAL : 0;
out:
    for (size_t i = 0; i < run->n_items; i++) {
        free(run->items[i].src);
        free(run->items[i].dst);
        free(run->items[i].msg);
    }
    free(run->items);
    for (size_t i = 0; i < n && run->filters != NULL; i++)
        oci_tagfilter_free(&run->filters[i]);
    free(run->filters);
    free(run->has_filter);
    free(run);
    free(citems);
    free(cres);
    if (opts->copy.handle_signals)
        engine_stop_leave();
    return err;
}

void ocisync_sync_result_free(struct ocisync_sync_result *result)
{
    for (size_t i = 0; i < result->n_images; i++) {
        free(result->images[i].src);
        free(result->images[i].dst);
    }
    free(result->images);
    memset(result, 0, sizeof(*result));
}
