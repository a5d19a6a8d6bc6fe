/*
 * Where a run keeps the manifests it has fetched and not yet pushed, with
 * its memory bounded whatever the registries send.
 *
 * An index may list 1024 children of up to 4 MiB each, and a run copies
 * many images at once: held naively, that is gigabytes. Instead:
 *   - a manifest in flight (being fetched, or loaded to be pushed) holds a
 *     reservation of its size; reservations are granted while they total
 *     at most ENGINE_MSTORE_INFLIGHT (and always to one at a time), so callers
 *     wait their turn in a queue;
 *   - a manifest kept between its fetch and its push stays in memory while
 *     the kept bytes total at most ENGINE_MSTORE_KEEP, and goes to an unlinked
 *     temp file ($TMPDIR) otherwise, to be read back for its push;
 *   - each is dropped as soon as it is pushed (or found at the destination),
 *     and its part of the temp file is punched out.
 * So manifests cost at most ENGINE_MSTORE_INFLIGHT + ENGINE_MSTORE_KEEP of memory
 * per run (plus one 4 MiB document being parsed), however many images and
 * children there are.
 */
#ifndef ENGINE_MSTORE_H
#define ENGINE_MSTORE_H

#include "common/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENGINE_MSTORE_INFLIGHT (32u * 1024 * 1024)
#define ENGINE_MSTORE_KEEP (32u * 1024 * 1024)

/* One manifest's bytes, kept in memory or in the store's file. */
struct engine_mstore_ref {
    char *mem; /* owned: the bytes in memory (kept, or loaded for a push), or NULL */
    size_t len;
    int64_t off;  /* where they are in the file when spilled; -1 when not */
    bool counted; /* mem counts against the keep budget */
};

/* A caller waiting for a reservation: resume runs once it has one. */
struct engine_mstore_waiter {
    struct queue link;
    size_t size;
    void (*resume)(struct engine_mstore_waiter *w);
    bool waiting;
    bool holds; /* a reservation of size is held */
};

struct engine_mstore {
    uint64_t inflight; /* reserved bytes */
    uint64_t kept;     /* bytes kept in memory */
    uint64_t peak_inflight, peak_kept;
    uint64_t spilled; /* manifests written to the file, for --debug and tests */
    uint64_t inflight_max, keep_max;
    struct queue waiters;
    int fd; /* the temp file, -1 until the first spill */
    uint64_t file_end;
};

void engine_mstore_init(struct engine_mstore *ms);
/* Closes the temp file; every reservation and ref must be gone. */
void engine_mstore_dispose(struct engine_mstore *ms);

/*
 * Asks for a reservation of size bytes for w. Returns true when granted at
 * once (w->holds); otherwise w waits and w->resume runs when it is granted.
 */
bool engine_mstore_reserve(struct engine_mstore *ms, struct engine_mstore_waiter *w, size_t size,
                           void (*resume)(struct engine_mstore_waiter *w));
/*
 * Gives w's reservation back, or takes w out of the queue; waiters that now
 * fit are resumed (not under this call's caller: on the same stack, so the
 * caller must not depend on state a resume may change).
 */
void engine_mstore_release(struct engine_mstore *ms, struct engine_mstore_waiter *w);

/*
 * Takes raw (malloc'ed, len bytes) into ref: kept in memory while the keep
 * budget allows, else written to the temp file and freed. Returns 0 or an
 * error (raw is freed either way) with a message in err.
 */
int engine_mstore_keep(struct engine_mstore *ms, struct engine_mstore_ref *ref, char *raw,
                       size_t len, char *err, size_t errlen);
/* The bytes of ref, read back from the file if spilled (they stay loaded until dropped). */
int engine_mstore_load(struct engine_mstore *ms, struct engine_mstore_ref *ref, const char **data,
                       char *err, size_t errlen);
/* Forgets ref's bytes, in memory and in the file. */
void engine_mstore_drop(struct engine_mstore *ms, struct engine_mstore_ref *ref);

#endif
