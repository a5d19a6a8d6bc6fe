/*
 * OCI image layouts (image-spec image-layout.md): a directory holding an
 * "oci-layout" file ({"imageLayoutVersion":"1.0.0"}), an "index.json" image
 * index whose entries may be named by the "org.opencontainers.image.ref.name"
 * annotation, and content-addressed blobs under "blobs/<alg>/<hex>".
 *
 * ocisync reads layouts as copy sources and writes them as destinations
 * ("oci:DIR[:REF]", as skopeo spells them). Writing is crash-safe: a blob is
 * written to a temp file in its own blobs/<alg> directory and renamed to its
 * final name only once its size and digest are verified and its data is on
 * disk; index.json is replaced last, the same way. An interrupted run can
 * therefore leave temp files behind, but never a half-written blob under its
 * final name nor an index naming a blob that is not there.
 *
 * Every path inside the layout is opened relative to a descriptor of the
 * layout directory and never follows a symbolic link: oci-layout, index.json,
 * blobs, blobs/<alg> and the blob files are each opened with O_NOFOLLOW (the
 * directories one component at a time), so a link cannot send reads or
 * writes outside the layout. Only the layout directory itself, as the user
 * named it, may be a link. Blob paths are built only from digests that pass
 * oci_digest_parse.
 */
#ifndef OCI_LAYOUT_H
#define OCI_LAYOUT_H

#include "oci/digest.h"
#include "oci/manifest.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The annotation that names an index entry. */
#define OCI_LAYOUT_REF_ANNOTATION "org.opencontainers.image.ref.name"
/* The longest ref name accepted, in bytes. */
#define OCI_LAYOUT_REF_MAX 512
/* The oci-layout file is a one-line JSON object; anything bigger is not one. */
#define OCI_LAYOUT_FILE_MAX 4096

/*
 * An open layout. Fields are read-only for callers. dir is the path as given
 * (for messages); dirfd refers to the directory itself, so renaming the path
 * afterwards does not redirect reads or writes.
 */
struct oci_layout {
    char *dir;     /* owned */
    int dirfd;     /* owned; -1 when closed */
    json_t *index; /* the parsed index.json, owned; "manifests" is always an array */
    /* Entry i of index "manifests", parsed (owned array of n_entries). */
    struct oci_descriptor *entries;
    size_t n_entries;
    size_t cap_entries;
};

/*
 * Opens the layout in dir.
 *
 * Without create, dir must exist and hold a valid oci-layout file
 * (imageLayoutVersion "1.0.0"); index.json, if present, must be an OCI image
 * index of at most OCI_MANIFEST_MAX_SIZE bytes whose JSON nesting is shallow,
 * with schemaVersion 2, every descriptor valid (strict digest, mediaType,
 * size >= 0), at most OCI_INDEX_MAX_MANIFESTS entries, and every ref name
 * annotation a string that passes oci_layout_ref_valid. A missing index.json
 * is an empty index. oci-layout and index.json must not be symbolic links,
 * nor may blobs, blobs/sha256 or blobs/sha512 where they exist ("blobs/sha256
 * in layout DIR is a symbolic link; refused"), with or without create: a
 * destination is refused before anything is written into it.
 *
 * With create, dir itself is made if missing (its parent must exist, as with
 * mkdir), and an empty directory becomes a layout: blobs/sha256 and
 * oci-layout are written at once, the index is empty in memory until
 * oci_layout_commit. An existing layout is opened as above.
 *
 * Returns 0, UV_ENOENT (dir missing, no create), UV_ENOTDIR (dir is not a
 * directory), OCISYNC_EMANIFEST (not a layout, or a non-empty directory that
 * is not one even with create; an invalid oci-layout or index.json; a
 * symbolic link or non-directory where a file or directory of the layout
 * should be),
 * OCISYNC_ETOOBIG (index.json over its caps), or another UV_E* code. err
 * receives a sentence naming dir and the file at fault. On failure l is left
 * closed (oci_layout_close on it is harmless).
 */
int oci_layout_open(struct oci_layout *l, const char *dir, bool create, char *err, size_t errlen);
/* Releases l; safe on a zeroed or already closed layout. Writers must be finished first. */
void oci_layout_close(struct oci_layout *l);

/* The number of entries in the (in-memory) index. */
size_t oci_layout_count(const struct oci_layout *l);
/*
 * Copies entry i's descriptor into d and points *ref_name (may be NULL) at its
 * ref name annotation, or NULL when it has none; the pointer is valid until
 * the next oci_layout_add or oci_layout_close. OCISYNC_EUSAGE if i is out of
 * range.
 */
int oci_layout_entry(const struct oci_layout *l, size_t i, struct oci_descriptor *d,
                     const char **ref_name);

/*
 * Finds an image in the index:
 *   - ref NULL or "": the only entry; OCISYNC_ENOTFOUND if the index is
 *     empty, OCISYNC_EREF (naming the choices) if it has several;
 *   - "sha256:<hex>" or "@sha256:<hex>" (or sha512): the first entry with that
 *     digest (a name that happens to look like a digest is also tried);
 *   - otherwise the first entry whose ref name annotation equals ref.
 * Returns 0, OCISYNC_ENOTFOUND or OCISYNC_EREF (a ref that is not a valid
 * name); err names the layout directory and ref.
 */
int oci_layout_resolve(const struct oci_layout *l, const char *ref, struct oci_descriptor *out,
                       char *err, size_t errlen);

/*
 * Opens blob d for reading (O_RDONLY | O_NOFOLLOW | O_CLOEXEC; it must be a
 * regular file). *fd receives the descriptor (the caller closes it) and
 * *size (may be NULL) the file's size. Errors: OCISYNC_ENOTFOUND for a
 * missing blob, UV_ELOOP for a blob that is a symbolic link ("blob sha256:...
 * in layout DIR is a symbolic link; refused") or whose blobs or blobs/<alg>
 * directory is one ("blobs/sha256 in layout DIR is a symbolic link;
 * refused"), UV_ENOTDIR when one of those is not a directory, UV_EINVAL for a
 * blob that is not a regular file, OCISYNC_EDIGEST for a digest struct that is not canonical,
 * other UV_E* codes.
 */
int oci_layout_blob_open(const struct oci_layout *l, const struct oci_digest *d, int *fd,
                         uint64_t *size, char *err, size_t errlen);
/*
 * Reads blob d whole (a manifest or a config) and verifies its digest.
 * *data receives a malloc'ed buffer with an extra NUL after *len bytes (the
 * caller frees it). Errors as oci_layout_blob_open, plus OCISYNC_ETOOBIG for
 * a blob over max bytes and OCISYNC_EDIGESTMISMATCH when the content does not
 * hash to d.
 */
int oci_layout_blob_read(const struct oci_layout *l, const struct oci_digest *d, size_t max,
                         char **data, size_t *len, char *err, size_t errlen);
/*
 * True if blob d is present as a regular file (not a symbolic link, nor
 * under a blobs or blobs/<alg> that is one) of the given size (size < 0: any
 * size). The content is not hashed.
 */
bool oci_layout_blob_exists(const struct oci_layout *l, const struct oci_digest *d, int64_t size);

/*
 * Writing one blob. oci_layout_blob_begin creates the temp file
 * "blobs/<alg>/.tmp-<hex>-<random>" (O_EXCL, making blobs/<alg> if needed);
 * oci_layout_blob_write appends to it and hashes as it goes;
 * oci_layout_blob_commit checks size and digest, fsyncs the file, renames it
 * to its final name (replacing whatever was there: the verified bytes win)
 * and fsyncs the directory. A failed write or commit, and
 * oci_layout_blob_abort, remove the temp file; abort after commit, or twice,
 * does nothing.
 *
 * A writer uses l only in oci_layout_blob_begin (its directory descriptor and
 * path, never its index) and no global state: once begun it holds its own
 * descriptors, so writers for different blobs may run on different threads at
 * once. Nothing is visible under the blob's final name before a successful
 * commit.
 */
struct oci_layout_writer {
    int dirfd; /* the blobs/<alg> directory, owned; -1 when finished */
    int fd;    /* the temp file, owned; -1 when finished */
    /* The layout path (clipped), for messages: the writer needs nothing of the layout once begun.
     */
    char dir[208];
    struct oci_digest digest;
    int64_t size; /* expected size; < 0 when unknown */
    uint64_t written;
    struct oci_hasher hasher;
    bool failed;        /* a write failed: commit refuses */
    char tmp_name[192]; /* ".tmp-<hex>-<random>", relative to dirfd */
};

/*
 * Starts writing blob d of the given size (< 0: not known in advance). w is
 * initialised; after an error there is nothing to abort. Errors:
 * OCISYNC_EDIGEST for a non-canonical digest struct, UV_ELOOP when blobs or
 * blobs/<alg> is a symbolic link and UV_ENOTDIR when one is not a directory
 * (nothing is written), other UV_E* codes.
 */
int oci_layout_blob_begin(const struct oci_layout *l, const struct oci_digest *d, int64_t size,
                          struct oci_layout_writer *w, char *err, size_t errlen);
/*
 * Appends len bytes. Writing past the size given to begin fails at once with
 * OCISYNC_ESIZEMISMATCH; I/O errors are UV_E* codes. After a failure the temp
 * file is already gone and commit refuses.
 */
int oci_layout_blob_write(struct oci_layout_writer *w, const void *data, size_t len, char *err,
                          size_t errlen);
/*
 * Verifies and publishes the blob. Returns 0, OCISYNC_ESIZEMISMATCH,
 * OCISYNC_EDIGESTMISMATCH (err names both digests), UV_EINVAL after a failed
 * write or on a finished writer, or a UV_E* I/O error. Either way the writer is
 * finished and no temp file is left.
 */
int oci_layout_blob_commit(struct oci_layout_writer *w, char *err, size_t errlen);
/* Drops an unfinished blob and its temp file; harmless on a finished writer. */
void oci_layout_blob_abort(struct oci_layout_writer *w);
/*
 * For a blob whose name is known only at its end (one made while written,
 * begun under another digest of the same algorithm): the digest and size
 * commit checks and publishes it under. OCISYNC_EDIGEST for another algorithm.
 */
int oci_layout_blob_rename(struct oci_layout_writer *w, const struct oci_digest *d, int64_t size);
/* begin + write + commit for a buffer (manifests, configs). */
int oci_layout_put_blob(const struct oci_layout *l, const struct oci_digest *d, const void *data,
                        size_t len, char *err, size_t errlen);

/*
 * Adds an entry to the in-memory index: d's mediaType, digest, size and, if
 * d->has_platform, platform, with the ref name annotation ref_name (NULL or
 * "": none). An entry with the same ref name is replaced (all of them, should
 * an older index hold duplicates); with no name, an existing unnamed entry
 * with the same digest makes this a no-op. Other entries, and their unknown
 * fields, are kept in order. Refused unless the blob d is already present in
 * the layout with d's size (OCISYNC_ENOTFOUND: write the manifest first).
 * Other errors: OCISYNC_EREF (invalid ref name), OCISYNC_EUSAGE (invalid
 * descriptor), OCISYNC_ETOOBIG (the index would exceed
 * OCI_INDEX_MAX_MANIFESTS), UV_ENOMEM.
 */
int oci_layout_add(struct oci_layout *l, const struct oci_descriptor *d, const char *ref_name,
                   char *err, size_t errlen);
/*
 * Writes oci-layout if it is missing, then index.json, each through a temp
 * file, fsync and rename, and fsyncs the directory. index.json is compact
 * JSON with schemaVersion 2 and mediaType OCI_MT_OCI_INDEX first, then the
 * other top-level fields as they were; it is checked with oci_manifest_parse
 * before it is written, so it always reads back. Returns 0, OCISYNC_ETOOBIG
 * (over OCI_MANIFEST_MAX_SIZE) or a UV_E* code.
 */
int oci_layout_commit(struct oci_layout *l, char *err, size_t errlen);

/*
 * True if ref is a valid ref name by the image-spec grammar:
 *   ref       ::= component ("/" component)*
 *   component ::= alphanum (separator alphanum)*
 *   alphanum  ::= [A-Za-z0-9]+
 *   separator ::= [-._:@+] | "--"
 * and at most OCI_LAYOUT_REF_MAX bytes.
 */
bool oci_layout_ref_valid(const char *ref);

/*
 * Splits what follows "oci:" in "oci:DIR[:REF]". REF is what follows the last
 * ':' when that part contains no '/' ("/tmp/x:latest" -> "/tmp/x", "latest";
 * "/tmp/x" -> "/tmp/x", ""; "a:b/c" -> "a:b/c", ""). A trailing digest,
 * "DIR:sha256:<hex>" or "DIR@sha256:<hex>", is kept whole as REF
 * ("sha256:<hex>"), which oci_layout_resolve looks up by digest. Returns 0,
 * OCISYNC_EREF (empty DIR, or a REF that is not a valid ref name),
 * OCISYNC_ETOOBIG (a part does not fit its buffer) or OCISYNC_EUSAGE (NULL
 * arguments). On error both buffers are emptied.
 */
int oci_layout_ref_split(const char *spec, char *dir, size_t dirlen, char *ref, size_t reflen);

#endif
