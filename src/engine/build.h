/*
 * What a build makes, however it was described: by ocisync_build's flags
 * (directories per platform, shared layers, config changes) or by a
 * Dockerfile (dockerfile.c). Both become one spec, which build.c runs: one
 * base for every image, a set of distinct new layers (each built and
 * uploaded once, however many platforms use it), and per platform the
 * layers it stacks in order and its config changes with their history.
 */
#ifndef ENGINE_BUILD_H
#define ENGINE_BUILD_H

#include "ocisync.h"
#include "oci/digest.h"
#include "oci/imgconfig.h"
#include "oci/tar.h"

#include <stddef.h>

/* One distinct new layer. Everything is borrowed for the length of the run. */
struct engine_build_layer {
    const struct oci_tar_source *src;
    size_t n_src;
    /* Ownership and modes; the run adds mtime clamping from SOURCE_DATE_EPOCH. */
    struct oci_tar_opts topts;
    /* Names the layer in messages: "COPY dist /app (Dockerfile line 4)", "./dist:/app". */
    const char *label;
    /* Its history entry when the image's changes carry no explicit history. */
    const char *created_by;
    /*
     * A layer made another way (what a RUN changed): its plan, used instead
     * of src. And the key it is cached under when that is not its content's
     * (a RUN's key says what ran on what): with a key and neither plan nor
     * src, the layer must be in the build cache already.
     */
    const struct oci_tar_plan *plan;
    const struct oci_digest *key;
};

/* One platform's image. */
struct engine_build_image {
    const char *platform; /* "linux/arm64" */
    /* Indexes into the spec's layers, bottom first, after the base's. */
    const size_t *layers;
    size_t n_layers;
    /* The config changes; created is set by the run. */
    struct oci_build_changes ch;
};

struct engine_build_spec {
    const char *base; /* NULL or "scratch" for none */
    const struct engine_build_layer *layers;
    size_t n_layers;
    const struct engine_build_image *images;
    size_t n_images;
    /* Compression, streaming, annotations, tags and transfers are taken from here. */
    const struct ocisync_build_opts *o;
};

/*
 * Builds the images of spec and pushes (or writes) their index to every
 * tag of spec->o. Returns 0, or an error with a sentence in res->error.
 */
int engine_build_run(const struct engine_build_spec *spec, struct ocisync_build_result *res);

/*
 * The config (*config, malloc'ed, *len bytes) of base's image for platform,
 * fetched with the source-side options of o: what a Dockerfile stage
 * starts from (its Env, WorkingDir, User).
 */
int engine_build_base_config(const struct ocisync_build_opts *o, const char *base,
                             const char *platform, char **config, size_t *len, char *err,
                             size_t errlen);

/* A base image's layers for one platform, as files (see engine_build_base_layers). */
struct engine_base_layers {
    size_t n;
    char (*path)[4200];         /* owned: each layer's blob file, bottom first */
    struct oci_digest *diff_id; /* owned: what each decompresses to */
    struct oci_digest manifest; /* the platform's manifest digest */
};

/*
 * Fetches the layers of base's image for platform into the build cache
 * (cache_dir, an OCI layout's blobs; those already there are not fetched
 * again), with the source-side options of o, for a build step that needs
 * the base's files. The blobs are verified as they arrive.
 */
int engine_build_base_layers(const struct ocisync_build_opts *o, const char *base,
                             const char *platform, const char *cache_dir,
                             struct engine_base_layers *out, char *err, size_t errlen);
void engine_base_layers_free(struct engine_base_layers *bl);

/* A Dockerfile build (o->dockerfile set): dockerfile.c. */
int engine_dockerfile_build(const struct ocisync_build_opts *o, struct ocisync_build_result *res);

#endif
