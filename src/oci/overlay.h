/*
 * Layers as overlayfs directories, for running a Dockerfile's RUN: each
 * layer below is extracted once into a directory in "overlay form" (its
 * whiteouts turned into the whiteouts overlayfs reads), the directories are
 * stacked as lower dirs, the RUN writes into a fresh upper dir, and the
 * upper dir is then captured as a new layer. Where overlayfs cannot be
 * mounted, a snapshot of the tree taken before the RUN and compared after
 * it gives the same kind of layer.
 *
 * Overlay form, as Documentation/filesystems/overlayfs.rst describes it:
 * - A whiteout of NAME (a ".wh.NAME" entry) is a character device 0/0
 *   named NAME. Creating one needs no CAP_MKNOD since Linux 5.8 ("vfs:
 *   allow unprivileged whiteout creation"); where mknod is refused anyway
 *   (OCI_OVERLAY_USERXATTR only), it is the other form overlayfs reads
 *   since Linux 6.7: an empty regular file with the xattr
 *   "user.overlay.whiteout", in a directory whose "user.overlay.opaque" is
 *   "x".
 * - An opaque directory (".wh..wh..opq" inside it) has the xattr
 *   "trusted.overlay.opaque" (OCI_OVERLAY_ROOT) or "user.overlay.opaque"
 *   (OCI_OVERLAY_USERXATTR, for a mount with -o userxattr) set to "y".
 * - An xattr of the layer in the overlay's own namespace ("trusted.overlay."
 *   or "user.overlay.", by the mode) is escaped, as overlayfs escapes
 *   nested overlays ("trusted.overlay.X" is stored as
 *   "trusted.overlay.overlay.X"), so a layer can never hand overlayfs a
 *   redirect, a metacopy or an opaque mark of its own; capture unescapes.
 * The mode is part of what an extracted directory is: a cache of them must
 * be keyed by mode as well as by diff_id.
 *
 * Every function blocks (file I/O, decompression, hashing): run them on the
 * thread pool.
 */
#ifndef OCI_OVERLAY_H
#define OCI_OVERLAY_H

#include "oci/digest.h"
#include "oci/tar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most paths oci_overlay_opts.excludes may hold. */
#define OCI_OVERLAY_MAX_EXCLUDES 256

enum oci_overlay_mode {
    /* trusted.overlay.* xattrs, whiteouts made with mknod: a privileged overlay mount. */
    OCI_OVERLAY_ROOT = 1,
    /* user.overlay.* xattrs: an overlay mounted with -o userxattr in a user namespace. */
    OCI_OVERLAY_USERXATTR,
};

struct oci_overlay_opts {
    enum oci_overlay_mode mode; /* 0 means OCI_OVERLAY_ROOT */
    /* Extraction: leave owners as they fall (the extracting user) instead of the layer's. */
    bool no_chown;
    /* Extraction: the most content bytes the layer may write (0: no cap of its own). */
    uint64_t max_bytes;
    /*
     * Capture, snapshot and diff: paths (relative to the directory, "/" or
     * not at their start) left out with everything below them, such as the
     * mount points a sandbox made.
     */
    const char *const *excludes;
    size_t n_excludes;
    /* Capture and diff: SOURCE_DATE_EPOCH, as oci_tar_opts has it. */
    bool clamp_mtime;
    int64_t mtime_max;
    /* Capture and diff: when set, maps the owner found on disk to the one the layer gets. */
    void (*map_owner)(void *arg, uint32_t *uid, uint32_t *gid);
    void *map_arg;
};

/*
 * Extraction of one layer's tar into a new directory, fed as it comes
 * (decompressed). The layer is hostile input: entries are normalised as
 * oci/stack.h says ("./a" is "a", a leading "/" dropped) and a ".." is
 * refused; every path is opened one component at a time from the
 * extraction's own root without following any link, so nothing is ever
 * written through a symlink or outside it; an entry below a symlink or a
 * file of the layer is refused (UV_EINVAL, "... is not a directory"); a
 * hardlink must name a non-directory the layer put there before
 * (absolute targets are read from the layer's root). Entries, xattrs and
 * paths are capped as in oci/tar.h, content by opts->max_bytes.
 *
 * The layer goes into a temporary directory next to dest, which only
 * oci_overlay_extract_end renames to dest (dest must not exist: UV_EEXIST),
 * so a half-extracted layer is never at dest. The sha256 of every byte fed
 * (the diff_id) is checked against the caller's before the rename.
 *
 * Written: directories, files, symlinks (as they are), hardlinks, fifos,
 * devices (mknod: needs CAP_MKNOD; a character device 0/0 in a layer is
 * refused, overlayfs would read it as a whiteout), with owners (unless
 * no_chown), modes including setuid, setgid and sticky, mtimes and xattrs
 * (after the owner, which clears security.capability). A missing parent
 * is made as a directory 0755 root:root with mtime 0 (as docker and
 * containerd make it). Within the layer a later entry replaces an earlier
 * one; a whiteout of a name the layer itself has is kept out (the layer's
 * directory of that name is made opaque instead). aufs's ".wh..wh.*"
 * entries are skipped.
 */
struct oci_overlay_extractor; /* opaque */

/*
 * Starts extracting into dest (whose parent must exist). Returns 0;
 * UV_EEXIST when dest exists; UV_E* creating the temporary directory;
 * OCISYNC_EUSAGE for a bad dest; err says which.
 */
int oci_overlay_extract_begin(struct oci_overlay_extractor **out, const char *dest,
                              const struct oci_overlay_opts *opts, char *err, size_t errlen);
/*
 * Extracts the next n bytes of the tar. Errors (sticky): UV_EINVAL for a
 * malformed archive or a refused entry, OCISYNC_ETOOBIG for a cap, UV_EPERM
 * for a device or whiteout that may not be made (mknod without CAP_MKNOD),
 * UV_E* writing; err names the entry.
 */
int oci_overlay_extract_feed(struct oci_overlay_extractor *x, const void *p, size_t n, char *err,
                             size_t errlen);
/*
 * Ends the tar (it must be complete), sets the directories' modes and
 * mtimes, puts what the fed bytes hash to into *diff_id (when not NULL),
 * checks it against expect (when not NULL: OCISYNC_EDIGESTMISMATCH) and
 * renames the directory to dest. Frees x whatever it returns; on error the
 * temporary directory is removed.
 */
int oci_overlay_extract_end(struct oci_overlay_extractor *x, const struct oci_digest *expect,
                            struct oci_digest *diff_id, char *err, size_t errlen);
/* Gives up: removes the temporary directory and frees x (NULL is fine). */
void oci_overlay_extract_abort(struct oci_overlay_extractor *x);

/*
 * The whole of it for a layer blob file (gzip, zstd or plain tar, told by
 * its first bytes; held to the decompression caps of oci/unpack.h).
 * Errors as above, and those of oci_unpack.
 */
int oci_overlay_extract(const char *blob, const struct oci_digest *expect, const char *dest,
                        const struct oci_overlay_opts *opts, struct oci_digest *diff_id, char *err,
                        size_t errlen);

/*
 * The layer a RUN made, from its overlay upper directory: every entry
 * (directories, files, symlinks, fifos, devices, with owners, modes, mtimes
 * clamped as opts says, and xattrs, but neither the overlay's own nor
 * security.selinux, a label of the host rather than of the image), a
 * ".wh.NAME" for each whiteout (either form), a directory's
 * ".wh..wh..opq" after the directory when its opaque xattr is "y". Files
 * of one inode become hardlinks (oci_tar_plan_seal). Sockets are left out,
 * as docker leaves them out; so is what opts->excludes names. Whiteouts and
 * opaque markers are 0:0, mode 0, with their directory's mtime. On success
 * plan is sealed; on error it is empty. UV_E* reading, OCISYNC_ETOOBIG for
 * a cap of oci/tar.h.
 */
int oci_overlay_capture(const char *upper, const struct oci_overlay_opts *opts,
                        struct oci_tar_plan *plan, char *err, size_t errlen);

/*
 * Without overlayfs: a record of every path under dir (type, mode, owner,
 * size, mtime and ctime to the nanosecond, inode, device, link target and a
 * hash of the xattrs) taken before a RUN, and oci_overlay_diff after it.
 * ctime is what catches content changed under a restored mtime.
 */
struct oci_overlay_snapshot; /* opaque */

int oci_overlay_snapshot(const char *dir, const struct oci_overlay_opts *opts,
                         struct oci_overlay_snapshot **out, char *err, size_t errlen);
void oci_overlay_snapshot_free(struct oci_overlay_snapshot *s);

/*
 * The layer of what changed in dir since before was taken, as capture
 * would give it from an upper directory: entries added or changed (any
 * recorded attribute differs), with the directories above them; a
 * ".wh.NAME" for each path that is gone (one for a directory, none for what
 * was below it; none below a directory replaced by a non-directory); a
 * directory that replaced a non-directory gets ".wh..wh..opq" as docker
 * gives it. On success plan is sealed.
 */
int oci_overlay_diff(const struct oci_overlay_snapshot *before, const char *dir,
                     const struct oci_overlay_opts *opts, struct oci_tar_plan *plan, char *err,
                     size_t errlen);

/*
 * Without overlayfs, for RUN: the layer directories (overlay form, as
 * oci_overlay_extract and a RUN's upper directory have them; bottom first)
 * stacked into dest, an existing empty directory, as a plain tree: a
 * whiteout removes what is below it, an opaque directory hides what is
 * below it, anything else replaces what is below (directories merge), with
 * owners, modes, mtimes and xattrs (not those in the overlay's namespace);
 * a layer's hardlinks stay links. Nothing is written through a link. 0, or
 * UV_E* with err naming the path.
 */
int oci_overlay_flatten(const char *const *layers, size_t n, const char *dest,
                        enum oci_overlay_mode mode, char *err, size_t errlen);

#endif
