/*
 * The copy engine's interface to the rest of src/engine (build hands it
 * typed items); the public one is ocisync_copy_many in include/ocisync.h.
 */
#ifndef ENGINE_COPY_H
#define ENGINE_COPY_H

#include "engine/transport.h"
#include "ocisync.h"

/*
 * An image to copy, as the engine takes it: the caller's item (options, and
 * its sides as written, for events and messages) and, where the caller has
 * them, its sides as typed values (borrowed); NULL sides are parsed from the
 * item's strings when the image starts.
 */
/*
 * Where a blob is known to be already (a build's cache remembers where its
 * layers went): a blob of a layout source that a hint places in another
 * repository of the destination registry is mounted from there, not sent.
 */
struct engine_mount_hint {
    const char *registry, *repository;
    struct oci_digest digest;
};

struct engine_copy_item {
    struct ocisync_copy_item it;
    const struct engine_transport *src, *dst;
    const struct engine_mount_hint *hints; /* borrowed, n_hints */
    size_t n_hints;
    /*
     * A registry repository (borrowed) holding blobs a layout source lacks,
     * such as a registry build cache: a blob the layout lacks comes from
     * there when a hint places it there, else from the item's base.
     */
    const struct oci_ref *holder;
    /*
     * The destination layout is the staging area of a format that holds
     * Docker media types (docker-archive:, dir:): a Docker image is written
     * as it is, not converted to OCI media types as an oci: layout's is.
     */
    bool keep_media_types;
};

/*
 * ocisync_copy_many for typed items: archives made layouts first (and
 * packed last), then the images, then their referrers when opts asks.
 */
int engine_copy_many(const struct engine_copy_item *items, size_t n,
                     const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results);

#endif
