/* Docker archives (docker save / docker load): docker-archive:FILE[:REF]. */
#ifndef OCI_DOCKER_ARCHIVE_H
#define OCI_DOCKER_ARCHIVE_H

#include <stddef.h>

/*
 * From the docker archive file, unpacked in dir: adds the image ref names
 * ("repo:tag" from its RepoTags, "@N" for the N-th, or "" for the only one)
 * to the OCI layout layout_dir as name: its config and layer files as blobs
 * (layers keep their bytes: gzip, zstd or plain tar, as the archive has them)
 * and an OCI manifest for them.
 */
int oci_docker_archive_to_layout(const char *dir, const char *ref, const char *file,
                                 const char *layout_dir, const char *name, char *err,
                                 size_t errlen);
/*
 * Writes file as a docker archive of the image name in the layout: one image
 * (for an index: the host's platform, else linux/amd64), layers decompressed
 * and checked against the config's diff_ids, RepoTags [repotag] when given;
 * packed atomically (see oci_archive_pack).
 */
int oci_docker_archive_write(const char *layout_dir, const char *name, const char *repotag,
                             const char *file, char *err, size_t errlen);

#endif
