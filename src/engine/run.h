/*
 * A Dockerfile RUN, carried out: the stage's layers as the lower
 * directories of an overlay (each base or cached layer extracted once into
 * the build cache, keyed by its diff_id; each layer of this build made into
 * a directory once), the command in the sandbox (engine/sandbox.h) on a
 * fresh upper directory, its output streamed line by line with a prefix,
 * and what it changed captured as a tar plan for the layer builder.
 *
 * Blocking: the Dockerfile frontend runs it while it evaluates a stage,
 * before any layer is built or pushed, so a failing RUN pushes nothing.
 */
#ifndef ENGINE_RUN_H
#define ENGINE_RUN_H

#include "engine/sandbox.h"
#include "oci/digest.h"
#include "oci/overlay.h"
#include "oci/tar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One layer of the root the command sees, bottom first. */
struct engine_run_layer {
    /* A layer blob (base image, cache hit), extracted once into the cache by diff_id... */
    const char *blob;
    const struct oci_digest *diff_id;
    /* ... or a plan of this build (a COPY), made into a directory once per build ... */
    const struct oci_tar_plan *plan;
    /* ... or a directory in overlay form already (an earlier RUN's upper directory). */
    const char *dir;
};

/* What a build's RUNs share: where things go, and the directories made so far. */
struct engine_run_ctx {
    char scratch[4200]; /* the build's scratch directory (upper, work, plan directories) */
    char cache[4200];   /* the build cache's directory, "" for none (then extracted per build) */
    enum oci_overlay_mode mode;
    bool rootless;
    int overlay; /* overlayfs can be mounted: 1, 0, or -1 until the first RUN asks */
    /* Plans of this build made into directories: the plan and its directory. */
    const struct oci_tar_plan **plans;
    char **plan_dirs;
    size_t n_plans;
    unsigned n_runs;
};

/* Sets ctx up for a build: scratch and cache directories borrowed by name (copied). */
void engine_run_ctx_init(struct engine_run_ctx *ctx, const char *scratch, const char *cache);
void engine_run_ctx_dispose(struct engine_run_ctx *ctx);

struct engine_run_spec {
    const struct engine_run_layer *layers;
    size_t n_layers;
    const char *const *argv;
    const char *const *envp;
    const char *cwd;
    uint32_t uid, gid;
    bool network_none;
    const struct engine_sandbox_mount *mounts;
    size_t n_mounts;
    const char *arch;   /* the stage's architecture (OCI name): qemu when not the host's */
    const char *prefix; /* put before every line of output: "[linux/arm64 build 2/5] " */
    bool clamp_mtime;   /* SOURCE_DATE_EPOCH */
    int64_t mtime_max;
    /*
     * The name the RUN's result is kept under in the build cache
     * (cache/runs/KEEP: the step's key), for engine_run_find in later
     * builds; NULL keeps it in the scratch directory only.
     */
    const char *keep;
};

/* What a RUN left. */
struct engine_run_result {
    char upper[4300];         /* its upper directory (overlay form): a lower for later RUNs */
    struct oci_tar_plan plan; /* what it changed (sources in upper); owned */
};

/*
 * Runs spec. Returns 0 when the command exited 0, with res filled;
 * otherwise an error with a sentence in err: the command's exit status and
 * the last lines of its output (OCISYNC_ESTEP), or what kept it from
 * running (a layer that does not extract, no emulator for the platform,
 * the sandbox's own errors). On error nothing of the RUN is left.
 */
int engine_run(struct engine_run_ctx *ctx, const struct engine_run_spec *spec,
               struct engine_run_result *res, char *err, size_t errlen);

/*
 * What an earlier build's RUN kept under spec->keep, captured again as if
 * it had just run: 1 (res filled), 0 when there is none, or an error.
 */
int engine_run_find(struct engine_run_ctx *ctx, const struct engine_run_spec *spec,
                    struct engine_run_result *res, char *err, size_t errlen);
void engine_run_result_free(struct engine_run_result *res);

#endif
