/*
 * What the copy engine's files share (copy.c: images; blob.c: one blob's
 * transfer; share.c: what the images of a run share). Nothing outside
 * src/engine/copy*.c, blob.c and share.c includes this.
 *
 * A run (copy_ctx) holds images (copy_job); an image holds the manifests it
 * pushes (copy_child: an index's children, or the lone manifest) and the
 * blobs they need, each once (copy_blob). Blobs take transfer slots from the
 * run; a blob that another image of the run is sending to the same
 * registry waits for it and is then mounted (copy_shared).
 */
#ifndef ENGINE_COPY_INTERNAL_H
#define ENGINE_COPY_INTERNAL_H

#include "common/queue.h"
#include "engine/copy.h"
#include "engine/endpoint.h"
#include "engine/mstore.h"
#include "engine/relay.h"
#include "engine/stop.h"
#include "oci/layout.h"
#include "oci/oci.h"
#include "proto/registry.h"
#include "proto/upload.h"

#include <uv.h>

#define DEFAULT_JOBS 8
/* Images resolved at once, per allowed transfer: enough to keep the slots busy. */
#define IMAGES_PER_JOB 2
/*
 * Different blobs one image may have (over all its platforms): a run holds a
 * few kilobytes of state for each, so a hostile index of a million cannot
 * take gigabytes. Real images are far below (16 platforms of 100 layers).
 */
#define COPY_MAX_BLOBS 8192
/* Destination HEADs sent ahead of the transfers, per image. */
#define PROBE_AHEAD 64
/* By default a blob goes up in one streamed request, as skopeo and crane send it. */
#define DEFAULT_CHUNK UINT64_MAX

struct copy_job;
struct copy_ctx;

/*
 * Manifests pushed to the same repository by several images at once (two tags
 * of one image, tags sharing a platform manifest) go one at a time: a registry
 * storing the same manifest twice concurrently may lose one (distribution 2.8
 * was seen answering "manifest blob unknown" to an index pushed meanwhile).
 */
struct copy_waiter {
    struct queue link;
    void (*resume)(struct copy_waiter *w);
    bool waiting;
};

struct copy_mlock {
    struct copy_mlock *next;
    char *key; /* owned: "<registry base>/<repository>@<digest>" */
    bool busy; /* a PUT of it is in flight */
    bool done; /* it is there: a child manifest needs no second PUT */
    struct queue waiters;
};

struct copy_child {
    struct copy_job *job;
    struct oci_descriptor desc; /* as listed in the index (or made up for a lone manifest) */
    char platform[96];
    /* The source's digest when desc names the bytes converted to OCI media types. */
    struct oci_digest src_digest;
    bool converted;
    /*
     * Renamed for its recompressed layers, at its push: desc names the new
     * bytes (own), pre_relink what the index named until then.
     */
    bool relinked;
    struct oci_digest pre_relink;
    char *own; /* owned: the relinked bytes of an index's child */
    /*
     * The manifest bytes, pushed as they are so the digest stays: in the
     * run's manifest store from the fetch to the push (an index's child), or
     * the top level's own (a lone manifest). raw points at them while loaded.
     */
    struct engine_mstore_ref mref;
    bool stored;                    /* mref holds them */
    struct engine_mstore_waiter mw; /* the store's reservation for its fetch, then its push */
    bool fetching, putting;         /* its GET, or its PUT, is in flight */
    const char *raw;
    size_t raw_len;
    char media_type[OCI_MEDIA_TYPE_MAX];
    struct oci_manifest m;
    bool parsed;
    bool present; /* already at the destination */
    bool pushed;
    unsigned blobs_left;
    uint64_t n_copied, n_mounted, n_skipped;
    struct proto_reg_op op;
    struct copy_waiter w;    /* waiting for another image's push of the same manifest */
    struct copy_mlock *lock; /* held while its PUT is in flight */
};

/*
 * One blob's transfer, as a state machine (blob.c). The blob, and each of
 * its two halves: the source (a GET into the relay, or a layout file read on
 * the thread pool) and the sink (an upload from the relay, or a layout temp
 * file written on the thread pool). Every change goes through blob.c's
 * set_state / set_src / set_sink, which log old -> new under --debug.
 */
enum blob_state {
    BLOB_QUEUED = 0, /* waiting for a transfer slot */
    BLOB_PARKED,     /* another image sends it to the same registry: waiting for that */
    BLOB_PROBING,    /* holds a slot; waiting for the destination HEAD sent ahead */
    BLOB_CHECKING,   /* a destination HEAD of its own in flight */
    BLOB_MOVING,     /* the source and the sink at work */
    BLOB_STOPPING,   /* starting over or failed: waiting for both halves to stop */
    BLOB_BACKOFF,    /* waiting to start over */
    BLOB_DONE,       /* copied, mounted, skipped, or failed (outcome) */
};

enum blob_src {
    SRC_IDLE = 0, /* not started, or stopped */
    SRC_RUNNING,  /* a GET, or file reads, feeding the relay */
    SRC_BACKOFF,  /* a GET cut on the way: waiting to go on with Range */
    SRC_DONE,     /* every byte in the relay, and the digest verified */
};

enum blob_sink {
    SINK_IDLE = 0, /* not started, or stopped */
    SINK_RUNNING,  /* the upload (proto_upload), or layout writes, in progress */
    SINK_CUT,      /* a PATCH was cut: waiting for the source to stop, then resuming */
    SINK_DONE,     /* committed, or mounted */
};

/* Why a blob is STOPPING. */
enum blob_stop { STOP_NONE = 0, STOP_RESTART, STOP_FAIL };

/* A blob recompressed on the way (blob.c). */
struct copy_xcode;

/* What a blob needs only while it transfers: allocated with its slot, freed soon after. */
struct copy_blob_io {
    struct proto_reg_op get;  /* from the source registry */
    struct proto_reg_op head; /* the destination HEAD when no probe answered */
    struct proto_upload up;   /* to the destination registry */
    struct queue reap_link;   /* in copy_ctx.io_reap once its blob is done */
};

struct copy_blob {
    struct copy_job *job;
    struct oci_descriptor desc;
    enum blob_state state;
    enum blob_src src;
    enum blob_sink sink;
    enum blob_stop stop;
    int outcome;                  /* OCISYNC_EV_BLOB_* once done */
    struct copy_child **children; /* owned array of borrowed pointers */
    size_t n_children;
    struct engine_relay relay;
    bool relay_ready;
    struct copy_blob_io *io;
    bool io_reaped; /* io went to the run's reaper (which frees it) */
    /*
     * A streamed transfer that fails on the way (a reset, a 5xx to a PATCH,
     * an expired token) cannot resend its body: the blob starts over from a
     * new upload and a new GET, after a backoff.
     */
    unsigned auth_restarts;
    unsigned restarts;
    uint64_t restart_delay_ms;
    struct loop_delay backoff;
    /* A source GET cut mid-body resumes with Range from where the relay stands. */
    unsigned get_resumes;
    struct loop_delay get_backoff;
    /* From one of the job's origins rather than the source layout (NULL: the job's source). */
    struct copy_origin *origin;
    /*
     * A layer in another compression than ocisync_copy_opts.recompress asks:
     * the relay's bytes go through the thread pool (xc) into the sink, which
     * takes them from there. Once done, desc names the new blob and
     * src_digest the source's (recompressed).
     */
    bool recompress;
    struct copy_xcode *xc; /* owned while it moves */
    bool recompressed;
    struct oci_digest src_digest;
    /* The upload in flight tries a mount first; whether the registry opened an upload. */
    bool mounting, opened;
    /*
     * Whether the destination has it, asked (HEAD) a window of blobs ahead of
     * the transfers, so a blob that gets a slot usually knows already and
     * goes straight to its upload.
     */
    struct proto_reg_op *probe; /* owned while in flight */
    enum { PROBE_NONE, PROBE_PENDING, PROBE_PRESENT, PROBE_ABSENT } probe_state;
    /* Progress events: the transfer's start, then received bytes now and then. */
    bool start_emitted;
    uint64_t progress_ms;
    /* Sharing with other images of the run (see struct copy_shared). */
    struct copy_shared *shared; /* set while this blob is the one transferring it */
    struct queue wait_link;     /* PARKED, or woken in copy_ctx.wake_queue */
    char *mount_from;           /* owned: a destination repository another image put it in */
    char *mount_scope;          /* owned: the token scope a mount from there needs */
    /* From a layout: the blob file, read on the thread pool into the relay. */
    uv_fs_t fs;
    int fd;          /* -1 when closed */
    char *fbuf;      /* owned read buffer */
    bool file_wait;  /* the relay was full: the next read waits for the consumer */
    bool file_abort; /* stop at the read in flight */
    char file_err[512];
    /* Into a layout: the temp file the relay drains into, written on the thread pool. */
    struct oci_layout_writer w;
    bool w_open;
    uv_work_t work;
    const char *sink_data; /* the span being written (inside the relay) */
    size_t sink_len;
    int sink_err;
    bool sink_commit;
    bool sink_busy; /* a write or the commit is on the thread pool */
    char sink_msg[512];
};

/*
 * One blob on one destination registry, as the images of the run meet it:
 * the first image that needs it transfers it (owner) while the others wait,
 * then mount it from the repository it went to.
 */
struct copy_shared {
    struct copy_shared *next; /* hash chain */
    char base[LOOP_HOST_MAX + 32];
    struct oci_digest digest;
    struct copy_blob *owner;
    char *repo; /* owned: a repository of that registry that holds it, or NULL */
    struct queue waiters;
};

/* A registry repository that holds blobs a layout source lacks (see copy_job.origins). */
struct copy_origin {
    struct oci_ref ref;
    struct proto_registry *reg; /* owned */
    bool same_dst;              /* another repository of the destination registry: mount */
};

/*
 * The life of an image (copy.c; set_job_state logs every change):
 *   WAITING -> LOOKING (HEADs of both tags: the same digest ends it here)
 *           -> FETCHING (the source's document, then its children)
 *           -> CHECKING_TAG -> CHECKING_CHILDREN (what the destination has)
 *           -> MOVING (the blobs; each child pushed once its blobs are in)
 *           -> PUSHING (the top manifest, under the tag) -> ENDING -> DONE
 * A phase that needs no request is passed straight through; a failure, an
 * interruption or finding everything there goes to ENDING, which waits for
 * the requests and blobs still in flight (pending_ops, blobs_open).
 */
enum job_state {
    JOB_WAITING = 0,
    JOB_LOOKING,
    JOB_FETCHING,
    JOB_CHECKING_TAG,
    JOB_CHECKING_CHILDREN,
    JOB_MOVING,
    JOB_PUSHING,
    JOB_ENDING,
    JOB_DONE,
};

struct copy_job {
    struct copy_ctx *ctx;
    enum job_state state;
    const struct ocisync_copy_opts *opts;
    size_t index;                         /* in the run's items */
    const struct ocisync_copy_item *item; /* eitem->it */
    const struct engine_copy_item *eitem;
    struct oci_ref src, dst;
    struct proto_registry *src_reg, *dst_reg; /* owned, cloned from the run's endpoints */
    /* An OCI layout side instead of a registry (shared with the run's other images). */
    struct copy_layout *src_lay, *dst_lay;
    char src_lref[256], dst_lref[256]; /* the image's name in the layout, or "" */
    /*
     * Where the blobs a layout source lacks come from, mounted when on the
     * destination registry: the base image's repository
     * (ocisync_copy_item.base), and the holder (engine_copy_item.holder) for
     * the blobs a hint places there.
     */
    struct copy_origin origins[2];
    size_t n_origins;
    struct copy_origin *holder; /* in origins, or NULL */
    struct oci_platform platforms[16];
    size_t n_platforms;
    unsigned throttles_seen;
    uint64_t chunk_size;
    bool same_registry;
    struct queue queue_link; /* in ctx->blob_queue */
    bool queued;
    struct queue reap_link; /* in ctx->reap_queue once done */

    /* The top-level document. */
    char *top_raw; /* owned */
    size_t top_len;
    char top_media_type[OCI_MEDIA_TYPE_MAX];
    struct oci_digest top_digest; /* of the source document */
    struct oci_manifest top;
    bool top_parsed;
    char *push_raw; /* owned when filtered: the new index; else points to top_raw */
    size_t push_len;
    struct oci_digest push_digest;
    /*
     * Docker media types become OCI ones on the way into an oci: layout, or
     * either way as --format asks (ocisync_copy_opts.format).
     */
    enum { CONVERT_NONE = 0, CONVERT_OCI, CONVERT_DOCKER } convert;
    bool top_relinked; /* the index names its children's recompressed forms */

    struct copy_child *children; /* owned */
    size_t n_children;
    struct copy_blob *blobs; /* owned */
    size_t n_blobs;
    size_t next_blob;
    size_t next_probe;    /* blobs before it have had their destination HEAD sent */
    unsigned blobs_open;  /* blobs between PENDING and DONE, parked ones included */
    unsigned pending_ops; /* requests and waits in flight: the current phase ends at 0 */
    unsigned children_left;

    struct proto_reg_op top_op;
    struct copy_waiter top_w;
    struct copy_mlock *top_lock;
    /*
     * The first look, with HEADs only (Docker Hub does not count them against
     * pull limits): the source's digest and the destination's, side by side.
     */
    struct proto_reg_op head_op; /* the destination's; top_op does the source's */
    char src_head[OCI_DIGEST_MAX], dst_head[OCI_DIGEST_MAX];
    bool dst_known; /* dst_head says what the destination has ("" for nothing) */
    /*
     * The destination repository has no tag (asked once its tag was found
     * missing): nothing is asked of it blob by blob or manifest by manifest,
     * everything is sent, saving a HEAD per blob where none would be found.
     */
    bool dst_new;
    /* A referrer's fallback index: each of its manifests must name item->subject. */
    bool child_subjects;
    int err;
    struct ocisync_copy_result *res;
};

/* An OCI image layout that images of the run read from or write to, opened once. */
struct copy_layout {
    struct copy_layout *next;
    char *dir; /* owned */
    struct oci_layout lay;
    bool write;
};

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

/* copy.c: images */
/* Fails the image: stops what it has in flight (engine__blob_abort on its blobs). */
void engine__job_fail(struct copy_job *job, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the image if nothing of it is in flight any more. */
void engine__job_settle(struct copy_job *job);
/* A blob of job is at the destination: counts, the event, and its manifests' turn. */
void engine__job_blob_done(struct copy_job *job, struct copy_blob *b);
/* Starts what may start: images, then blobs while transfer slots are free. */
void engine__pump(struct copy_ctx *ctx);
void engine__emit(struct copy_job *job, ocisync_event_kind kind, const char *digest,
                  const char *media_type, const char *platform, int64_t size);
/* The media type of a layer recompressed as opts asks, in a Docker manifest or an OCI one. */
const char *engine__recompressed_type(const struct ocisync_copy_opts *opts, bool docker);

/* blob.c: one blob's transfer */
/* Takes a transfer slot for b and starts it (or parks it behind another image's). */
void engine__blob_begin(struct copy_blob *b);
/* b's image failed: whatever b has in flight stops; b ends once it has. */
void engine__blob_abort(struct copy_blob *b);
/* Drops b from the open set without a transfer (its image failed while it waited). */
void engine__blob_drop(struct copy_blob *b);
/* Sends the destination HEADs of job's blobs next in line. */
void engine__blob_probe_ahead(struct copy_job *job);
/* Frees what b still holds (its image is released). */
void engine__blob_free(struct copy_blob *b);
/* Frees the requests of done blobs now (the run ends). */
void engine__blob_reap(struct copy_ctx *ctx);

/* share.c: what the images of a run share */
/* The entry for blob d on the registry at base, created if needed; NULL without memory. */
struct copy_shared *engine__shared_get(struct copy_ctx *ctx, const char *base,
                                       const struct oci_digest *d);
void engine__shared_free_all(struct copy_ctx *ctx);
/* The lock for a manifest in job's destination repository (NULL without memory). */
struct copy_mlock *engine__mlock_get(struct copy_job *job, const struct oci_digest *d);
/* The push under *held ended (ok: the manifest is there): the next in line goes. */
void engine__mlock_release(struct copy_mlock **held, bool ok);
void engine__mlock_wait(struct copy_mlock *m, struct copy_waiter *w,
                        void (*resume)(struct copy_waiter *w));
void engine__mlock_free_all(struct copy_ctx *ctx);

#endif
