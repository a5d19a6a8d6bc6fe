/*
 * skopeo's directory format (dir:PATH), as containers/image writes it:
 *   version               "Directory Transport Version: 1.1\n"
 *   manifest.json         the top-level manifest or index, byte for byte
 *   <hex>.manifest.json   an index's child manifests, by their digests' hex
 *   <hex>                 each config and layer, by its digest's hex
 * Manifests keep their media types (Docker ones too), so digests stay.
 */
#ifndef OCI_DIR_H
#define OCI_DIR_H

#include <stddef.h>

#define OCI_DIR_VERSION "Directory Transport Version: 1.1\n"

/*
 * Adds the image in the directory dir to the OCI layout layout_dir (created
 * if missing) under name: its manifests as blobs, its configs and layers
 * hard-linked (copied across file systems). Digests are checked for the
 * manifests here and for the other blobs when the layout is read. Errors
 * name dir and the file at fault: UV_ENOENT (no manifest.json, a missing
 * blob), OCISYNC_EMANIFEST (an unknown version file, a manifest that does not
 * parse or hash to the digest its index gives), other UV_E* codes.
 */
int oci_dir_to_layout(const char *dir, const char *layout_dir, const char *name, char *err,
                      size_t errlen);
/*
 * Writes the image name of the layout layout_dir as the directory dir: built
 * as a temp directory beside it (DIR.tmp-XXXXXX), blobs hard-linked from the
 * layout (copied across file systems), then renamed over dir, so dir is the
 * old one or the complete new one. An existing dir must be empty or hold a
 * version file (an earlier image, replaced): anything else is refused with
 * OCISYNC_EUSAGE, as skopeo refuses it.
 */
int oci_dir_write(const char *layout_dir, const char *name, const char *dir, char *err,
                  size_t errlen);

/*
 * Whether oci_dir_write may write dir, asked before anything is copied:
 * 0 when it is missing, an empty directory or an image directory,
 * OCISYNC_EUSAGE (err says why) otherwise. Nothing is changed.
 */
int oci_dir_check_dest(const char *dir, char *err, size_t errlen);

#endif
