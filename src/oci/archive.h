/* OCI archives: an OCI image layout packed in a tar file (oci-archive:FILE). */
#ifndef OCI_ARCHIVE_H
#define OCI_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

/* Creates a private temp directory ($TMPDIR, else /tmp) and writes its path to out. */
int oci_archive_tempdir(char *out, size_t len, char *err, size_t errlen);
/*
 * Whether a path named by an archive (an entry, a manifest.json reference)
 * stays inside the directory it is unpacked into: relative, not empty, and
 * without a ".." component. NULL is not.
 */
bool oci_archive_path_inside(const char *p);
/* Removes dir and everything in it (a temp directory of ours). */
void oci_archive_remove_dir(const char *dir);
/*
 * Unpacks the tar file into dir: regular files and directories only (with
 * links, symbolic links are skipped instead of refused), every path
 * relative and without "..", no file twice. Errors name the archive and the
 * entry; OCISYNC_ENOTFOUND when file does not exist.
 */
int oci_archive_unpack(const char *file, const char *dir, bool links, char *err, size_t errlen);
/*
 * Packs dir (a layout) into the tar file: written to FILE.tmp-*, synced and
 * renamed over file, so file is either the old one or the complete new one.
 * Entries are sorted, owned by 0:0, mtimes clamped to $SOURCE_DATE_EPOCH.
 */
int oci_archive_pack(const char *dir, const char *file, char *err, size_t errlen);

#endif
