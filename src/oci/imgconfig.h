/*
 * The documents of a built image: its config (the base's, with the build's
 * changes and new layers applied), its manifest (the base's layers verbatim,
 * then the new ones), the index over several platforms, and the annotations
 * and timestamps they carry.
 *
 * Everything here writes JSON that container engines will run, so what the
 * caller gives is validated (with a message naming the offending entry) and
 * what comes from the base image is kept as it is wherever possible.
 */
#ifndef OCI_IMGCONFIG_H
#define OCI_IMGCONFIG_H

#include "oci/digest.h"
#include "oci/manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Image configs are capped at 8 MiB, read or written (history and labels can be large). */
#define OCI_CONFIG_MAX_SIZE (8 * 1024 * 1024)
/* How many entries one list of oci_build_changes (env, labels, ports, arguments) may hold. */
#define OCI_BUILD_MAX_LIST 4096
/* How many annotations one manifest or index may carry. */
#define OCI_BUILD_MAX_ANNOTATIONS 1024

/* The annotations a builder computes, which a user may not give. */
#define OCI_ANN_BASE_NAME "org.opencontainers.image.base.name"
#define OCI_ANN_BASE_DIGEST "org.opencontainers.image.base.digest"
#define OCI_ANN_CREATED "org.opencontainers.image.created"

/* Layer media types, OCI and Docker. */
#define OCI_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define OCI_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_MT_DOCKER_LAYER_ZSTD "application/vnd.docker.image.rootfs.diff.tar.zstd"
#define OCI_MT_DOCKER_LAYER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

/* A HEALTHCHECK as docker writes it; zero durations are left out, as docker does. */
struct oci_healthcheck {
    /* {"NONE"}, {"CMD", program, args...} or {"CMD-SHELL", command}. */
    const char *const *test;
    size_t n_test;
    int64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns;
    int retries;
};

/* One history entry a build appends. */
struct oci_build_history {
    const char *created_by; /* NULL for none */
    bool empty_layer;       /* the step changed only the config */
};

/* What a build changes in the base image's config. Every pointer may be NULL when its count is 0.
 */
struct oci_build_changes {
    /* "KEY=VALUE": replaces every entry for KEY if present, else appended. Later ones win. */
    const char *const *env;
    size_t n_env;
    /*
     * Set when set_entrypoint; n_entrypoint 0 clears it. As with a
     * Dockerfile's ENTRYPOINT, setting it without set_cmd also clears the
     * base's Cmd, which was written for the base's entrypoint (alpine's
     * ["/bin/sh"] would otherwise become the new program's argument).
     */
    const char *const *entrypoint;
    size_t n_entrypoint;
    bool set_entrypoint;
    /* Set when set_cmd; n_cmd 0 clears it. */
    const char *const *cmd;
    size_t n_cmd;
    bool set_cmd;
    /* Absolute path; NULL keeps the base's. */
    const char *workdir;
    /* "name", "uid", "uid:gid"...; "" resets to the default (root); NULL keeps the base's. */
    const char *user;
    /* "k=v", merged into the base's labels (replacing the same key). */
    const char *const *labels;
    size_t n_labels;
    /* "8080", "8080/tcp", "53/udp", "9/sctp" -> ExposedPorts {"8080/tcp":{}}, added to the base's.
     */
    const char *const *expose;
    size_t n_expose;
    /* Seconds since the epoch (SOURCE_DATE_EPOCH or now), 0 to 253402300799 (year 9999). */
    int64_t created;
    /* The image's author; NULL: none (the base's author is not the new image's). */
    const char *author;
    /* Absolute paths added to config.Volumes. */
    const char *const *volumes;
    size_t n_volumes;
    /* config.StopSignal ("SIGTERM", "9"); NULL keeps the base's. */
    const char *stop_signal;
    /* config.Shell, when set_shell (a Dockerfile's SHELL; at least one argument). */
    const char *const *shell;
    size_t n_shell;
    bool set_shell;
    /* config.Healthcheck, when set (a Dockerfile's HEALTHCHECK; NONE disables the base's). */
    const struct oci_healthcheck *healthcheck;
    /*
     * When n_history > 0, the history entries the build appends, in order,
     * instead of one per new layer: those without empty_layer stand for the
     * new layers in order, and there must be exactly as many as layers.
     */
    const struct oci_build_history *history;
    size_t n_history;
};

/* One layer the build adds. */
struct oci_build_layer {
    struct oci_digest diff_id; /* digest of the uncompressed tar */
    struct oci_digest digest;  /* digest of the blob as stored */
    uint64_t size;             /* of the blob as stored */
    /* One of the OCI_MT_*_LAYER* types of either family; written in the manifest's family. */
    const char *media_type;
    /* History text, e.g. "ocisync: ./dist/amd64 -> /app"; NULL for none. */
    const char *created_by;
};

/*
 * Makes the new image config from the base config (JSON bytes; NULL and 0
 * for scratch) for platform, into *out (malloc'ed, NUL-terminated, caller
 * frees) and *out_len.
 *
 * Keeps every field of the base (config.Env, Entrypoint, Cmd, WorkingDir,
 * User, Labels, ExposedPorts, Volumes, StopSignal..., history, rootfs, and
 * anything unknown), applies ch, appends the new layers' diff_ids to
 * rootfs.diff_ids and one history entry per new layer (created, created_by,
 * author, "comment":"ocisync"), sets created and architecture / os / variant
 * from platform. The base's platform must agree with platform (arm64 with no
 * variant agrees with v8; a variant the base has and platform lacks is kept).
 * A base whose history lists fewer layers than it has gets placeholder
 * entries first, and one listing more has its oldest extra ones marked
 * empty_layer, as BuildKit does, so that history and layers line up. The
 * output is compact JSON with sorted keys: the same inputs give the same
 * bytes.
 *
 * Errors, each with a sentence in err: OCISYNC_EUSAGE for an invalid change
 * (env or label without '=' or with an empty or control-character key, a
 * port that is not 1-65535 or a protocol other than tcp/udp/sctp, a relative
 * workdir, control characters in user or author, text that is not UTF-8, a
 * layer without a known media type or with a bad digest, a scratch image
 * without layers, base_layers given for scratch); OCISYNC_EMANIFEST for a
 * base config that is not valid JSON, not an object, has no rootfs of type
 * "layers", has a diff_ids count other than base_layers, fields of the wrong
 * type, or another platform; OCISYNC_ETOOBIG over OCI_CONFIG_MAX_SIZE,
 * OCI_BUILD_MAX_LIST or OCI_MANIFEST_MAX_LAYERS; UV_ENOMEM.
 */
int oci_build_config(const char *base, size_t base_len, size_t base_layers,
                     const struct oci_platform *platform, const struct oci_build_changes *ch,
                     const struct oci_build_layer *layers, size_t n_layers, char **out,
                     size_t *out_len, char *err, size_t errlen);

/* An annotation; both strings are borrowed. */
struct oci_annotation {
    const char *key, *value;
};

/*
 * Makes the image manifest into *out (malloc'ed, NUL-terminated) and
 * *out_len: an OCI image manifest, or a Docker schema 2 manifest when docker
 * is set. It lists the config (config_digest, config_size), the base
 * manifest's layers (base_manifest, base_len; NULL and 0 for scratch) copied
 * from its JSON so that annotations and urls survive, then the new layers.
 *
 * Every layer is written with its media type in the manifest's family: an
 * OCI manifest over a Docker base gets the OCI names for the same blobs
 * (gzip stays gzip), as `skopeo copy --format oci` does. A Docker manifest
 * cannot name zstd layers, nor any type it has no name for: that is
 * OCISYNC_EUSAGE with a message suggesting --format oci, since converting
 * the blobs is not this function's business.
 *
 * ann (n_ann entries) are written as the manifest's annotations, in order.
 * The caller builds the list: the user's (from oci_annotation_parse), then
 * computed ones such as OCI_ANN_BASE_NAME / OCI_ANN_BASE_DIGEST when there is
 * a base, and OCI_ANN_CREATED. A key given twice is refused (so a computed
 * one cannot be overridden), as are an empty key, control characters,
 * invalid UTF-8, a base annotation on a scratch image or a base digest that
 * is not a digest. Docker manifests have no annotations: any annotation with
 * docker set is OCISYNC_EUSAGE, as BuildKit refuses them without OCI media
 * types (so for a Docker manifest the caller leaves the computed ones out).
 *
 * Errors, each with a sentence in err: OCISYNC_EUSAGE as above and for an
 * invalid config digest or new layer; what oci_manifest_parse returns for a
 * base manifest it refuses (the message starts "base manifest: "), and
 * OCISYNC_EMANIFEST for a base that is an index; OCISYNC_ETOOBIG over
 * OCI_MANIFEST_MAX_LAYERS layers or OCI_MANIFEST_MAX_SIZE bytes; UV_ENOMEM.
 */
int oci_build_manifest(const char *base_manifest, size_t base_len,
                       const struct oci_digest *config_digest, size_t config_size, bool docker,
                       const struct oci_build_layer *layers, size_t n_layers,
                       const struct oci_annotation *ann, size_t n_ann, char **out, size_t *out_len,
                       char *err, size_t errlen);

/* One platform's manifest, for oci_build_index. */
struct oci_index_entry {
    struct oci_digest digest;
    size_t size;
    /* NULL: the image manifest type of the index's family. */
    const char *media_type;
    /* os and arch required; variant and os_version written when not empty. */
    struct oci_platform platform;
};

/*
 * Makes the index (or, when docker is set, the Docker manifest list) listing
 * m[0..n) in order with their platforms, plus annotations (the same rules as
 * oci_build_manifest: none for Docker) into *out (malloc'ed). Refused with
 * OCISYNC_EUSAGE: no entries, two entries for the same platform, an entry
 * whose media type is not an image manifest of the index's family, an
 * invalid digest or platform. OCISYNC_ETOOBIG over OCI_INDEX_MAX_MANIFESTS.
 */
int oci_build_index(const struct oci_index_entry *m, size_t n, bool docker,
                    const struct oci_annotation *ann, size_t n_ann, char **out, size_t *out_len,
                    char *err, size_t errlen);

/*
 * Validates a user's annotation "k=v" and splits it at the first '=': the key
 * is copied into keybuf (keylen bytes) and out->key points to it; out->value
 * points into kv. Returns OCISYNC_EUSAGE, with a message, for no '=', an
 * empty key, a key with whitespace or control characters, invalid UTF-8, a
 * key longer than keylen - 1, or a key the builder computes (base name and
 * base digest).
 */
int oci_annotation_parse(const char *kv, struct oci_annotation *out, char *keybuf, size_t keylen,
                         char *err, size_t errlen);

/* True for the annotation keys oci_annotation_parse refuses because the builder sets them. */
bool oci_annotation_is_computed(const char *key);

/*
 * Writes t (seconds since the epoch) as RFC 3339 UTC, "2024-01-02T03:04:05Z",
 * independent of the time zone and locale. Times outside years 0000 to 9999
 * are clamped to them. buf needs 21 bytes; a shorter one gets a truncated,
 * NUL-terminated string.
 */
void oci_time_rfc3339(int64_t t, char *buf, size_t len);

#endif
