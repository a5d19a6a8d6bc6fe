/*
 * The build cache: layers already built, found again by what they are made
 * of, so an unchanged COPY (or --platform directory) costs a walk that
 * hashes its files and a HEAD at the registry, not a compression and an
 * upload.
 *
 * A layer's key is the SHA-256 of everything its tar stream is made from:
 * every planned entry (path, type, mode, owner, mtime after clamping, size,
 * link target, device numbers, xattrs) and the content digest of every
 * file, plus the compression and level. The layer writer is deterministic (the same plan gives the
 * same bytes), so equal keys mean equal blobs. A COPY layer does not depend on the steps before it
 * (only a RUN will), so a changed file invalidates its own layer and no other.
 *
 * On disk, under the cache directory ($XDG_CACHE_HOME/ocisync, else
 * ~/.cache/ocisync): layers/<key hex> holds the layer's digests and sizes
 * as JSON, and blobs/sha256/<hex> the compressed blob, which a hit links
 * (or copies) into the build's staging layout. Entries are written whole
 * (temp file, then rename) and read with a size cap; one that does not
 * parse, or whose blob is missing or of the wrong size, is a miss.
 */
#ifndef ENGINE_CACHE_H
#define ENGINE_CACHE_H

#include "ocisync.h"
#include "oci/digest.h"
#include "oci/layer.h"
#include "oci/layout.h"
#include "oci/ref.h"
#include "oci/tar.h"

#include <limits.h>
#include <stdbool.h>

struct engine_cache {
    char dir[PATH_MAX]; /* "" when the cache is off */
};

/*
 * Opens the cache in dir (NULL: the default), creating it (mode 0700).
 * A cache that cannot be created is turned off with a debug line, not an
 * error: a build does not fail for want of a cache.
 */
void engine_cache_open(struct engine_cache *c, const char *dir);

/*
 * The key of the layer plan would make with comp and level. Each file's
 * content digest comes from the cache's stat index when the file's device,
 * inode, size, mtime and ctime are what they were when it was last read;
 * otherwise the file is read (and the index updated). 0, or the error
 * reading a file (with a sentence in err).
 */
int engine_cache_key(const struct engine_cache *c, const struct oci_tar_plan *plan,
                     enum oci_compression comp, int level, struct oci_digest *key, char *err,
                     size_t errlen);

/*
 * engine_cache_key for a layer already built, whose files' content digests
 * the build took as it read them (oci_layer_build's file_sums, one per plan
 * entry): no file is read again, and the stat index learns each file as
 * the build saw it. The same key engine_cache_key gives for the same files.
 * 0, or OCISYNC_EUSAGE when a file's digest is missing.
 */
int engine_cache_key_sums(const struct engine_cache *c, const struct oci_tar_plan *plan,
                          enum oci_compression comp, int level, const struct oci_tar_file_sum *sums,
                          struct oci_digest *key, char *err, size_t errlen);

/*
 * Whether the cache holds any layer, so that a lookup can hit. A build with
 * nothing to find takes its keys from the files as it builds, with
 * engine_cache_key_sums, rather than read every file once more beforehand.
 */
bool engine_cache_has_layers(const struct engine_cache *c);

/* Where a cached layer was pushed: "registry/repository", newest first. */
#define ENGINE_CACHE_MAX_AT 8
#define ENGINE_CACHE_AT_LEN 512
struct engine_cache_at {
    char v[ENGINE_CACHE_MAX_AT][ENGINE_CACHE_AT_LEN];
    size_t n;
};

/*
 * Looks key up: on a hit fills r (diff_id, digest, size, tar_size, path)
 * with the blob linked or copied into blobs_dir ("<layout>/blobs/sha256"),
 * and at (if not NULL) with where the layer was pushed, and returns true.
 */
bool engine_cache_get(const struct engine_cache *c, const struct oci_digest *key,
                      const char *blobs_dir, struct oci_layer_result *r,
                      struct engine_cache_at *at);

/*
 * Looks key up without taking the blob: on a hit fills r with r->path the
 * cache's own blob file (read it, never write it) and returns true.
 */
bool engine_cache_peek(const struct engine_cache *c, const struct oci_digest *key,
                       struct oci_layer_result *r);

/* Remembers that the layer of key is now at where ("registry/repository"). Best effort. */
void engine_cache_note(const struct engine_cache *c, const struct oci_digest *key,
                       const char *where);

/* What the cache's blobs may take when no cap is given: 10 GiB. */
#define ENGINE_CACHE_DEFAULT_MAX (10ull << 30)

/* Marks a blob file of the cache as just used (its mtime), so that trimming keeps it longest. */
void engine_cache_touch(const char *blob);

/*
 * Marks a directory the cache keeps (an extracted layer in rootfs/, a RUN's
 * result in runs/) as just used: the mtime of its NAME.size file.
 */
void engine_cache_dir_used(const char *dir);

/*
 * Keeps what the cache holds within max bytes (0: ENGINE_CACHE_DEFAULT_MAX):
 * its blobs and the directories of rootfs/ and runs/ (sizes on disk, kept
 * in NAME.size files). When over, removes the least recently used down to
 * 90% of it, and the layer entries whose blob went. Best effort; a blob
 * another build has linked into its staging layout stays there.
 */
void engine_cache_trim(const struct engine_cache *c, uint64_t max);

/* Records a built layer under key, its blob linked or copied from r->path. Best effort. */
void engine_cache_put(const struct engine_cache *c, const struct oci_digest *key,
                      const struct oci_layer_result *r);

/* ------------------------------------------------------------------------------------------
 * The cache in a registry repository (cache_registry.c): --cache-from / --cache-to.
 */

/* A layer of the registry cache: its key and what the key gave (r.path unset). */
struct engine_rcache_entry {
    struct oci_digest key;
    struct oci_layer_result r;
    char media_type[128];
};

struct engine_rcache {
    struct oci_ref ref;            /* the cache image, by tag */
    struct engine_rcache_entry *e; /* owned, n, sorted by key */
    size_t n;
};

/*
 * The cache image named by spec as --cache-from/--cache-to take it (flag
 * names the option in messages): "REF", or buildx's
 * "type=registry,ref=REF[,mode=...]". A registry reference with a tag.
 */
int engine_rcache_ref(const char *spec, const char *flag, struct oci_ref *out, char *err,
                      size_t errlen);

/*
 * Reads the cache image c->ref with the source-side options of co. None
 * there yet is an empty cache; anything else that goes wrong is an error
 * with a sentence in msg (the caller builds without it).
 */
int engine_rcache_load(struct engine_rcache *c, const struct ocisync_copy_opts *co, char *msg,
                       size_t msglen);

/* The entry for key, or NULL. */
const struct engine_rcache_entry *engine_rcache_find(const struct engine_rcache *c,
                                                     const struct oci_digest *key);
void engine_rcache_free(struct engine_rcache *c);

/*
 * Writes the cache image of the n entries e (sorted here) into lay under
 * name: its config and manifest; the layers' blobs are the caller's.
 */
int engine_rcache_write(struct oci_layout *lay, const char *name, struct engine_rcache_entry *e,
                        size_t n, char *msg, size_t msglen);

#endif
