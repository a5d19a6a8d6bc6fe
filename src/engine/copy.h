/*
 * The copy engine's run context: one event loop and one HTTP client shared by
 * every image of a run (one for `copy`, many for `sync`), one limit on the
 * blob transfers in flight across all of them, and the table that lets a blob
 * needed by several destination repositories travel once.
 */
#ifndef ENGINE_COPY_H
#define ENGINE_COPY_H

#include "common/queue.h"
#include "ocisync.h"
#include "engine/endpoint.h"
#include "engine/stop.h"
#include "engine/transport.h"
#include "oci/layout.h"
#include "engine/mstore.h"
#include "oci/oci.h"
#include "proto/registry.h"

struct copy_job;
struct copy_shared;

/* An OCI image layout that images of the run read from or write to, opened once. */
struct copy_layout {
    struct copy_layout *next;
    char *dir; /* owned */
    struct oci_layout lay;
    bool write;
};

/*
 * An image to copy, as the engine takes it: the caller's item (options, and
 * its sides as written, for events and messages) and, where the caller has
 * them, its sides as typed values (borrowed); NULL sides are parsed from the
 * item's strings when the image starts.
 */
struct engine_copy_item {
    struct ocisync_copy_item it;
    const struct engine_transport *src, *dst;
};

/*
 * ocisync_copy_many for typed items: archives made layouts first (and
 * packed last), then the images, then their referrers when opts asks.
 */
int engine_copy_many(const struct engine_copy_item *items, size_t n,
                     const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results);

struct copy_ctx {
    struct engine_session s; /* loop, pool, client, endpoints and the stop on a signal */
    const struct ocisync_copy_opts *opts;
    struct copy_layout *layouts; /* owned list */

    /*
     * One per image, allocated when it starts and freed once it is finished,
     * so a run of thousands holds only the images in flight.
     */
    struct copy_job **jobs; /* owned array of owned pointers (NULL: not started or freed) */
    int *errs;              /* owned: each image's outcome once finished */
    const struct engine_copy_item *items;
    struct ocisync_copy_result *results;
    size_t n_jobs;
    size_t next_job;      /* the next image to start */
    unsigned running;     /* images started and not finished */
    unsigned max_running; /* images resolved and copied at once */
    size_t finished;
    struct queue blob_queue; /* jobs with blobs waiting for a transfer slot */
    struct queue wake_queue; /* blobs whose shared transfer settled, waiting for a slot */
    bool pumping, pump_again;
    /* Finished images free their memory from here, never under their own callbacks. */
    struct queue reap_queue;
    struct loop_delay reap;
    struct queue io_reap; /* requests of done blobs, freed on the next turn */
    struct loop_delay io_reap_delay;

    unsigned max_active; /* the most blob transfers at once, over all images */
    unsigned jobs_limit; /* the current limit: halved when a registry throttles, then regrown */
    unsigned jobs_grow;  /* transfers finished since the limit last changed */
    unsigned active;     /* transfers holding a slot */
    unsigned retries;    /* requests sent again, over finished images */

    struct engine_mstore mstore; /* child manifests between their fetch and their push */
    struct copy_shared **shared; /* owned hash table: blobs by (destination registry, digest) */
    struct copy_mlock *mlocks;   /* owned list: manifests pushed in this run, by repository */
    size_t shared_cap;

    bool stopping; /* interrupted: start nothing more */
    int stop_err;
    char stop_msg[256];
    bool done;
    bool signals; /* handle_signals: inside engine_stop_enter */
};

#endif
