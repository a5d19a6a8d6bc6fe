/*
 * ocisync: copy, mirror and build OCI / Docker container images by talking to
 * registries directly.
 *
 * This is the library's public interface; the ocisync command-line tool uses
 * nothing else. Every function returns 0 on success or a negative error code:
 * either a libuv code (UV_E*, for system errors) or one of the OCISYNC_E*
 * codes below. ocisync_strerror() and ocisync_err_name() describe both kinds.
 */
#ifndef OCISYNC_H
#define OCISYNC_H

#include "ocisync_version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * OCISYNC_EXTERN marks the functions libocisync.so exports. The library is
 * compiled with -fvisibility=hidden (OCISYNC_BUILDING set), so everything else
 * in it, its internal modules and llhttp, stays out of its dynamic symbol
 * table. For a program that includes this header the macro is empty.
 */
#if defined(OCISYNC_BUILDING) && defined(__GNUC__) && __GNUC__ >= 4
#define OCISYNC_EXTERN __attribute__((visibility("default")))
#else
#define OCISYNC_EXTERN
#endif

/*
 * ocisync's own error codes. They live well below libuv's (which are negated
 * errno values and getaddrinfo codes, all above -5000) so both can share one
 * int.
 */
#define OCISYNC_ERRNO_MAP(XX)                                                                      \
    XX(EREF, -20001, "invalid image reference")                                                    \
    XX(EDIGEST, -20002, "invalid digest")                                                          \
    XX(EDIGESTMISMATCH, -20003, "content does not match its digest")                               \
    XX(ESIZEMISMATCH, -20004, "content does not match its size")                                   \
    XX(EMANIFEST, -20005, "invalid manifest")                                                      \
    XX(EMEDIATYPE, -20006, "unsupported media type")                                               \
    XX(ETOOBIG, -20007, "input exceeds a limit")                                                   \
    XX(EHTTP, -20008, "malformed HTTP message")                                                    \
    XX(EREGISTRY, -20009, "registry returned an error")                                            \
    XX(ENOTFOUND, -20010, "not found")                                                             \
    XX(EUNAUTHORIZED, -20011, "authentication required")                                           \
    XX(EDENIED, -20012, "access denied")                                                           \
    XX(ENOPLATFORM, -20013, "no matching platform")                                                \
    XX(EREDIRECT, -20014, "too many redirects")                                                    \
    XX(EUPLOAD, -20015, "blob upload failed")                                                      \
    XX(EPLATFORM, -20016, "invalid platform")                                                      \
    XX(EUSAGE, -20017, "invalid argument")                                                         \
    XX(ETIMEOUT, -20018, "operation timed out")                                                    \
    XX(EJSON, -20019, "invalid JSON")                                                              \
    XX(ECLOSED, -20020, "connection closed before the response was complete")                      \
    XX(ETLS, -20021, "TLS handshake failed")                                                       \
    XX(ETLSCONFIG, -20022, "invalid TLS configuration")                                            \
    XX(EINTERRUPTED, -20023, "interrupted")                                                        \
    XX(EPARTIAL, -20024, "some images failed")                                                     \
    XX(ESTEP, -20025, "a build step failed")

typedef enum {
#define OCISYNC_ERR_ENUM(name, value, msg) OCISYNC_##name = (value),
    OCISYNC_ERRNO_MAP(OCISYNC_ERR_ENUM)
#undef OCISYNC_ERR_ENUM
} ocisync_errno_t;

/* A static, human-readable description of err (ocisync or libuv code). */
OCISYNC_EXTERN const char *ocisync_strerror(int err);
/* A static symbolic name for err, such as "OCISYNC_EDIGEST" or "ECONNREFUSED". */
OCISYNC_EXTERN const char *ocisync_err_name(int err);
/* Turns request tracing on stderr on (non-zero) or off. Credentials are never traced. */
OCISYNC_EXTERN void ocisync_set_debug(int on);
/* The platform this program runs on, "os/arch[/variant]" (like "linux/arm64/v8"). */
OCISYNC_EXTERN void ocisync_host_platform(char *buf, size_t len);

/* What the library is and what it runs with; see ocisync_version_info(). */
struct ocisync_version_info {
    const char *version;  /* the library's, "MAJOR.MINOR.PATCH" */
    const char *revision; /* the git revision it was built from ("-dirty": with changes), or "" */
    /* The versions of the libraries it runs with (llhttp is compiled in). */
    const char *libuv, *openssl, *zlib, *zstd, *llhttp, *jansson, *libyaml;
};

/*
 * The library's version and those of its dependencies, as loaded at run
 * time. Static data: the caller never frees it, and later versions may add
 * fields at the end.
 */
OCISYNC_EXTERN const struct ocisync_version_info *ocisync_version_info(void);

/* ---------------------------------------------------------------------------------------------
 * Names: references, digests, platforms, checked as copy checks them
 */

#define OCISYNC_REF_REGISTRY_MAX 256
#define OCISYNC_REF_REPOSITORY_MAX 256
#define OCISYNC_REF_TAG_MAX 129

/* An image reference's parts, normalised. */
struct ocisync_ref {
    char registry[OCISYNC_REF_REGISTRY_MAX];     /* "docker.io", "127.0.0.1:5000" */
    char repository[OCISYNC_REF_REPOSITORY_MAX]; /* "library/alpine" */
    char tag[OCISYNC_REF_TAG_MAX]; /* "latest" when there was neither tag nor digest */
    char digest[144];              /* "sha256:..." or "" */
};

/*
 * Parses s ("docker://" optional) as docker and skopeo do: "alpine" is
 * docker.io/library/alpine:latest, a first component with a '.' or a ':' or
 * "localhost" is a registry. Returns 0, or OCISYNC_EREF / OCISYNC_EDIGEST
 * with a sentence naming s in err (which may be NULL).
 */
OCISYNC_EXTERN int ocisync_ref_parse(const char *s, struct ocisync_ref *ref, char *err,
                                     size_t errlen);
/* 0 when s is a digest ("sha256:" or "sha512:" and lowercase hex of the right length). */
OCISYNC_EXTERN int ocisync_digest_check(const char *s);
/* NULL when s is a platform "os/arch[/variant]"; else what is wrong with it ("is not ..."). */
OCISYNC_EXTERN const char *ocisync_platform_problem(const char *s);

/* ---------------------------------------------------------------------------------------------
 * Copy
 */

/* What happened to one blob or manifest during a copy; reported through on_event. */
typedef enum {
    OCISYNC_EV_BLOB_COPIED = 1,  /* relayed from source to destination */
    OCISYNC_EV_BLOB_MOUNTED,     /* cross-repository mount on the destination registry */
    OCISYNC_EV_BLOB_SKIPPED,     /* already present at the destination */
    OCISYNC_EV_MANIFEST_PUSHED,  /* a manifest or index was written (child or top level) */
    OCISYNC_EV_MANIFEST_SKIPPED, /* the destination already had it */
    OCISYNC_EV_INDEX_FILTERED,   /* a platform subset produced a new index with a new digest */
    OCISYNC_EV_IMAGE_DONE,       /* an image (one platform manifest) is complete */
    OCISYNC_EV_DONE,        /* one item is finished: err 0 and digest the top-level one, or err and
                               message say why it failed */
    OCISYNC_EV_IMAGE_START, /* an item starts */
    OCISYNC_EV_BLOB_START,  /* a blob transfer starts (size is the blob's) */
    OCISYNC_EV_BLOB_PROGRESS, /* bytes of the blob received so far (at most ~10 a second) */
    /*
     * A manifest or index took other media types (media_type: its new
     * one), hence a new digest (digest) instead of source_digest: a
     * Docker-format one written to an OCI layout, one converted as
     * ocisync_copy_opts.format asks, or one naming recompressed layers.
     */
    OCISYNC_EV_MANIFEST_CONVERTED,
    /*
     * A layer was recompressed (ocisync_copy_opts.recompress): the
     * destination holds digest (media_type, size bytes) for source_digest.
     */
    OCISYNC_EV_BLOB_RECOMPRESSED,
} ocisync_event_kind;

struct ocisync_event {
    ocisync_event_kind kind;
    const char *digest;     /* blob or manifest digest */
    const char *media_type; /* may be NULL */
    const char *platform;   /* "os/arch[/variant]" of the image it belongs to, or NULL */
    /* EV_INDEX_FILTERED, EV_MANIFEST_CONVERTED, EV_BLOB_RECOMPRESSED: the source's digest */
    const char *source_digest;
    int64_t size;
    /* EV_IMAGE_DONE, EV_DONE: what happened to the image's blobs. */
    uint64_t blobs_copied, blobs_mounted, blobs_skipped;
    /* Which item of ocisync_copy_many the event belongs to (0 for ocisync_copy). */
    size_t image;
    /* EV_IMAGE_START, EV_DONE: the item's source and destination, as given. */
    const char *src, *dst;
    /* EV_DONE: 0, or the error and a sentence saying what failed; bytes relayed. */
    int err;
    const char *message;
    uint64_t bytes;
};

typedef void (*ocisync_event_cb)(const struct ocisync_event *ev, void *arg);

/* Where a registry may be reached over plain HTTP. */
typedef enum {
    OCISYNC_PLAIN_HTTP_LOOPBACK = 0, /* default: localhost and 127.0.0.0/8 and ::1 only */
    OCISYNC_PLAIN_HTTP_NEVER,
    OCISYNC_PLAIN_HTTP_ALWAYS,
} ocisync_plain_http;

/* Whether a registry's TLS certificate is verified. */
typedef enum {
    OCISYNC_TLS_VERIFY_DEFAULT = 0, /* verify (and use HTTPS even on loopback) only if set */
    OCISYNC_TLS_VERIFY_ON,
    OCISYNC_TLS_VERIFY_OFF,
} ocisync_tls_verify;

/*
 * How to reach and authenticate to one registry (one side of a copy).
 *
 * HTTPS is used unless plain_http says otherwise; plain_http's default
 * allows plain HTTP only for loopback registries that have no TLS settings
 * (no tls_verify, no cert_dir, no certs.d entry).
 *
 * Certificates: cert_dir (docker-style: every *.crt is a trusted CA; a
 * NAME.cert with NAME.key is a client certificate), plus the directory named
 * after the registry ("host:port") in each of $OCISYNC_CERTS_DIRS
 * (colon-separated; default /etc/containers/certs.d:/etc/docker/certs.d),
 * on top of the system CA store.
 *
 * Credentials, first match wins: creds ("user:password") or registry_token;
 * the environment ($OCISYNC_PULL_* for a source, $OCISYNC_PUSH_* for a
 * destination, then $OCISYNC_USERNAME / _PASSWORD / _TOKEN); the auth file
 * (ocisync_copy_opts.authfile, $REGISTRY_AUTH_FILE,
 * $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json).
 */
struct ocisync_registry_opts {
    ocisync_plain_http plain_http;
    ocisync_tls_verify tls_verify;
    const char *cert_dir;
    const char *creds;
    const char *registry_token;
    /* The most requests in flight to this registry (connections); 0: the run's default. */
    unsigned max_connections;
    /* This side's auth file, over ocisync_copy_opts.authfile (skopeo's --src-authfile). */
    const char *authfile;
    /* Non-zero: no credentials at all for this side, whatever the files say (--src-no-creds). */
    int no_creds;
};

typedef enum {
    OCISYNC_GZIP = 0,
    OCISYNC_ZSTD,
} ocisync_compression;

#define OCISYNC_MAX_ADDITIONAL_TAGS 64

typedef enum {
    OCISYNC_FORMAT_KEEP = 0,
    OCISYNC_FORMAT_OCI,  /* OCI image manifests and indexes */
    OCISYNC_FORMAT_V2S2, /* Docker schema 2 manifests and manifest lists */
} ocisync_manifest_format;

struct ocisync_copy_opts {
    /* Platforms to copy from an index, as "os/arch[/variant]"; none means all. */
    const char *const *platforms;
    size_t n_platforms;
    /* Blob transfers in flight at once; 0 means the default (8). */
    unsigned jobs;
    /* Connections per (scheme, host, port); 0 means the default (2 * jobs + 2). */
    unsigned max_conns_per_host;
    /*
     * Uploads of blobs larger than this are sent as a sequence of PATCH
     * requests of this size (raised to the registry's OCI-Chunk-Min-Length),
     * which lets an interrupted upload continue where the registry stopped;
     * smaller blobs go in one PUT. 0 means the default: every blob in one
     * streamed PUT, the fastest on registries that accept it (measured:
     * 16 MiB chunks cost 15-25% on a 1 GiB blob against distribution).
     */
    uint64_t chunk_size;
    struct ocisync_registry_opts src, dst;
    /* The auth file to read credentials from (see ocisync_registry_opts); NULL: the default. */
    const char *authfile;
    /*
     * Seconds; 0 means the defaults (connect 30, idle 120). A request that
     * makes no progress for idle_timeout fails its attempt; one that is not
     * a blob's body (manifests, HEADs, token fetches, listings) must also be
     * over within twice idle_timeout, however slowly its bytes arrive.
     */
    unsigned connect_timeout;
    unsigned idle_timeout;
    /*
     * A blob body (download or upload) moving slower than low_speed_limit
     * bytes a second, averaged over low_speed_time seconds, fails its
     * attempt, as curl's --speed-limit / --speed-time. Time spent waiting for
     * the other side of a relay does not count. low_speed_limit 0 means the
     * default (1024), a negative value turns the check off; low_speed_time 0
     * means idle_timeout.
     */
    int64_t low_speed_limit;
    unsigned low_speed_time;
    /*
     * Retries of a failed request or transfer (connection errors, timeouts,
     * 408, 429, 5xx) after the first attempt: 0 means the default (5), a
     * negative value none. The first backoff is retry_delay_ms (0: 500),
     * doubling with jitter up to 30 s; a server's Retry-After wins (up to 60 s).
     */
    int retry_times;
    unsigned retry_delay_ms;
    /*
     * When non-zero, SIGINT and SIGTERM during the copy stop it cleanly: no new
     * transfer starts, those in flight are abandoned (nothing half-written is
     * committed, no manifest is pushed without its blobs), and ocisync_copy
     * returns OCISYNC_EINTERRUPTED. A rerun completes only what is missing.
     */
    int handle_signals;
    /*
     * When non-zero, the referrers of each image copied (signatures, SBOMs,
     * attestations: manifests whose subject it is) are copied along, found
     * with the OCI 1.1 referrers API or the "sha256-<hex>" fallback tag.
     */
    int referrers;
    /* Receives one event per blob and manifest; may be NULL. */
    ocisync_event_cb on_event;
    void *event_arg;
    /* Writes request and state traces to stderr when non-zero. */
    int debug;
    /*
     * Non-zero: refuse, before anything is written, whatever would give
     * the destination other digests than the source's (a platform subset's
     * new index; a Docker-format image written to an oci: or oci-archive:
     * layout, which otherwise takes OCI media types and a new digest), as
     * skopeo's --preserve-digests, naming the image. Without it such a copy
     * goes ahead and its events say which digests changed.
     */
    int preserve_digests;
    /*
     * Non-zero: from an index, copy the index manifest alone and none of
     * the images it lists (skopeo's --multi-arch index-only). A registry
     * may refuse an index whose images it does not have (distribution
     * answers MANIFEST_BLOB_UNKNOWN), as it refuses skopeo's.
     */
    int index_only;
    /*
     * The manifests' format at the destination, as skopeo's -f/--format:
     * KEEP writes them as they are (Docker-format images written to an oci:
     * layout still take OCI media types); OCI and V2S2 convert what is in
     * the other format, config and layer bytes untouched (V2S2 refuses what
     * Docker schema 2 cannot hold: zstd layers, artifacts, annotations are
     * dropped). A conversion changes digests: EV_MANIFEST_CONVERTED reports
     * each, and preserve_digests refuses it.
     */
    ocisync_manifest_format format;
    /*
     * Non-zero: layers in another compression (or none) are recompressed
     * into compression while they are relayed, as skopeo's
     * --dest-compress-format: streamed through the thread pool in bounded
     * memory, the uncompressed tar checked against the config's diff_id
     * (which stays), manifests rewritten to name the new blobs (and
     * converted to OCI when a Docker manifest gets zstd layers). Layers
     * already in that compression are copied byte for byte; non-layer blobs
     * and foreign layers are never touched. EV_BLOB_RECOMPRESSED reports
     * each new blob. compression_level 0 is the default (gzip 6, zstd 3).
     */
    int recompress;
    ocisync_compression compression;
    int compression_level;
    /*
     * Names a docker-archive: destination lists in its RepoTags after its
     * own (skopeo's --additional-tag), each "REPO:TAG"; at most
     * OCISYNC_MAX_ADDITIONAL_TAGS are used. Other destinations have no
     * place for them and ignore them, as skopeo does.
     */
    const char *const *additional_tags;
    size_t n_additional_tags;
};

struct ocisync_copy_result {
    /* Digest of what the destination tag now points to. */
    char digest[144];
    /* The source's top-level digest (differs from digest when a subset of platforms was copied). */
    char source_digest[144];
    /*
     * A docker-archive: destination holds one image: digest is the manifest
     * written (not the index's) and platform its "os/arch[/variant]"; "" else.
     */
    char platform[96];
    uint64_t blobs_copied, blobs_mounted, blobs_skipped;
    uint64_t bytes_copied;
    uint64_t manifests_pushed;
    /* On failure: a message naming what went wrong (reference, registry, status, digest). */
    char error[1024];
};

/*
 * Copies the image src to dst, both "docker://REF" or a bare reference
 * (registry/repository[:tag][@digest]). Runs its own event loop and returns
 * when the copy is complete or has failed; result may be NULL.
 */
OCISYNC_EXTERN int ocisync_copy(const char *src, const char *dst,
                                const struct ocisync_copy_opts *opts,
                                struct ocisync_copy_result *result);

/* One image of a run of many; NULL or empty fields take the run's options. */
/* The kinds of place an image can be, as copy, sync and build take them. */
typedef enum {
    OCISYNC_LOC_REGISTRY = 1,   /* docker://REF, or a bare REF */
    OCISYNC_LOC_LAYOUT,         /* oci:DIR[:NAME] */
    OCISYNC_LOC_OCI_ARCHIVE,    /* oci-archive:FILE[:NAME] */
    OCISYNC_LOC_DOCKER_ARCHIVE, /* docker-archive:FILE[:REPO:TAG] */
    OCISYNC_LOC_DIR,            /* dir:DIRECTORY (skopeo's directory format) */
} ocisync_location_kind;

/*
 * What kind of place s names, parsed as copy parses its arguments, or 0 when
 * s names none (an unsupported transport, a malformed reference or spec).
 */
OCISYNC_EXTERN ocisync_location_kind ocisync_location_of(const char *s);

struct ocisync_copy_item {
    const char *src, *dst;
    const char *const *platforms;
    size_t n_platforms;
    const struct ocisync_registry_opts *src_opts, *dst_opts;
    /*
     * For an oci: source built on a base image: the base's repository
     * ("registry/repository"), where the blobs the layout does not hold are
     * read from (mounted instead when it is on the destination registry).
     */
    const char *base;
    /* Copy the blobs only: no manifest, index or tag is written (a build's base layers). */
    int blobs_only;
    /*
     * A referrer's copy: when set (a digest), every image manifest copied must
     * name it as its "subject" (the image itself, an index that names it, or
     * each manifest of a fallback index), or the copy fails before anything
     * is pushed: a source cannot pass off unrelated manifests as referrers.
     */
    const char *subject;
};

/*
 * Copies n images in one run: one event loop, one connection pool, opts->jobs
 * blob transfers in flight over all images, and each blob sent once to a
 * destination registry (other repositories there mount it). An image that
 * fails does not stop the others. results (n of them) receive each image's
 * outcome; returns 0 when every image was copied, else the first error.
 */
OCISYNC_EXTERN int ocisync_copy_many(const struct ocisync_copy_item *items, size_t n,
                                     const struct ocisync_copy_opts *opts,
                                     struct ocisync_copy_result *results);

/* ---------------------------------------------------------------------------------------------
 * Sync
 */

/*
 * One source of a sync: a repository and the tags to take from it, or with
 * catalog every repository under a prefix. Tag selection: the exact tags
 * (or digests) listed are always taken; with a regex, semver or latest
 * filter the repository's tags are listed and filtered too; with neither,
 * every tag is taken.
 */
struct ocisync_sync_source {
    /*
     * "registry/repository", or with a ":tag" / "@digest" exactly one image;
     * with catalog, "registry" or "registry/prefix".
     */
    const char *src;
    /*
     * A dir: source ("dir:PATH") is a tree of skopeo directory images: PATH
     * itself, or every directory below it that holds a manifest.json, each
     * to dst/<its directory's name> ("app:v1" names repository app, tag v1;
     * a name without a tag takes "latest"), as skopeo sync --src dir does.
     */
    /* The destination repository ("registry/repository"); with catalog, the prefix. */
    const char *dst;
    int catalog;
    const char *const *tags;
    size_t n_tags;
    /* A tag must match one include regex (if any) and no exclude regex: POSIX ERE, plus \d \w \s.
     */
    const char *const *include_regex;
    size_t n_include;
    const char *const *exclude_regex;
    size_t n_exclude;
    const char *semver; /* a range such as ">= 3.18, < 4" */
    unsigned latest;    /* keep the N highest versions */
    const char *const *platforms;
    size_t n_platforms;
    const struct ocisync_registry_opts *src_opts; /* NULL: opts->copy.src */
    const struct ocisync_registry_opts *dst_opts; /* NULL: opts->copy.dst */
};

struct ocisync_sync_opts {
    /* Transfers, destination options, retries, events (image = index in the result). */
    struct ocisync_copy_opts copy;
    /* With count > 0, only repositories whose name hashes to index (mod count) are synced. */
    unsigned shard_index, shard_count;
    /* Plan only: list and filter, fill the result's images, copy nothing. */
    int dry_run;
    /*
     * Appended to every destination tag (skopeo sync's --append-suffix):
     * "v1" lands as "v1<suffix>". Images copied by digest keep it. NULL: none.
     */
    const char *append_suffix;
};

struct ocisync_sync_image {
    char *src, *dst; /* owned: full references */
    /*
     * 0 when copied (or planned, in a dry run); OCISYNC_EINTERRUPTED when a
     * signal stopped it or it never started; otherwise OCISYNC_EPARTIAL.
     */
    int err;
    struct ocisync_copy_result res;
    int listing; /* non-zero: a repository whose tags could not be listed (src has no tag) */
};

struct ocisync_sync_result {
    struct ocisync_sync_image *images; /* owned: planned images first, then listing failures */
    size_t n_images;
    size_t n_planned; /* images[0 .. n_planned) were planned for copying */
    size_t n_failed;  /* images, and listings, that failed */
    char error[1024]; /* a run-wide failure (bad filter, ...) */
};

/*
 * Lists, filters and copies every image the sources name, in one run (see
 * ocisync_copy_many). A failed image or listing does not stop the others.
 * Returns 0 when everything succeeded, OCISYNC_EPARTIAL when some images
 * failed (the result says which), or another error for a run-wide failure.
 * Free the result with ocisync_sync_result_free.
 */
OCISYNC_EXTERN int ocisync_sync(const struct ocisync_sync_source *sources, size_t n,
                                const struct ocisync_sync_opts *opts,
                                struct ocisync_sync_result *result);
OCISYNC_EXTERN void ocisync_sync_result_free(struct ocisync_sync_result *result);

/* ---------------------------------------------------------------------------------------------
 * Build
 */

/* One platform of a build: its own directories become its last layer. */
struct ocisync_build_platform {
    const char *platform;        /* "linux/arm64" */
    const char *const *contents; /* "SRC" or "SRC:DEST" (DEST absolute in the image; default /) */
    size_t n_contents;
};

struct ocisync_build_opts {
    /* "scratch", or the base image ("alpine:3.20", "registry.example.com/base@sha256:..."). */
    const char *base;
    const struct ocisync_build_platform *platforms;
    size_t n_platforms;
    /*
     * Layers every platform gets, each "SRC" or "SRC:DEST", one layer each, in
     * order after the base's and before the platform's own: built once and
     * uploaded once for all platforms.
     */
    const char *const *layers;
    size_t n_layers;
    ocisync_compression compression;
    int level; /* 0: the default (gzip 6, zstd 3) */
    /*
     * Unless set, each new layer streams to every destination registry while
     * it is built. Set, a layer goes up only once built, and only where a
     * HEAD finds it missing: less data on a slow link when layers seldom
     * change, at the cost of waiting for the build.
     */
    int no_stream;
    /* Ownership of the new files: uid:gid 0:0 unless chown is set. */
    int chown;
    unsigned uid, gid;
    /* Config changes. */
    const char *const *env; /* "KEY=VALUE" */
    size_t n_env;
    const char *const *entrypoint;
    size_t n_entrypoint;
    int set_entrypoint;
    const char *const *cmd;
    size_t n_cmd;
    int set_cmd;
    const char *workdir, *user;
    const char *const *labels; /* "key=value" */
    size_t n_labels;
    const char *const *expose; /* "8080", "53/udp" */
    size_t n_expose;
    const char *const *annotations; /* "key=value", on the manifests and the index */
    size_t n_annotations;
    /*
     * A Dockerfile build (`ocisync build -f`): the Dockerfile's path; NULL for
     * a build from the fields above. With one, platforms give names only (no
     * directories; none means the host's), and base, layers, chown,
     * entrypoint, cmd, env, workdir, user and expose stay unset: the
     * Dockerfile says those. Labels and annotations add to what it says.
     */
    const char *dockerfile;
    const char *context; /* the build context directory; NULL: "." */
    /* "KEY=VALUE", or "KEY" to take the value from the environment (as docker's --build-arg). */
    const char *const *build_args;
    size_t n_build_args;
    const char *target; /* the stage to build; NULL: the last one */
    /*
     * Secrets a RUN --mount=type=secret may read, as buildx's --secret:
     * "id=ID,src=FILE" or "id=ID,env=VAR". Never in a layer, the cache key
     * or the history.
     */
    const char *const *secrets;
    size_t n_secrets;
    /*
     * The build cache: layers already built are found by their content and
     * not built again. cache_dir NULL: $XDG_CACHE_HOME/ocisync (else
     * ~/.cache/ocisync); no_cache set: neither read nor written.
     */
    const char *cache_dir;
    int no_cache;
    /*
     * The most bytes of layers the cache in cache_dir keeps (0: 10 GiB);
     * after a build the least recently used go first.
     */
    uint64_t cache_max;
    /*
     * The build cache in a registry repository, as buildx's type=registry
     * cache: "REF" or "type=registry,ref=REF". cache_from is read (layers
     * found there are mounted or relayed from it, not built); cache_to gets
     * this build's layers once the tags are pushed. Both may name the same
     * image. no_cache skips reading cache_from but still writes cache_to,
     * as buildx does.
     */
    const char *cache_from, *cache_to;
    /*
     * Where the image goes: registry references (docker://...), oci:DIR:NAME,
     * oci-archive:FILE:NAME or docker-archive:FILE[:REPO:TAG]; all of them
     * get the same index (a docker-archive its one platform's image).
     */
    const char *const *tags;
    size_t n_tags;
    /* Transfers: src is the base image's registry, dst the destinations'; events; jobs. */
    struct ocisync_copy_opts copy;
    /*
     * Optional, n_tags entries filled once the image is out: each tag's own
     * outcome. A docker-archive: output holds one platform's manifest, whose
     * digest and platform it gives; the others give the index's digest.
     */
    struct ocisync_copy_result *tag_results;
};

struct ocisync_build_result {
    char digest[144]; /* the index all tags point to */
    uint64_t layers_built;
    uint64_t layers_cached; /* of layers_built, found in the build cache */
    uint64_t bytes_built;   /* compressed bytes of the new layers */
    uint64_t tar_bytes;     /* uncompressed bytes of the new layers */
    uint64_t blobs_copied, blobs_mounted, blobs_skipped;
    uint64_t blobs_streamed; /* new layers uploaded while they were built (part of blobs_copied) */
    /* Why cache_from could not be used (the build went on without it), or "". */
    char cache_warning[512];
    char error[1024];
};

/*
 * Builds a multi-platform image: for each platform, the base's image for it
 * (or scratch), the shared layers, then the platform's own layer, with the
 * base's config changed as asked; then one index, pushed (or written) under
 * every tag. New layers are tar archives built reproducibly (sorted entries,
 * owner 0:0, mtimes clamped to $SOURCE_DATE_EPOCH when set), compressed on
 * the thread pool; the base's layers are never downloaded for a registry
 * destination: mounted when the base lives on the destination registry,
 * relayed blob by blob otherwise, while the new layers are being built.
 */
OCISYNC_EXTERN int ocisync_build(const struct ocisync_build_opts *opts,
                                 struct ocisync_build_result *result);

/*
 * For a program that builds Dockerfiles with RUN as a user other than root
 * (rootless, as podman does it): moves the calling process into a new user
 * namespace where it is root, its own ids mapped to 0 and its ranges in
 * /etc/subuid and /etc/subgid to 1..N, written by newuidmap and newgidmap
 * (Debian's uidmap). Call it first thing: the process must have only one
 * thread. Returns 0 when done, or when not needed (root already); else an
 * error with a sentence in err (no newuidmap, no range for the user). If
 * getuid() changed all the same, the process is in a namespace without
 * maps and should report the error and exit. Files the build then writes
 * belong to the caller on the host; those of RUN's directories in the
 * build cache to ids of its ranges (remove them with `podman unshare rm`).
 */
OCISYNC_EXTERN int ocisync_enter_user_namespace(char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * The registry toolbox: writes (tag, delete, index)
 *
 * Each runs one event loop with copy's transports, credentials, TLS, retries
 * and timeouts (an ocisync_copy_opts: dst for the registry written to, src
 * for the sources an index reads) and fills a result whose error says what
 * failed, naming the reference and the registry's own words.
 */

/* The most new tags one ocisync_tag takes. */
#define OCISYNC_TAG_MAX 64

struct ocisync_tag_result {
    char digest[144]; /* the image's (manifest or index) digest */
    /* Per tag given: 1 when it was written, 0 when it already pointed at digest. */
    int changed[OCISYNC_TAG_MAX];
    size_t n_changed;
    char error[1024];
};

/*
 * Points more tags at the image ref ("registry/repo:tag" or "@digest")
 * without moving a blob: the manifest is read once and PUT, byte for byte,
 * under each tag that does not already name it (a HEAD says). A tag is a
 * bare tag ("v1.2") or a reference in the same registry and repository.
 * Nothing is written unless ref and every tag are valid and ref exists.
 * Uses opts->dst for the registry (and opts' retries, timeouts, auth file).
 */
OCISYNC_EXTERN int ocisync_tag(const char *ref, const char *const *tags, size_t n_tags,
                               const struct ocisync_copy_opts *opts,
                               struct ocisync_tag_result *result);

struct ocisync_delete_result {
    char digest[144]; /* the manifest deleted */
    char error[1024];
};

/*
 * Deletes the manifest ref names: by its digest, a tag being resolved first
 * (HEAD). The registry then forgets the manifest under every tag that named
 * it. A registry that refuses deletes (distribution without
 * storage.delete.enabled answers 405 UNSUPPORTED) gives OCISYNC_EREGISTRY
 * and an error saying so. Uses opts->dst.
 */
OCISYNC_EXTERN int ocisync_delete(const char *ref, const struct ocisync_copy_opts *opts,
                                  struct ocisync_delete_result *result);

struct ocisync_index_opts {
    /*
     * Images to join: registry references, each a single-platform image
     * (its platform is read from its config: os, architecture, variant,
     * os.version, os.features) or an index (its children join, with their
     * platforms; "unknown/unknown" entries, such as attestations, are left
     * out). Any registry: the children are copied (blobs mounted or relayed,
     * as copy does) into each tag's repository first.
     */
    const char *const *sources;
    size_t n_sources;
    /* Where the index goes (registry references with a tag); at least one. */
    const char *const *tags;
    size_t n_tags;
    /* "key=value" annotations on the index. */
    const char *const *annotations;
    size_t n_annotations;
    /* Start from the index (or image) at tags[0], keeping its children and annotations. */
    int append;
    /* Two children with the same platform: the later wins (else OCISYNC_EUSAGE). */
    int replace;
    /* src: the sources' registries; dst: the tags'; transfers, retries, events. */
    struct ocisync_copy_opts copy;
};

struct ocisync_index_entry {
    char digest[144];
    char media_type[128];
    int64_t size;
    char platform[192]; /* "os/arch[/variant]", then " os.version" when there is one */
    char source[600];   /* where it came from: "registry/repository@digest" */
};

struct ocisync_index_result {
    char digest[144];                    /* the index every tag now names */
    struct ocisync_index_entry *entries; /* owned: the index's children, in order */
    size_t n_entries;
    uint64_t blobs_copied, blobs_mounted, blobs_skipped;
    size_t tags_changed; /* tags written (the others already named the index) */
    char error[1024];
};

/*
 * Makes one OCI image index of the sources' images and pushes it under
 * every tag: children first (by digest, into each tag's repository), the
 * index last, so no tag names an index whose children are missing. Free the
 * result with ocisync_index_result_free.
 */
OCISYNC_EXTERN int ocisync_index(const struct ocisync_index_opts *opts,
                                 struct ocisync_index_result *result);
OCISYNC_EXTERN void ocisync_index_result_free(struct ocisync_index_result *result);

/* ---------------------------------------------------------------------------------------------
 * Reading: inspect, tags, catalogs, digests, manifests, configs and blobs
 */

struct ocisync_read_opts {
    /*
     * How to reach the registry: copy.src (TLS, credentials, plain HTTP),
     * copy.authfile, the timeouts, retries, handle_signals and debug, as a
     * copy's source uses them; the other fields are ignored.
     */
    struct ocisync_copy_opts copy;
    /*
     * "os/arch[/variant]": for an index, the image to use. NULL: for
     * inspect and config the host's platform; for manifest and digest the
     * index itself.
     */
    const char *platform;
    /* inspect: leave RepoTags empty (no tag listing), as skopeo's --no-tags. */
    int no_tags;
};

struct ocisync_read_result {
    /* The digest of what was read: the manifest (or index), the config, the blob. */
    char digest[144];
    /* Its media type, when known ("" otherwise). */
    char media_type[256];
    /* What was read (owned, NUL-terminated after len bytes; NULL for digest and blob). */
    char *data;
    size_t len;
    /* blob: bytes passed to the writer. */
    uint64_t bytes;
    /* On failure: a message naming the reference, the registry and what went wrong. */
    char error[1024];
};

/* Releases r->data (safe to call twice). */
OCISYNC_EXTERN void ocisync_read_result_free(struct ocisync_read_result *r);

/*
 * Each of these reads from ref: "docker://REF" or a bare REF, or where it
 * makes sense a local image (oci:DIR[:NAME], oci-archive:FILE[:NAME],
 * docker-archive:FILE[:REPO:TAG]). Every digest is verified: a manifest
 * fetched by digest must hash to it, a config and a blob to theirs. Return
 * 0 or an error, with a sentence in result->error.
 */

/*
 * The digest ref resolves to: a HEAD request (the registry's
 * Docker-Content-Digest; a GET, hashed, when it sends none). With
 * opts->platform, the digest of that platform's manifest in the index
 * (OCISYNC_ENOPLATFORM if it has none; the index is fetched then).
 */
OCISYNC_EXTERN int ocisync_digest(const char *ref, const struct ocisync_read_opts *opts,
                                  struct ocisync_read_result *result);
/* The manifest (or index) bytes exactly as served; with opts->platform, that child's. */
OCISYNC_EXTERN int ocisync_manifest(const char *ref, const struct ocisync_read_opts *opts,
                                    struct ocisync_read_result *result);
/* The image's config blob, raw; for an index, the image for opts->platform (or the host's). */
OCISYNC_EXTERN int ocisync_config(const char *ref, const struct ocisync_read_opts *opts,
                                  struct ocisync_read_result *result);
/*
 * What `skopeo inspect` prints, as JSON text in result->data (indented 4
 * spaces, a newline at the end), with the same field names and shapes:
 * Name, Digest (of what ref names, an index's own), RepoTags, Created,
 * DockerVersion, Labels, Architecture, Os, Layers, Env; plus Variant (when
 * the config has one) and LayersData, as later skopeo versions print them,
 * and for an index Platforms: [{Os, Architecture, Variant, Digest,
 * MediaType, Size}] in the index's order. The image described is
 * opts->platform's (or the host's).
 */
OCISYNC_EXTERN int ocisync_inspect(const char *ref, const struct ocisync_read_opts *opts,
                                   struct ocisync_read_result *result);
/* The image's config as `skopeo inspect --config` prints it (OCI field set and order). */
OCISYNC_EXTERN int ocisync_inspect_config(const char *ref, const struct ocisync_read_opts *opts,
                                          struct ocisync_read_result *result);

/*
 * Receives a blob's bytes in order; return 0, or a negative error to stop.
 * It runs on the read's event loop: it may block (that slows the download
 * down, nothing else).
 */
typedef int (*ocisync_write_cb)(const void *data, size_t len, void *arg);

/*
 * Streams the blob "REPO@DIGEST" (docker:// optional) to write, hashing it
 * as it passes: at most 64 KiB are buffered. A download cut on the way
 * continues with Range. The bytes are passed on before the digest can be
 * checked, so when the content does not match, OCISYNC_EDIGESTMISMATCH (or
 * OCISYNC_ESIZEMISMATCH) comes after them: trust what was written only when
 * this returns 0.
 */
OCISYNC_EXTERN int ocisync_blob(const char *ref, const struct ocisync_read_opts *opts,
                                ocisync_write_cb write, void *arg,
                                struct ocisync_read_result *result);

struct ocisync_list_result {
    char **names; /* owned: tags or repositories, n of them */
    size_t n;
    /* The repository listed, "registry/repository" (tags). */
    char repository[512];
    char error[1024];
};
OCISYNC_EXTERN void ocisync_list_result_free(struct ocisync_list_result *r);

/* Tag selection for ocisync_list_tags, as sync's (see ocisync_sync_source). */
struct ocisync_tag_filter {
    const char *const *include_regex;
    size_t n_include;
    const char *const *exclude_regex;
    size_t n_exclude;
    const char *semver;
    unsigned latest;
};

/*
 * Every tag of repo ("registry/repository", docker:// optional), page after
 * page (Link headers), in the registry's order; with a filter (may be NULL)
 * the selected tags, ordered as sync orders them. Names that are not valid
 * tags are skipped. Caps: 1,000,000 names, 10,000 pages.
 */
OCISYNC_EXTERN int ocisync_list_tags(const char *repo, const struct ocisync_read_opts *opts,
                                     const struct ocisync_tag_filter *filter,
                                     struct ocisync_list_result *result);
/*
 * The repositories of registry (/v2/_catalog, paginated), only those under
 * prefix ("team" takes "team" and "team/...") when it is not NULL or "".
 */
OCISYNC_EXTERN int ocisync_catalog(const char *registry, const char *prefix,
                                   const struct ocisync_read_opts *opts,
                                   struct ocisync_list_result *result);

/* ---------------------------------------------------------------------------------------------
 * Credentials
 */

/*
 * Checks user/password against registry (a registry name such as
 * "ghcr.io" or "127.0.0.1:5000", as in image references) by asking its /v2/
 * endpoint with them (fetching a token where the registry wants one), then
 * stores them in the auth file (authfile, else the default: see
 * ocisync_registry_opts) with mode 0600. On failure err receives the reason;
 * the password never appears in it.
 */
OCISYNC_EXTERN int ocisync_login(const char *registry, const char *user, const char *password,
                                 const struct ocisync_registry_opts *reg_opts, const char *authfile,
                                 char *err, size_t errlen);
/* Removes registry's entry from the auth file. OCISYNC_ENOTFOUND if there was none. */
OCISYNC_EXTERN int ocisync_logout(const char *registry, const char *authfile, char *err,
                                  size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
