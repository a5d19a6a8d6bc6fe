/*
 * Tar archives: a reproducible writer that turns local directories and files
 * into an image layer, and an incremental reader for layers, OCI archives and
 * docker archives.
 *
 * Writer: oci_tar_plan_build walks the sources once and records every entry
 * (sorted by path, so the same tree gives the same bytes on every machine);
 * an oci_tar_stream then produces the archive in caller-sized pieces, opening
 * one file at a time. Headers are POSIX ustar with PAX extended headers only
 * where ustar cannot say it (long or non-ASCII names, sizes of 8 GiB or more,
 * big uid/gid, mtimes before 1970) or for extended attributes
 * ("SCHILY.xattr.NAME" records, sorted by name). A plan built from local
 * sources holds files, directories, symlinks and hardlinks; one made of
 * explicit entries (oci_tar_plan_add, for what a RUN changed) may also hold
 * fifos, devices and whiteouts.
 *
 * Reader: oci_tar_reader is a push parser. It accepts ustar, old v7 and GNU
 * headers, PAX 'x' records (with "SCHILY.xattr." xattrs) and GNU 'L'/'K'
 * long names, and hands each entry (with its device numbers and xattrs) and
 * then its data to callbacks. Every buffer it keeps is capped.
 *
 * Error codes. Writer: OCISYNC_EUSAGE for a source or destination that cannot
 * go into a layer (a ".." component, a socket/fifo/device, two sources giving
 * one path), OCISYNC_ETOOBIG for a path over OCI_TAR_PATH_MAX or more than
 * OCI_TAR_MAX_ENTRIES entries,
 * OCISYNC_ESIZEMISMATCH for a file that changed between plan and stream,
 * UV_E* for system errors (UV_EACCES for an unreadable file or directory,
 * UV_ENOENT for a missing source). Reader: UV_EINVAL for a malformed or
 * truncated archive, OCISYNC_ETOOBIG when a cap is exceeded, or whatever a
 * callback returned. Every error also writes a sentence naming the path (or
 * the archive offset) into err.
 */
#ifndef OCI_TAR_H
#define OCI_TAR_H

#include "oci/digest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest path or link target, in bytes, either half accepts. */
#define OCI_TAR_PATH_MAX 4096
/* The most a PAX extended header or GNU long name/link may carry. */
#define OCI_TAR_EXT_MAX (1024 * 1024)
/* The most entries one plan may hold. */
#define OCI_TAR_MAX_ENTRIES (4u * 1024 * 1024)
/*
 * Extended attributes of one entry: at most this many, with names (without
 * "SCHILY.xattr.") and values together at most OCI_TAR_XATTR_BYTES, which is
 * what one Linux file can carry (a value may be 64 KiB).
 */
#define OCI_TAR_MAX_XATTRS 128
#define OCI_TAR_XATTR_BYTES (64 * 1024)
/* The largest device numbers a ustar header holds (7 octal digits). */
#define OCI_TAR_DEV_MAX 07777777u
/* Hex digits of a file's content digest (SHA-256) in struct oci_tar_file_sum. */
#define OCI_TAR_SUM_HEX 64

/*
 * One extended attribute, written as the PAX record "SCHILY.xattr.NAME=VALUE"
 * (the value as raw bytes, which may be binary, as security.capability is).
 * In a plan both strings are owned by the entry; in a reader entry they point
 * into the reader and live until the callback returns.
 */
struct oci_tar_xattr {
    char *name; /* "security.capability", NUL-terminated, without '=' */
    unsigned char *value;
    size_t len;
};

/* ---------------------------------------------------------------------------------------------
 * Writer
 */

/*
 * One thing to put into the layer. src is a local directory or file; the
 * given path itself is resolved (it may be a symlink to a directory), but
 * nothing below it is ever followed. dest is where it lands in the image:
 * NULL, "" or "/" for the root, otherwise an absolute or relative path such
 * as "/app/static"; "." and empty components are dropped, ".." is refused.
 *
 * A directory becomes dest itself (with the directory's mode and mtime;
 * nothing for the root) plus everything under it. A file becomes dest,
 * except that when dest is the root or ends with "/" the file keeps its own
 * name inside that directory.
 */
struct oci_tar_source {
    const char *src;
    const char *dest;
    /*
     * For a directory: only what is in it goes to dest, and dest itself is
     * made like an implied parent (as a Dockerfile's COPY makes it), not
     * with the directory's own mode and mtime.
     */
    bool contents;
};

/* What an implied parent directory gets (see oci_tar_opts.parent). */
struct oci_tar_parent {
    uint32_t mode; /* 0755 unless the callback says */
    uint32_t uid, gid;
    int64_t mtime;
};

/*
 * A mode change as chmod(1) and a Dockerfile's COPY --chmod take it: octal
 * ("0755", "644") or symbolic ("u+x,g-w,o=r", "a+X"). Parse with
 * oci_chmod_parse.
 */
#define OCI_CHMOD_MAX_CLAUSES 16
struct oci_chmod {
    bool octal;
    uint32_t mode; /* octal: the new mode */
    unsigned n;    /* symbolic: clauses applied in order */
    struct {
        uint32_t who;  /* bits of 07777 the clause may touch */
        char op;       /* '+', '-' or '=' */
        uint32_t perm; /* bits named (before masking with who) */
        bool cond_x;   /* 'X': execute only for directories or files executable by someone */
    } c[OCI_CHMOD_MAX_CLAUSES];
};

/* Parses s into *m. OCISYNC_EUSAGE with a sentence in err for anything else. */
int oci_chmod_parse(const char *s, struct oci_chmod *m, char *err, size_t errlen);
/* The mode (07777 bits) an entry of mode, a directory or not, gets. */
uint32_t oci_chmod_apply(const struct oci_chmod *m, uint32_t mode, bool is_dir);

struct oci_tar_opts {
    bool chown;        /* if false, every entry gets uid 0 and gid 0 */
    uint32_t uid, gid; /* used when chown is true */
    bool clamp_mtime;  /* SOURCE_DATE_EPOCH: mtimes later than mtime_max become mtime_max */
    int64_t mtime_max;
    /* When set, the mode of every file and directory the sources give (not links, not implied
     * parents). */
    const struct oci_chmod *chmod;
    /*
     * When set, sources are laid over each other in order, as a COPY with
     * several sources does: two directories with one path merge (the later
     * one's mode and mtime win), and a later file or link replaces an
     * earlier one. A directory and a non-directory with one path are still
     * refused. Unset, any two sources giving one path are refused.
     */
    bool overlay;
    /*
     * When set, asked for every entry below a source (local path, and
     * whether it is a directory) before it is recorded: OCI_TAR_INCLUDE,
     * OCI_TAR_EXCLUDE (a directory with everything below it), or, for a
     * directory, OCI_TAR_DESCEND (not itself, but what is below it that the
     * filter includes, under the directory, which then appears as it is
     * whenever something below it does). A .dockerignore, for one.
     */
    int (*filter)(void *arg, const char *local, bool is_dir);
    void *filter_arg;
    /*
     * When set (and chown is not), asked for the owner of every entry the
     * sources give (not implied parents): return true and fill uid and gid
     * to give the entry that owner, false for the default (0:0). Files
     * copied out of an image keep the owners the image gave them.
     */
    bool (*owner)(void *arg, const char *local, uint32_t *uid, uint32_t *gid);
    void *owner_arg;
    /*
     * When set, asked about every implied parent directory (path: its
     * archive path, without the trailing "/"), with p holding the default
     * (0755, 0:0, the clamped mtime, or 0); whatever it leaves in p is
     * written. A builder that knows the image below answers with what is
     * there already, so the layer does not change it.
     */
    void (*parent)(void *arg, const char *path, struct oci_tar_parent *p);
    void *parent_arg;
};

enum { OCI_TAR_INCLUDE = 0, OCI_TAR_EXCLUDE, OCI_TAR_DESCEND };

/* One archive entry of a plan. */
struct oci_tar_plan_entry {
    char *path; /* archive path, relative, directories end with "/"; owned */
    /*
     * Local path of what it came from; owned. NULL for an implied parent, and
     * for entries that have no local file (a whiteout, a device): a type '0'
     * entry without src has no content.
     */
    char *src;
    char *linkname; /* symlink target, or the archive path a hardlink refers to; owned or NULL */
    /*
     * '0' file, '1' hardlink, '2' symlink, '5' directory; from
     * oci_tar_plan_add also '3' character device, '4' block device, '6' fifo.
     * A whiteout is a '0' entry named ".wh.NAME" (or ".wh..wh..opq") without src.
     */
    char type;
    uint32_t mode;     /* st_mode & 07777 */
    int64_t mtime;     /* already clamped */
    uint64_t size;     /* bytes of content: 0 except for type '0' */
    uint32_t uid, gid; /* the plan's, or what opts->owner said */
    /* Identity of a type '0' file, checked again when the stream opens it. */
    uint64_t dev, ino, nlink;
    size_t source;                /* index of the oci_tar_source it came from, for messages */
    uint32_t devmajor, devminor;  /* types '3' and '4' */
    struct oci_tar_xattr *xattrs; /* sorted by name; owned (names and values too) */
    size_t n_xattrs;
};

struct oci_tar_plan {
    struct oci_tar_plan_entry *entries; /* sorted by path (byte order); owned */
    size_t n_entries;
    uint64_t content_bytes; /* sum of the sizes of the type '0' entries */
    uint32_t uid, gid;      /* written into every header */
    size_t cap;             /* entries allocated by oci_tar_plan_add */
};

/*
 * Walks the n sources (lstat, never following symlinks below a source) and
 * records every entry, sorted by path. A symlink is stored as it is,
 * whatever it points to (an absolute target, or one that climbs out of the
 * source, is read inside the image); its target is never read. Parent
 * directories of each dest are added as directories with mode 0755 and mtime
 * opts->mtime_max when clamping is on, else 0. Regular files that share a device and inode within
 * the plan become one file (the first in path order) and hardlinks to it.
 *
 * Refused, with a sentence in err naming the path: a ".." component in dest
 * (OCISYNC_EUSAGE); sockets, fifos and devices (OCISYNC_EUSAGE); two sources giving the same path,
 * or a file where another source needs a directory (OCISYNC_EUSAGE; the implied parents of a dest
 * merge with each other and with a real directory, but two real directories do not); files and
 * directories that cannot be read (UV_EACCES; each file is opened once to check); paths longer than
 * OCI_TAR_PATH_MAX (OCISYNC_ETOOBIG). opts may be NULL for the defaults.
 * On error plan is left empty.
 */
int oci_tar_plan_build(struct oci_tar_plan *plan, const struct oci_tar_source *srcs, size_t n,
                       const struct oci_tar_opts *opts, char *err, size_t errlen);
/* Releases everything a plan owns (safe on a zeroed or freed plan). */
void oci_tar_plan_free(struct oci_tar_plan *plan);

/*
 * A plan made of explicit entries, for layers that are not a copy of local
 * sources (what a RUN changed): start from a zeroed plan, add each entry,
 * then seal it. Unlike oci_tar_plan_build, these may hold fifos ('6') and
 * devices ('3', '4', with devmajor and devminor), xattrs on any entry, and
 * whiteouts (a '0' entry of size 0 without src named ".wh.NAME" or
 * ".wh..wh..opq").
 *
 * oci_tar_plan_add copies e (path, src, linkname and xattrs; dev, ino and
 * nlink as given: a type '0' entry with src is checked against them when
 * streamed). Refused with OCISYNC_EUSAGE and a sentence naming the path: a
 * path that is empty, absolute or has a "." or ".." component, a directory
 * path without its trailing "/" (or another with one), an unknown type,
 * content on anything but a '0' entry with src, a hardlink or symlink
 * without a target, an xattr name that is empty or holds '='; with
 * OCISYNC_ETOOBIG: paths or targets over OCI_TAR_PATH_MAX, more than
 * OCI_TAR_MAX_ENTRIES entries, xattrs over OCI_TAR_MAX_XATTRS or
 * OCI_TAR_XATTR_BYTES, device numbers over OCI_TAR_DEV_MAX.
 */
int oci_tar_plan_add(struct oci_tar_plan *plan, const struct oci_tar_plan_entry *e, char *err,
                     size_t errlen);
/*
 * Sorts the entries by path as oci_tar_plan_build does (and each entry's
 * xattrs by name), refuses two entries of one path (OCISYNC_EUSAGE), turns
 * entries of types '0', '3', '4' and '6' with nlink > 1 that share dev and
 * ino into one entry (the first by path) and hardlinks to it, and sums
 * content_bytes. On error the plan is freed.
 */
int oci_tar_plan_seal(struct oci_tar_plan *plan, char *err, size_t errlen);

/*
 * The content digest of one file of a plan, taken while the stream read it,
 * with the identity and times fstat gave when the stream opened it (for the
 * build cache's stat index). done is false for entries without content
 * read from a file, and for files the stream has not finished.
 */
struct oci_tar_file_sum {
    char hex[OCI_TAR_SUM_HEX + 1]; /* SHA-256 of the content, lowercase hex */
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    bool done;
};

/*
 * Produces the archive of a plan. It holds at most one file open, and a
 * fixed amount of memory whatever the sizes. The plan is borrowed and must
 * outlive the stream. Streams share nothing, so each may run on its own
 * thread.
 */
struct oci_tar_stream {
    const struct oci_tar_plan *plan; /* borrowed */
    /*
     * Optional (NULL by default), set before the first read: one per plan
     * entry (borrowed), where each file's content digest goes as it is read,
     * so a build cache key needs no second pass over the files.
     */
    struct oci_tar_file_sum *sums;
    /*
     * Optional with sums: the stream then fills only each sum's identity and
     * times and hashes nothing itself; instead, on the reading thread, this
     * gets each piece of a file's content as it goes into the caller's
     * buffer, and once more with len 0 and end true when the file is
     * complete (entry: its index in the plan), so that the caller can hash
     * it elsewhere, off the reading thread.
     */
    void (*on_content)(void *arg, size_t entry, const unsigned char *data, size_t len, bool end);
    void *content_arg;
    struct oci_hasher
        file_hash; /* the current file's content, when sums is set without on_content */
    size_t next;   /* index of the next entry whose header is due */
    const struct oci_tar_plan_entry *cur;
    int phase;
    unsigned char *hdr; /* headers of the current entry (PAX + ustar); owned */
    size_t hdr_len, hdr_off;
    int fd;             /* the one open file, or -1 */
    uint64_t data_left; /* content bytes of cur still to come */
    size_t zeros_left;  /* padding or end-of-archive zeros still to come */
    int rc;             /* sticky error */
};

/* Returns 0 or UV_ENOMEM. */
int oci_tar_stream_init(struct oci_tar_stream *s, const struct oci_tar_plan *plan);
/*
 * Fills buf with up to cap (> 0) bytes of the archive and sets *n. *n == 0
 * means the archive is complete, ending with two 512-byte zero blocks. A
 * file that is not what the plan recorded (shorter, longer, replaced) fails
 * with OCISYNC_ESIZEMISMATCH and "file X changed while the layer was being
 * built"; read errors are UV_E*. Errors are sticky.
 */
int oci_tar_stream_read(struct oci_tar_stream *s, void *buf, size_t cap, size_t *n, char *err,
                        size_t errlen);
/* Closes the open file, if any, and releases the stream's buffer. */
void oci_tar_stream_dispose(struct oci_tar_stream *s);

/* ---------------------------------------------------------------------------------------------
 * Reader
 */

/*
 * One entry as the reader reports it. path has any leading "./" removed
 * ("./" itself becomes "."), as has a hardlink's linkname (an archive path,
 * unlike a symlink's target); nothing else is normalised, so a consumer must
 * still refuse absolute paths and ".." before touching a file system.
 * Header-only types ('1', '2', '3', '4', '5', '6') always have size 0.
 * Other types ('0', '7', and any the reader does not know) pass through with
 * their data; a v7 '\0' type is reported as '0', and a v7 file whose name
 * ends in "/" as '5'. The strings live until the callback returns.
 */
struct oci_tar_entry {
    char type;
    const char *path;
    const char *linkname; /* "" when none */
    uint64_t size;
    uint32_t mode, uid, gid;
    int64_t mtime;
    uint32_t devmajor, devminor; /* from the header for types '3' and '4', else 0 */
    /* The PAX "SCHILY.xattr.NAME" records of the entry, in archive order; the last of a name wins.
     */
    const struct oci_tar_xattr *xattrs;
    size_t n_xattrs;
};

/* A non-zero return aborts parsing; feed returns that value. */
typedef int (*oci_tar_entry_cb)(void *arg, const struct oci_tar_entry *e);
/* The current entry's content, in order, in as many pieces as the input came in. */
typedef int (*oci_tar_data_cb)(void *arg, const void *data, size_t len);

struct oci_tar_reader {
    oci_tar_entry_cb on_entry;
    oci_tar_data_cb on_data;
    void *arg;
    int state;
    int rc;                 /* sticky error */
    uint64_t offset;        /* archive bytes consumed, for messages */
    uint64_t hdr_offset;    /* where the last header block started, for messages */
    unsigned char blk[512]; /* the header being collected */
    size_t blk_len;
    uint64_t data_left; /* bytes of the current entry's data (or record) still due */
    size_t pad_left;    /* padding after them */
    char meta;          /* 'x', 'g', 'L' or 'K' while collecting or skipping one */
    char *ext;          /* that record's data, at most OCI_TAR_EXT_MAX; owned */
    size_t ext_len, ext_cap;
    /* The last PAX record's data while its xattrs point into it; owned. */
    char *xattr_data;
    struct oci_tar_xattr xattrs[OCI_TAR_MAX_XATTRS];
    size_t n_xattrs;
    /* Overrides collected from PAX and GNU records for the next entry. */
    bool meta_seen; /* a record was read and no entry has used it yet */
    bool has_pax_path, has_pax_link, has_gnu_path, has_gnu_link;
    bool has_size, has_uid, has_gid, has_mtime;
    uint64_t pax_size;
    uint32_t pax_uid, pax_gid;
    int64_t pax_mtime;
    char pax_path[OCI_TAR_PATH_MAX + 1];
    char pax_link[OCI_TAR_PATH_MAX + 1];
    char gnu_path[OCI_TAR_PATH_MAX + 1];
    char gnu_link[OCI_TAR_PATH_MAX + 1];
    /* The entry being reported. */
    char path[OCI_TAR_PATH_MAX + 1];
    char link[OCI_TAR_PATH_MAX + 1];
};

/* Returns 0, or UV_EINVAL if on_entry is NULL (on_data may be NULL to skip content). */
int oci_tar_reader_init(struct oci_tar_reader *r, oci_tar_entry_cb on_entry,
                        oci_tar_data_cb on_data, void *arg);
/*
 * Parses the next len bytes, which may split the archive anywhere. Input
 * after the end-of-archive zero blocks is ignored. Errors are sticky.
 */
int oci_tar_reader_feed(struct oci_tar_reader *r, const void *data, size_t len, char *err,
                        size_t errlen);
/*
 * Declares the end of input: UV_EINVAL if it ended inside a header, an
 * entry's data or its padding, or right after a PAX/GNU record. Ending at an
 * entry boundary without the zero blocks is accepted, as other readers do.
 */
int oci_tar_reader_finish(struct oci_tar_reader *r, char *err, size_t errlen);
/* Releases what the reader holds (safe to call twice). */
void oci_tar_reader_dispose(struct oci_tar_reader *r);

#endif
