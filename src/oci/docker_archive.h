/* Docker archives (docker save / docker load): docker-archive:FILE[:REF]. */
#ifndef OCI_DOCKER_ARCHIVE_H
#define OCI_DOCKER_ARCHIVE_H

#include "oci/manifest.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The decompression cap for docker archive layers, read or written. Real
 * layers compress 2-10x and sparse files (zeroed disk images, databases) much
 * more, so neither a size nor a ratio alone is a safe limit; but a layer that
 * grows past both OCI_LAYER_UNPACK_MIN bytes and OCI_LAYER_UNPACK_RATIO times
 * its compressed size is a decompression bomb (2 MB of gzip hold 2 GiB of
 * zeros), refused with OCISYNC_ETOOBIG before it fills the disk.
 */
#define OCI_LAYER_UNPACK_MIN ((uint64_t)256 * 1024 * 1024)
#define OCI_LAYER_UNPACK_RATIO 100

/*
 * From the docker archive file, unpacked in dir: adds the image ref names
 * ("repo:tag" from its RepoTags, "@N" for the N-th, or "" for the only one)
 * to the OCI layout layout_dir as name: its config and layer files as blobs
 * (layers keep their bytes: gzip, zstd or plain tar, as the archive has them)
 * and an OCI manifest for them. Each layer is decompressed on the way (within
 * the cap above) and must hash to its config's rootfs.diff_ids entry, one
 * diff_id per layer: else OCISYNC_EDIGESTMISMATCH naming the layer file and
 * both digests.
 */
int oci_docker_archive_to_layout(const char *dir, const char *ref, const char *file,
                                 const char *layout_dir, const char *name, char *err,
                                 size_t errlen);
/*
 * Writes file as a docker archive of the image name in the layout: one image,
 * layers decompressed and checked against the config's diff_ids (within the
 * cap above), RepoTags the n_repotags names of repotags (empty ones left
 * out; skopeo's docker-archive:FILE:REPO:TAG, then --additional-tag);
 * packed atomically (see
 * oci_archive_pack), so a failed write leaves neither file nor its temp files.
 * For an index the image is the entry for want ("os/arch[/variant]") when
 * given, else the only entry with a platform (attestations, "unknown/unknown",
 * aside), else the host's platform, else linux/amd64. written (may be NULL)
 * receives the descriptor of the manifest written, with its platform when the
 * index gave one.
 */
int oci_docker_archive_write(const char *layout_dir, const char *name, const char *const *repotags,
                             size_t n_repotags, const char *want, const char *file,
                             struct oci_descriptor *written, char *err, size_t errlen);

#endif
