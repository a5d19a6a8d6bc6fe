/*
 * Manifests, indexes and image configs, parsed with jansson; platforms and
 * platform matching.
 */
#ifndef OCI_MANIFEST_H
#define OCI_MANIFEST_H

#include "oci/digest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OCI_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define OCI_MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define OCI_MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* Manifests are capped at 4 MiB, as distribution's maxManifestBodySize. */
#define OCI_MANIFEST_MAX_SIZE (4 * 1024 * 1024)
/* Caps on what one document may list. */
#define OCI_MANIFEST_MAX_LAYERS 1024
#define OCI_INDEX_MAX_MANIFESTS 1024
/*
 * Values (JSON nodes) one document may hold: 1024 descriptors of 64 values
 * each (digest, size, platform, a few dozen annotations). Checked before
 * parsing, it bounds what parsing may cost at a few tens of megabytes.
 */
#define OCI_MANIFEST_MAX_VALUES (1024 * 64)
#define OCI_MEDIA_TYPE_MAX 256

struct oci_platform {
    char os[32];
    char arch[32];
    char variant[32]; /* "" when none */
    char os_version[128];
};

struct oci_descriptor {
    char media_type[OCI_MEDIA_TYPE_MAX];
    struct oci_digest digest;
    int64_t size;
    bool has_platform;
    struct oci_platform platform;
};

enum oci_manifest_kind {
    OCI_KIND_IMAGE = 1, /* OCI image manifest or Docker schema 2 manifest */
    OCI_KIND_INDEX,     /* OCI index or Docker manifest list */
};

struct oci_manifest {
    enum oci_manifest_kind kind;
    /* The document's media type: the "mediaType" field, else the Content-Type given. */
    char media_type[OCI_MEDIA_TYPE_MAX];
    /* Image: the config blob. */
    struct oci_descriptor config;
    /* Image: layers (owned array). */
    struct oci_descriptor *layers;
    size_t n_layers;
    /* Index: the child manifests (owned array). */
    struct oci_descriptor *manifests;
    size_t n_manifests;
    /* Image or index: an OCI 1.1 "subject", if any. */
    bool has_subject;
    struct oci_descriptor subject;
};

/*
 * Parses a manifest or index. content_type is the HTTP Content-Type (or NULL
 * when unknown, as for a file); parameters after ';' are ignored. Rejected
 * with OCISYNC_EMANIFEST: invalid JSON, a document over OCI_MANIFEST_MAX_SIZE,
 * one that has both "manifests" and "layers"/"config", a "mediaType" that
 * contradicts content_type, a descriptor with a bad digest, negative size or
 * missing mediaType, more than the caps allow. Docker schema 1 and unknown
 * types are OCISYNC_EMEDIATYPE. If err is non-NULL it receives a sentence
 * naming the problem.
 */
int oci_manifest_parse(const char *content_type, const void *data, size_t len,
                       struct oci_manifest *out, char *err, size_t errlen);
void oci_manifest_free(struct oci_manifest *m);

/* True for the two index media types. */
bool oci_media_type_is_index(const char *mt);
/* True for the two image manifest media types. */
bool oci_media_type_is_manifest(const char *mt);

/*
 * Why s is not "os/arch[/variant]" (a phrase such as "is not
 * os/arch[/variant]: a part is empty"), or NULL when it is: two or three
 * non-empty parts of letters, digits, '.', '_' and '-', 31 at most each.
 */
const char *oci_platform_problem(const char *s);
/*
 * Parses "os/arch[/variant]" (e.g. "linux/arm64/v8"). Returns 0 or
 * OCISYNC_EPLATFORM. Normalises as containerd does: "aarch64" -> "arm64",
 * "x86_64"/"x86-64" -> "amd64", "armhf" -> arm/v7, "armel" -> arm/v6.
 */
int oci_platform_parse(const char *s, struct oci_platform *out);
/* The platform of the machine ocisync runs on (linux/amd64, linux/arm64, ...). */
const struct oci_platform *oci_platform_host(void);
/* "os/arch[/variant]" into buf; returns snprintf's result. */
int oci_platform_format(const struct oci_platform *p, char *buf, size_t len);
/*
 * True if have satisfies want: same os and arch; if want names a variant,
 * have's variant must equal it, except that arm64 with no variant matches
 * "v8" and vice versa.
 */
bool oci_platform_match(const struct oci_platform *want, const struct oci_platform *have);

/*
 * Writes a new index that keeps only the entries of the index document
 * (data, len) whose platform matches one of want[0..n_want). Every other
 * field and the order of entries are preserved. *out is malloc'ed (caller
 * frees). Returns OCISYNC_ENOPLATFORM if no entry matches.
 */
int oci_index_filter(const void *data, size_t len, const struct oci_platform *want, size_t n_want,
                     char **out, size_t *out_len);

/* True for a Docker schema 2 manifest or manifest list. */
bool oci_media_type_is_docker(const char *mt);

/* A child manifest an index names by from, rewritten as to (size bytes). */
struct oci_converted {
    struct oci_digest from, to;
    int64_t size;
};

/*
 * The manifest or index (data, len) with OCI media types, as skopeo writes a
 * Docker image into a layout: the document's mediaType, the config's
 * (application/vnd.oci.image.config.v1+json; the config bytes are not
 * touched) and the layers' (gzip, plain and zstd tars; foreign layers become
 * nondistributable ones); an index's entries also take the digest and size
 * children[] gives the child they name. Every other field is kept. *out is
 * malloc'ed (caller frees), compact JSON. OCISYNC_EMANIFEST for a document
 * oci_manifest_parse refuses.
 */
int oci_manifest_to_oci(const void *data, size_t len, const struct oci_converted *children,
                        size_t n_children, char **out, size_t *out_len);

/* A descriptor renamed: digest from becomes to, of size bytes (and media_type, unless ""). */
struct oci_relink {
    struct oci_digest from, to;
    int64_t size;
    char media_type[OCI_MEDIA_TYPE_MAX];
};

/*
 * The manifest or index (data, len) with every descriptor (config, layers,
 * an index's entries) whose digest is a map[].from renamed as that entry
 * says; every other field and the order of fields are kept. *out is
 * malloc'ed (caller frees), compact JSON. OCISYNC_EMANIFEST for a document
 * oci_manifest_parse refuses.
 */
int oci_manifest_relink(const void *data, size_t len, const struct oci_relink *map, size_t n,
                        char **out, size_t *out_len);

/*
 * The manifest or index (data, len) as Docker schema 2, written as
 * containers/image writes it for skopeo's -f v2s2 (so the digest is skopeo's):
 * a fresh document in schema 2's field order holding the config and layer
 * descriptors (config bytes untouched) or, for an index, a manifest list
 * whose entries take the digest and size children[] gives and keep their
 * platform. Annotations have no place in schema 2 and are dropped.
 * OCISYNC_EMEDIATYPE (with a sentence in err) for what schema 2 cannot hold:
 * zstd or other non-Docker layers, a config that is not an image config, an
 * artifactType or subject, an index entry that is not an image manifest;
 * OCISYNC_EMANIFEST for a document oci_manifest_parse refuses. With
 * zstd_to_gzip (a caller that recompresses zstd layers into gzip and names
 * them afterwards, oci_manifest_relink), a zstd layer is let through as
 * application/vnd.docker.image.rootfs.diff.tar.zstd until then.
 */
int oci_manifest_to_docker(const void *data, size_t len, const struct oci_converted *children,
                           size_t n_children, bool zstd_to_gzip, char **out, size_t *out_len,
                           char *err, size_t errlen);

#endif
