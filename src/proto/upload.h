/*
 * The blob upload protocol of the distribution API, written once: open an
 * upload (POST, or a cross-repository mount), send the bytes (one PUT with
 * the digest when the whole blob can go in one request; else PATCHes, of a
 * fixed size with Content-Range or one streamed with no length), and commit
 * (PUT ?digest=) once the owner says the bytes are complete and verified.
 * A PATCH cut on the way is resumed from the offset the registry reports,
 * when the owner can go back to it. The Docker-Content-Digest of the commit
 * is checked.
 *
 * The bytes come from the owner's proto_body (a relay between a GET and
 * this upload, a file that grows while a layer is built): the upload never
 * buffers them. The life of an upload:
 *
 *   OPENING --201--> DONE (mounted)
 *      |202
 *      v
 *   SENDING (PATCH, PATCH, ...) --all sent--> SENT --finish--> COMMITTING --201--> DONE
 *      |  \__ one request: COMMITTING at once (PUT with the body)
 *      | cut
 *      v
 *   CUT --continue--> BACKOFF --> ASKING --offset--> SENDING (after rewind)
 *
 * and from anywhere ENDING, then DONE, once an error or an abort is known
 * and the request in flight has returned.
 */
#ifndef PROTO_UPLOAD_H
#define PROTO_UPLOAD_H

#include "proto/registry.h"

#include <stdbool.h>
#include <stdint.h>

#define PROTO_UPLOAD_DIGEST_MAX 160

enum proto_upload_state {
    PROTO_UPLOAD_OPENING = 0, /* POST (a mount, or a new upload) in flight */
    PROTO_UPLOAD_SENDING,     /* a PATCH in flight, or waiting for the bytes of the next one */
    PROTO_UPLOAD_SENT,        /* every byte is in: the commit waits for proto_upload_finish */
    PROTO_UPLOAD_CUT,         /* a PATCH was cut: waiting for proto_upload_continue */
    PROTO_UPLOAD_BACKOFF,     /* waiting to ask how far the upload got */
    PROTO_UPLOAD_ASKING,      /* GET on the upload's Location */
    PROTO_UPLOAD_COMMITTING,  /* PUT ?digest= in flight (with the body, for a one-request upload) */
    PROTO_UPLOAD_ENDING,      /* the outcome is known: waiting for the request in flight */
    PROTO_UPLOAD_DONE,
};

struct proto_upload;

struct proto_upload_cbs {
    /*
     * The registry answered 202: the upload is open (u->chunk settled). The
     * owner starts its source now if it waited for a mount's answer. Optional.
     */
    void (*opened)(struct proto_upload *u);
    /*
     * A PATCH was cut and the registry can be asked how far it got: the
     * owner stops its source (bytes past the cut may be needed again), calls
     * proto_upload_continue once it has, and returns true; false (or a NULL
     * cut) ends the upload with the PATCH's error.
     */
    bool (*cut)(struct proto_upload *u);
    /*
     * The registry holds have bytes: the source goes on from there (its peek
     * gives byte have next). Returns 0, or an error that ends the upload.
     */
    int (*rewind)(struct proto_upload *u, uint64_t have);
    /* The outcome, once: 0 (committed, or u->mounted) or an error with u->errmsg. */
    void (*done)(struct proto_upload *u, int err);
};

struct proto_upload {
    /* Set by the owner before proto_upload_start (proto_upload_init zeroes it first). */
    struct proto_registry *reg; /* borrowed */
    char repo[256];
    char mount_digest[PROTO_UPLOAD_DIGEST_MAX]; /* "": no mount */
    const char *mount_from;                     /* borrowed: the repository to mount from */
    const char *scope;                          /* borrowed: the POST's token scope, or NULL */
    int64_t size;                               /* -1 until proto_upload_finish */
    char digest[PROTO_UPLOAD_DIGEST_MAX];       /* "" until proto_upload_finish */
    /*
     * 0 (or UINT64_MAX): as few requests as possible: one PUT with the body
     * when size and digest are known at the start, else one streamed PATCH.
     * N: PATCHes of N bytes (raised to the registry's OCI-Chunk-Min-Length),
     * unless the whole blob fits one.
     */
    uint64_t chunk;
    /* Bytes the source holds from the start (UINT64_MAX: start each PATCH at once). */
    uint64_t available;
    struct proto_body source; /* peek / consume; rewind is not used (see cbs->rewind) */
    const struct proto_upload_cbs *cbs;
    void *data;

    /* What happened; valid in the callbacks. */
    enum proto_upload_state state;
    bool mounted;
    /*
     * On failure: whether it may not happen next time (a transport error,
     * 408, 429, 5xx), and whether the registry layer could not retry it
     * itself (a streamed body, or credentials refused): then starting over
     * with a new upload is the owner's to decide.
     */
    bool transient, restartable;
    char errmsg[PROTO_REG_ERRMSG_MAX];
    uint64_t sent;     /* bytes the registry acknowledged */
    uint64_t consumed; /* bytes the connection took */
    unsigned resumes;  /* cut PATCHes continued */

    /* Internal. */
    struct proto_reg_op op;
    bool op_active;
    char *location; /* owned: the newest upload URL */
    uint64_t req_len;
    bool finished;   /* size and digest are final and the bytes verified */
    bool one_put;    /* the whole body goes with the commit */
    bool cut_waited; /* the owner stopped its source after a cut */
    struct loop_delay backoff;
    int err;
};

/* Zeroes u for an upload of size bytes (-1: unknown) to repo on reg. */
void proto_upload_init(struct proto_upload *u, struct proto_registry *reg, const char *repo,
                       int64_t size);
/* Sends the POST. Returns 0 (cbs->done will run) or an error (it will not; u->errmsg says why). */
int proto_upload_start(struct proto_upload *u);
/* The source has more bytes (available: how many from the start; UINT64_MAX if not counted). */
void proto_upload_body_ready(struct proto_upload *u, uint64_t available);
/*
 * The bytes are complete and verified: digest and size are final (digest
 * may be NULL when set at the start). The commit goes once every byte is in.
 */
void proto_upload_finish(struct proto_upload *u, const char *digest, int64_t size);
/* After cbs->cut: the source is stopped; ask the registry and continue. */
void proto_upload_continue(struct proto_upload *u);
/* Stops the upload without committing: cbs->done gets err (UV_ECANCELED when 0). */
void proto_upload_abort(struct proto_upload *u, int err);
/* The state's name, for --debug and tests. */
const char *proto_upload_state_name(enum proto_upload_state s);

#endif
