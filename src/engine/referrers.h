/* Copying the referrers (signatures, SBOMs, attestations) of copied images. */
#ifndef ENGINE_REFERRERS_H
#define ENGINE_REFERRERS_H

#include "ocisync.h"

struct engine_copy_item;

/* Runs one copy of many images (the engine's run, without referrers). */
typedef int (*engine_copy_run_fn)(const struct engine_copy_item *items, size_t n,
                                  const struct ocisync_copy_opts *opts,
                                  struct ocisync_copy_result *results);

/*
 * After items were copied with results, finds their referrers (OCI 1.1
 * referrers API, else the "sha256-<hex>" fallback tag) and copies them with
 * copy_run, round after round for referrers of referrers. What is copied is
 * added to the counts of the item it hangs from; a failure sets that item's
 * error. Returns 0, or the first error.
 */
int engine_referrers_copy(const struct engine_copy_item *items, size_t n,
                          const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results,
                          engine_copy_run_fn copy_run);

#endif
