/*
 * Image layers: an asynchronous builder that turns a tar plan (oci/tar.h) into
 * a compressed layer blob inside an OCI layout, computing in the same
 * streaming pass the diff_id (sha256 of the tar), the blob digest (sha256 of
 * the compressed bytes) and the compressed size.
 *
 * The work runs on libuv's thread pool as a pipeline of fixed-size blocks:
 * one read job at a time pulls the next block of the tar stream; one hash job
 * at a time hashes a block read (the diff_id, and with file_sums each file's
 * content) while the block is compressed, so neither the reads nor the
 * compression wait for SHA-256; compression jobs run on several blocks at
 * once; one write job at a time appends compressed blocks to a temp file in
 * order and hashes them. The loop thread only sequences the jobs, and at most
 * a fixed number of blocks is in memory at any time, whatever the size of the
 * layer.
 *
 * gzip output is one RFC 1952 member made the way pigz makes it: each block
 * is raw deflate primed with the previous block's last 32 KiB and ends on a
 * byte boundary (Z_SYNC_FLUSH, Z_FINISH for the last), so blocks compressed
 * in parallel concatenate into one deflate stream. The header is fixed (mtime
 * 0, OS 255) and the trailer carries the CRC-32 combined from the blocks'.
 *
 * zstd output is one frame with a content checksum, made by libzstd's own
 * worker threads (ZSTD_c_nbWorkers) inside the serialized compression jobs;
 * the job size is fixed, so the bytes do not depend on the number of workers.
 *
 * Either way the same plan gives the same bytes, whatever the thread timing,
 * the pool size or the number of CPUs.
 */
#ifndef OCI_LAYER_H
#define OCI_LAYER_H

#include "oci/digest.h"
#include "oci/tar.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of tar per block: the unit of reading, hashing and (gzip) parallel compression. */
#define OCI_LAYER_BLOCK_SIZE (1024 * 1024)
/* The deflate window: each gzip block is primed with this much of the previous one. */
#define OCI_LAYER_DICT_SIZE (32 * 1024)
/* The most blocks in flight (2 x the pool size, within these bounds). */
#define OCI_LAYER_MAX_SLOTS 16
#define OCI_LAYER_MIN_SLOTS 2
/* zstd: blocks read ahead of the one compressor. */
#define OCI_LAYER_ZSTD_SLOTS 3
/*
 * zstd: the size of one libzstd worker job. It is part of what defines the
 * output bytes (with the level and the checksum flag), so it is fixed.
 */
#define OCI_LAYER_ZSTD_JOB_SIZE (2 * 1024 * 1024)
/* zstd: libzstd worker threads, between 2 and this many depending on the CPUs. */
#define OCI_LAYER_ZSTD_MAX_WORKERS 4
/* The longest path the builder handles (the layout directory plus "/blobs/sha256/<hex>"). */
#define OCI_LAYER_PATH_MAX 4096

enum oci_compression {
    OCI_COMPRESS_GZIP = 1,
    OCI_COMPRESS_ZSTD,
};

struct oci_layer_result {
    struct oci_digest diff_id; /* sha256 of the tar */
    struct oci_digest digest;  /* sha256 of the compressed blob */
    uint64_t size;             /* compressed bytes */
    uint64_t tar_size;
    char path[OCI_LAYER_PATH_MAX]; /* where the blob now is: <dir>/blobs/sha256/<hex> */
};

struct oci_layer_build;

/*
 * Called on the loop thread exactly once per build that oci_layer_build
 * accepted: err 0 and msg "" on success (b->result is filled), else the error
 * and a sentence naming the file being read or written. The caller may free b
 * in or after the callback.
 */
typedef void (*oci_layer_cb)(struct oci_layer_build *b, int err, const char *msg);

/*
 * The most pieces of file content one block can hold: every file in it has a
 * header of at least 512 bytes, and gives at most a piece and an end.
 */
#define OCI_LAYER_MAX_SEGS (2 * (OCI_LAYER_BLOCK_SIZE / 512) + 4)

/* A piece of one file's content inside a block, for that file's digest. Internal. */
struct oci_layer_seg {
    uint32_t entry;    /* the plan entry */
    uint32_t off, len; /* where in the block */
    bool end;          /* the file ends here */
};

/* One block of the pipeline. Internal; embedded in the build. */
struct oci_layer_slot {
    uv_work_t work;            /* the job running on this block, if any */
    uv_work_t hash_work;       /* the hash job on this block, beside it */
    struct oci_layer_build *b; /* the owner */
    int state;
    bool hashed;                /* the hash job took this block */
    int hash_rc;                /* its result */
    struct oci_layer_seg *segs; /* file content pieces of in (file_sums only); owned */
    size_t n_segs;
    bool segs_full;     /* more pieces than OCI_LAYER_MAX_SEGS (cannot happen) */
    uint64_t seq;       /* position of the block in the tar stream */
    bool last;          /* the tar stream ends with this block */
    unsigned char *in;  /* tar bytes, OCI_LAYER_BLOCK_SIZE; owned */
    size_t in_len;      /* bytes of in used */
    unsigned char *out; /* gzip: the compressed block; owned */
    size_t out_len, out_cap;
    unsigned char *dict; /* gzip: the previous block's tail, OCI_LAYER_DICT_SIZE; owned */
    size_t dict_len;
    void *zs;      /* gzip: a z_stream kept between blocks; owned */
    uint32_t crc;  /* gzip: CRC-32 of in */
    int rc;        /* the job's result */
    char msg[512]; /* the job's error message */
};

/*
 * A build in progress. The caller owns the memory (it need not be zeroed)
 * and must keep it until the callback; everything else is the builder's.
 * Only data and, in the callback, result are meant for the caller.
 */
struct oci_layer_build {
    void *data;                     /* the caller's */
    struct oci_layer_result result; /* filled on success */
    /*
     * Optional, set by the caller once oci_layer_build has returned (which
     * clears it): called on the loop thread each time more
     * compressed bytes are in the temp file, with how many there are in all
     * and the file's descriptor, which the builder closes before its
     * callback (dup it to keep reading). The last bytes (the gzip trailer)
     * are only in result.size.
     */
    void (*on_progress)(struct oci_layer_build *b, int fd, uint64_t written);
    /*
     * Set likewise when the layout is scratch space that does not outlive
     * the process: the blob and its name are then not fsynced (a sync of a
     * large layer costs a noticeable moment at the end of the build).
     */
    bool scratch;
    /*
     * Set likewise to take each file's content digest while the tar is read
     * (one per plan entry, borrowed until the callback; see struct
     * oci_tar_file_sum): what a build cache key is made of, without reading
     * the files a second time.
     */
    struct oci_tar_file_sum *file_sums;

    uv_loop_t *loop;
    oci_layer_cb cb;
    const struct oci_tar_plan *plan; /* borrowed; must outlive the build */
    enum oci_compression comp;
    int level;
    int state;
    bool canceled;
    int rc;         /* the first error */
    char msg[1024]; /* its message */
    /* "<dir>/blobs/sha256" as given, for paths and messages. */
    char blobs_dir[OCI_LAYER_PATH_MAX];
    char tmp_name[48]; /* ".tmp-layer-<random>", relative to dirfd */
    int dirfd;         /* blobs/sha256; owned, -1 when closed */
    int fd;            /* the temp file; owned, -1 when closed */
    struct oci_tar_stream stream;
    struct oci_hasher tar_hash;              /* diff_id: updated by the hash jobs only */
    struct oci_hasher file_hash;             /* file_sums: the current file (hash jobs only) */
    bool file_open;                          /* file_hash holds a file begun in an earlier block */
    struct oci_hasher blob_hash;             /* digest: updated by whichever job writes */
    uint32_t crc;                            /* gzip: CRC-32 of the tar blocks written so far */
    unsigned char tail[OCI_LAYER_DICT_SIZE]; /* gzip: the last tar bytes read (read jobs only) */
    size_t tail_len;
    void *zcctx;         /* zstd: ZSTD_CCtx *, owned */
    unsigned char *zbuf; /* zstd: output buffer of the compressor; owned */
    size_t zbuf_cap;
    unsigned zstd_workers; /* zstd: libzstd workers (0 if libzstd has no threads) */
    struct oci_layer_slot slots[OCI_LAYER_MAX_SLOTS];
    unsigned n_slots;
    unsigned jobs;                      /* pool jobs in flight */
    uint64_t next_read;                 /* seq of the next block to read */
    uint64_t next_compress;             /* zstd: seq of the next block to compress */
    uint64_t next_write;                /* gzip: seq of the next block to write */
    uint64_t next_hash;                 /* seq of the next block to hash */
    bool reading, compressing, writing; /* a serialized job is in flight */
    bool hashing;                       /* a hash job is in flight */
    bool eof;                           /* the last block has been read */
    bool written_last, hashed_last;     /* the last block is written out, and hashed */
    bool complete;                      /* every block is compressed, written and hashed */
    uv_work_t ctl;                      /* the open and finish jobs */
    int ctl_rc;
    char ctl_msg[1024];
    /* Statistics: blocks whose compression finished before an earlier block's. */
    uint64_t reordered;
};

/*
 * Builds one layer from plan (already built by the caller; borrowed until the
 * callback) into the OCI layout directory dir, which must exist with
 * blobs/sha256. Compressed bytes go to a temp file in dir/blobs/sha256 that is
 * renamed to its digest once everything is written and fsynced; on any error
 * or cancel the temp file is removed. level 0 means the default (gzip 6,
 * zstd 3); otherwise gzip takes 1-9 and zstd 1-19 (memory grows with the zstd
 * level's window: about 25 MiB at 3, 100 MiB at 19). Call on the loop thread.
 *
 * Returns 0 and later calls cb once on the loop thread; or, without calling
 * cb, OCISYNC_EUSAGE (a NULL argument, an unknown compression, a level out of
 * range), UV_ENAMETOOLONG (dir too long) or UV_ENOMEM, with a sentence in
 * b->msg. Errors reported to cb: the tar stream's (OCISYNC_ESIZEMISMATCH for a
 * file that changed since the plan, UV_E* for unreadable files) with its
 * message, UV_E* for the layout (missing directory, full disk), UV_EIO when a
 * compressor fails, UV_ECANCELED after oci_layer_cancel.
 */
int oci_layer_build(struct oci_layer_build *b, uv_loop_t *loop, const struct oci_tar_plan *plan,
                    enum oci_compression comp, int level, const char *dir, oci_layer_cb cb,
                    void *data);

/*
 * Asks a build in progress to stop, on the loop thread, before its callback:
 * no new block starts, those in flight finish, the temp file is removed and
 * cb gets UV_ECANCELED. A build already publishing its blob completes instead.
 */
void oci_layer_cancel(struct oci_layer_build *b);

/*
 * For tests only: when set, called on a pool thread with a block's seq just
 * before (after 0) and just after (after 1) it is compressed, so a test can
 * force gzip blocks to complete out of order or stop a build at a known
 * point. NULL by default.
 */
extern void (*oci__layer_test_hook)(uint64_t seq, int after);

#endif
