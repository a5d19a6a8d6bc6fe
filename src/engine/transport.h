/*
 * Where an image is, as the user wrote it, parsed once into a typed value:
 *   docker://REF or REF         a registry image
 *   oci:DIR[:NAME]              an OCI image layout
 *   oci-archive:FILE[:NAME]     an OCI layout in a tar file
 *   docker-archive:FILE[:REF]   a docker save archive (REF: REPO:TAG or @N)
 *   dir:DIR                     skopeo's directory format (see oci/dir.h)
 * Internal callers pass engine_transport values to each other, never these
 * strings (build hands copy its staging layout as a value).
 */
#ifndef ENGINE_TRANSPORT_H
#define ENGINE_TRANSPORT_H

#include "oci/ref.h"
#include "ocisync.h"

#include <stddef.h>

#define ENGINE_TRANSPORT_PATH_MAX 4096
#define ENGINE_TRANSPORT_NAME_MAX 512

enum engine_transport_kind {
    ENGINE_TRANSPORT_REGISTRY = OCISYNC_LOC_REGISTRY,
    ENGINE_TRANSPORT_LAYOUT = OCISYNC_LOC_LAYOUT,
    ENGINE_TRANSPORT_OCI_ARCHIVE = OCISYNC_LOC_OCI_ARCHIVE,
    ENGINE_TRANSPORT_DOCKER_ARCHIVE = OCISYNC_LOC_DOCKER_ARCHIVE,
    ENGINE_TRANSPORT_DIR = OCISYNC_LOC_DIR,
};

struct engine_transport {
    enum engine_transport_kind kind;
    struct oci_ref ref;                   /* REGISTRY */
    char path[ENGINE_TRANSPORT_PATH_MAX]; /* LAYOUT, DIR: the directory; archives: the file */
    /*
     * LAYOUT and OCI_ARCHIVE: the image's name in the layout; DOCKER_ARCHIVE:
     * REPO:TAG or @N; "" when none was given.
     */
    char name[ENGINE_TRANSPORT_NAME_MAX];
};

/*
 * Parses s. Returns 0, or OCISYNC_EUSAGE (an unknown or unsupported
 * transport, a malformed layout or archive spec) or OCISYNC_EREF /
 * OCISYNC_EDIGEST (a malformed registry reference) with a sentence naming s
 * in err.
 */
int engine_transport_parse(const char *s, struct engine_transport *out, char *err, size_t errlen);
/* A layout transport for dir and name (the caller's own, as build's staging layout). */
void engine_transport_layout(struct engine_transport *t, const char *dir, const char *name);
/* t as a user would write it ("oci:DIR:NAME", "registry/repo:tag"); returns snprintf's result. */
int engine_transport_format(const struct engine_transport *t, char *buf, size_t len);

#endif
