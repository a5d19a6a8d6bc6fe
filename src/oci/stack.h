/*
 * A stage's filesystem as its layers stack up, read without unpacking the
 * whole image: an index of every path (type, mode, owner, mtime, size, link
 * target) with the whiteouts of each layer applied as the OCI image spec
 * says, and the extraction of one subtree into a directory.
 *
 * Layers are added bottom first: a blob file (gzip, zstd or plain tar, told
 * by its first bytes; its decompressed bytes checked against its diff_id),
 * or a tar plan (one of the build's own layers, read through
 * oci_tar_stream). The index keeps only headers; oci_stack_extract reads
 * the layers again, in order, and writes what lies under one path.
 *
 * Every layer is hostile input. Paths are normalised ("./a" is "a", a
 * leading "/" dropped, "a//b" is "a/b"); a path with a ".." component, or
 * one that is empty, is refused. An entry that normalises to the root
 * ("./", "/") may only be a directory, and sets the root's attributes.
 * Whiteouts: ".wh.NAME" removes NAME (and all below it) from the layers
 * below; ".wh..wh..opq" in a directory removes everything the layers below
 * put in that directory; neither appears in the index. Both apply before
 * the other entries of their layer, wherever they stand in its tar, so
 * they never remove what their own layer adds (as the spec says). Other
 * ".wh..wh." names and what is below them (aufs's bookkeeping) are
 * skipped; an entry below another ".wh." name is refused.
 * An entry whose parent is not a directory in the stack so far (a file, a
 * symlink, ...) replaces nothing and is refused (a real image never has
 * one); a missing parent is made as a directory 0755 root:root with mtime
 * 0, as docker and containerd make it. A later entry replaces an earlier
 * one of the same path; a non-directory replacing a directory removes what
 * was below it; a directory over a directory only changes its attributes.
 * A hardlink must name a non-directory already in the stack (else it is
 * refused); one to a symlink, device or fifo is indexed as a copy of it,
 * as a file system shows it. Tar types other than '0'-'7' are refused ('7'
 * is a file).
 * Caps: OCI_STACK_MAX_ENTRIES paths in the index (and entries in one
 * layer), OCI_STACK_MAX_NAME_BYTES of paths and link targets, the
 * decompression caps of docker archives (OCI_LAYER_UNPACK_RATIO / _MIN),
 * OCI_TAR_PATH_MAX paths.
 *
 * Every function blocks (file I/O, decompression, hashing): run them on the
 * thread pool. Lookups, resolutions and extractions only read the stack, so
 * several may run at once, but none while a layer is being added.
 */
#ifndef OCI_STACK_H
#define OCI_STACK_H

#include "oci/digest.h"
#include "oci/tar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OCI_STACK_MAX_ENTRIES (4u * 1024 * 1024)
#define OCI_STACK_MAX_LAYERS 256
/* Bytes of paths and link targets the index (and the layer being added) may hold. */
#define OCI_STACK_MAX_NAME_BYTES ((uint64_t)1024 * 1024 * 1024)

/* What one path is in the stacked image. */
struct oci_stack_node {
    /* '0' file, '1' hardlink, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' fifo */
    char type;
    uint32_t mode; /* & 07777 */
    uint32_t uid, gid;
    int64_t mtime;
    uint64_t size; /* type '0' */
    /* '2': the target as stored; '1': the archive path it links to (normalised); else "" */
    const char *linkname;
};

struct oci_stack; /* opaque; owns its index and the list of its layers' sources */

/* An empty stack (scratch). Returns 0 or UV_ENOMEM. */
int oci_stack_new(struct oci_stack **out);
void oci_stack_free(struct oci_stack *s);

/*
 * Adds the layer in the blob file at path (kept by name for extraction; it
 * must stay there until the stack is freed). diff_id: what its decompressed
 * bytes must hash to, or NULL not to check. Returns 0; OCISYNC_EDIGESTMISMATCH
 * (does not decompress, or the wrong diff_id), UV_EINVAL (a malformed tar, a
 * ".." path, an entry under a non-directory), OCISYNC_ETOOBIG (a cap), UV_E*
 * reading the file; err names the layer and the entry. On error the stack
 * is left as it was before the call.
 */
int oci_stack_add_blob(struct oci_stack *s, const char *path, const struct oci_digest *diff_id,
                       char *err, size_t errlen);

/* Adds a layer that is a tar plan (borrowed: it must outlive the stack). Errors as above. */
int oci_stack_add_plan(struct oci_stack *s, const struct oci_tar_plan *plan, char *err,
                       size_t errlen);

/*
 * The node at path (absolute or relative to the root, normalised as entries
 * are; "" or "/" is the root, a directory 0755 root:root unless a layer
 * says otherwise). Symlinks are not followed, in the path or at its end.
 * NULL when nothing is there. The node lives until the next add or free.
 */
const struct oci_stack_node *oci_stack_lookup(const struct oci_stack *s, const char *path);

/*
 * Calls cb for each entry of the directory dir (not followed if a link), in
 * no particular order, with its name and node; a non-zero return stops the
 * walk and is returned. UV_ENOENT when dir is not a directory of the stack.
 */
int oci_stack_list(const struct oci_stack *s, const char *dir,
                   int (*cb)(void *arg, const char *name, const struct oci_stack_node *n),
                   void *arg);

/*
 * Resolves path inside the image, as if the image were the root: each
 * symlink met in the path (and at its end if follow_last) is replaced by its
 * target, an absolute target starting again at the root, ".." stopping at
 * the root; at most 40 links. out gets the resolved path, relative to the
 * root without a leading "/" ("" for the root). Returns 0 (whether or not
 * the final path exists), UV_ELOOP, or OCISYNC_ETOOBIG.
 */
int oci_stack_resolve(const struct oci_stack *s, const char *path, bool follow_last, char *out,
                      size_t outlen);

/*
 * The target of the symlink at path (len bytes, relative to the root, not
 * NUL-terminated), or NULL when path is not a symlink (or is missing); buf
 * (buflen bytes) is room the callback may put the target in.
 */
typedef const char *(*oci_link_of)(void *arg, const char *path, size_t len, char *buf,
                                   size_t buflen);

/*
 * oci_stack_resolve's walk over any tree: the links are what link_of says
 * (oci_stack_resolve asks the stack; a builder may ask a directory on disk,
 * its build context, as if it were the root). Same rules and results.
 */
int oci_resolve_in_root(const char *path, bool follow_last, oci_link_of link_of, void *arg,
                        char *out, size_t outlen);

/*
 * Writes what the stacked layers hold at src (resolved first, following its
 * last link as COPY does) into dir, which must exist and be empty
 * (UV_ENOTEMPTY otherwise): a file becomes dir/NAME (NAME the last
 * component of src as given, so a symlink's own name, as COPY names it), a
 * directory's contents go into dir itself (dir's own mode and mtime become
 * the directory's). Files, directories, symlinks (as they are, never
 * followed) and hardlinks (as links inside dir, when their target was
 * written too; else a copy of the target's content) with their modes
 * (setuid and friends included) and mtimes; owners are not changed on disk
 * (ask oci_stack_lookup for them, by image path). Devices and fifos are
 * left out (src itself one: nothing is written). Nothing is ever written
 * outside dir: each path is opened component by component without
 * following links. Only the final version of each path under src is
 * written, as the index has it: directories and symlinks from the index,
 * file contents from the layers that hold them, read again bottom first
 * (a layer with nothing under src is not read), so what a later layer
 * whites out or replaces is never written. A layer read again must hash as
 * it did when added and hold the same files at the same places, else
 * OCISYNC_EDIGESTMISMATCH ("changed since it was added"). Returns 0;
 * UV_ENOENT (with a sentence in err) when src is not in the stack; the
 * errors of the add functions for a layer that changed since; UV_E*
 * writing. On error dir may hold part of the subtree.
 */
int oci_stack_extract(const struct oci_stack *s, const char *src, const char *dir, char *err,
                      size_t errlen);

#endif
