/*
 * A Dockerfile RUN, carried out (see run.h).
 */
#define _GNU_SOURCE
#include "engine/run.h"

#include "common/log.h"
#include "engine/cache.h"
#include "common/sysio.h"
#include "ocisync.h"
#include "oci/archive.h"
#include "oci/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uv.h>

/* The lines of output a failed RUN shows again in its error. */
#define TAIL_LINES 8
#define TAIL_LINE_MAX 200
/* The longest line streamed whole; longer ones are cut into pieces of this. */
#define LINE_MAX_OUT 4096

void engine_run_ctx_init(struct engine_run_ctx *ctx, const char *scratch, const char *cache)
{
    memset(ctx, 0, sizeof(*ctx));
    snprintf(ctx->scratch, sizeof(ctx->scratch), "%s", scratch);
    snprintf(ctx->cache, sizeof(ctx->cache), "%s", cache ? cache : "");
    /*
     * Root: overlays with trusted.* xattrs. Root of a user namespace (a
     * rootless build, engine_sandbox_enter_userns): with user.* xattrs.
     */
    ctx->rootless = geteuid() != 0;
    ctx->mode = engine_sandbox_in_userns() ? OCI_OVERLAY_USERXATTR : OCI_OVERLAY_ROOT;
    ctx->overlay = -1; /* probed at the first RUN */
}

void engine_run_ctx_dispose(struct engine_run_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_plans; i++)
        free(ctx->plan_dirs[i]);
    free(ctx->plan_dirs);
    free(ctx->plans);
    memset(ctx, 0, sizeof(*ctx));
}

void engine_run_result_free(struct engine_run_result *res)
{
    oci_tar_plan_free(&res->plan);
}

/* A base or cached layer as a directory: extracted once, by diff_id, into the cache. */
static int blob_dir(struct engine_run_ctx *ctx, const struct engine_run_layer *l, char *out,
                    size_t len, char *err, size_t errlen)
{
    struct oci_overlay_opts opts;
    char dir[4300];
    struct stat sb;
    int rc;

    snprintf(dir, sizeof(dir), "%s/rootfs", ctx->cache[0] ? ctx->cache : ctx->scratch);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = ocisync__sys_error();
        snprintf(err, errlen, "cannot create %s: %s", dir, uv_strerror(rc));
        return rc;
    }
    /* The form depends on the mode: trusted.* or user.* xattrs. */
    snprintf(out, len, "%s/%s-%s", dir, ctx->mode == OCI_OVERLAY_ROOT ? "r" : "u",
             oci_digest_hex(l->diff_id));
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        engine_cache_dir_used(out);
        return 0;
    }
    memset(&opts, 0, sizeof(opts));
    opts.mode = ctx->mode;
    LOG_DEBUG("run: extracting layer %s into %s", l->diff_id->str, out);
    rc = oci_overlay_extract(l->blob, l->diff_id, out, &opts, NULL, err, errlen);
    /* Another build made it meanwhile: the same content. */
    if (rc == UV_EEXIST)
        rc = 0;
    if (rc == 0)
        engine_cache_dir_used(out);
    return rc;
}

/* A plan of this build as a directory, made once per build. */
static int plan_dir(struct engine_run_ctx *ctx, const struct oci_tar_plan *plan, char *out,
                    size_t len, char *err, size_t errlen)
{
    struct oci_overlay_extractor *x = NULL;
    struct oci_overlay_opts opts;
    struct oci_tar_stream ts;
    const struct oci_tar_plan **np;
    char **nd, *buf = NULL;
    size_t n;
    int rc;

    for (size_t i = 0; i < ctx->n_plans; i++) {
        if (ctx->plans[i] == plan) {
            snprintf(out, len, "%s", ctx->plan_dirs[i]);
            return 0;
        }
    }
    snprintf(out, len, "%s/layer-%zu", ctx->scratch, ctx->n_plans);
    memset(&opts, 0, sizeof(opts));
    opts.mode = ctx->mode;
    if ((rc = oci_tar_stream_init(&ts, plan)) != 0)
        return rc;
    if ((buf = malloc(256 * 1024)) == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    if ((rc = oci_overlay_extract_begin(&x, out, &opts, err, errlen)) != 0)
        goto out;
    while ((rc = oci_tar_stream_read(&ts, buf, 256 * 1024, &n, err, errlen)) == 0 && n > 0)
        if ((rc = oci_overlay_extract_feed(x, buf, n, err, errlen)) != 0)
            break;
    if (rc == 0) {
        rc = oci_overlay_extract_end(x, NULL, NULL, err, errlen);
        x = NULL;
    }
    if (rc != 0)
        goto out;
    np = realloc(ctx->plans, (ctx->n_plans + 1) * sizeof(*np));
    if (np != NULL)
        ctx->plans = np;
    nd = realloc(ctx->plan_dirs, (ctx->n_plans + 1) * sizeof(*nd));
    if (nd != NULL)
        ctx->plan_dirs = nd;
    if (np == NULL || nd == NULL || (nd[ctx->n_plans] = strdup(out)) == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    np[ctx->n_plans++] = plan;
out:
    oci_overlay_extract_abort(x);
    oci_tar_stream_dispose(&ts);
    free(buf);
    return rc;
}

/* The qemu-user-static binary for an OCI architecture, or NULL when none is known. */
static const char *qemu_name(const char *arch)
{
    static const char *const map[][2] = {
        {"arm64", "aarch64"},   {"arm", "arm"},     {"riscv64", "riscv64"},
        {"ppc64le", "ppc64le"}, {"s390x", "s390x"}, {"amd64", "x86_64"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], arch) == 0)
            return map[i][1];
    return NULL;
}

/* Whether the host's binfmt_misc runs name's binaries already, with the F flag. */
static bool host_binfmt(const char *name)
{
    char path[128], *text = NULL;
    size_t len = 0;
    bool ok;

    snprintf(path, sizeof(path), "/proc/sys/fs/binfmt_misc/qemu-%s", name);
    if (ocisync__read_small(path, 65536, false, &text, &len) != 0)
        return false;
    ok = strncmp(text, "enabled", 7) == 0 && strstr(text, "\nflags: ") != NULL &&
         strchr(strstr(text, "\nflags: ") + 8, 'F') != NULL;
    free(text);
    return ok;
}

/* The output of the command: streamed line by line with a prefix, the last lines kept. */
struct tee {
    int fd;
    const char *prefix;
    char tail[TAIL_LINES][TAIL_LINE_MAX];
    size_t n_tail;
};

static void tee_line(struct tee *t, const char *line, size_t len)
{
    fprintf(stderr, "%s%.*s\n", t->prefix, (int)len, line);
    snprintf(t->tail[t->n_tail % TAIL_LINES], TAIL_LINE_MAX, "%.*s", (int)len, line);
    t->n_tail++;
}

static void *tee_main(void *arg)
{
    struct tee *t = arg;
    char *line = malloc(LINE_MAX_OUT);
    size_t have = 0;
    ssize_t n;

    if (line == NULL) {
        /* Drain at least, so the command never blocks on a full pipe. */
        char sink[4096];
        while (read(t->fd, sink, sizeof(sink)) > 0)
            ;
        return NULL;
    }
    while ((n = read(t->fd, line + have, LINE_MAX_OUT - have)) > 0 || (n < 0 && errno == EINTR)) {
        char *nl;
        size_t start = 0;
        if (n < 0)
            continue;
        have += (size_t)n;
        while ((nl = memchr(line + start, '\n', have - start)) != NULL) {
            tee_line(t, line + start, (size_t)(nl - (line + start)));
            start = (size_t)(nl - line) + 1;
        }
        memmove(line, line + start, have - start);
        have -= start;
        if (have == LINE_MAX_OUT) {
            tee_line(t, line, have);
            have = 0;
        }
    }
    if (have > 0)
        tee_line(t, line, have);
    free(line);
    return NULL;
}

/* "...\n  line\n  line" of the last lines into err after what. */
static void tail_into(const struct tee *t, char *err, size_t errlen)
{
    size_t first = t->n_tail > TAIL_LINES ? t->n_tail - TAIL_LINES : 0, used = strlen(err);

    if (t->n_tail == 0 || used >= errlen)
        return;
    used += (size_t)snprintf(err + used, errlen - used, "; its last lines:");
    for (size_t i = first; i < t->n_tail && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "\n    %s", t->tail[i % TAIL_LINES]);
}

/*
 * Whether the directory rel in upper holds nothing the command did, now that
 * the mount points are gone: the overlay copied it up only because the
 * sandbox made a mount point in it. It has no entry, is not opaque (deleted
 * and made again), has no xattr but the overlay's own, and has the mode and
 * owner of the lower directory it came from (the topmost of lower). Its
 * mtime is not looked at: making and removing the mount point changed it.
 */
static bool only_copied_up(const char *upper, const char *const *lower, size_t n_lower,
                           const char *rel)
{
    char path[4300 + ENGINE_SANDBOX_PATH_MAX], names[4096];
    struct stat up, lo;
    ssize_t n;
    DIR *d;
    struct dirent *e;
    bool empty = true;

    snprintf(path, sizeof(path), "%s/%s", upper, rel);
    if (lstat(path, &up) != 0 || !S_ISDIR(up.st_mode))
        return false;
    if ((n = llistxattr(path, names, sizeof(names))) < 0)
        return false;
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        const char *x = names + i;
        if ((strncmp(x, "trusted.overlay.", 16) != 0 && strncmp(x, "user.overlay.", 13) != 0) ||
            strstr(x, ".overlay.opaque") != NULL)
            return false;
    }
    if ((d = opendir(path)) == NULL)
        return false;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty)
        return false;
    for (size_t i = 0; i < n_lower; i++) {
        snprintf(path, sizeof(path), "%s/%s", lower[i], rel);
        if (lstat(path, &lo) != 0)
            continue;
        return S_ISDIR(lo.st_mode) && (lo.st_mode & 07777) == (up.st_mode & 07777) &&
               lo.st_uid == up.st_uid && lo.st_gid == up.st_gid;
    }
    return false;
}

/*
 * Removes the mount points the sandbox made in the upper directory (deepest
 * first): empty directories and empty files it created, so that the
 * directory holds only what the command did. One the command wrote into
 * (a file in the parent of a secret's directory) stays. Then the lower
 * directories they were made in (/etc for /etc/hosts, /run for
 * /run/secrets), when the command left them as they were: else every RUN's
 * layer would carry /etc with a new mtime.
 */
static void drop_mount_points(const char *upper, const char *const *lower, size_t n_lower,
                              const struct engine_sandbox_result *sr)
{
    char path[4300 + ENGINE_SANDBOX_PATH_MAX], parent[ENGINE_SANDBOX_PATH_MAX];
    struct stat sb;

    for (size_t i = sr->n_created; i-- > 0;) {
        snprintf(path, sizeof(path), "%s/%s", upper, sr->created[i] + (sr->created[i][0] == '/'));
        if (lstat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            rmdir(path);
        else if (S_ISREG(sb.st_mode) && sb.st_size == 0)
            unlink(path);
    }
    for (size_t i = sr->n_created; i-- > 0;) {
        const char *rel = sr->created[i] + (sr->created[i][0] == '/');
        const char *slash = strrchr(rel, '/');
        if (slash == NULL || slash == rel || (size_t)(slash - rel) >= sizeof(parent))
            continue; /* the root is not a layer entry */
        memcpy(parent, rel, (size_t)(slash - rel));
        parent[slash - rel] = '\0';
        if (only_copied_up(upper, lower, n_lower, parent)) {
            snprintf(path, sizeof(path), "%s/%s", upper, parent);
            rmdir(path);
        }
    }
}

/* Captures what the RUN left in upper into res->plan. */
static int capture(struct engine_run_ctx *ctx, const struct engine_run_spec *spec,
                   struct engine_run_result *res, char *err, size_t errlen)
{
    struct oci_overlay_opts copts;

    memset(&copts, 0, sizeof(copts));
    copts.mode = ctx->mode;
    copts.clamp_mtime = spec->clamp_mtime;
    copts.mtime_max = spec->mtime_max;
    return oci_overlay_capture(res->upper, &copts, &res->plan, err, errlen);
}

int engine_run_find(struct engine_run_ctx *ctx, const struct engine_run_spec *spec,
                    struct engine_run_result *res, char *err, size_t errlen)
{
    char dir[4400];
    struct stat sb;
    int rc;

    memset(res, 0, sizeof(*res));
    if (spec->keep == NULL || ctx->cache[0] == '\0')
        return 0;
    snprintf(res->upper, sizeof(res->upper), "%s/runs/%s-%c/upper", ctx->cache, spec->keep,
             ctx->mode == OCI_OVERLAY_ROOT ? 'r' : 'u');
    if (lstat(res->upper, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        res->upper[0] = '\0';
        return 0;
    }
    /* Used: trimming keeps it longest. */
    snprintf(dir, sizeof(dir), "%s/runs/%s-%c", ctx->cache, spec->keep,
             ctx->mode == OCI_OVERLAY_ROOT ? 'r' : 'u');
    engine_cache_dir_used(dir);
    rc = capture(ctx, spec, res, err, errlen);
    return rc != 0 ? rc : 1;
}

/*
 * Moves a finished RUN's directory (base) to cache/runs/KEEP, replacing an
 * older one of that key; on the way upper is renamed with it. Best effort:
 * where it cannot move (another file system), it stays in the scratch.
 */
static void keep_run(struct engine_run_ctx *ctx, const struct engine_run_spec *spec,
                     const char *base, struct engine_run_result *res)
{
    char runs[4300], dest[4400], size_file[4500];

    if (spec->keep == NULL || ctx->cache[0] == '\0')
        return;
    snprintf(runs, sizeof(runs), "%s/runs", ctx->cache);
    if (mkdir(runs, 0700) != 0 && errno != EEXIST)
        return;
    /* Named for the overlay form too: trusted.* or user.* xattrs. */
    snprintf(dest, sizeof(dest), "%s/%s-%c", runs, spec->keep,
             ctx->mode == OCI_OVERLAY_ROOT ? 'r' : 'u');
    oci_archive_remove_dir(dest);
    snprintf(size_file, sizeof(size_file), "%s.size", dest);
    unlink(size_file); /* the size of the one replaced */
    if (rename(base, dest) != 0) {
        LOG_DEBUG("run: cannot keep %s as %s: %s", base, dest, strerror(errno));
        return;
    }
    snprintf(res->upper, sizeof(res->upper), "%s/upper", dest);
    engine_cache_dir_used(dest);
}

/* The /etc/hosts the command sees (not captured: a mount). */
static int write_hosts(const char *path)
{
    static const char text[] = "127.0.0.1\tlocalhost buildkitsandbox\n"
                               "::1\tlocalhost ip6-localhost ip6-loopback\n";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc;

    if (fd < 0)
        return ocisync__sys_error();
    rc = ocisync__write_full(fd, text, sizeof(text) - 1);
    close(fd);
    return rc;
}

/*
 * Whether overlayfs can be mounted here with an upper directory in the
 * scratch directory (not so on an overlayfs root, nor in some pods): a
 * child tries in a mount namespace of its own. OCISYNC_RUN_OVERLAY=0 says
 * no without trying.
 */
static bool overlay_works(const struct engine_run_ctx *ctx)
{
    const char *env = getenv("OCISYNC_RUN_OVERLAY");
    char dir[4300], l[4400], u[4400], w[4400], m[4400], opts[18000];
    pid_t pid;
    int st = 0;

    if (env != NULL && strcmp(env, "0") == 0)
        return false;
    snprintf(dir, sizeof(dir), "%s/overlay-probe", ctx->scratch);
    snprintf(l, sizeof(l), "%s/l", dir);
    snprintf(u, sizeof(u), "%s/u", dir);
    snprintf(w, sizeof(w), "%s/w", dir);
    snprintf(m, sizeof(m), "%s/m", dir);
    if (mkdir(dir, 0700) != 0 || mkdir(l, 0700) != 0 || mkdir(u, 0700) != 0 ||
        mkdir(w, 0700) != 0 || mkdir(m, 0700) != 0) {
        oci_archive_remove_dir(dir);
        return false;
    }
    snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s%s", l, u, w,
             ctx->mode == OCI_OVERLAY_USERXATTR ? ",userxattr" : "");
    pid = fork();
    if (pid == 0) {
        /* Only system calls here: the caller may have threads. */
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("overlay", m, "overlay", 0, opts) != 0)
            _exit(1);
        _exit(0);
    }
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    oci_archive_remove_dir(dir);
    return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A plan's entries into a new directory dest in overlay form. */
static int plan_into(struct engine_run_ctx *ctx, const struct oci_tar_plan *plan, const char *dest,
                     char *err, size_t errlen)
{
    struct oci_overlay_extractor *x = NULL;
    struct oci_overlay_opts opts;
    struct oci_tar_stream ts;
    char *buf = malloc(256 * 1024);
    size_t n;
    int rc;

    memset(&opts, 0, sizeof(opts));
    opts.mode = ctx->mode;
    if (buf == NULL)
        return UV_ENOMEM;
    if ((rc = oci_tar_stream_init(&ts, plan)) != 0) {
        free(buf);
        return rc;
    }
    if ((rc = oci_overlay_extract_begin(&x, dest, &opts, err, errlen)) == 0) {
        while ((rc = oci_tar_stream_read(&ts, buf, 256 * 1024, &n, err, errlen)) == 0 && n > 0)
            if ((rc = oci_overlay_extract_feed(x, buf, n, err, errlen)) != 0)
                break;
        if (rc == 0) {
            rc = oci_overlay_extract_end(x, NULL, NULL, err, errlen);
            x = NULL;
        }
    }
    oci_overlay_extract_abort(x);
    oci_tar_stream_dispose(&ts);
    free(buf);
    return rc;
}

int engine_run(struct engine_run_ctx *ctx, const struct engine_run_spec *spec,
               struct engine_run_result *res, char *err, size_t errlen)
{
    const char **lower = NULL;
    char(*dirs)[4300] = NULL;
    char base[4300] = "", work[4400], hosts[4400], qemu[256];
    struct engine_sandbox_spec s;
    struct engine_sandbox_result sr;
    struct oci_overlay_snapshot *snap = NULL;
    struct oci_overlay_opts dopts;
    struct oci_tar_plan diff;
    char tree[4400] = "";
    struct tee tee;
    pthread_t reader;
    bool reading = false, ran = false;
    int pipefd[2] = {-1, -1};
    const char *name;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    memset(&sr, 0, sizeof(sr));
    memset(&diff, 0, sizeof(diff));
    memset(&dopts, 0, sizeof(dopts));
    memset(&s, 0, sizeof(s));
    memset(&tee, 0, sizeof(tee));
    if (ctx->rootless) {
        const char *why = engine_sandbox_userns_error();
        snprintf(err, errlen,
                 "RUN needs root, or a user namespace where this process is root (ocisync "
                 "enters one by itself when newuidmap and a range in /etc/subuid are there)%s%s",
                 why[0] ? ": " : "", why);
        return OCISYNC_EUSAGE;
    }
    if (spec->n_layers > ENGINE_SANDBOX_MAX_LOWER) {
        snprintf(err, errlen, "the stage has %zu layers; RUN takes at most %d", spec->n_layers,
                 ENGINE_SANDBOX_MAX_LOWER);
        return OCISYNC_ETOOBIG;
    }

    /* The emulator, when the stage is another architecture's. */
    s.qemu = NULL;
    if (spec->arch != NULL && strcmp(spec->arch, oci_platform_host()->arch) != 0 &&
        !(strcmp(spec->arch, "386") == 0 && strcmp(oci_platform_host()->arch, "amd64") == 0)) {
        name = qemu_name(spec->arch);
        snprintf(qemu, sizeof(qemu), "/usr/bin/qemu-%s-static", name ? name : spec->arch);
        if (name == NULL || access(qemu, X_OK) != 0) {
            snprintf(err, errlen,
                     "RUN for %s needs an emulator: install qemu-user-static (%s), or build the "
                     "program in a stage FROM --platform=$BUILDPLATFORM and COPY --from it",
                     spec->arch, qemu);
            return OCISYNC_ENOPLATFORM;
        }
        if (!host_binfmt(name)) {
            s.qemu = qemu;
            s.qemu_arch = spec->arch;
        }
    }

    /* The lower directories: top first, as overlayfs lists them. */
    lower = calloc(spec->n_layers + 1, sizeof(*lower));
    dirs = calloc(spec->n_layers + 1, sizeof(*dirs));
    if (lower == NULL || dirs == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < spec->n_layers; i++) {
        const struct engine_run_layer *l = &spec->layers[i];
        if (l->dir != NULL)
            snprintf(dirs[i], sizeof(dirs[i]), "%s", l->dir);
        else if (l->blob != NULL)
            rc = blob_dir(ctx, l, dirs[i], sizeof(dirs[i]), err, errlen);
        else
            rc = plan_dir(ctx, l->plan, dirs[i], sizeof(dirs[i]), err, errlen);
        if (rc != 0)
            goto out;
        lower[spec->n_layers - 1 - i] = dirs[i];
    }

    /* Upper, work, /etc/hosts: one directory per RUN. */
    snprintf(base, sizeof(base), "%s/run-%u", ctx->scratch, ctx->n_runs++);
    snprintf(res->upper, sizeof(res->upper), "%s/upper", base);
    snprintf(work, sizeof(work), "%s/work", base);
    snprintf(hosts, sizeof(hosts), "%s/hosts", base);
    if (mkdir(base, 0700) != 0 || mkdir(res->upper, 0755) != 0 || mkdir(work, 0700) != 0 ||
        (rc = write_hosts(hosts)) != 0) {
        rc = rc ? rc : ocisync__sys_error();
        snprintf(err, errlen, "cannot create %s: %s", base, uv_strerror(rc));
        goto out;
    }
    if (ctx->overlay < 0) {
        ctx->overlay = overlay_works(ctx);
        if (!ctx->overlay)
            LOG_DEBUG("run: overlayfs cannot be mounted here: RUN works on a copy of the stage's "
                      "files, compared before and after");
    }
    if (!ctx->overlay) {
        /* Without overlayfs: the layers stacked into one tree, compared before and after. */
        snprintf(tree, sizeof(tree), "%s/root", base);
        if (mkdir(tree, 0755) != 0) {
            rc = ocisync__sys_error();
            snprintf(err, errlen, "cannot create %s: %s", tree, uv_strerror(rc));
            goto out;
        }
        const char **flat = calloc(spec->n_layers + 1, sizeof(*flat));
        if (flat == NULL) {
            rc = UV_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < spec->n_layers; i++)
            flat[i] = dirs[i]; /* bottom first here */
        rc = oci_overlay_flatten(flat, spec->n_layers, tree, ctx->mode, err, errlen);
        free(flat);
        dopts.mode = ctx->mode;
        dopts.clamp_mtime = spec->clamp_mtime;
        dopts.mtime_max = spec->mtime_max;
        if (rc == 0)
            rc = oci_overlay_snapshot(tree, &dopts, &snap, err, errlen);
        if (rc != 0)
            goto out;
    } else if (spec->n_layers == 0) {
        /* FROM scratch: overlayfs wants a lower directory; an empty one. */
        snprintf(dirs[0], sizeof(dirs[0]), "%s/empty", base);
        if (mkdir(dirs[0], 0755) != 0) {
            rc = ocisync__sys_error();
            snprintf(err, errlen, "cannot create %s: %s", dirs[0], uv_strerror(rc));
            goto out;
        }
        lower[0] = dirs[0];
    }

    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        rc = ocisync__sys_error();
        snprintf(err, errlen, "pipe: %s", uv_strerror(rc));
        goto out;
    }
    tee.fd = pipefd[0];
    tee.prefix = spec->prefix ? spec->prefix : "";
    if ((rc = pthread_create(&reader, NULL, tee_main, &tee)) != 0) {
        rc = uv_translate_sys_error(rc);
        snprintf(err, errlen, "cannot start the output reader: %s", uv_strerror(rc));
        goto out;
    }
    reading = true;

    if (ctx->overlay) {
        s.lower = lower;
        s.n_lower = spec->n_layers ? spec->n_layers : 1;
        s.upper = res->upper;
        s.work = work;
    } else {
        s.rootfs = tree;
    }
    s.argv = spec->argv;
    s.envp = spec->envp;
    s.cwd = spec->cwd;
    s.uid = spec->uid;
    s.gid = spec->gid;
    s.network_none = spec->network_none;
    s.resolv_conf = access("/etc/resolv.conf", R_OK) == 0 ? "/etc/resolv.conf" : NULL;
    s.hosts = hosts;
    s.mounts = spec->mounts;
    s.n_mounts = spec->n_mounts;
    s.rootless = ctx->rootless;
    s.out_fd = pipefd[1];
    rc = engine_sandbox_run(&s, &sr, err, errlen);
    ran = rc == 0 || rc == OCISYNC_ETIMEOUT;
    /* The reader sees the end once the write end is closed here (the command's copies are gone). */
    close(pipefd[1]);
    pipefd[1] = -1;
    pthread_join(reader, NULL);
    reading = false;
    if (ran && sr.status != 0) {
        snprintf(err, errlen, "the command exited with status %d", sr.status);
        tail_into(&tee, err, errlen);
        rc = OCISYNC_ESTEP;
    }
    if (rc != 0)
        goto out;

    if (!ctx->overlay) {
        /* What changed in the tree, made into an upper directory as overlayfs would have. */
        drop_mount_points(tree, NULL, 0, &sr);
        rc = oci_overlay_diff(snap, tree, &dopts, &diff, err, errlen);
        if (rc == 0) {
            rmdir(res->upper);
            rc = plan_into(ctx, &diff, res->upper, err, errlen);
        }
        oci_tar_plan_free(&diff);
        oci_archive_remove_dir(tree);
        if (rc != 0)
            goto out;
    }
    /* What it changed, without the mount points the sandbox made; kept for later builds. */
    drop_mount_points(res->upper, lower, spec->n_layers, &sr);
    oci_archive_remove_dir(work);
    unlink(hosts);
    keep_run(ctx, spec, base, res);
    rc = capture(ctx, spec, res, err, errlen);
out:
    if (reading) {
        if (pipefd[1] >= 0)
            close(pipefd[1]);
        pipefd[1] = -1;
        pthread_join(reader, NULL);
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    engine_sandbox_result_free(&sr);
    if (snap != NULL)
        oci_overlay_snapshot_free(snap);
    free(lower);
    free(dirs);
    if (rc != 0 && res->upper[0] != '\0') {
        /* A failed RUN leaves nothing. */
        oci_archive_remove_dir(base);
        oci_tar_plan_free(&res->plan);
        res->upper[0] = '\0';
    }
    return rc;
}

int ocisync_enter_user_namespace(char *err, size_t errlen)
{
    return engine_sandbox_enter_userns(err, errlen);
}
