/*
 * The read commands' shared parts (inspect, digest, manifest, config, blob,
 * tag lists and catalogs): where an image is read from, a registry over one
 * session or a local layout (archives unpacked into a temp layout first),
 * and the pure transformations of what was read into skopeo's shapes, which
 * the unit tests call without a network.
 */
#ifndef ENGINE_READ_H
#define ENGINE_READ_H

#include "engine/endpoint.h"
#include "engine/transport.h"
#include "oci/layout.h"
#include "oci/manifest.h"
#include "ocisync.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest config a read accepts: as a manifest. */
#define ENGINE_READ_CONFIG_MAX OCI_MANIFEST_MAX_SIZE
/* JSON values a config may hold (its history and env are the long parts). */
#define ENGINE_READ_CONFIG_MAX_VALUES (64 * 1024)
/* Names one listing may return over all its pages, and pages it may take. */
#define ENGINE_LIST_MAX_NAMES 1000000
#define ENGINE_LIST_MAX_PAGES 10000
/* JSON values one listing page may hold (ten times the largest page asked for). */
#define ENGINE_LIST_PAGE_MAX_VALUES 100016

/* Where a read happens: a registry (over a session of its own) or a layout. */
struct engine_read_src {
    struct engine_transport t;
    struct engine_session s;
    bool session;
    struct proto_registry *reg; /* owned */
    struct oci_layout layout;
    bool layout_open;
    char tmpdir[ENGINE_TRANSPORT_PATH_MAX]; /* an unpacked archive's, removed on close; "" */
    char shown[600];                        /* the reference for messages */
    bool stop_entered;
};

/* A manifest or index read, its digest verified. */
struct engine_read_doc {
    char *data; /* owned, NUL-terminated */
    size_t len;
    char media_type[OCI_MEDIA_TYPE_MAX];
    struct oci_digest digest;
    struct oci_manifest m; /* parsed */
    bool parsed;
};

/*
 * Opens s (a transport string) for reading; local transports only when
 * local is set. On error err names s and the reason.
 */
int engine_read_open(struct engine_read_src *r, const char *s, const struct ocisync_read_opts *o,
                     bool local, char *err, size_t errlen);
void engine_read_close(struct engine_read_src *r);
/* The document r names (its tag, digest or layout name). */
int engine_read_top(struct engine_read_src *r, struct engine_read_doc *d, char *err, size_t errlen);
/* The child manifest desc of an index, by digest, verified. */
int engine_read_child(struct engine_read_src *r, const struct oci_descriptor *desc,
                      struct engine_read_doc *d, char *err, size_t errlen);
void engine_read_doc_free(struct engine_read_doc *d);

/*
 * The entry of index whose platform matches platform ("os/arch[/variant]",
 * or the host's when NULL). OCISYNC_EPLATFORM for a malformed platform,
 * OCISYNC_ENOPLATFORM (err lists what the index has) when none matches.
 */
int engine_read_pick(const struct oci_manifest *index, const char *platform,
                     const struct oci_descriptor **out, char *err, size_t errlen);

/*
 * skopeo inspect's document from what was read: name ("" for none), the
 * top document's digest, tags (NULL with no_tags gives []), the image
 * manifest's bytes and its config's; index (may be NULL) adds Platforms.
 * *out is malloc'ed JSON text ending in a newline.
 */
int engine_inspect_json(const char *name, const char *digest, const char *const *tags,
                        size_t n_tags, const char *manifest, size_t manifest_len,
                        const char *config, size_t config_len, const struct oci_manifest *index,
                        char **out, size_t *out_len, char *err, size_t errlen);
/* skopeo inspect --config's document: the config in the OCI field set and order. */
int engine_inspect_config_json(const char *config, size_t len, char **out, size_t *out_len,
                               char *err, size_t errlen);

/*
 * Appends the names of one listing page ({"tags": [...]} when tags, else
 * {"repositories": [...]}) to *names (*n of *cap, grown). Names that break
 * the tag or repository grammar are skipped and counted in *invalid (the
 * first quoted into first_invalid). At most ENGINE_LIST_MAX_NAMES in all.
 */
int engine_list_take_page(const char *body, size_t len, bool tags, char ***names, size_t *n,
                          size_t *cap, size_t *invalid, char *first_invalid, size_t fi_len,
                          char *err, size_t errlen);

/*
 * Lists the tags of repo (or the catalog when repo is NULL) on s's loop,
 * every page; *names (n of them) is malloc'ed, each name too.
 */
int engine__list(struct engine_session *s, struct proto_registry *reg, const char *repo,
                 char ***names, size_t *n, char *err, size_t errlen);

#endif
