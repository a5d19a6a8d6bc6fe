/*
 * Streaming a layer to a registry while it is being built.
 *
 * The layer builder (oci/layer.h) appends compressed bytes to a file and
 * says how many there are; a push follows that file and sends what is there
 * to one repository of one registry: POST to open an upload, then the bytes
 * as they appear, then PUT ?digest= once the builder has the digest. The
 * compressor never waits for the network (the file is the buffer), and the
 * network never waits for the end of the build.
 *
 * Two ways to send the bytes:
 * - chunk 0: one PATCH whose body (Transfer-Encoding: chunked) grows with
 *   the file, as docker push streams a layer; every registry that docker
 *   pushes to takes it.
 * - chunk N: PATCHes of exactly N bytes with Content-Range (the last one
 *   shorter), each started once the file holds its bytes, for registries
 *   that limit request sizes (raised to the registry's
 *   OCI-Chunk-Min-Length).
 *
 * Once the digest is known, and before the commit, a HEAD asks whether the
 * registry holds the blob already (the same layer built before, here or on
 * another machine): then the upload is dropped (DELETE) instead of
 * committed, whatever of it was sent, and the push ends as present. The
 * bytes still to send go on meanwhile; only the commit waits for the answer.
 *
 * The upload protocol itself is proto/upload.h's. A push that fails (a
 * registry that refuses chunks, a cut connection) does not resend anything:
 * it ends with the error, and the caller uploads the finished file in one
 * piece instead. A re-sent chunk would be appended by some registries rather
 * than replace the first copy, and the file is there.
 *
 * File reads go to the thread pool (uv_fs_read), two buffers of
 * ENGINE_LAYER_PUSH_BUF bytes, so memory stays fixed whatever the layer size.
 */
#ifndef ENGINE_LAYER_PUSH_H
#define ENGINE_LAYER_PUSH_H

#include "oci/digest.h"
#include "proto/upload.h"

#include <uv.h>

#include <stdbool.h>
#include <stdint.h>

#define ENGINE_LAYER_PUSH_BUF (1024 * 1024)

struct engine_layer_push;

/*
 * Called once per push that engine_layer_push_start accepted, on the loop
 * thread: err 0 when the registry holds the blob under the digest given to
 * engine_layer_push_finish (p->present: it had it before, and this upload
 * was dropped, not committed), else the error with a sentence in msg. The
 * push may be freed in or after the callback.
 */
typedef void (*engine_layer_push_cb)(struct engine_layer_push *p, int err, const char *msg);

struct engine_layer_push_buf {
    char *data;   /* ENGINE_LAYER_PUSH_BUF bytes; owned */
    size_t len;   /* bytes read into data */
    size_t pos;   /* bytes of them already sent */
    uv_fs_t req;  /* the read filling it */
    bool reading; /* req is in flight */
};

struct engine_layer_push {
    void *data;        /* the caller's */
    uint64_t consumed; /* bytes handed to the connection so far */

    struct proto_registry *reg; /* borrowed */
    char repo[256];
    engine_layer_push_cb cb;
    uv_loop_t *loop;
    struct proto_upload up; /* the upload protocol: POST, PATCH..., PUT */
    bool up_done;           /* it called back */
    int fd; /* the layer file (a dup of the builder's); owned, -1 before the first bytes */
    uint64_t written;  /* bytes in the file */
    uint64_t read_off; /* file offset of the next read */
    bool finished;     /* the builder is done: size below is final */
    uint64_t size;
    struct engine_layer_push_buf bufs[2];
    unsigned head; /* the buffer the body reads from (the one filled first) */
    unsigned tail; /* the buffer the next read fills */
    bool done;     /* called back */
    int err;
    char msg[512];
    struct oci_digest digest; /* given to engine_layer_push_finish */
    struct proto_reg_op op;   /* the HEAD before the commit, then the DELETE of a dropped upload */
    bool op_active;
    bool present; /* the HEAD found the blob: the upload was dropped */
};

/*
 * Opens an upload to repo on reg and starts following the layer. reg must
 * outlive the push and have push rights in its scope. Returns 0 (cb will be
 * called) or an error (no callback).
 */
int engine_layer_push_start(struct engine_layer_push *p, uv_loop_t *loop,
                            struct proto_registry *reg, const char *repo, uint64_t chunk,
                            engine_layer_push_cb cb, void *data);

/* The builder's file fd now holds written bytes (fd is duplicated on the first call). */
void engine_layer_push_grow(struct engine_layer_push *p, int fd, uint64_t written);

/* The layer is complete: size bytes with this digest. The push sends the rest and commits. */
void engine_layer_push_finish(struct engine_layer_push *p, const struct oci_digest *digest,
                              uint64_t size);

/* The build failed: the upload stops without committing anything; cb gets UV_ECANCELED. */
void engine_layer_push_abort(struct engine_layer_push *p);

#endif
