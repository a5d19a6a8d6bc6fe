/*
 * The Dockerfile frontend: a Dockerfile, its context and build arguments
 * become a build spec (engine/build.h) that build.c runs like any other
 * build, so a Dockerfile build streams its new layers, relays or mounts its
 * base's and pushes one index under many tags the same way.
 *
 * For each platform the target stage is evaluated on its own: global ARGs
 * (with the automatic TARGET* and BUILD* ones) for FROM, then the stage's
 * instructions in order with its ARGs and ENV. Each COPY or ADD becomes a
 * layer (the same layer for every platform when it comes out the same, so
 * it is built and uploaded once); every other instruction changes the
 * config, with one history entry per instruction as docker writes them.
 *
 * What needs a stage's files (COPY destinations, --chown by name, COPY
 * --from) reads the stage's layer stack (oci/stack.h). A RUN runs while the
 * stage is evaluated (engine/run.h), on the stage's layers, once per build
 * and key: its key is what ran on what (the layers below, the command, its
 * environment and mounts), and a key found in the build cache does not run.
 */
#define _GNU_SOURCE /* asprintf */
#include "engine/build.h"
#include "engine/cache.h"
#include "engine/fetch.h"
#include "engine/run.h"

#include "common/log.h"
#include "common/msg.h"
#include "common/sysio.h"
#include "oci/digest.h"
#include "oci/dockerfile.h"
#include "oci/dockerignore.h"
#include "oci/stack.h"
#include "oci/unpack.h"
#include "oci/manifest.h"
#include "oci/ref.h"
#include "oci/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PLATFORMS 16
#define MAX_STAGES 256
/* The Dockerfile and .dockerignore are read whole; beyond this they are refused. */
#define DOCKERFILE_MAX (4 * 1024 * 1024)
#define DOCKERIGNORE_MAX (1024 * 1024)
/* The largest file an ADD of a URL downloads. */
#define ADD_URL_MAX ((uint64_t)8 * 1024 * 1024 * 1024)
/* Sources one COPY may name after wildcards. */
#define MAX_COPY_SOURCES 4096

/* A growable list of owned strings. */
struct strs {
    char **v;
    size_t n, cap;
};

static int strs_add(struct strs *s, const char *str, size_t len)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        char **nv = realloc(s->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return UV_ENOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n] = strndup(str, len);
    if (s->v[s->n] == NULL)
        return UV_ENOMEM;
    s->n++;
    return 0;
}

static int strs_addz(struct strs *s, const char *str)
{
    return strs_add(s, str, strlen(str));
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int strs_copy(struct strs *dst, const struct strs *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = strs_addz(dst, src->v[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sets "KEY=VALUE" in a list of such entries: replaced where KEY is, else appended. */
static int kv_set(struct strs *s, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *e;
    if (asprintf(&e, "%s=%s", key, value) < 0)
        return UV_ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        if (strncmp(s->v[i], key, klen) == 0 && s->v[i][klen] == '=') {
            free(s->v[i]);
            s->v[i] = e;
            return 0;
        }
    }
    if (strs_addz(s, e) != 0) {
        free(e);
        return UV_ENOMEM;
    }
    free(e);
    return 0;
}

/* The value for key in a "KEY=VALUE" list, or NULL. */
static const char *kv_get(const struct strs *s, const char *key, size_t klen)
{
    for (size_t i = s->n; i-- > 0;) {
        if (strncmp(s->v[i], key, klen) == 0 && s->v[i][klen] == '=')
            return s->v[i] + klen + 1;
    }
    return NULL;
}

/* One stage's state while its instructions run, for one platform. */
struct stage {
    char *base;           /* the image it starts from; NULL for scratch; owned */
    char plat[96];        /* the platform of its files (FROM --platform, else the target's) */
    struct strs base_env; /* the base config's Env, for expansion */
    struct strs env;      /* ENV set by the build, in order ("K=V") */
    struct strs args;     /* ARGs in scope ("K=V"; declared without a value: not listed) */
    struct strs labels;   /* "k=v" */
    struct strs expose, volumes;
    struct strs entrypoint, cmd, shell;
    bool set_entrypoint, set_shell;
    bool set_cmd;  /* the build decides the image's Cmd (a CMD, or an ENTRYPOINT that cleared it) */
    bool cmd_here; /* a CMD in this very stage, which a later ENTRYPOINT keeps */
    char *workdir, *user, *stop_signal, *author; /* owned or NULL */
    struct strs hc_test;
    struct oci_healthcheck hc;
    bool set_hc;
    struct strs history_text;
    bool *history_empty;
    size_t history_cap;
    struct strs pending_dirs; /* WORKDIR directories not yet in a layer */
    /*
     * Directories the build made (WORKDIR, COPY), as "MODE UID GID PATH"
     * (MODE "-" when what they are is not known: they may be the base's):
     * for COPY's destination rule and what a later layer writes for them.
     */
    struct strs dirs;
    size_t pending_hist; /* the history entry of the last WORKDIR that added one */
    size_t *layers;
    size_t n_layers, layers_cap;
    /* The stage's files, once a step needed them: the base's layers, then its own. */
    struct oci_stack *fs; /* owned */
    size_t fs_layers;     /* how many of layers[] are in fs */
    struct engine_base_layers bl;
    struct strs passwd, group; /* "name uid gid" / "name gid", read from fs when needed */
    bool ids_loaded;
};

struct from_owner;

/* One distinct layer: the spec's entry and what it borrows. */
struct fe_layer {
    struct oci_tar_source *src; /* owned, n_src */
    size_t n_src;
    struct strs strings; /* what src points into: source, destination, ... */
    struct oci_tar_opts topts;
    struct oci_chmod chmod; /* topts.chmod points here once the layer list is final */
    bool has_chmod;
    char *label, *created_by; /* owned */
    struct fe *f;
    struct oci_ignore *exclude; /* COPY --exclude's patterns; owned */
    char *key;                  /* what makes two layers the same; owned */
    /* What its implied directories are ("MODE UID GID PATH", as stage.dirs). */
    struct strs answers;
    /* COPY --from: where its sources came from, for their owners. */
    struct from_owner *owners; /* owned */
    size_t n_owners;
    /* The plan stage_fs made of it (borrowed from fe.plans), and its content key once asked. */
    struct oci_tar_plan *plan;
    struct oci_digest ckey;
    bool has_ckey;
    /*
     * A RUN's layer: its key (what ran on what), and what running it left
     * (ran), or else the build cache's blob of that key (hit).
     */
    bool is_run, ran;
    struct oci_digest run_key;
    /* On the heap: stacks borrow its plan, and fe.fl moves as it grows. Owned. */
    struct engine_run_result *run;
    struct oci_layer_result hit;
};

struct fe {
    const struct ocisync_build_opts *o;
    struct ocisync_build_result *res;
    struct oci_df df;
    bool df_parsed;
    struct oci_ignore *ignore;
    char context[PATH_MAX]; /* the context directory, resolved */
    char scratch[4200];     /* heredoc files and empty directories; removed at the end */
    struct fe_layer *fl;    /* owned */
    size_t n_fl, cap_fl;
    size_t stage_start[MAX_STAGES]; /* instruction index of each FROM */
    char *stage_name[MAX_STAGES];   /* "AS name", lower case, or NULL; owned */
    size_t n_stages;
    size_t target;
    struct strs global_args; /* "K=V" of the ARGs before the first FROM, for one platform */
    /* The platform being evaluated. */
    struct oci_platform plat;
    char plat_name[96];
    char blobs[PATH_MAX]; /* where base layers are kept: the build cache (an OCI layout) */
    /* Tar plans of the build's own layers in stage filesystems (each borrowed by a stack). */
    struct oci_tar_plan **plans;
    size_t n_plans;
    /* Stages copied from (COPY --from): their files are read when the layers are built. */
    struct stage **from;
    struct strs from_keys; /* "PLATFORM STAGE-OR-IMAGE" of each */
    size_t n_from;
    unsigned n_extracts; /* names the scratch directories of COPY --from */
    size_t cur_stage;    /* the stage being evaluated: COPY --from names earlier ones */
    int copy_depth;      /* > 0 while a stage is evaluated for COPY --from */
    struct strs urls;    /* "URL\tPATH" of each ADD URL downloaded, once per build */
    /* RUN: the build cache (dir "" with --no-cache), the executor's state, --secret values. */
    struct engine_cache cache;
    struct engine_run_ctx run;
    bool run_ready;
    unsigned n_secret_files;
};

static int fail(struct fe *f, int rc, const struct oci_df_instr *in, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error: "Dockerfile line N: ..." when it belongs to an instruction. */
static int fail(struct fe *f, int rc, const struct oci_df_instr *in, const char *fmt, ...)
{
    char msg[900];
    va_list ap;

    if (f->res->error[0] != '\0')
        return rc;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (in != NULL)
        snprintf(f->res->error, sizeof(f->res->error), "%s line %u: %s", f->o->dockerfile, in->line,
                 msg);
    else
        snprintf(f->res->error, sizeof(f->res->error), "%s", msg);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Variables */

struct scope {
    const struct fe *f;
    const struct stage *st; /* NULL: the global scope of FROM */
};

/* ENV (the build's, then the base's) over ARG, as docker gives them. */
static const char *lookup(void *arg, const char *name, size_t len)
{
    const struct scope *sc = arg;
    const char *v;

    if (sc->st == NULL)
        return kv_get(&sc->f->global_args, name, len);
    if ((v = kv_get(&sc->st->env, name, len)) != NULL)
        return v;
    if ((v = kv_get(&sc->st->base_env, name, len)) != NULL)
        return v;
    return kv_get(&sc->st->args, name, len);
}

static int expand(struct fe *f, const struct stage *st, const struct oci_df_instr *in,
                  const char *raw, char **out)
{
    struct scope sc = {f, st};
    char err[512] = "";
    int rc = oci_df_expand(raw, f->df.escape, lookup, &sc, out, err, sizeof(err));
    if (rc != 0)
        return fail(f, rc, in, "%s", err[0] ? err : ocisync_strerror(rc));
    return 0;
}

/* The value of build argument name from --build-arg, or NULL when not given. */
static const char *build_arg(const struct fe *f, const char *name, bool *given)
{
    size_t len = strlen(name);

    *given = false;
    for (size_t i = f->o->n_build_args; i-- > 0;) {
        const char *a = f->o->build_args[i];
        if (strncmp(a, name, len) == 0 && a[len] == '=') {
            *given = true;
            return a + len + 1;
        }
        if (strcmp(a, name) == 0) {
            *given = true;
            return getenv(name); /* "KEY" alone: from the environment, unset if it is not */
        }
    }
    return NULL;
}

/* The automatic platform ARGs docker defines. */
static const char *auto_arg(const struct fe *f, const char *name, char *buf, size_t len)
{
    const struct oci_platform *t = &f->plat, *h = oci_platform_host();
    bool build = strncmp(name, "BUILD", 5) == 0;
    const struct oci_platform *p = build ? h : t;
    const char *what = name + (build ? 5 : strncmp(name, "TARGET", 6) == 0 ? 6 : 0);

    if (what == name)
        return NULL;
    if (strcmp(what, "PLATFORM") == 0) {
        oci_platform_format(p, buf, len);
        return buf;
    }
    if (strcmp(what, "OS") == 0)
        return p->os;
    if (strcmp(what, "ARCH") == 0)
        return p->arch;
    if (strcmp(what, "VARIANT") == 0)
        return p->variant;
    return NULL;
}

/*
 * ARG NAME[=DEFAULT]: in scope from here on, valued by --build-arg, else
 * its default, else (in a stage) the global ARG of that name, else the
 * automatic platform value.
 */
static int declare_arg(struct fe *f, struct stage *st, const struct oci_df_instr *in,
                       const struct oci_df_pair *p)
{
    struct strs *into = st ? &st->args : &f->global_args;
    char buf[96], *def = NULL;
    const char *v;
    bool given;
    int rc;

    v = build_arg(f, p->key, &given);
    if (!given && p->value != NULL) {
        rc = expand(f, st, in, p->value, &def);
        if (rc != 0)
            return rc;
        v = def;
    }
    if (!given && p->value == NULL) {
        v = st ? kv_get(&f->global_args, p->key, strlen(p->key)) : NULL;
        if (v == NULL)
            v = auto_arg(f, p->key, buf, sizeof(buf));
    }
    rc = v != NULL ? kv_set(into, p->key, v) : 0;
    free(def);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Stage state */

static void stage_free(struct stage *st)
{
    free(st->base);
    strs_free(&st->base_env);
    strs_free(&st->env);
    strs_free(&st->args);
    strs_free(&st->labels);
    strs_free(&st->expose);
    strs_free(&st->volumes);
    strs_free(&st->entrypoint);
    strs_free(&st->cmd);
    strs_free(&st->shell);
    strs_free(&st->hc_test);
    strs_free(&st->history_text);
    strs_free(&st->pending_dirs);
    strs_free(&st->dirs);
    free(st->workdir);
    free(st->user);
    free(st->stop_signal);
    free(st->author);
    free(st->history_empty);
    free(st->layers);
    if (st->fs != NULL)
        oci_stack_free(st->fs);
    engine_base_layers_free(&st->bl);
    strs_free(&st->passwd);
    strs_free(&st->group);
    memset(st, 0, sizeof(*st));
}

static int history(struct stage *st, const struct oci_df_instr *in, bool empty)
{
    if (st->history_text.n == st->history_cap) {
        size_t ncap = st->history_cap ? st->history_cap * 2 : 16;
        bool *n = realloc(st->history_empty, ncap * sizeof(*n));
        if (n == NULL)
            return UV_ENOMEM;
        st->history_empty = n;
        st->history_cap = ncap;
    }
    st->history_empty[st->history_text.n] = empty;
    return strs_addz(&st->history_text, in->original);
}

static int add_layer_ref(struct stage *st, size_t idx)
{
    if (st->n_layers == st->layers_cap) {
        size_t ncap = st->layers_cap ? st->layers_cap * 2 : 8;
        size_t *n = realloc(st->layers, ncap * sizeof(*n));
        if (n == NULL)
            return UV_ENOMEM;
        st->layers = n;
        st->layers_cap = ncap;
    }
    st->layers[st->n_layers++] = idx;
    return 0;
}

/* Copies what a stage inherits from the stage it is FROM. */
static int stage_inherit(struct stage *dst, const struct stage *src)
{
    int rc = 0;

    if (src->base != NULL && (dst->base = strdup(src->base)) == NULL)
        return UV_ENOMEM;
    memcpy(dst->plat, src->plat, sizeof(dst->plat));
    if ((rc = strs_copy(&dst->base_env, &src->base_env)) != 0 ||
        (rc = strs_copy(&dst->env, &src->env)) != 0 ||
        (rc = strs_copy(&dst->labels, &src->labels)) != 0 ||
        (rc = strs_copy(&dst->expose, &src->expose)) != 0 ||
        (rc = strs_copy(&dst->volumes, &src->volumes)) != 0 ||
        (rc = strs_copy(&dst->entrypoint, &src->entrypoint)) != 0 ||
        (rc = strs_copy(&dst->cmd, &src->cmd)) != 0 ||
        (rc = strs_copy(&dst->shell, &src->shell)) != 0 ||
        (rc = strs_copy(&dst->hc_test, &src->hc_test)) != 0 ||
        (rc = strs_copy(&dst->dirs, &src->dirs)) != 0)
        return rc;
    dst->set_entrypoint = src->set_entrypoint;
    dst->set_cmd = src->set_cmd;
    dst->set_shell = src->set_shell;
    dst->set_hc = src->set_hc;
    dst->hc = src->hc;
    if ((src->workdir && !(dst->workdir = strdup(src->workdir))) ||
        (src->user && !(dst->user = strdup(src->user))) ||
        (src->stop_signal && !(dst->stop_signal = strdup(src->stop_signal))) ||
        (src->author && !(dst->author = strdup(src->author))))
        return UV_ENOMEM;
    for (size_t i = 0; i < src->history_text.n; i++) {
        struct oci_df_instr fake = {.original = src->history_text.v[i]};
        if ((rc = history(dst, &fake, src->history_empty[i])) != 0)
            return rc;
    }
    for (size_t i = 0; i < src->n_layers; i++) {
        if ((rc = add_layer_ref(dst, src->layers[i])) != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Layers */

/*
 * A layer being made: on the heap, since making it may make others (a COPY
 * --from evaluates the stage it copies from), until commit_layer files it.
 */
static struct fe_layer *new_layer(struct fe *f)
{
    struct fe_layer *l = calloc(1, sizeof(*l));

    if (l != NULL)
        l->f = f;
    return l;
}

static void fe_layer_free(struct fe_layer *l)
{
    free(l->src);
    strs_free(&l->strings);
    free(l->label);
    free(l->created_by);
    free(l->key);
    strs_free(&l->answers);
    free(l->owners);
    if (l->exclude != NULL)
        oci_ignore_free(l->exclude);
    if (l->run != NULL)
        engine_run_result_free(l->run);
    free(l->run);
}

/*
 * Adds the layer being made (f->fl[f->n_fl]) to the stage: the same layer
 * already made for another platform is reused instead.
 */
static int commit_layer(struct fe *f, struct stage *st, struct fe_layer *l)
{
    for (size_t i = 0; i < f->n_fl; i++) {
        if (strcmp(f->fl[i].key, l->key) == 0) {
            fe_layer_free(l);
            free(l);
            return add_layer_ref(st, i);
        }
    }
    if (f->n_fl == f->cap_fl) {
        size_t ncap = f->cap_fl ? f->cap_fl * 2 : 8;
        struct fe_layer *n = realloc(f->fl, ncap * sizeof(*n));
        if (n == NULL) {
            fe_layer_free(l);
            free(l);
            return UV_ENOMEM;
        }
        f->fl = n;
        f->cap_fl = ncap;
    }
    f->fl[f->n_fl++] = *l; /* what it owns moves with it */
    free(l);
    return add_layer_ref(st, f->n_fl - 1);
}

/* The key of a layer: every source and destination, and the options. */
static int layer_key(struct fe_layer *l, const char *opts)
{
    size_t len = strlen(opts) + 2;
    char *k, *p;

    for (size_t i = 0; i < l->n_src; i++)
        len += strlen(l->src[i].src) + strlen(l->src[i].dest) + 2;
    k = malloc(len);
    if (k == NULL)
        return UV_ENOMEM;
    p = k + sprintf(k, "%s", opts);
    for (size_t i = 0; i < l->n_src; i++)
        p += sprintf(p, "\n%s\t%s", l->src[i].src, l->src[i].dest);
    l->key = k;
    return 0;
}

static int layer_source(struct fe_layer *l, const char *src, const char *dest)
{
    struct oci_tar_source *n = realloc(l->src, (l->n_src + 1) * sizeof(*n));
    int rc;

    if (n == NULL)
        return UV_ENOMEM;
    l->src = n;
    if ((rc = strs_addz(&l->strings, src)) != 0)
        return rc;
    if ((rc = strs_addz(&l->strings, dest)) != 0)
        return rc;
    /* The strings may move as the list grows; the pointers are set once it is final. */
    l->src[l->n_src].src = NULL;
    l->src[l->n_src].dest = NULL;
    l->src[l->n_src].contents = false;
    l->n_src++;
    return 0;
}

/* Points the sources at their strings, once no more are added. */
static void layer_fix(struct fe_layer *l)
{
    for (size_t i = 0; i < l->n_src; i++) {
        l->src[i].src = l->strings.v[2 * i];
        l->src[i].dest = l->strings.v[2 * i + 1];
    }
}

/* An empty directory in the scratch area, for WORKDIR's directories. */
static int scratch_dir(struct fe *f, char *out, size_t len)
{
    snprintf(out, len, "%s/empty-dir", f->scratch);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return fail(f, uv_translate_sys_error(errno), NULL, "cannot create \"%s\": %s", out,
                    strerror(errno));
    chmod(out, 0755);
    return 0;
}

/* The entry of stage.dirs (or a layer's answers) for path, or NULL. */
static const char *dir_find(const struct strs *dirs, const char *path)
{
    for (size_t i = dirs->n; i-- > 0;) {
        const char *p = dirs->v[i];
        for (int k = 0; k < 3 && p != NULL; k++) {
            p = strchr(p, ' ');
            p = p ? p + 1 : NULL;
        }
        if (p != NULL && strcmp(p, path) == 0)
            return dirs->v[i];
    }
    return NULL;
}

static bool is_dir_made(const struct stage *st, const char *path)
{
    return strcmp(path, "/") == 0 || dir_find(&st->dirs, path) != NULL;
}

/*
 * Records path (absolute, clean; with self) and its parents as directories
 * the build made, and tells layer l (if not NULL) what they are: those the
 * stage's files (fs) already have, as they are; those it makes now, mode
 * and owner; those made before, what they were. Without fs and on a base,
 * what a directory is stays unknown ("-": the layer writer's default).
 */
static int note_dirs(struct stage *st, struct oci_stack *fs, struct fe_layer *l, const char *path,
                     bool self, uint32_t mode, uint32_t uid, uint32_t gid)
{
    char buf[PATH_MAX], entry[PATH_MAX + 64];
    size_t n = strlen(path);
    int rc = 0;

    snprintf(buf, sizeof(buf), "%s", path);
    if (!self) {
        while (n > 0 && buf[n - 1] != '/')
            n--;
        buf[n > 1 ? n - 1 : n] = '\0';
        mode = 0755; /* mode is for path itself; its parents are made plain */
    }
    while (rc == 0 && strlen(buf) > 1) {
        const char *known = dir_find(&st->dirs, buf);
        if (known == NULL) {
            const struct oci_stack_node *there = fs != NULL ? oci_stack_lookup(fs, buf) : NULL;
            if (there != NULL) /* there already: written as it is */
                snprintf(entry, sizeof(entry), "%04o %u %u %s", there->mode, there->uid, there->gid,
                         buf);
            else if (fs != NULL || st->base == NULL)
                snprintf(entry, sizeof(entry), "%04o %u %u %s", mode, uid, gid, buf);
            else
                snprintf(entry, sizeof(entry), "- 0 0 %s", buf);
            rc = strs_addz(&st->dirs, entry);
            known = entry;
        }
        if (rc == 0 && l != NULL && dir_find(&l->answers, buf) == NULL)
            rc = strs_addz(&l->answers, known);
        /* Parents are made plain: 0755, with the owner. */
        mode = 0755;
        n = strlen(buf);
        while (n > 0 && buf[n - 1] != '/')
            n--;
        buf[n > 1 ? n - 1 : n] = '\0';
    }
    return rc;
}

/* WORKDIR directories still pending go into l (the layer of the next COPY). */
static int flush_dirs(struct fe *f, struct stage *st, struct fe_layer *l)
{
    char empty[4300];
    int rc;

    if (st->pending_dirs.n == 0)
        return 0;
    if ((rc = scratch_dir(f, empty, sizeof(empty))) != 0)
        return rc;
    for (size_t i = 0; i < st->pending_dirs.n; i++) {
        const char *path = st->pending_dirs.v[i];
        if ((rc = layer_source(l, empty, path)) != 0)
            return rc;
        l->src[l->n_src - 1].contents = true; /* the directory alone, made as WORKDIR said */
        for (size_t k = 0; k < st->dirs.n && rc == 0; k++) {
            const char *e = st->dirs.v[k], *q = e;
            for (int j = 0; j < 3 && q != NULL; j++)
                q = (q = strchr(q, ' ')) ? q + 1 : NULL;
            /* The directory and its parents, as WORKDIR recorded them. */
            if (q != NULL && strncmp(path, q, strlen(q)) == 0 &&
                (path[strlen(q)] == '\0' || path[strlen(q)] == '/') &&
                dir_find(&l->answers, q) == NULL)
                rc = strs_addz(&l->answers, e);
        }
        if (rc != 0)
            return rc;
    }
    strs_free(&st->pending_dirs);
    return 0;
}

/* The layer writer asks what an implied directory is: what note_dirs said, else the default. */
static void layer_parent(void *arg, const char *path, struct oci_tar_parent *p)
{
    const struct fe_layer *l = arg;
    char abs[PATH_MAX + 2];
    const char *e;
    unsigned mode, uid, gid;

    snprintf(abs, sizeof(abs), "/%s", path);
    e = dir_find(&l->answers, abs);
    if (e != NULL && sscanf(e, "%o %u %u", &mode, &uid, &gid) == 3) {
        p->mode = mode & 07777;
        p->uid = uid;
        p->gid = gid;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* A stage's files */

static void layer_parent(void *arg, const char *path, struct oci_tar_parent *p);
static bool from_owner(void *arg, const char *local, uint32_t *uid, uint32_t *gid);

/*
 * The stage's filesystem, for the steps that need to know what is there:
 * the base's layers (fetched once into the build cache), then the layers
 * the stage added so far, as tar plans. Built when first asked for, and
 * brought up to date on every later call.
 */
static int stage_fs(struct fe *f, struct stage *st, const struct oci_df_instr *in,
                    struct oci_stack **out)
{
    char err[1200];
    int rc;

    if (st->fs == NULL) {
        if ((rc = oci_stack_new(&st->fs)) != 0)
            return rc;
        st->fs_layers = 0;
        if (st->base != NULL) {
            rc = engine_build_base_layers(f->o, st->base, st->plat, f->blobs, &st->bl, err,
                                          sizeof(err));
            if (rc != 0)
                return fail(f, rc, in, "%s", err);
            for (size_t i = 0; i < st->bl.n; i++) {
                rc = oci_stack_add_blob(st->fs, st->bl.path[i], &st->bl.diff_id[i], err,
                                        sizeof(err));
                if (rc != 0)
                    return fail(f, rc, in, "base image %s: %s", st->base, err);
            }
        }
    }
    for (; st->fs_layers < st->n_layers; st->fs_layers++) {
        struct fe_layer *l = &f->fl[st->layers[st->fs_layers]];
        struct oci_tar_opts topts = l->topts;
        struct oci_tar_plan **np;
        if (l->is_run) {
            /* What the RUN changed, or its blob from the cache. */
            rc = l->ran
                     ? oci_stack_add_plan(st->fs, &l->run->plan, err, sizeof(err))
                     : oci_stack_add_blob(st->fs, l->hit.path, &l->hit.diff_id, err, sizeof(err));
            if (rc != 0)
                return fail(f, rc, in, "%s: %s", l->label, err);
            continue;
        }
        if (l->plan != NULL) {
            /* Planned for another stage already: the same layer. */
            if ((rc = oci_stack_add_plan(st->fs, l->plan, err, sizeof(err))) != 0)
                return fail(f, rc, in, "%s: %s", l->label, err);
            continue;
        }
        np = realloc(f->plans, (f->n_plans + 1) * sizeof(*np));
        if (np == NULL)
            return UV_ENOMEM;
        f->plans = np;
        if ((f->plans[f->n_plans] = calloc(1, sizeof(**np))) == NULL)
            return UV_ENOMEM;
        if (l->has_chmod)
            topts.chmod = &l->chmod;
        topts.parent = layer_parent;
        topts.parent_arg = l;
        topts.filter_arg = l;
        if (l->n_owners > 0) {
            topts.owner = from_owner;
            topts.owner_arg = l;
        }
        rc = oci_tar_plan_build(f->plans[f->n_plans], l->src, l->n_src, &topts, err, sizeof(err));
        f->n_plans++;
        if (rc == 0) {
            l->plan = f->plans[f->n_plans - 1];
            rc = oci_stack_add_plan(st->fs, l->plan, err, sizeof(err));
        }
        if (rc != 0)
            return fail(f, rc, in, "%s: %s", l->label, err);
    }
    *out = st->fs;
    return 0;
}

/* Reads /etc/passwd and /etc/group of the stage, once, for names in --chown and USER. */
static int load_ids(struct fe *f, struct stage *st, const struct oci_df_instr *in)
{
    static const char *const files[] = {"/etc/passwd", "/etc/group"};
    struct oci_stack *fs;
    char dir[4400], path[4500], err[1024], line[2048];
    int rc;

    if (st->ids_loaded)
        return 0;
    if ((rc = stage_fs(f, st, in, &fs)) != 0)
        return rc;
    for (int i = 0; i < 2; i++) {
        FILE *fp;
        snprintf(dir, sizeof(dir), "%s/ids-%u", f->scratch, f->n_extracts++);
        if (mkdir(dir, 0700) != 0)
            return fail(f, uv_translate_sys_error(errno), in, "cannot create %s", dir);
        rc = oci_stack_extract(fs, files[i], dir, err, sizeof(err));
        if (rc == UV_ENOENT)
            continue; /* no such file: no names */
        if (rc != 0)
            return fail(f, rc, in, "reading %s of the stage: %s", files[i], err);
        snprintf(path, sizeof(path), "%s/%s", dir, i == 0 ? "passwd" : "group");
        if ((fp = fopen(path, "re")) == NULL)
            continue;
        while (fgets(line, sizeof(line), fp) != NULL) {
            char name[256], entry[600], fields[2048], *fld[7] = {0}, *p = fields;
            unsigned long a = 0, b = 0;
            size_t nf = 0;
            /* name:x:uid:gid:gecos:home:shell (empty fields kept) and name:x:gid:... */
            line[strcspn(line, "\n")] = '\0';
            snprintf(fields, sizeof(fields), "%s", line);
            while (nf < 7 && (fld[nf] = strsep(&p, ":")) != NULL)
                nf++;
            if (i == 0 && sscanf(line, "%255[^:]:%*[^:]:%lu:%lu", name, &a, &b) == 3)
                snprintf(entry, sizeof(entry), "%s %lu %lu %.250s", name, a, b,
                         nf > 5 && fld[5][0] == '/' && !strchr(fld[5], ' ') ? fld[5] : "/");
            else if (i == 1 && sscanf(line, "%255[^:]:%*[^:]:%lu", name, &a) == 2)
                snprintf(entry, sizeof(entry), "%s %lu", name, a);
            else
                continue;
            if ((rc = strs_addz(i == 0 ? &st->passwd : &st->group, entry)) != 0)
                break;
        }
        fclose(fp);
        if (rc != 0)
            return rc;
    }
    st->ids_loaded = true;
    return 0;
}

/* The id of a user (passwd) or group name in the stage; false when there is none. */
static bool id_of(const struct strs *list, const char *name, unsigned long *id, unsigned long *gid)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < list->n; i++) {
        if (strncmp(list->v[i], name, n) == 0 && list->v[i][n] == ' ') {
            unsigned long a = 0, b = 0;
            int k = sscanf(list->v[i] + n + 1, "%lu %lu", &a, &b);
            *id = a;
            if (gid != NULL)
                *gid = k == 2 ? b : 0;
            return k >= 1;
        }
    }
    return false;
}

/*
 * "user[:group]" (names or numbers) as uid and gid, as --chown and USER
 * take them: a user name from the stage's /etc/passwd (with its primary
 * group when no group is given), a group name from /etc/group; a number
 * alone is its own group too, as docker documents.
 */
static int resolve_owner(struct fe *f, struct stage *st, const struct oci_df_instr *in,
                         const char *spec, uint32_t *uid, uint32_t *gid)
{
    char user[256], group[256] = "";
    const char *colon = strchr(spec, ':');
    unsigned long u = 0, g = 0, pg = 0;
    char *end;
    bool have_group = colon != NULL;
    int rc;

    snprintf(user, sizeof(user), "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    if (colon != NULL)
        snprintf(group, sizeof(group), "%s", colon + 1);
    u = strtoul(user, &end, 10);
    if (user[0] == '\0' || *end != '\0') {
        if ((rc = load_ids(f, st, in)) != 0)
            return rc;
        if (!id_of(&st->passwd, user, &u, &pg))
            return fail(f, OCISYNC_EUSAGE, in, "user \"%s\" is not in the stage's /etc/passwd",
                        user);
        g = pg;
    } else {
        g = u;
    }
    if (have_group) {
        g = strtoul(group, &end, 10);
        if (group[0] == '\0' || *end != '\0') {
            if ((rc = load_ids(f, st, in)) != 0)
                return rc;
            if (!id_of(&st->group, group, &g, NULL))
                return fail(f, OCISYNC_EUSAGE, in, "group \"%s\" is not in the stage's /etc/group",
                            group);
        }
    }
    if (u > UINT32_MAX || g > UINT32_MAX)
        return fail(f, OCISYNC_EUSAGE, in, "owner \"%s\" is out of range", spec);
    *uid = (uint32_t)u;
    *gid = (uint32_t)g;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The context */

/* Lexically cleans a slash path into out: no ".", "..", empty components; leading "/" kept. */
static void clean_path(const char *in, char *out, size_t len, bool *escaped)
{
    size_t o = 0;
    const char *p = in;

    *escaped = false;
    if (*p == '/' && o + 1 < len)
        out[o++] = '/';
    while (*p != '\0') {
        size_t n;
        while (*p == '/')
            p++;
        n = strcspn(p, "/");
        if (n == 0)
            break;
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            size_t root = out[0] == '/' ? 1 : 0;
            if (o > root) {
                while (o > root && out[o - 1] != '/')
                    o--;
                if (o > root)
                    o--;
            } else {
                *escaped = true;
            }
        } else {
            if (o > 0 && out[o - 1] != '/' && o + 1 < len)
                out[o++] = '/';
            if (o + n < len) {
                memcpy(out + o, p, n);
                o += n;
            }
        }
        p += n;
    }
    out[o] = '\0';
}

/* A link of the build context, for oci_resolve_in_root: its target, or NULL. */
static const char *context_link_of(void *arg, const char *path, size_t len, char *buf,
                                   size_t buflen)
{
    const struct fe *f = arg;
    char full[PATH_MAX * 2];
    struct stat st;
    ssize_t t;

    snprintf(full, sizeof(full), "%s/%.*s", f->context, (int)len, path);
    if (lstat(full, &st) != 0 || !S_ISLNK(st.st_mode) || (t = readlink(full, buf, buflen - 1)) < 0)
        return NULL;
    buf[t] = '\0';
    return buf;
}

/*
 * Resolves rel (a clean path relative to the context) to a path inside the
 * context, following symlinks as if the context were the root (the layer
 * stack's walk: a link's absolute target starts again at the context, ".."
 * stops there, at most 40 links). The result (relative, "" for the root) is
 * in out; UV_ENOENT when nothing is there.
 */
static int resolve_in_context(struct fe *f, const char *rel, char *out, size_t len)
{
    char full[PATH_MAX * 2];
    struct stat st;
    int rc = oci_resolve_in_root(rel, true, context_link_of, f, out, len);

    if (rc != 0)
        return rc;
    snprintf(full, sizeof(full), "%s%s%s", f->context, out[0] ? "/" : "", out);
    if (lstat(full, &st) != 0)
        return errno == ENOENT ? UV_ENOENT : uv_translate_sys_error(errno);
    return 0;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* What ig says of rel: included, excluded, or excluded with exceptions below to look for. */
static int ignore_verdict(const struct oci_ignore *ig, const char *rel, bool is_dir)
{
    if (ig == NULL || !oci_ignore_excluded(ig, rel))
        return OCI_TAR_INCLUDE;
    return is_dir && oci_ignore_must_descend(ig, rel) ? OCI_TAR_DESCEND : OCI_TAR_EXCLUDE;
}

/*
 * The layer walker asks about every entry below a source: the
 * .dockerignore (for what is in the build context), then the COPY's
 * --exclude patterns, relative to the source directory the entry is in.
 */
static int layer_filter(void *arg, const char *local, bool is_dir)
{
    const struct fe_layer *l = arg;
    const struct fe *f = l->f;
    size_t clen = strlen(f->context);
    int v = OCI_TAR_INCLUDE, w;

    if (strncmp(local, f->context, clen) == 0 && local[clen] == '/')
        v = ignore_verdict(f->ignore, local + clen + 1, is_dir);
    if (v == OCI_TAR_EXCLUDE || l->exclude == NULL)
        return v;
    for (size_t i = 0; i < l->n_src; i++) {
        const char *root = l->strings.v[2 * i];
        size_t rlen = strlen(root);
        if (strncmp(local, root, rlen) != 0 || local[rlen] != '/')
            continue;
        w = ignore_verdict(l->exclude, local + rlen + 1, is_dir);
        return w != OCI_TAR_INCLUDE ? w : v;
    }
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Where a wildcard source is matched: the build context, or a stage's files. */
struct glob_where {
    /* Adds the names in directory dir ("" for the root) to names; UV_ENOENT when it is none. */
    int (*list)(void *arg, const char *dir, struct strs *names);
    /* Whether path is there. */
    bool (*exists)(void *arg, const char *path);
    void *arg;
};

/*
 * Expands a wildcard source (clean, relative) one component at a time, so
 * that "*" never crosses a "/" (as Go's filepath.Match), each directory's
 * matches in name order (as filepath.Glob gives them); at most
 * MAX_COPY_SOURCES.
 */
static int glob_paths(struct fe *f, const struct oci_df_instr *in, const struct glob_where *w,
                      const char *pattern, struct strs *out)
{
    struct strs cur = {0}, next = {0}, names = {0};
    const char *p = pattern + (pattern[0] == '/');
    int rc = strs_addz(&cur, "");

    while (rc == 0 && *p != '\0') {
        size_t n = strcspn(p, "/");
        char comp[NAME_MAX + 1];
        snprintf(comp, sizeof(comp), "%.*s", (int)n, p);
        p += n + (p[n] == '/');
        for (size_t i = 0; rc == 0 && i < cur.n; i++) {
            char path[PATH_MAX * 2];
            if (!has_glob(comp)) {
                snprintf(path, sizeof(path), "%s%s%s", cur.v[i], cur.v[i][0] ? "/" : "", comp);
                if (w->exists(w->arg, path))
                    rc = strs_addz(&next, path);
                continue;
            }
            strs_free(&names);
            rc = w->list(w->arg, cur.v[i], &names);
            if (rc == UV_ENOENT) {
                rc = 0;
                continue;
            }
            if (rc == 0 && names.n > 1)
                qsort(names.v, names.n, sizeof(names.v[0]), cmp_str);
            for (size_t k = 0; rc == 0 && k < names.n; k++) {
                if (fnmatch(comp, names.v[k], 0) != 0)
                    continue;
                snprintf(path, sizeof(path), "%s%s%s", cur.v[i], cur.v[i][0] ? "/" : "",
                         names.v[k]);
                if (next.n >= MAX_COPY_SOURCES)
                    rc = fail(f, OCISYNC_ETOOBIG, in, "\"%s\" matches more than %d files", pattern,
                              MAX_COPY_SOURCES);
                else
                    rc = strs_addz(&next, path);
            }
        }
        strs_free(&cur);
        cur = next;
        memset(&next, 0, sizeof(next));
    }
    for (size_t i = 0; rc == 0 && i < cur.n; i++)
        rc = strs_addz(out, cur.v[i]);
    strs_free(&cur);
    strs_free(&next);
    strs_free(&names);
    return rc;
}

static int context_list(void *arg, const char *dir, struct strs *names)
{
    const struct fe *f = arg;
    char path[PATH_MAX * 2];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", f->context, dir);
    if ((d = opendir(path)) == NULL)
        return UV_ENOENT;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = strs_addz(names, de->d_name);
    }
    closedir(d);
    return rc;
}

static bool context_exists(void *arg, const char *path)
{
    const struct fe *f = arg;
    char full[PATH_MAX * 2];
    struct stat st;

    snprintf(full, sizeof(full), "%s/%s", f->context, path);
    return lstat(full, &st) == 0;
}

/* Expands a wildcard source against the context; what .dockerignore excludes is not there. */
static int glob_context(struct fe *f, const struct oci_df_instr *in, const char *pattern,
                        struct strs *out)
{
    const struct glob_where w = {context_list, context_exists, f};
    struct strs all = {0};
    int rc = glob_paths(f, in, &w, pattern, &all);

    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        if (f->ignore == NULL || !oci_ignore_excluded(f->ignore, all.v[i]))
            rc = strs_addz(out, all.v[i]);
    }
    strs_free(&all);
    return rc;
}

/* Writes a heredoc's content to a scratch file named by its digest; its path in out. */
static int heredoc_file(struct fe *f, const char *content, char *out, size_t len)
{
    struct oci_digest d;
    int fd;
    size_t n = strlen(content);

    oci_digest_buffer(OCI_DIGEST_SHA256, content, n, &d);
    snprintf(out, len, "%s/heredoc-%s", f->scratch, oci_digest_hex(&d));
    if (access(out, F_OK) == 0)
        return 0;
    fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, content, n) != (ssize_t)n) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail(f, uv_translate_sys_error(e), NULL, "cannot write \"%s\": %s", out,
                    strerror(e));
    }
    fchmod(fd, 0644);
    close(fd);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Instructions */

static const char *flag(const struct oci_df_instr *in, const char *name)
{
    for (size_t i = 0; i < in->n_flags; i++) {
        if (strcmp(in->flags[i].name, name) == 0)
            return in->flags[i].value ? in->flags[i].value : "";
    }
    return NULL;
}

/* Refuses any flag of in not in the NULL-terminated list ok. */
static int check_flags(struct fe *f, const struct oci_df_instr *in, const char *const *ok,
                       const char *later)
{
    for (size_t i = 0; i < in->n_flags; i++) {
        bool known = false;
        for (size_t k = 0; ok[k] != NULL; k++)
            known |= strcmp(in->flags[i].name, ok[k]) == 0;
        if (!known)
            return fail(f, OCISYNC_EUSAGE, in, "%s --%s is not supported%s",
                        oci_df_kind_name(in->kind), in->flags[i].name, later ? later : "");
    }
    return 0;
}

/*
 * Whether a local file starts like an archive ADD would unpack: 1 for one
 * ocisync unpacks (tar, gzip, zstd), 2 for bzip2 and xz, 0 for none.
 */
static int looks_like_archive(const char *path)
{
    unsigned char b[512];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return 0;
    n = read(fd, b, sizeof(b));
    close(fd);
    /* gzip and zstd as the layer reader tells them; bzip2 and xz by their own magic. */
    if (n >= 4 && oci_comp_of_head(b) != OCI_COMP_TAR)
        return 1;
    if ((n >= 3 && memcmp(b, "BZh", 3) == 0) || (n >= 6 && memcmp(b,
                                                                  "\xfd"
                                                                  "7zXZ\0",
                                                                  6) == 0))
        return 2;
    return n >= 262 && memcmp(b + 257, "ustar", 5) == 0;
}

/* What one COPY is putting together. */
struct copy {
    struct fe *f;
    struct stage *st;
    const struct oci_df_instr *in;
    struct fe_layer *l;
    struct oci_tar_opts topts;
    struct oci_stack *fs;       /* the stage's files (NULL when nothing is below: scratch) */
    char dest[PATH_MAX];        /* absolute, clean; resolved through the stage's links */
    bool dir_dest, many;        /* the destination names a directory */
    bool dest_is_dir;           /* ... or is one in the stage already */
    struct oci_digest checksum; /* ADD --checksum */
    bool has_checksum;
    bool parents;               /* COPY --parents */
    char parents_dir[PATH_MAX]; /* with it: the directory the current source sits in, kept */
};

/*
 * Adds one source (local: a file or a directory on this machine; name: the
 * file's name in the image) to the layer, where docker's rules put it: a
 * directory's contents into the destination; a file into it when it is a
 * directory (named with "/", several sources, or one there already), else
 * as the destination itself.
 */
static int place(struct copy *c, const char *local, const char *name, bool is_dir)
{
    char d[PATH_MAX * 2], base[PATH_MAX * 2];
    const char *dest = c->dest;
    int rc;

    /* COPY --parents: under the destination, the source's own parent directories first. */
    if (c->parents_dir[0] != '\0') {
        snprintf(base, sizeof(base), "%s/%s", strcmp(c->dest, "/") == 0 ? "" : c->dest,
                 c->parents_dir);
        dest = base;
    }
    if (is_dir)
        snprintf(d, sizeof(d), "%s", dest);
    else if (c->dir_dest || c->many || c->dest_is_dir || c->parents)
        snprintf(d, sizeof(d), "%s/%s", strcmp(dest, "/") == 0 ? "" : dest, name);
    else
        snprintf(d, sizeof(d), "%s", dest);
    if (c->many && !c->dir_dest)
        return fail(c->f, OCISYNC_EUSAGE, c->in,
                    "with more than one source the destination must be a directory and end "
                    "with a /");
    /*
     * A directory's contents go into d, which is made (when new) 0755, or as
     * --chmod says, owned as --chown says; new parents 0755 likewise.
     */
    rc = note_dirs(c->st, c->fs, c->l, d, is_dir,
                   c->l->has_chmod ? oci_chmod_apply(&c->l->chmod, 0755, true) : 0755,
                   c->topts.chown ? c->topts.uid : 0, c->topts.chown ? c->topts.gid : 0);
    if (rc == 0)
        rc = layer_source(c->l, local, d);
    if (rc == 0)
        c->l->src[c->l->n_src - 1].contents = is_dir;
    return rc;
}

/* A heredoc source: its text (expanded unless the delimiter was quoted) as a file. */
static int copy_heredoc(struct copy *c, const struct oci_df_heredoc *hd)
{
    char path[4400], *content = NULL, *chomped = NULL, err[512] = "";
    struct scope sc = {c->f, c->st};
    int rc = 0;

    if (hd->chomp)
        rc = oci_df_chomp(hd->content, &chomped);
    if (rc == 0 && hd->expand) {
        rc = oci_df_expand_heredoc(chomped ? chomped : hd->content, lookup, &sc, &content, err,
                                   sizeof(err));
        if (rc != 0)
            rc = fail(c->f, rc, c->in, "%s", err[0] ? err : ocisync_strerror(rc));
    } else if (rc == 0 && (content = strdup(chomped ? chomped : hd->content)) == NULL) {
        rc = UV_ENOMEM;
    }
    free(chomped);
    if (rc == 0)
        rc = heredoc_file(c->f, content, path, sizeof(path));
    free(content);
    return rc != 0 ? rc : place(c, path, hd->name, false);
}

static int add_archive(struct copy *c, const char *local, const char *shown);
static int add_url(struct copy *c, const char *url);

/*
 * COPY --parents: how many leading components of a source are not kept.
 * "a/./b/c" keeps b/c: what is before a "/./" pivot goes (BuildKit's rule);
 * without one, every parent is kept.
 */
static size_t parents_pivot(const char *word)
{
    const char *pivot = strstr(word, "/./");
    char pre[PATH_MAX], clean[PATH_MAX];
    size_t strip = 0;
    bool esc;

    if (pivot == NULL)
        return 0;
    snprintf(pre, sizeof(pre), "%.*s", (int)(pivot - word), word);
    clean_path(pre, clean, sizeof(clean), &esc);
    for (const char *q = clean; *q != '\0'; q++)
        strip += *q == '/' && q != clean;
    return strip + (clean[0] != '\0' && strcmp(clean, "/") != 0);
}

/*
 * COPY --parents: the directories of path (as matched, relative to the
 * context or the stage's root) that go under the destination, without the
 * pivot's strip components; a directory keeps itself too.
 */
static void parents_keep(struct copy *c, const char *path, size_t strip, bool is_dir)
{
    const char *keep = path + strspn(path, "/");

    for (size_t n = 0; n < strip && keep != NULL; n++)
        keep = (keep = strchr(keep, '/')) ? keep + 1 : NULL;
    snprintf(c->parents_dir, sizeof(c->parents_dir), "%s", keep ? keep : "");
    if (!is_dir) {
        char *slash = strrchr(c->parents_dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            c->parents_dir[0] = '\0';
    }
}

/* A source in the build context (after expansion), wildcards expanded. */
static int copy_context(struct copy *c, const char *raw, const char *word)
{
    struct fe *f = c->f;
    bool add = c->in->kind == OCI_DF_ADD, esc;
    struct strs srcs = {0};
    char clean[PATH_MAX];
    const char *rel;
    size_t strip = 0;
    int rc = 0, kind;

    if (add && (strncmp(word, "http://", 7) == 0 || strncmp(word, "https://", 8) == 0))
        return add_url(c, word);
    if (add && strncmp(word, "git@", 4) == 0)
        return fail(f, OCISYNC_EUSAGE, c->in, "ADD of a git repository (%s) is not supported",
                    word);
    if (c->has_checksum)
        return fail(f, OCISYNC_EUSAGE, c->in, "--checksum is for a URL, not \"%s\"", word);
    if (c->parents)
        strip = parents_pivot(word);
    clean_path(word, clean, sizeof(clean), &esc);
    if (esc)
        return fail(f, OCISYNC_EUSAGE, c->in, "source \"%s\" is outside the build context", raw);
    rel = clean[0] == '/' ? clean + 1 : clean;
    if (has_glob(rel)) {
        c->many = true;
        rc = glob_context(f, c->in, rel, &srcs);
        if (rc == 0 && srcs.n == 0)
            rc = fail(f, OCISYNC_EUSAGE, c->in, "no file in the build context matches \"%s\"", raw);
    } else {
        rc = strs_addz(&srcs, rel);
    }
    for (size_t k = 0; rc == 0 && k < srcs.n; k++) {
        char resolved[PATH_MAX], local[PATH_MAX * 2];
        const char *name = strrchr(srcs.v[k], '/');
        struct stat sb;

        name = name ? name + 1 : srcs.v[k];
        rc = resolve_in_context(f, srcs.v[k], resolved, sizeof(resolved));
        if (rc == 0 && f->ignore != NULL && srcs.v[k][0] != '\0' &&
            (oci_ignore_excluded(f->ignore, srcs.v[k]) ||
             (resolved[0] != '\0' && oci_ignore_excluded(f->ignore, resolved))) &&
            !oci_ignore_must_descend(f->ignore, srcs.v[k]))
            rc = UV_ENOENT;
        if (rc != 0) {
            rc = fail(f, OCISYNC_EUSAGE, c->in, "\"%s\" is not in the build context%s%s", srcs.v[k],
                      rc == UV_ENOENT ? "" : ": ", rc == UV_ENOENT ? "" : uv_strerror(rc));
            break;
        }
        snprintf(local, sizeof(local), "%s%s%s", f->context, resolved[0] ? "/" : "", resolved);
        if (stat(local, &sb) != 0) {
            rc = fail(f, uv_translate_sys_error(errno), c->in, "cannot read \"%s\": %s", srcs.v[k],
                      strerror(errno));
            break;
        }
        if (add && S_ISREG(sb.st_mode) && (kind = looks_like_archive(local)) != 0) {
            if (kind == 2)
                rc = fail(f, OCISYNC_EUSAGE, c->in,
                          "ADD of a bzip2 or xz archive (%s) is not supported yet (tar, gzip and "
                          "zstd are); use COPY to copy it as a file",
                          srcs.v[k]);
            else
                rc = add_archive(c, local, srcs.v[k]);
            continue;
        }
        if (c->parents)
            parents_keep(c, srcs.v[k], strip, S_ISDIR(sb.st_mode));
        rc = place(c, local, name, S_ISDIR(sb.st_mode));
        c->parents_dir[0] = '\0';
    }
    strs_free(&srcs);
    return rc;
}

/* Who owns what a COPY --from brings: the owner it has in the stage it comes from. */
struct from_owner {
    char local[PATH_MAX]; /* the extraction directory */
    char image[PATH_MAX]; /* what it holds: the source path in the stage, resolved */
    bool is_dir;          /* a directory's contents (else one file, dir/NAME) */
    struct oci_stack *fs; /* the stage's files (owned by a stage in fe.from) */
};

static bool from_owner(void *arg, const char *local, uint32_t *uid, uint32_t *gid)
{
    const struct fe_layer *l = arg;
    char path[PATH_MAX * 2];
    const struct oci_stack_node *n;

    for (size_t i = 0; i < l->n_owners; i++) {
        const struct from_owner *o = &l->owners[i];
        size_t len = strlen(o->local);
        if (strncmp(local, o->local, len) != 0 || (local[len] != '/' && local[len] != '\0'))
            continue;
        if (o->is_dir)
            snprintf(path, sizeof(path), "%s%s", o->image, local + len);
        else /* dir/NAME is the file itself */
            snprintf(path, sizeof(path), "%s", o->image);
        n = oci_stack_lookup(o->fs, path);
        if (n == NULL)
            return false;
        *uid = n->uid;
        *gid = n->gid;
        return true;
    }
    return false;
}

/* Keeps src (a stage or an archive's files) for the whole build, under key. Takes src. */
static int keep_from(struct fe *f, const char *key, struct stage *src)
{
    struct stage **nf = realloc(f->from, (f->n_from + 1) * sizeof(*nf));

    if (nf == NULL || strs_addz(&f->from_keys, key) != 0) {
        if (nf != NULL)
            f->from = nf;
        stage_free(src);
        free(src);
        return UV_ENOMEM;
    }
    f->from = nf;
    f->from[f->n_from++] = src;
    return 0;
}

/* Remembers that what the layer takes from local came from image (in fs), for its owners. */
static int add_owner(struct fe_layer *l, const char *local, const char *image, bool is_dir,
                     struct oci_stack *fs)
{
    struct from_owner *no = realloc(l->owners, (l->n_owners + 1) * sizeof(*no));

    if (no == NULL)
        return UV_ENOMEM;
    l->owners = no;
    no = &l->owners[l->n_owners++];
    snprintf(no->local, sizeof(no->local), "%s", local);
    snprintf(no->image, sizeof(no->image), "%s", image);
    no->is_dir = is_dir;
    no->fs = fs;
    return 0;
}

/* A fresh scratch directory for what a step extracts, in dir. */
static int extract_dir(struct fe *f, const struct oci_df_instr *in, char *dir, size_t len)
{
    snprintf(dir, len, "%s/from-%u", f->scratch, f->n_extracts++);
    if (mkdir(dir, 0755) != 0)
        return fail(f, uv_translate_sys_error(errno), in, "cannot create %s", dir);
    return 0;
}

static int eval_stage(struct fe *f, size_t idx, struct stage *st, int depth);
static size_t find_stage(const struct fe *f, const char *name, size_t before);

/*
 * COPY --from=STAGE|IMAGE: the stage (or the image, as a stage of its own)
 * is evaluated for this platform, its files stacked, and each source
 * extracted from them into a scratch directory that becomes the layer's
 * source. Owners stay as the stage has them unless --chown says.
 */
/* One path of a stage's files (clean, as given) into the layer: extracted, then placed. */
static int copy_one_from(struct copy *c, const char *from, struct oci_stack *fs, const char *clean,
                         size_t strip)
{
    struct fe *f = c->f;
    const struct oci_stack_node *n;
    char resolved[PATH_MAX], dir[4400], local[4600], err[1024], image[PATH_MAX + 2];
    const char *name = strrchr(clean, '/'), *rname;
    int rc;

    if ((rc = oci_stack_resolve(fs, clean, true, resolved, sizeof(resolved))) != 0)
        return fail(f, rc, c->in, "--from=%s: %s: %s", from, clean, uv_strerror(rc));
    n = oci_stack_lookup(fs, resolved);
    if (n == NULL)
        return fail(f, OCISYNC_EUSAGE, c->in, "--from=%s has no \"%s\"", from, clean);
    if ((rc = extract_dir(f, c->in, dir, sizeof(dir))) != 0)
        return rc;
    if ((rc = oci_stack_extract(fs, resolved, dir, err, sizeof(err))) != 0)
        return fail(f, rc, c->in, "--from=%s: %s", from, err);
    name = name ? name + 1 : clean;
    rname = strrchr(resolved, '/');
    if (n->type == '5')
        snprintf(local, sizeof(local), "%s", dir);
    else
        snprintf(local, sizeof(local), "%s/%s", dir, rname ? rname + 1 : resolved);
    snprintf(image, sizeof(image), "%s%s", resolved[0] ? "/" : "", resolved);
    if ((rc = add_owner(c->l, local, image, n->type == '5', fs)) != 0)
        return rc;
    if (c->parents)
        parents_keep(c, clean, strip, n->type == '5');
    rc = place(c, local, name, n->type == '5');
    c->parents_dir[0] = '\0';
    return rc;
}

static int stack_list_entry(void *arg, const char *name, const struct oci_stack_node *n)
{
    (void)n;
    return strs_addz(arg, name);
}

static int stack_list(void *arg, const char *dir, struct strs *names)
{
    return oci_stack_list(arg, dir, stack_list_entry, names);
}

static bool stack_exists(void *arg, const char *path)
{
    return oci_stack_lookup(arg, path) != NULL;
}

/* The files of the stage or image from names (COPY --from, RUN --mount=...,from=), this platform's.
 */
static int from_fs(struct fe *f, const struct oci_df_instr *in, const char *from,
                   struct oci_stack **fs)
{
    struct stage *src = NULL;
    char err[1024], key[1200];
    size_t idx;
    int rc;

    /* Each stage (or image) once per platform: what it gave is kept for the whole build. */
    idx = find_stage(f, from, f->cur_stage);
    snprintf(key, sizeof(key), "%s %s%s", f->plat_name, idx != SIZE_MAX ? "stage:" : "", from);
    for (size_t i = 0; i < f->n_from && src == NULL; i++)
        if (strcmp(f->from_keys.v[i], key) == 0)
            src = f->from[i];
    if (src != NULL)
        goto have;
    if ((src = calloc(1, sizeof(*src))) == NULL)
        return UV_ENOMEM;
    if (idx != SIZE_MAX) {
        f->copy_depth++;
        rc = eval_stage(f, idx, src, 1);
        f->copy_depth--;
    } else {
        struct oci_ref ref;
        if (oci_ref_parse(from, &ref, err, sizeof(err)) != 0) {
            free(src);
            return fail(f, OCISYNC_EUSAGE, in, "--from=%s names no earlier stage and no image",
                        from);
        }
        rc = (src->base = strdup(from)) ? 0 : UV_ENOMEM;
        snprintf(src->plat, sizeof(src->plat), "%s", f->plat_name);
    }
    if (rc != 0) {
        stage_free(src);
        free(src);
        return rc;
    }
    if ((rc = keep_from(f, key, src)) != 0)
        return rc;
have:
    return stage_fs(f, src, in, fs);
}

static int copy_from(struct copy *c, const char *from, const char *word)
{
    struct fe *f = c->f;
    struct oci_stack *fs;
    char clean[PATH_MAX];
    struct strs matches = {0};
    bool esc;
    size_t strip;
    int rc;

    if ((rc = from_fs(f, c->in, from, &fs)) != 0)
        return rc;
    strip = c->parents ? parents_pivot(word) : 0;
    clean_path(word, clean, sizeof(clean), &esc);
    if (!has_glob(clean))
        return copy_one_from(c, from, fs, clean, strip);
    c->many = true;
    rc = glob_paths(f, c->in, &(const struct glob_where){stack_list, stack_exists, fs}, clean,
                    &matches);
    if (rc == 0 && matches.n == 0)
        rc =
            fail(f, OCISYNC_EUSAGE, c->in, "--from=%s has nothing that matches \"%s\"", from, word);
    for (size_t i = 0; rc == 0 && i < matches.n; i++)
        rc = copy_one_from(c, from, fs, matches.v[i], strip);
    strs_free(&matches);
    return rc;
}

/*
 * ADD of a local archive (tar, gzip or zstd): unpacked into the destination,
 * as docker does, with the owners, modes and links the archive gives; read
 * as a layer is (the same caps), so nothing in it lands outside.
 */
static int add_archive(struct copy *c, const char *local, const char *shown)
{
    struct fe *f = c->f;
    struct stage *src = calloc(1, sizeof(*src));
    char dir[4400], err[1024], key[PATH_MAX + 16];
    int rc;

    if (src == NULL)
        return UV_ENOMEM;
    snprintf(key, sizeof(key), "archive:%s", local);
    if ((rc = keep_from(f, key, src)) != 0)
        return rc;
    if ((rc = oci_stack_new(&src->fs)) != 0)
        return rc;
    if ((rc = oci_stack_add_blob(src->fs, local, NULL, err, sizeof(err))) != 0)
        return fail(f, rc, c->in, "ADD %s: %s", shown, err);
    if ((rc = extract_dir(f, c->in, dir, sizeof(dir))) != 0)
        return rc;
    if ((rc = oci_stack_extract(src->fs, "", dir, err, sizeof(err))) != 0)
        return fail(f, rc, c->in, "ADD %s: %s", shown, err);
    if ((rc = add_owner(c->l, dir, "", true, src->fs)) != 0)
        return rc;
    return place(c, dir, "", true);
}

/* COPY --exclude=PATTERN (repeatable), in .dockerignore's syntax, into the layer. */
static int exclude_patterns(struct copy *c)
{
    struct strs lines = {0};
    char *text = NULL, err[512];
    size_t len = 0;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < c->in->n_flags; i++) {
        char *e = NULL;
        if (strcmp(c->in->flags[i].name, "exclude") != 0)
            continue;
        if ((rc = expand(c->f, c->st, c->in, c->in->flags[i].value ? c->in->flags[i].value : "",
                         &e)) == 0) {
            rc = strs_addz(&lines, e);
            len += strlen(e) + 1;
        }
        free(e);
    }
    if (rc == 0 && lines.n > 0) {
        if ((text = malloc(len + 1)) == NULL) {
            rc = UV_ENOMEM;
        } else {
            text[0] = '\0';
            for (size_t i = 0; i < lines.n; i++)
                strcat(strcat(text, lines.v[i]), "\n");
            rc = oci_ignore_parse(&c->l->exclude, text, len, err, sizeof(err));
            if (rc != 0)
                rc = fail(c->f, rc, c->in, "--exclude: %s", err);
        }
    }
    free(text);
    strs_free(&lines);
    return rc;
}

/*
 * ADD of a URL: downloaded by the engine's HTTP client (no credentials ever
 * sent, redirects followed as Go's client does, at most ADD_URL_MAX bytes,
 * --checksum verified) once per build, then placed as a file named after
 * the URL's path, mode 0600 (--chmod changes it) and the Last-Modified
 * mtime (the epoch when there is none), as BuildKit does. Never unpacked.
 */
static int add_url(struct copy *c, const char *url)
{
    struct fe *f = c->f;
    struct engine_fetch_result r;
    char dir[4400], path[4700], name[ENGINE_FETCH_NAME_MAX], err[1024];
    char key[ENGINE_FETCH_URL_MAX + 4800];
    const char *known;
    int rc;

    if ((rc = engine_fetch_filename(url, name)) != 0)
        return fail(f, rc, c->in, "ADD %s: the file name in the URL is too long", url);
    /* Downloaded already in this build: "URL\tDIGEST\tPATH"; --checksum still holds it to account.
     */
    snprintf(key, sizeof(key), "%s\t", url);
    for (size_t i = 0; i < f->urls.n; i++) {
        const char *d, *tab;
        if (strncmp(f->urls.v[i], key, strlen(key)) != 0)
            continue;
        d = f->urls.v[i] + strlen(key);
        tab = strchr(d, '\t');
        known = tab + 1;
        if (c->has_checksum && (strncmp(d, c->checksum.str, (size_t)(tab - d)) != 0 ||
                                c->checksum.str[tab - d] != '\0'))
            return fail(f, OCISYNC_EDIGESTMISMATCH, c->in,
                        "ADD %s: the content's digest is %.*s, not %s as --checksum says", url,
                        (int)(tab - d), d, c->checksum.str);
        return place(c, known, name, false);
    }
    if ((rc = extract_dir(f, c->in, dir, sizeof(dir))) != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rc = engine_fetch_url(url, &f->o->copy, path, ADD_URL_MAX,
                          c->has_checksum ? &c->checksum : NULL, &r, err, sizeof(err));
    if (rc != 0)
        return fail(f, rc, c->in, "ADD %s: %s", url, err);
    if (r.mtime < 0) {
        struct timespec ts[2] = {{0, 0}, {0, 0}};
        utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
    }
    snprintf(key, sizeof(key), "%s\t%s\t%s", url, r.digest.str, path);
    if ((rc = strs_addz(&f->urls, key)) != 0)
        return rc;
    return place(c, path, name, false);
}

static int do_copy(struct fe *f, struct stage *st, const struct oci_df_instr *in)
{
    static const char *const copy_flags[] = {"chown",   "chmod",   "link", "from",
                                             "exclude", "parents", NULL};
    static const char *const add_flags[] = {"chown", "chmod", "link", "exclude", "checksum", NULL};
    struct copy c;
    char *dest_raw = NULL, *from = NULL, opts[600];
    const char *v;
    bool esc;
    int rc;

    memset(&c, 0, sizeof(c));
    c.f = f;
    c.st = st;
    c.in = in;
    if ((rc = check_flags(f, in, in->kind == OCI_DF_ADD ? add_flags : copy_flags, " yet")) != 0)
        return rc;
    if (in->n_args < 2)
        return fail(f, OCISYNC_EUSAGE, in, "%s needs a source and a destination",
                    oci_df_kind_name(in->kind));
    c.topts.overlay = true;
    c.topts.filter = layer_filter;
    if ((c.l = new_layer(f)) == NULL)
        return UV_ENOMEM;
    if ((rc = exclude_patterns(&c)) != 0)
        goto out;
    if ((v = flag(in, "parents")) != NULL) {
        if (strcmp(v, "") != 0 && strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            rc = fail(f, OCISYNC_EUSAGE, in, "--parents takes no value (or true/false), not %s", v);
            goto out;
        }
        c.parents = strcmp(v, "false") != 0;
    }
    if ((v = flag(in, "checksum")) != NULL) {
        char *e = NULL;
        if ((rc = expand(f, st, in, v, &e)) == 0 && oci_digest_parse_str(e, &c.checksum) != 0)
            rc = fail(f, OCISYNC_EUSAGE, in, "--checksum=%s is not a digest (sha256:...)", e);
        free(e);
        if (rc != 0)
            goto out;
        c.has_checksum = true;
    }
    if ((v = flag(in, "from")) != NULL && (rc = expand(f, st, in, v, &from)) != 0)
        goto out;
    if ((v = flag(in, "chown")) != NULL) {
        char *e = NULL;
        if ((rc = expand(f, st, in, v, &e)) == 0 &&
            (rc = resolve_owner(f, st, in, e, &c.topts.uid, &c.topts.gid)) == 0)
            c.topts.chown = true;
        free(e);
        if (rc != 0)
            goto out;
    }
    if ((v = flag(in, "chmod")) != NULL) {
        char *e = NULL, err[256];
        if ((rc = expand(f, st, in, v, &e)) == 0 &&
            (rc = oci_chmod_parse(e, &c.l->chmod, err, sizeof(err))) != 0)
            rc = fail(f, rc, in, "--chmod: %s", err);
        free(e);
        if (rc != 0)
            goto out;
        c.l->has_chmod = true;
    }

    /*
     * The destination: relative to WORKDIR; a directory when it ends in "/".
     * Sources and destination expand in JSON form too, as BuildKit's Expand
     * does. Links in it are the stage's, followed as docker follows them
     * (merged-/usr bases have /bin -> usr/bin).
     */
    if ((rc = expand(f, st, in, in->args[in->n_args - 1], &dest_raw)) != 0)
        goto out;
    {
        char joined[PATH_MAX * 2], clean[PATH_MAX];
        size_t dl = strlen(dest_raw);
        const struct oci_stack_node *n;
        c.dir_dest = dl > 0 && (dest_raw[dl - 1] == '/' || strcmp(dest_raw, ".") == 0 ||
                                (dl >= 2 && strcmp(dest_raw + dl - 2, "/.") == 0));
        snprintf(joined, sizeof(joined), "%s/%s",
                 dest_raw[0] == '/' ? "" : (st->workdir ? st->workdir : ""), dest_raw);
        clean_path(joined, clean, sizeof(clean), &esc);
        if ((rc = stage_fs(f, st, in, &c.fs)) != 0)
            goto out;
        rc = oci_stack_resolve(c.fs, clean, true, c.dest + 1, sizeof(c.dest) - 1);
        if (rc != 0) {
            rc = fail(f, rc, in, "destination %s: %s", clean, uv_strerror(rc));
            goto out;
        }
        c.dest[0] = '/';
        n = oci_stack_lookup(c.fs, c.dest);
        c.dest_is_dir = (n != NULL && n->type == '5') || is_dir_made(st, c.dest);
        if (!c.dest_is_dir && !c.dir_dest) {
            /* Not a directory: the file itself, under its resolved parent. */
            rc = oci_stack_resolve(c.fs, clean, false, c.dest + 1, sizeof(c.dest) - 1);
            if (rc != 0)
                goto out;
        }
    }

    /* The sources: heredocs, the build context, or another stage or image. */
    c.many = in->n_args > 2;
    for (size_t i = 0; rc == 0 && i + 1 < in->n_args; i++) {
        const struct oci_df_heredoc *hd = NULL;
        char *word = NULL;

        if (!in->json && in->n_heredocs > 0) {
            struct oci_df_heredoc marker;
            memset(&marker, 0, sizeof(marker));
            rc = oci_df_heredoc_word(in->args[i], &marker);
            if (rc == 1)
                hd = oci_df_heredoc_by_name(in, marker.name);
            free(marker.name);
            if (rc < 0) {
                rc = fail(f, rc, in, "heredoc %s: the delimiter does not parse", in->args[i]);
                break;
            }
            rc = 0;
        }
        if (hd != NULL) {
            rc = copy_heredoc(&c, hd);
            continue;
        }
        if ((rc = expand(f, st, in, in->args[i], &word)) != 0)
            break;
        rc = from != NULL ? copy_from(&c, from, word) : copy_context(&c, in->args[i], word);
        free(word);
    }
    if (rc != 0)
        goto out;
    if ((rc = flush_dirs(f, st, c.l)) != 0)
        goto out;
    layer_fix(c.l);
    c.l->topts = c.topts;
    snprintf(opts, sizeof(opts), "chown=%d:%u:%u chmod=%s from=%s exclude=%s", c.topts.chown,
             c.topts.uid, c.topts.gid, c.l->has_chmod ? flag(in, "chmod") : "-", from ? from : "-",
             c.l->exclude != NULL ? in->original : "-");
    if ((rc = layer_key(c.l, opts)) != 0)
        goto out;
    if (asprintf(&c.l->label, "%s (line %u)", in->original, in->line) < 0) {
        c.l->label = NULL;
        rc = UV_ENOMEM;
        goto out;
    }
    if ((c.l->created_by = strdup(in->original)) == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    rc = history(st, in, false);
    if (rc == 0) {
        rc = commit_layer(f, st, c.l); /* takes it, whatever happens */
        c.l = NULL;
    }
out:
    if (c.l != NULL) {
        fe_layer_free(c.l);
        free(c.l);
    }
    free(from);
    free(dest_raw);
    return rc;
}

/* A Go duration as HEALTHCHECK takes it ("30s", "1m30s", "500ms"), in nanoseconds. */
static int parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"ns", 1},           {"us", 1000},         {"ms", 1000000},
                 {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL}};
    int64_t total = 0;

    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    while (*s != '\0') {
        char *end;
        double v = strtod(s, &end);
        size_t best = 0, best_len = 0;
        if (end == s || v < 0)
            return OCISYNC_EUSAGE;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(end, units[i].unit, ul) == 0 && ul > best_len) {
                best = i;
                best_len = ul;
            }
        }
        if (best_len == 0 || v * (double)units[best].ns > 9.2e18)
            return OCISYNC_EUSAGE;
        total += (int64_t)(v * (double)units[best].ns);
        s = end + best_len;
    }
    *ns = total;
    return 0;
}

/* The exec form's words, or the shell form wrapped in the stage's shell. */
static int command(const struct stage *st, const struct oci_df_instr *in, struct strs *out)
{
    int rc = 0;

    strs_free(out);
    if (in->json) {
        for (size_t i = 0; rc == 0 && i < in->n_args; i++)
            rc = strs_addz(out, in->args[i]);
        return rc;
    }
    if (st->set_shell) {
        for (size_t i = 0; rc == 0 && i < st->shell.n; i++)
            rc = strs_addz(out, st->shell.v[i]);
    } else {
        if ((rc = strs_addz(out, "/bin/sh")) == 0)
            rc = strs_addz(out, "-c");
    }
    return rc != 0 ? rc : strs_addz(out, in->n_args > 0 ? in->args[0] : "");
}

/* Expands each raw word of in into out (VOLUME, in either form). */
static int words(struct fe *f, const struct stage *st, const struct oci_df_instr *in,
                 struct strs *out)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < in->n_args; i++) {
        char *w = NULL;
        if ((rc = expand(f, st, in, in->args[i], &w)) == 0 && w[0] != '\0')
            rc = strs_addz(out, w);
        free(w);
    }
    return rc;
}

static int do_healthcheck(struct fe *f, struct stage *st, const struct oci_df_instr *in)
{
    static const char *const ok[] = {"interval",       "timeout", "start-period",
                                     "start-interval", "retries", NULL};
    int64_t *durs[] = {&st->hc.interval_ns, &st->hc.timeout_ns, &st->hc.start_period_ns,
                       &st->hc.start_interval_ns};
    int rc;

    if ((rc = check_flags(f, in, ok, "")) != 0)
        return rc;
    memset(&st->hc, 0, sizeof(st->hc));
    strs_free(&st->hc_test);
    st->set_hc = true;
    if (in->n_args == 0 || strcasecmp(in->args[0], "NONE") == 0)
        return strs_addz(&st->hc_test, "NONE");
    for (size_t i = 0; i < 4; i++) {
        const char *v = flag(in, ok[i]);
        if (v != NULL && parse_duration(v, durs[i]) != 0)
            return fail(f, OCISYNC_EUSAGE, in, "--%s=%s is not a duration (like 30s or 1m30s)",
                        ok[i], v);
    }
    if (flag(in, "retries") != NULL) {
        char *end;
        long r = strtol(flag(in, "retries"), &end, 10);
        if (*end != '\0' || r < 0 || r > INT32_MAX)
            return fail(f, OCISYNC_EUSAGE, in, "--retries takes a number");
        st->hc.retries = (int)r;
    }
    if (in->json) {
        if ((rc = strs_addz(&st->hc_test, "CMD")) != 0)
            return rc;
        for (size_t i = 1; rc == 0 && i < in->n_args; i++)
            rc = strs_addz(&st->hc_test, in->args[i]);
        return rc;
    }
    if ((rc = strs_addz(&st->hc_test, "CMD-SHELL")) != 0)
        return rc;
    return strs_addz(&st->hc_test, in->n_args > 1 ? in->args[1] : "");
}

/* Runs one instruction of a stage (FROM excepted). */
/* ------------------------------------------------------------------------------------------ */
/* RUN */

static int finish_stage(struct fe *f, struct stage *st);

/* Feeds one named field of a RUN's key, so that no two fields hash alike. */
static void key_field(struct oci_hasher *h, const char *name, const char *v)
{
    oci_hasher_update(h, name, strlen(name) + 1);
    oci_hasher_update(h, v, strlen(v) + 1);
}

/* The pieces of one --mount=... ("k=v,k=v"): value of key, or NULL. */
static const char *mount_opt(const struct strs *kv, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < kv->n; i++) {
        if (strncmp(kv->v[i], key, klen) == 0 && kv->v[i][klen] == '=')
            return kv->v[i] + klen + 1;
        if (strcmp(kv->v[i], key) == 0)
            return "";
    }
    return NULL;
}

static bool opt_true(const char *v)
{
    return v != NULL && (v[0] == '\0' || strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/*
 * The file a --secret id=ID gives (src=PATH, or env=VAR written to a
 * private file of the build): 0 with path set, 1 when not given.
 */
static int secret_file(struct fe *f, const struct oci_df_instr *in, const char *id, char *path,
                       size_t len)
{
    for (size_t i = f->o->n_secrets; i-- > 0;) {
        struct strs kv = {0};
        const char *sid, *src, *env;
        char *copy = strdup(f->o->secrets[i]), *save = NULL;
        int rc = copy ? 0 : UV_ENOMEM;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && t != NULL;
             t = strtok_r(NULL, ",", &save))
            rc = strs_addz(&kv, t);
        free(copy);
        sid = mount_opt(&kv, "id");
        src = mount_opt(&kv, "src") ? mount_opt(&kv, "src") : mount_opt(&kv, "source");
        env = mount_opt(&kv, "env");
        if (rc != 0 || sid == NULL || strcmp(sid, id) != 0) {
            strs_free(&kv);
            if (rc != 0)
                return rc;
            continue;
        }
        if (src != NULL) {
            snprintf(path, len, "%s", src);
        } else if (env != NULL && getenv(env) != NULL) {
            int fd;
            snprintf(path, len, "%s/secret-%u", f->scratch, f->n_secret_files++);
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
            rc = fd < 0 ? ocisync__sys_error()
                        : ocisync__write_full(fd, getenv(env), strlen(getenv(env)));
            if (fd >= 0)
                close(fd);
            if (rc != 0) {
                strs_free(&kv);
                return fail(f, rc, in, "secret %s: cannot write it for the RUN: %s", id,
                            uv_strerror(rc));
            }
        } else {
            rc = fail(f, OCISYNC_EUSAGE, in,
                      "--secret id=%s: give src=FILE, or env=VAR of a set "
                      "variable",
                      id);
            strs_free(&kv);
            return rc;
        }
        strs_free(&kv);
        if (access(path, R_OK) != 0)
            return fail(f, OCISYNC_EUSAGE, in, "secret %s: cannot read %s: %s", id, path,
                        strerror(errno));
        return 0;
    }
    return 1;
}

/* What a RUN's --mount flags give: the sandbox's mounts, and what the key says of them. */
struct run_mounts {
    struct engine_sandbox_mount m[ENGINE_SANDBOX_MAX_MOUNTS];
    size_t n;
    struct strs strings; /* what m points into */
};

/* One --mount=SPEC of in into rm, its part of the key into h. */
static int run_mount(struct fe *f, struct stage *st, const struct oci_df_instr *in,
                     const char *spec, struct run_mounts *rm, struct oci_hasher *h)
{
    struct strs kv = {0};
    char *copy = strdup(spec), *save = NULL, target[PATH_MAX], host[PATH_MAX * 2];
    const char *type, *v;
    bool esc;
    int rc = copy ? 0 : UV_ENOMEM;

    for (char *p = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && p != NULL;
         p = strtok_r(NULL, ",", &save))
        rc = strs_addz(&kv, p);
    free(copy);
    if (rc != 0)
        goto out;
    type = mount_opt(&kv, "type") ? mount_opt(&kv, "type") : "bind";
    v = mount_opt(&kv, "target") ? mount_opt(&kv, "target")
        : mount_opt(&kv, "dst")  ? mount_opt(&kv, "dst")
                                 : mount_opt(&kv, "destination");
    if (rm->n == ENGINE_SANDBOX_MAX_MOUNTS) {
        rc = fail(f, OCISYNC_ETOOBIG, in, "more than %d mounts", ENGINE_SANDBOX_MAX_MOUNTS);
        goto out;
    }
    if (strcmp(type, "secret") == 0) {
        const char *id = mount_opt(&kv, "id");
        char idbuf[256];
        if (id == NULL && v != NULL) {
            const char *slash = strrchr(v, '/');
            snprintf(idbuf, sizeof(idbuf), "%s", slash ? slash + 1 : v);
            id = idbuf;
        }
        if (id == NULL || id[0] == '\0') {
            rc = fail(f, OCISYNC_EUSAGE, in, "--mount=type=secret needs an id (or a target)");
            goto out;
        }
        if (v == NULL) {
            snprintf(target, sizeof(target), "/run/secrets/%s", id);
        } else {
            clean_path(v, target, sizeof(target), &esc);
        }
        rc = secret_file(f, in, id, host, sizeof(host));
        if (rc == 1) {
            /* Not given: BuildKit leaves it out, unless the mount says it is required. */
            rc = opt_true(mount_opt(&kv, "required"))
                     ? fail(f, OCISYNC_EUSAGE, in,
                            "the RUN needs secret %s: give it with --secret id=%s,src=FILE", id, id)
                     : 0;
            goto out;
        }
        if (rc != 0)
            goto out;
        /* The key names the secret, never its content: a changed secret is no new step. */
        key_field(h, "secret", id);
        key_field(h, "at", target);
        rm->m[rm->n].kind = ENGINE_SANDBOX_SECRET;
    } else if (strcmp(type, "cache") == 0) {
        const char *id;
        struct oci_digest d;
        if (v == NULL) {
            rc = fail(f, OCISYNC_EUSAGE, in, "--mount=type=cache needs a target");
            goto out;
        }
        clean_path(v, target, sizeof(target), &esc);
        id = mount_opt(&kv, "id") ? mount_opt(&kv, "id") : target;
        if (mount_opt(&kv, "from") != NULL) {
            rc = fail(f, OCISYNC_EUSAGE, in, "--mount=type=cache,from= is not supported yet");
            goto out;
        }
        /* One directory per id, kept with the build cache (not part of any layer or key). */
        oci_digest_buffer(OCI_DIGEST_SHA256, id, strlen(id), &d);
        snprintf(host, sizeof(host), "%s/mounts", f->run.cache[0] ? f->run.cache : f->scratch);
        if (mkdir(host, 0700) != 0 && errno != EEXIST) {
            rc = fail(f, ocisync__sys_error(), in, "cannot create %s: %s", host, strerror(errno));
            goto out;
        }
        snprintf(host + strlen(host), sizeof(host) - strlen(host), "/%.16s", oci_digest_hex(&d));
        if (mkdir(host, 0755) == 0) {
            unsigned long uid = strtoul(mount_opt(&kv, "uid") ? mount_opt(&kv, "uid") : "0", NULL,
                                        10),
                          gid = strtoul(mount_opt(&kv, "gid") ? mount_opt(&kv, "gid") : "0", NULL,
                                        10),
                          mode = strtoul(mount_opt(&kv, "mode") ? mount_opt(&kv, "mode") : "0755",
                                         NULL, 8);
            if (lchown(host, (uid_t)uid, (gid_t)gid) != 0 || chmod(host, (mode_t)mode & 07777) != 0)
                LOG_DEBUG("cache mount %s: %s", host, strerror(errno));
        } else if (errno != EEXIST) {
            rc = fail(f, ocisync__sys_error(), in, "cannot create %s: %s", host, strerror(errno));
            goto out;
        }
        key_field(h, "cache", id);
        key_field(h, "at", target);
        rm->m[rm->n].kind = opt_true(mount_opt(&kv, "ro")) || opt_true(mount_opt(&kv, "readonly"))
                                ? ENGINE_SANDBOX_BIND_RO
                                : ENGINE_SANDBOX_BIND_RW;
    } else if (strcmp(type, "bind") == 0) {
        const char *src = mount_opt(&kv, "source") ? mount_opt(&kv, "source")
                          : mount_opt(&kv, "src")  ? mount_opt(&kv, "src")
                                                   : ".";
        const char *from = mount_opt(&kv, "from");
        char clean[PATH_MAX], resolved[PATH_MAX], kerr[512];
        struct oci_tar_source ts;
        struct oci_tar_opts topts;
        struct oci_tar_plan plan;
        struct oci_digest d;
        if (v == NULL) {
            rc = fail(f, OCISYNC_EUSAGE, in, "--mount=type=bind needs a target");
            goto out;
        }
        if (opt_true(mount_opt(&kv, "rw")) || opt_true(mount_opt(&kv, "readwrite"))) {
            rc = fail(f, OCISYNC_EUSAGE, in,
                      "--mount=type=bind,rw is not supported yet (read-only binds are)");
            goto out;
        }
        clean_path(v, target, sizeof(target), &esc);
        clean_path(src, clean, sizeof(clean), &esc);
        if (from != NULL) {
            /* A stage's or image's files: what src is there, extracted once for this RUN. */
            struct oci_stack *ffs;
            const struct oci_stack_node *node;
            char dir[4400];
            if ((rc = from_fs(f, in, from, &ffs)) != 0)
                goto out;
            if ((rc = oci_stack_resolve(ffs, clean, true, resolved, sizeof(resolved))) != 0 ||
                (node = oci_stack_lookup(ffs, resolved)) == NULL) {
                rc = fail(f, OCISYNC_EUSAGE, in, "bind source %s is not in %s", src, from);
                goto out;
            }
            if ((rc = extract_dir(f, in, dir, sizeof(dir))) != 0)
                goto out;
            if ((rc = oci_stack_extract(ffs, resolved, dir, kerr, sizeof(kerr))) != 0) {
                rc = fail(f, rc, in, "bind source %s of %s: %s", src, from, kerr);
                goto out;
            }
            if (node->type == '5') {
                snprintf(host, sizeof(host), "%s", dir);
            } else {
                const char *name = strrchr(clean, '/');
                snprintf(host, sizeof(host), "%s/%s", dir, name ? name + 1 : clean);
            }
        } else {
            if (esc) {
                rc = fail(f, OCISYNC_EUSAGE, in, "bind source \"%s\" is outside the build context",
                          src);
                goto out;
            }
            if ((rc = resolve_in_context(f, clean[0] == '/' ? clean + 1 : clean, resolved,
                                         sizeof(resolved))) != 0) {
                rc = fail(f, OCISYNC_EUSAGE, in, "bind source \"%s\" is not in the build context",
                          src);
                goto out;
            }
            snprintf(host, sizeof(host), "%s%s%s", f->context, resolved[0] ? "/" : "", resolved);
        }
        /* What is bound is part of what ran: its content goes into the key. */
        memset(&ts, 0, sizeof(ts));
        memset(&topts, 0, sizeof(topts));
        memset(&plan, 0, sizeof(plan));
        ts.src = host;
        ts.dest = "/";
        rc = oci_tar_plan_build(&plan, &ts, 1, &topts, kerr, sizeof(kerr));
        if (rc == 0)
            rc = engine_cache_key(&f->cache, &plan, OCI_COMPRESS_GZIP, 0, &d, kerr, sizeof(kerr));
        oci_tar_plan_free(&plan);
        if (rc != 0) {
            rc = fail(f, rc, in, "bind source %s: %s", src, kerr);
            goto out;
        }
        key_field(h, "bind", d.str);
        key_field(h, "at", target);
        rm->m[rm->n].kind = ENGINE_SANDBOX_BIND_RO;
    } else if (strcmp(type, "tmpfs") == 0) {
        if (v == NULL) {
            rc = fail(f, OCISYNC_EUSAGE, in, "--mount=type=tmpfs needs a target");
            goto out;
        }
        clean_path(v, target, sizeof(target), &esc);
        snprintf(host, sizeof(host), "tmpfs");
        key_field(h, "tmpfs", target);
        rm->m[rm->n].kind = ENGINE_SANDBOX_TMPFS;
    } else {
        rc = fail(f, OCISYNC_EUSAGE, in, "--mount=type=%s is not supported%s", type,
                  strcmp(type, "ssh") == 0 ? " yet" : "");
        goto out;
    }
    /* Targets are in the image: relative ones under WORKDIR. */
    if (target[0] != '/') {
        char joined[PATH_MAX * 2];
        snprintf(joined, sizeof(joined), "%s/%s", st->workdir ? st->workdir : "", target);
        clean_path(joined, target, sizeof(target), &esc);
    }
    if ((rc = strs_addz(&rm->strings, host)) == 0)
        rc = strs_addz(&rm->strings, target);
    if (rc == 0) {
        /* Pointers are set once every string is in (the list may move). */
        rm->n++;
    }
out:
    strs_free(&kv);
    return rc;
}

/* The home directory of uid in the stage's /etc/passwd (loaded), or "/" as runc has it. */
static const char *home_of(const struct stage *st, uint32_t uid)
{
    for (size_t i = 0; i < st->passwd.n; i++) {
        const char *sp = strchr(st->passwd.v[i], ' '), *home;
        unsigned long u;
        char *end;
        if (sp == NULL)
            continue;
        u = strtoul(sp + 1, &end, 10);
        home = strrchr(st->passwd.v[i], ' ');
        if (u == uid && home != NULL && home[1] == '/')
            return home + 1;
    }
    return "/";
}

/*
 * The environment a RUN sees: the image's, then the build's ENV, then ARGs
 * ENV does not set; HOME from the user's /etc/passwd entry unless set.
 */
static int run_env(const struct stage *st, uint32_t uid, struct strs *env)
{
    int rc = strs_copy(env, &st->base_env);

    for (size_t i = 0; rc == 0 && i < st->env.n; i++) {
        const char *eq = strchr(st->env.v[i], '=');
        char key[1024];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - st->env.v[i]), st->env.v[i]);
        rc = kv_set(env, key, eq + 1);
    }
    for (size_t i = 0; rc == 0 && i < st->args.n; i++) {
        const char *eq = strchr(st->args.v[i], '=');
        if (eq != NULL && kv_get(env, st->args.v[i], (size_t)(eq - st->args.v[i])) == NULL)
            rc = strs_addz(env, st->args.v[i]);
    }
    if (rc == 0 && kv_get(env, "PATH", 4) == NULL)
        rc = strs_addz(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (rc == 0 && kv_get(env, "HOME", 4) == NULL)
        rc = kv_set(env, "HOME", home_of(st, uid));
    return rc;
}

/* The command: exec form, the shell form in the stage's shell, or a heredoc as the script. */
static int run_argv(struct fe *f, const struct stage *st, const struct oci_df_instr *in,
                    struct strs *argv)
{
    struct oci_df_heredoc marker;
    const struct oci_df_heredoc *hd = NULL;
    int rc;

    if ((rc = command(st, in, argv)) != 0 || in->json || in->n_heredocs == 0)
        return rc;
    memset(&marker, 0, sizeof(marker));
    if (in->n_args == 1 && oci_df_heredoc_word(in->args[0], &marker) == 1)
        hd = oci_df_heredoc_by_name(in, marker.name);
    free(marker.name);
    if (hd == NULL || in->n_heredocs > 1)
        return fail(f, OCISYNC_EUSAGE, in,
                    "RUN with a heredoc is supported as the whole command (RUN <<EOF ... EOF) "
                    "only");
    /* The script goes to the shell as its command, unexpanded: the shell expands it. */
    free(argv->v[argv->n - 1]);
    if ((argv->v[argv->n - 1] = strdup(hd->content)) == NULL)
        return UV_ENOMEM;
    return 0;
}

static int do_run(struct fe *f, struct stage *st, const struct oci_df_instr *in)
{
    static const char *const ok[] = {"mount", "network", NULL};
    struct strs argv = {0}, env = {0};
    struct run_mounts rm;
    struct engine_run_layer *layers = NULL;
    struct engine_run_spec spec;
    struct fe_layer *l = NULL;
    struct oci_stack *fs;
    struct oci_hasher h;
    struct oci_digest key;
    char keystr[80], prefix[256], err[2048] = "", cwd[PATH_MAX];
    const char *net = flag(in, "network"), *sde = getenv("SOURCE_DATE_EPOCH");
    struct oci_platform plat;
    uint32_t uid = 0, gid = 0;
    size_t n = 0;
    bool hashing = false;
    int rc;

    memset(&rm, 0, sizeof(rm));
    if ((rc = check_flags(f, in, ok, " yet")) != 0)
        return rc;
    if (net != NULL && strcmp(net, "default") != 0 && strcmp(net, "none") != 0 &&
        strcmp(net, "host") != 0)
        return fail(f, OCISYNC_EUSAGE, in, "RUN --network=%s: expected default, none or host", net);
    /* Directories WORKDIR made are there before the command runs. */
    if ((rc = finish_stage(f, st)) != 0)
        return rc;
    strs_free(&st->pending_dirs);
    if ((rc = stage_fs(f, st, in, &fs)) != 0)
        return rc;
    if ((rc = run_argv(f, st, in, &argv)) != 0)
        goto out;
    if (st->user != NULL && st->user[0] != '\0' &&
        (rc = resolve_owner(f, st, in, st->user, &uid, &gid)) != 0)
        goto out;
    if ((rc = load_ids(f, st, in)) != 0 || (rc = run_env(st, uid, &env)) != 0)
        goto out;
    snprintf(cwd, sizeof(cwd), "%s", st->workdir ? st->workdir : "/");

    /* The key: what ran, on what, how. */
    oci_hasher_init(&h, OCI_DIGEST_SHA256);
    hashing = true;
    key_field(&h, "ocisync-run", "1");
    key_field(&h, "platform", st->plat);
    snprintf(prefix, sizeof(prefix), "%d %d", (int)f->o->compression, f->o->level);
    key_field(&h, "format", prefix);
    /* What it wrote is clamped to SOURCE_DATE_EPOCH when set: another layer. */
    key_field(&h, "clamp", sde != NULL ? sde : "");
    for (size_t i = 0; i < st->bl.n; i++)
        key_field(&h, "base", st->bl.diff_id[i].str);
    for (size_t i = 0; i < st->n_layers; i++) {
        struct fe_layer *below = &f->fl[st->layers[i]];
        if (below->is_run) {
            key_field(&h, "run", below->run_key.str);
            continue;
        }
        if (!below->has_ckey) {
            rc = engine_cache_key(&f->cache, below->plan, OCI_COMPRESS_GZIP, 0, &below->ckey, err,
                                  sizeof(err));
            if (rc != 0) {
                rc = fail(f, rc, in, "%s: %s", below->label, err);
                goto out;
            }
            below->has_ckey = true;
        }
        key_field(&h, "layer", below->ckey.str);
    }
    for (size_t i = 0; i < argv.n; i++)
        key_field(&h, "arg", argv.v[i]);
    for (size_t i = 0; i < env.n; i++)
        key_field(&h, "env", env.v[i]);
    snprintf(prefix, sizeof(prefix), "%u:%u", uid, gid);
    key_field(&h, "user", prefix);
    key_field(&h, "cwd", cwd);
    key_field(&h, "network", net && strcmp(net, "none") == 0 ? "none" : "default");
    for (size_t i = 0; i < in->n_flags; i++)
        if (strcmp(in->flags[i].name, "mount") == 0 &&
            (rc = run_mount(f, st, in, in->flags[i].value ? in->flags[i].value : "", &rm, &h)) != 0)
            goto out;
    for (size_t i = 0; i < rm.n; i++) {
        rm.m[i].host = rm.strings.v[2 * i];
        rm.m[i].target = rm.strings.v[2 * i + 1];
    }
    hashing = false;
    if ((rc = oci_hasher_final(&h, &key)) != 0)
        goto out;
    snprintf(keystr, sizeof(keystr), "run %s", oci_digest_hex(&key));

    /* Run once per build: a stage evaluated again (FROM it, COPY --from it) finds it made. */
    for (size_t i = 0; i < f->n_fl; i++) {
        if (f->fl[i].is_run && strcmp(f->fl[i].key, keystr) == 0) {
            if ((rc = add_layer_ref(st, i)) == 0)
                rc = history(st, in, false);
            goto out;
        }
    }
    if ((l = new_layer(f)) == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    l->is_run = true;
    l->run_key = key;
    if ((l->key = strdup(keystr)) == NULL ||
        asprintf(&l->label, "%s (line %u)", in->original, in->line) < 0 ||
        (l->created_by = strdup(in->original)) == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    /* The root: the base's layers, then the stage's, bottom first. */
    layers = calloc(st->bl.n + st->n_layers + 1, sizeof(*layers));
    if (layers == NULL || (l->run = calloc(1, sizeof(*l->run))) == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < st->bl.n; i++) {
        layers[n].blob = st->bl.path[i];
        layers[n++].diff_id = &st->bl.diff_id[i];
    }
    for (size_t i = 0; i < st->n_layers; i++) {
        struct fe_layer *below = &f->fl[st->layers[i]];
        if (below->is_run && below->ran) {
            layers[n++].dir = below->run->upper;
        } else if (below->is_run) {
            layers[n].blob = below->hit.path;
            layers[n++].diff_id = &below->hit.diff_id;
        } else {
            layers[n++].plan = below->plan;
        }
    }
    memset(&spec, 0, sizeof(spec));
    spec.layers = layers;
    spec.n_layers = n;
    /* NULL-terminated for the sandbox. */
    if ((rc = strs_addz(&argv, "")) != 0 || (rc = strs_addz(&env, "")) != 0)
        goto out;
    free(argv.v[argv.n - 1]);
    argv.v[--argv.n] = NULL;
    free(env.v[env.n - 1]);
    env.v[--env.n] = NULL;
    spec.argv = (const char *const *)argv.v;
    spec.envp = (const char *const *)env.v;
    spec.cwd = cwd;
    spec.uid = uid;
    spec.gid = gid;
    spec.network_none = net != NULL && strcmp(net, "none") == 0;
    spec.mounts = rm.m;
    spec.n_mounts = rm.n;
    if (oci_platform_parse(st->plat, &plat) != 0)
        plat = f->plat;
    spec.arch = plat.arch;
    /* "[linux/arm64 build, line 7] ": the platform, the stage (its name or number), the step. */
    if (f->stage_name[f->cur_stage] != NULL)
        snprintf(prefix, sizeof(prefix), "[%s %.64s, line %u] ", st->plat,
                 f->stage_name[f->cur_stage], in->line);
    else
        snprintf(prefix, sizeof(prefix), "[%s stage %zu, line %u] ", st->plat, f->cur_stage + 1,
                 in->line);
    spec.prefix = prefix;
    if (sde != NULL && *sde != '\0') {
        spec.clamp_mtime = true;
        spec.mtime_max = strtoll(sde, NULL, 10);
    }
    spec.keep = oci_digest_hex(&key);

    /* What an earlier build left: its directory (kept), else its layer (cached); else run it. */
    rc = f->o->no_cache ? 0 : engine_run_find(&f->run, &spec, l->run, err, sizeof(err));
    if (rc < 0) {
        rc = fail(f, rc, in, "RUN: the build cache's result: %s", err);
        goto out;
    }
    if (rc == 1) {
        l->ran = true;
        fprintf(stderr, "[%s] %s: cached\n", st->plat, l->label);
    } else if (!f->o->no_cache && engine_cache_peek(&f->cache, &key, &l->hit)) {
        LOG_DEBUG("%s: from the build cache (%s)", l->label, l->hit.digest.str);
        fprintf(stderr, "[%s] %s: cached\n", st->plat, l->label);
        free(l->run);
        l->run = NULL;
    } else {
        fprintf(stderr, "[%s] %s\n", st->plat, l->label);
        if ((rc = engine_run(&f->run, &spec, l->run, err, sizeof(err))) != 0) {
            rc = fail(f, rc, in, "RUN: %s", err);
            goto out;
        }
        l->ran = true;
    }
    rc = 0;
    /* The stage's names may have changed (useradd): read again when next asked. */
    st->ids_loaded = false;
    strs_free(&st->passwd);
    strs_free(&st->group);
    if ((rc = history(st, in, false)) == 0) {
        rc = commit_layer(f, st, l); /* takes it */
        l = NULL;
    }
out:
    if (hashing)
        oci_hasher_dispose(&h);
    if (l != NULL) {
        fe_layer_free(l);
        free(l);
    }
    free(layers);
    strs_free(&argv);
    strs_free(&env);
    strs_free(&rm.strings);
    return rc;
}

static int run_instr(struct fe *f, struct stage *st, const struct oci_df_instr *in)
{
    char *v = NULL, *k = NULL;
    int rc = 0;

    switch (in->kind) {
    case OCI_DF_ARG:
        for (size_t i = 0; rc == 0 && i < in->n_pairs; i++)
            rc = declare_arg(f, st, in, &in->pairs[i]);
        return rc != 0 ? rc : history(st, in, true);
    case OCI_DF_ENV:
    case OCI_DF_LABEL: {
        /* Every pair expands with the variables as they were before the instruction. */
        struct strs kv = {0};
        for (size_t i = 0; rc == 0 && i < in->n_pairs; i++) {
            if ((rc = expand(f, st, in, in->pairs[i].key, &k)) == 0 &&
                (rc = expand(f, st, in, in->pairs[i].value ? in->pairs[i].value : "", &v)) == 0) {
                if (k[0] == '\0')
                    rc = fail(f, OCISYNC_EUSAGE, in, "%s with an empty name",
                              oci_df_kind_name(in->kind));
                else if ((rc = strs_addz(&kv, k)) == 0)
                    rc = strs_addz(&kv, v);
            }
            free(k);
            free(v);
            k = v = NULL;
        }
        for (size_t i = 0; rc == 0 && i + 1 < kv.n; i += 2)
            rc = kv_set(in->kind == OCI_DF_ENV ? &st->env : &st->labels, kv.v[i], kv.v[i + 1]);
        strs_free(&kv);
        return rc != 0 ? rc : history(st, in, true);
    }
    case OCI_DF_MAINTAINER:
        /* As docker: the image's author. */
        free(st->author);
        if ((st->author = strdup(in->n_args > 0 ? in->args[0] : "")) == NULL)
            return UV_ENOMEM;
        return history(st, in, true);
    case OCI_DF_WORKDIR: {
        char joined[PATH_MAX * 2], clean[PATH_MAX];
        bool esc;
        if (in->n_args != 1)
            return fail(f, OCISYNC_EUSAGE, in, "WORKDIR takes one path");
        if ((rc = expand(f, st, in, in->args[0], &v)) != 0)
            return rc;
        snprintf(joined, sizeof(joined), "%s/%s",
                 v[0] == '/' ? "" : (st->workdir ? st->workdir : ""), v);
        free(v);
        clean_path(joined, clean, sizeof(clean), &esc);
        free(st->workdir);
        if ((st->workdir = strdup(clean)) == NULL)
            return UV_ENOMEM;
        /* The directory is made (with the next COPY's layer, or one of its own) unless there. */
        if (strcmp(clean, "/") != 0) {
            struct oci_stack *fs;
            const struct oci_stack_node *n;
            char real[PATH_MAX];
            uint32_t uid = 0, gid = 0;
            if ((rc = stage_fs(f, st, in, &fs)) != 0)
                return rc;
            real[0] = '/';
            if ((rc = oci_stack_resolve(fs, clean, true, real + 1, sizeof(real) - 1)) != 0)
                return fail(f, rc, in, "WORKDIR %s: %s", clean, uv_strerror(rc));
            n = oci_stack_lookup(fs, real);
            if ((n == NULL || n->type != '5') && !is_dir_made(st, real)) {
                /* Owned by USER, as BuildKit makes it. */
                if (st->user != NULL && st->user[0] != '\0' &&
                    (rc = resolve_owner(f, st, in, st->user, &uid, &gid)) != 0)
                    return rc;
                if ((rc = strs_addz(&st->pending_dirs, real)) != 0 ||
                    (rc = note_dirs(st, fs, NULL, real, true, 0755, uid, gid)) != 0)
                    return rc;
                st->pending_hist = st->history_text.n;
            }
        }
        return history(st, in, true);
    }
    case OCI_DF_USER:
    case OCI_DF_STOPSIGNAL: {
        char **slot = in->kind == OCI_DF_USER ? &st->user : &st->stop_signal;
        if (in->n_args != 1)
            return fail(f, OCISYNC_EUSAGE, in, "%s takes one value", oci_df_kind_name(in->kind));
        if ((rc = expand(f, st, in, in->args[0], &v)) != 0)
            return rc;
        free(*slot);
        *slot = v;
        return history(st, in, true);
    }
    case OCI_DF_EXPOSE:
        for (size_t i = 0; rc == 0 && i < in->n_args; i++) {
            struct scope sc = {f, st};
            char **w = NULL, err[512] = "";
            size_t n = 0;
            rc = oci_df_expand_words(in->args[i], f->df.escape, lookup, &sc, &w, &n, err,
                                     sizeof(err));
            if (rc != 0)
                return fail(f, rc, in, "%s", err[0] ? err : ocisync_strerror(rc));
            for (size_t j = 0; rc == 0 && j < n; j++)
                rc = strs_addz(&st->expose, w[j]);
            oci_df_words_free(w, n);
        }
        return rc != 0 ? rc : history(st, in, true);
    case OCI_DF_VOLUME:
        if ((rc = words(f, st, in, &st->volumes)) != 0)
            return rc;
        return history(st, in, true);
    case OCI_DF_ENTRYPOINT:
        if ((rc = command(st, in, &st->entrypoint)) != 0)
            return rc;
        st->set_entrypoint = true;
        /* As docker: an ENTRYPOINT drops a Cmd this stage did not set (the base's, a parent's). */
        if (!st->cmd_here) {
            strs_free(&st->cmd);
            st->set_cmd = true;
        }
        return history(st, in, true);
    case OCI_DF_CMD:
        if ((rc = command(st, in, &st->cmd)) != 0)
            return rc;
        st->set_cmd = st->cmd_here = true;
        return history(st, in, true);
    case OCI_DF_SHELL:
        if (!in->json || in->n_args == 0)
            return fail(f, OCISYNC_EUSAGE, in,
                        "SHELL takes a JSON array, like [\"/bin/bash\", \"-c\"]");
        strs_free(&st->shell);
        for (size_t i = 0; rc == 0 && i < in->n_args; i++)
            rc = strs_addz(&st->shell, in->args[i]);
        st->set_shell = true;
        return rc != 0 ? rc : history(st, in, true);
    case OCI_DF_HEALTHCHECK:
        if ((rc = do_healthcheck(f, st, in)) != 0)
            return rc;
        return history(st, in, true);
    case OCI_DF_COPY:
    case OCI_DF_ADD:
        return do_copy(f, st, in);
    case OCI_DF_RUN:
        return do_run(f, st, in);
    case OCI_DF_ONBUILD:
        return fail(f, OCISYNC_EUSAGE, in, "ONBUILD is not supported");
    default:
        return fail(f, OCISYNC_EUSAGE, in, "%s is not supported here", oci_df_kind_name(in->kind));
    }
}

/* Lower-cases a stage name, as docker compares them. */
static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* The stage named name before stage `before`, or SIZE_MAX. */
static size_t find_stage(const struct fe *f, const char *name, size_t before)
{
    char low[256];

    snprintf(low, sizeof(low), "%s", name);
    lower(low);
    for (size_t i = 0; i < before; i++) {
        if (f->stage_name[i] != NULL && strcmp(f->stage_name[i], low) == 0)
            return i;
    }
    /* A stage may also be named by its index. */
    if (low[0] >= '0' && low[0] <= '9') {
        char *end;
        unsigned long n = strtoul(low, &end, 10);
        if (*end == '\0' && n < before)
            return n;
    }
    return SIZE_MAX;
}

/* Pulls the base config's Env into the stage, for expansion. */
static int load_base_env(struct fe *f, struct stage *st, const struct oci_df_instr *in)
{
    char *cfg = NULL, err[1024];
    size_t len;
    json_t *root, *env, *v, *onbuild;
    size_t i;
    int rc = engine_build_base_config(f->o, st->base, st->plat, &cfg, &len, err, sizeof(err));

    if (rc != 0)
        return fail(f, rc, in, "%s", err);
    root = json_loadb(cfg, len, 0, NULL);
    free(cfg);
    if (root == NULL)
        return fail(f, OCISYNC_EMANIFEST, in, "base image %s: its config is not JSON", st->base);
    onbuild = json_object_get(json_object_get(root, "config"), "OnBuild");
    if (json_array_size(onbuild) > 0) {
        json_decref(root);
        return fail(f, OCISYNC_EUSAGE, in,
                    "base image %s has ONBUILD triggers, which are not supported", st->base);
    }
    env = json_object_get(json_object_get(root, "config"), "Env");
    json_array_foreach(env, i, v)
    {
        if (json_is_string(v) && strchr(json_string_value(v), '=') != NULL &&
            (rc = strs_addz(&st->base_env, json_string_value(v))) != 0)
            break;
    }
    v = json_object_get(json_object_get(root, "config"), "WorkingDir");
    if (rc == 0 && json_is_string(v) && json_string_value(v)[0] == '/' &&
        (st->workdir = strdup(json_string_value(v))) == NULL)
        rc = UV_ENOMEM;
    json_decref(root);
    return rc;
}

/* Evaluates stage idx for the current platform into st. */
static int eval_stage(struct fe *f, size_t idx, struct stage *st, int depth)
{
    size_t saved_stage;
    const struct oci_df_instr *from = &f->df.instrs[f->stage_start[idx]];
    size_t end = idx + 1 < f->n_stages ? f->stage_start[idx + 1] : f->df.n_instrs;
    char *image = NULL, *pf = NULL;
    size_t parent;
    int rc;

    memset(st, 0, sizeof(*st));
    snprintf(st->plat, sizeof(st->plat), "%s", f->plat_name);
    saved_stage = f->cur_stage;
    f->cur_stage = idx;
    if (depth > MAX_STAGES) {
        rc = fail(f, OCISYNC_EUSAGE, from, "stages refer to each other in a circle");
        goto out;
    }
    if (from->n_args < 1) {
        rc = fail(f, OCISYNC_EUSAGE, from, "FROM needs an image");
        goto out;
    }
    if ((rc = expand(f, NULL, from, from->args[0], &image)) != 0)
        goto out;
    if (flag(from, "platform") != NULL) {
        char want[96];
        struct oci_platform p;
        if ((rc = expand(f, NULL, from, flag(from, "platform"), &pf)) != 0)
            goto out;
        oci_platform_format(&f->plat, want, sizeof(want));
        if (oci_platform_parse(pf, &p) != 0) {
            rc =
                fail(f, OCISYNC_EPLATFORM, from, "FROM --platform=%s is not os/arch[/variant]", pf);
            goto out;
        }
        /* A stage copied from may be another platform's (FROM --platform=$BUILDPLATFORM). */
        if (!oci_platform_match(&p, &f->plat) && f->copy_depth == 0) {
            rc = fail(f, OCISYNC_EUSAGE, from,
                      "FROM --platform=%s for the %s image itself: its files would be another "
                      "platform's (a stage that COPY --from reads may be)",
                      pf, want);
            goto out;
        }
        oci_platform_format(&p, st->plat, sizeof(st->plat));
    }
    for (size_t i = 0; i < from->n_flags; i++) {
        if (strcmp(from->flags[i].name, "platform") != 0) {
            rc = fail(f, OCISYNC_EUSAGE, from, "FROM --%s is not supported", from->flags[i].name);
            goto out;
        }
    }
    parent = find_stage(f, image, idx);
    if (parent != SIZE_MAX) {
        struct stage ps;
        rc = eval_stage(f, parent, &ps, depth + 1);
        if (rc == 0)
            rc = stage_inherit(st, &ps);
        /* Its pending WORKDIR directories go with it. */
        if (rc == 0)
            rc = strs_copy(&st->pending_dirs, &ps.pending_dirs);
        st->pending_hist = ps.pending_hist;
        stage_free(&ps);
        if (rc != 0)
            goto out;
    } else if (strcmp(image, "scratch") == 0) {
        /* As BuildKit's empty image: a PATH, so that a later ENTRYPOINT finds its program. */
        rc = kv_set(&st->env, "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if (rc != 0)
            goto out;
    } else {
        st->base = image;
        image = NULL;
        if ((rc = load_base_env(f, st, from)) != 0)
            goto out;
    }
    for (size_t i = f->stage_start[idx] + 1; i < end; i++) {
        if ((rc = run_instr(f, st, &f->df.instrs[i])) != 0)
            goto out;
    }
out:
    f->cur_stage = saved_stage;
    free(image);
    free(pf);
    return rc;
}

/* The last WORKDIR directories with no COPY after them: a layer of their own. */
static int finish_stage(struct fe *f, struct stage *st)
{
    struct fe_layer *l;
    int rc;

    if (st->pending_dirs.n == 0)
        return 0;
    l = new_layer(f);
    if (l == NULL)
        return UV_ENOMEM;
    if ((rc = flush_dirs(f, st, l)) == 0) {
        layer_fix(l);
        l->topts.overlay = true;
        rc = layer_key(l, "workdir");
    }
    if (rc == 0 && ((l->label = strdup(st->history_text.v[st->pending_hist])) == NULL ||
                    (l->created_by = strdup(l->label)) == NULL))
        rc = UV_ENOMEM;
    if (rc != 0) {
        fe_layer_free(l);
        free(l);
        return rc;
    }
    st->history_empty[st->pending_hist] = false;
    /* The layer stands where the history says: after every earlier layer. */
    return commit_layer(f, st, l);
}

/* Parses the Dockerfile and .dockerignore, and finds the stages. */
static int load(struct fe *f)
{
    char *text = NULL, path[PATH_MAX + 32], err[1024] = "";
    size_t len = 0;
    int rc;

    rc = ocisync__read_small(f->o->dockerfile, DOCKERFILE_MAX, false, &text, &len);
    if (rc != 0)
        return fail(f, rc == UV_ENOENT ? OCISYNC_EUSAGE : rc, NULL, "cannot read %s: %s",
                    f->o->dockerfile,
                    rc == OCISYNC_ETOOBIG ? "larger than 4 MiB" : uv_strerror(rc));
    rc = oci_df_parse(&f->df, text, len, err, sizeof(err));
    free(text);
    if (rc != 0)
        return fail(f, rc, NULL, "%s: %s", f->o->dockerfile, err);
    f->df_parsed = true;
    if (f->df.syntax != NULL)
        LOG_DEBUG("%s: \"# syntax=%s\" is ignored: ocisync reads Dockerfiles itself",
                  f->o->dockerfile, f->df.syntax);

    /* <Dockerfile>.dockerignore beside it wins over the context's, as BuildKit reads them. */
    snprintf(path, sizeof(path), "%s.dockerignore", f->o->dockerfile);
    rc = ocisync__read_small(path, DOCKERIGNORE_MAX, false, &text, &len);
    if (rc == UV_ENOENT) {
        snprintf(path, sizeof(path), "%s/.dockerignore", f->context);
        rc = ocisync__read_small(path, DOCKERIGNORE_MAX, false, &text, &len);
    }
    if (rc == 0) {
        rc = oci_ignore_parse(&f->ignore, text, len, err, sizeof(err));
        free(text);
        if (rc != 0)
            return fail(f, rc, NULL, "%s: %s", path, err);
    } else if (rc != UV_ENOENT) {
        return fail(f, rc, NULL, "cannot read %s: %s", path, uv_strerror(rc));
    }

    for (size_t i = 0; i < f->df.n_instrs; i++) {
        const struct oci_df_instr *in = &f->df.instrs[i];
        if (in->kind != OCI_DF_FROM) {
            if (f->n_stages == 0 && in->kind != OCI_DF_ARG)
                return fail(f, OCISYNC_EUSAGE, in, "%s before the first FROM (only ARG may be)",
                            oci_df_kind_name(in->kind));
            continue;
        }
        if (f->n_stages == MAX_STAGES)
            return fail(f, OCISYNC_ETOOBIG, in, "more than %d stages", MAX_STAGES);
        f->stage_start[f->n_stages] = i;
        if (in->stage != NULL && (f->stage_name[f->n_stages] = strdup(in->stage)) == NULL)
            return UV_ENOMEM;
        f->n_stages++;
    }
    if (f->n_stages == 0)
        return fail(f, OCISYNC_EUSAGE, NULL, "%s has no FROM", f->o->dockerfile);
    f->target = f->n_stages - 1;
    if (f->o->target != NULL) {
        f->target = find_stage(f, f->o->target, f->n_stages);
        if (f->target == SIZE_MAX)
            return fail(f, OCISYNC_EUSAGE, NULL, "%s has no stage named \"%s\"", f->o->dockerfile,
                        f->o->target);
    }
    return 0;
}

/* The global ARGs for the current platform. */
static int global_args(struct fe *f)
{
    int rc = 0;

    strs_free(&f->global_args);
    for (size_t i = 0; rc == 0 && i < f->stage_start[0]; i++) {
        const struct oci_df_instr *in = &f->df.instrs[i];
        for (size_t k = 0; rc == 0 && k < in->n_pairs; k++)
            rc = declare_arg(f, NULL, in, &in->pairs[k]);
    }
    /* The automatic ones are in the global scope too. */
    {
        static const char *const names[] = {"TARGETPLATFORM", "TARGETOS",      "TARGETARCH",
                                            "TARGETVARIANT",  "BUILDPLATFORM", "BUILDOS",
                                            "BUILDARCH",      "BUILDVARIANT"};
        for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++) {
            char buf[96];
            bool given;
            const char *v = build_arg(f, names[i], &given);
            if (!given)
                v = auto_arg(f, names[i], buf, sizeof(buf));
            if (kv_get(&f->global_args, names[i], strlen(names[i])) == NULL && v != NULL)
                rc = kv_set(&f->global_args, names[i], v);
        }
    }
    return rc;
}

int engine_dockerfile_build(const struct ocisync_build_opts *o, struct ocisync_build_result *res)
{
    struct fe *f = calloc(1, sizeof(*f));
    struct stage st[MAX_PLATFORMS];
    struct engine_build_image images[MAX_PLATFORMS];
    struct engine_build_layer *layers = NULL;
    size_t *map = NULL, n_used = 0;
    const char *base = NULL;
    size_t n_plats = o->n_platforms ? o->n_platforms : 1;
    char host[96];
    int rc;

    if (f == NULL)
        return UV_ENOMEM;
    memset(st, 0, sizeof(st));
    memset(images, 0, sizeof(images));
    f->o = o;
    f->res = res;
    if (n_plats > MAX_PLATFORMS) {
        rc = fail(f, OCISYNC_EUSAGE, NULL, "give 1 to %d platforms", MAX_PLATFORMS);
        goto out;
    }
    if (o->base != NULL || o->n_layers > 0 || o->chown || o->set_entrypoint || o->set_cmd ||
        o->n_env > 0 || o->workdir != NULL || o->user != NULL || o->n_expose > 0) {
        rc = fail(f, OCISYNC_EUSAGE, NULL,
                  "a Dockerfile build takes its base, layers and config from the Dockerfile");
        goto out;
    }
    if (realpath(o->context ? o->context : ".", f->context) == NULL) {
        rc = fail(f, OCISYNC_EUSAGE, NULL, "build context %s: %s", o->context ? o->context : ".",
                  strerror(errno));
        goto out;
    }
    if ((rc = load(f)) != 0)
        goto out;
    rc = oci_archive_tempdir(f->scratch, sizeof(f->scratch), res->error, sizeof(res->error));
    if (rc != 0)
        goto out;
    {
        /* Base layers a step reads are kept in the build cache (also with --no-cache). */
        struct engine_cache c;
        char tmp[PATH_MAX];
        engine_cache_open(&c, o->cache_dir);
        if (c.dir[0] == '\0') {
            snprintf(tmp, sizeof(tmp), "%s/blobs", f->scratch);
            engine_cache_open(&c, tmp);
        }
        snprintf(f->blobs, sizeof(f->blobs), "%s", c.dir);
        /* RUN: layers extracted and cache mounts kept there; steps found there unless --no-cache.
         */
        engine_run_ctx_init(&f->run, f->scratch, c.dir);
        f->run_ready = true;
        f->cache = c;
    }

    oci_platform_format(oci_platform_host(), host, sizeof(host));
    for (size_t i = 0; i < n_plats; i++) {
        const char *pname = o->n_platforms ? o->platforms[i].platform : host;
        if (oci_platform_parse(pname, &f->plat) != 0) {
            rc = fail(f, OCISYNC_EPLATFORM, NULL,
                      "invalid platform \"%s\": expected os/arch[/variant], like linux/arm64",
                      pname);
            goto out;
        }
        oci_platform_format(&f->plat, f->plat_name, sizeof(f->plat_name));
        if ((rc = global_args(f)) != 0 || (rc = eval_stage(f, f->target, &st[i], 0)) != 0 ||
            (rc = finish_stage(f, &st[i])) != 0)
            goto out;
        /* One base for every platform: each platform's image of it. */
        if (i == 0) {
            base = st[0].base;
        } else if ((base == NULL) != (st[i].base == NULL) ||
                   (base != NULL && strcmp(base, st[i].base) != 0)) {
            rc = fail(f, OCISYNC_EUSAGE, NULL,
                      "the image's base differs between platforms (%s for %s, %s for %s); one "
                      "base (resolved per platform) is supported",
                      base ? base : "scratch", o->n_platforms ? o->platforms[0].platform : host,
                      st[i].base ? st[i].base : "scratch", pname);
            goto out;
        }
    }

    /* The spec: each distinct layer once; per platform its layers and its config. */
    /*
     * The spec: each distinct layer the images use, once (a stage that was
     * only copied from made layers no image stacks).
     */
    layers = calloc(f->n_fl ? f->n_fl : 1, sizeof(*layers));
    map = calloc(f->n_fl ? f->n_fl : 1, sizeof(*map));
    if (layers == NULL || map == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < f->n_fl; i++)
        map[i] = SIZE_MAX;
    for (size_t i = 0; i < n_plats; i++) {
        for (size_t k = 0; k < st[i].n_layers; k++) {
            size_t old = st[i].layers[k];
            if (map[old] == SIZE_MAX) {
                struct fe_layer *l = &f->fl[old];
                struct engine_build_layer *el = &layers[n_used];
                if (l->has_chmod)
                    l->topts.chmod = &l->chmod;
                l->topts.parent = layer_parent;
                l->topts.parent_arg = l;
                l->topts.filter_arg = l;
                if (l->n_owners > 0) {
                    l->topts.owner = from_owner;
                    l->topts.owner_arg = l;
                }
                el->src = l->src;
                el->n_src = l->n_src;
                el->topts = l->topts;
                if (l->is_run) {
                    el->plan = l->ran ? &l->run->plan : NULL;
                    el->key = &l->run_key;
                }
                el->label = l->label;
                el->created_by = l->created_by;
                map[old] = n_used++;
            }
            st[i].layers[k] = map[old];
        }
    }
    {
        struct oci_build_history *hist[MAX_PLATFORMS] = {0};
        struct engine_build_spec spec;
        struct strs labels[MAX_PLATFORMS];
        memset(labels, 0, sizeof(labels));
        for (size_t i = 0; rc == 0 && i < n_plats; i++) {
            struct stage *s = &st[i];
            struct oci_build_changes *ch = &images[i].ch;
            hist[i] = calloc(s->history_text.n ? s->history_text.n : 1, sizeof(*hist[i]));
            if (hist[i] == NULL) {
                rc = UV_ENOMEM;
                break;
            }
            for (size_t k = 0; k < s->history_text.n; k++) {
                hist[i][k].created_by = s->history_text.v[k];
                hist[i][k].empty_layer = s->history_empty[k];
            }
            /* --label adds to the Dockerfile's labels. */
            if ((rc = strs_copy(&labels[i], &s->labels)) != 0)
                break;
            for (size_t k = 0; rc == 0 && k < o->n_labels; k++) {
                const char *eq = strchr(o->labels[k], '=');
                char key[256];
                snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - o->labels[k]) : 0, o->labels[k]);
                rc = eq ? kv_set(&labels[i], key, eq + 1) : strs_addz(&labels[i], o->labels[k]);
            }
            images[i].platform = o->n_platforms ? o->platforms[i].platform : host;
            images[i].layers = s->layers;
            images[i].n_layers = s->n_layers;
            ch->env = (const char *const *)s->env.v;
            ch->n_env = s->env.n;
            ch->entrypoint = (const char *const *)s->entrypoint.v;
            ch->n_entrypoint = s->entrypoint.n;
            ch->set_entrypoint = s->set_entrypoint;
            ch->cmd = (const char *const *)s->cmd.v;
            ch->n_cmd = s->cmd.n;
            ch->set_cmd = s->set_cmd;
            ch->workdir = s->workdir;
            ch->user = s->user;
            ch->labels = (const char *const *)labels[i].v;
            ch->n_labels = labels[i].n;
            ch->expose = (const char *const *)s->expose.v;
            ch->n_expose = s->expose.n;
            ch->volumes = (const char *const *)s->volumes.v;
            ch->n_volumes = s->volumes.n;
            ch->stop_signal = s->stop_signal;
            ch->author = s->author;
            ch->shell = (const char *const *)s->shell.v;
            ch->n_shell = s->shell.n;
            ch->set_shell = s->set_shell;
            if (s->set_hc) {
                s->hc.test = (const char *const *)s->hc_test.v;
                s->hc.n_test = s->hc_test.n;
                ch->healthcheck = &s->hc;
            }
            ch->history = hist[i];
            ch->n_history = s->history_text.n;
        }
        if (rc == 0) {
            memset(&spec, 0, sizeof(spec));
            spec.base = base;
            spec.layers = layers;
            spec.n_layers = n_used;
            spec.images = images;
            spec.n_images = n_plats;
            spec.o = o;
            rc = engine_build_run(&spec, res);
        }
        for (size_t i = 0; i < n_plats; i++) {
            free(hist[i]);
            strs_free(&labels[i]);
        }
    }
out:
    for (size_t i = 0; i < MAX_PLATFORMS; i++)
        stage_free(&st[i]);
    free(layers);
    free(map);
    if (f->run_ready)
        engine_run_ctx_dispose(&f->run);
    if (f->scratch[0] != '\0')
        oci_archive_remove_dir(f->scratch);
    for (size_t i = 0; i < f->n_from; i++) {
        stage_free(f->from[i]);
        free(f->from[i]);
    }
    free(f->from);
    strs_free(&f->from_keys);
    strs_free(&f->urls);
    for (size_t i = 0; i < f->n_plans; i++) {
        oci_tar_plan_free(f->plans[i]);
        free(f->plans[i]);
    }
    free(f->plans);
    for (size_t i = 0; i < f->n_fl; i++)
        fe_layer_free(&f->fl[i]);
    free(f->fl);
    for (size_t i = 0; i < f->n_stages; i++)
        free(f->stage_name[i]);
    strs_free(&f->global_args);
    if (f->ignore != NULL)
        oci_ignore_free(f->ignore);
    if (f->df_parsed)
        oci_df_free(&f->df);
    if (rc != 0 && res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "%s", ocisync_strerror(rc));
    free(f);
    return rc;
}
