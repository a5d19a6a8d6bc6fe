/*
 * The toolbox's small writes: more tags for an image (a manifest read once
 * and PUT under each tag that lacks it, no blob moved) and the deletion of
 * a manifest by digest. Each runs on a session of its own, one request at a
 * time: a handful of small requests, where waiting costs nothing.
 */
#include "common/log.h"
#include "engine/endpoint.h"
#include "engine/stop.h"
#include "oci/oci.h"
#include "ocisync.h"
#include "proto/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One registry repository on a session of its own, for a few requests. */
struct one_repo {
    struct engine_session s;
    bool s_open;
    struct proto_registry *reg; /* owned */
    struct oci_ref ref;
};

static int one_open(struct one_repo *r, const char *ref, const struct ocisync_copy_opts *o,
                    const char *actions, char *err, size_t errlen)
{
    char msg[1024];
    int rc;
    memset(r, 0, sizeof(*r));
    rc = oci_ref_parse(ref, &r->ref, err, errlen);
    if (rc != 0)
        return rc;
    rc = engine_session_init(&r->s, o);
    if (rc != 0)
        return rc;
    r->s_open = true;
    rc = engine_endpoint_get(&r->s.endpoints, r->ref.registry, r->ref.repository, &o->dst, true,
                             &r->reg, msg, sizeof(msg));
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", ref, msg);
        return rc;
    }
    snprintf(r->reg->scope, sizeof(r->reg->scope), "repository:%s:%s", r->ref.repository, actions);
    return 0;
}

static void one_close(struct one_repo *r)
{
    if (r->reg != NULL) {
        proto_registry_dispose(r->reg);
        free(r->reg);
    }
    if (r->s_open)
        engine_session_close(&r->s);
}

/*
 * HEAD of ref in r's repository: *digest gets what Docker-Content-Digest
 * says ("" when the registry did not say); OCISYNC_ENOTFOUND when absent.
 */
static int head_digest(struct one_repo *r, const char *ref, char *digest, size_t len, char *msg,
                       size_t msglen)
{
    struct proto_reg_op op;
    const char *dcd;
    struct oci_digest d;
    int err = proto_reg_manifest_get(&op, r->reg, r->ref.repository, ref, true);
    digest[0] = '\0';
    if (err == 0)
        err = engine_session_run(&r->s, &op, msg, msglen);
    else
        snprintf(msg, msglen, "%s", ocisync_strerror(err));
    if (err == 0) {
        dcd = proto_reg_header(&op, "Docker-Content-Digest");
        if (dcd != NULL && oci_digest_parse_str(dcd, &d) == 0)
            snprintf(digest, len, "%s", d.str);
    }
    proto_reg_op_dispose(&op);
    return err;
}

static int put_manifest(struct one_repo *r, const char *tag, const char *mt, const char *raw,
                        size_t len, char *msg, size_t msglen)
{
    struct proto_reg_op op;
    int err = proto_reg_manifest_put(&op, r->reg, r->ref.repository, tag, mt, raw, len);
    if (err == 0)
        err = engine_session_run(&r->s, &op, msg, msglen);
    else
        snprintf(msg, msglen, "%s", ocisync_strerror(err));
    proto_reg_op_dispose(&op);
    return err;
}

/*
 * The end of a call that handled signals: an error that a signal caused is
 * OCISYNC_EINTERRUPTED. The session must be closed by now.
 */
static int stop_leave(const struct ocisync_copy_opts *o, int err, char *msg, size_t msglen)
{
    if (!o->handle_signals)
        return err;
    if (err != 0 && engine_stop_requested() != 0) {
        snprintf(msg, msglen, "interrupted by %s; nothing more was written", engine_stop_name());
        err = OCISYNC_EINTERRUPTED;
    }
    engine_stop_leave();
    return err;
}

/* A new tag as given: a bare tag, or a reference to the same repository with a tag. */
static int parse_new_tag(const struct oci_ref *img, const char *s, char *tag, size_t len, char *err,
                         size_t errlen)
{
    struct oci_ref t;
    char q[400];
    oci_ref_quote(s, q, sizeof(q));
    if (oci_ref_tag_valid(s)) {
        snprintf(tag, len, "%s", s);
        return 0;
    }
    if (strpbrk(s, "/:@") == NULL) {
        snprintf(err, errlen, "%s is not a tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128)", q);
        return OCISYNC_EUSAGE;
    }
    if (oci_ref_parse(s, &t, err, errlen) != 0)
        return OCISYNC_EREF;
    if (strcmp(t.registry, img->registry) != 0 || strcmp(t.repository, img->repository) != 0) {
        snprintf(err, errlen,
                 "%s is in another repository than %s/%s: tag names a tag of the same "
                 "repository (use copy to put an image in another repository)",
                 q, img->registry, img->repository);
        return OCISYNC_EUSAGE;
    }
    if (t.has_digest) {
        snprintf(err, errlen, "%s: a new tag is a tag, not a digest", q);
        return OCISYNC_EUSAGE;
    }
    snprintf(tag, len, "%s", t.tag);
    return 0;
}

int ocisync_tag(const char *ref, const char *const *tags, size_t n_tags,
                const struct ocisync_copy_opts *opts, struct ocisync_tag_result *result)
{
    struct ocisync_tag_result local;
    struct ocisync_tag_result *res = result != NULL ? result : &local;
    struct ocisync_copy_opts dflt;
    struct one_repo r;
    char(*names)[OCI_REF_TAG_MAX] = NULL; /* owned: the tags, parsed */
    char *raw = NULL;                     /* owned: the manifest */
    size_t raw_len = 0;
    char ct[OCI_MEDIA_TYPE_MAX], msg[1024], have[OCI_DIGEST_MAX];
    struct oci_manifest m;
    bool parsed = false;
    struct oci_digest d;
    int err;

    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));
    if (opts == NULL) {
        memset(&dflt, 0, sizeof(dflt));
        opts = &dflt;
    }
    if (opts->debug)
        ocisync_set_debug(1);
    if (n_tags == 0 || n_tags > OCISYNC_TAG_MAX) {
        snprintf(res->error, sizeof(res->error), "give from 1 to %d new tags, not %zu",
                 OCISYNC_TAG_MAX, n_tags);
        return OCISYNC_EUSAGE;
    }
    if (opts->handle_signals)
        engine_stop_enter();
    err = one_open(&r, ref, opts, "pull,push", res->error, sizeof(res->error));
    if (err != 0)
        goto out;
    names = calloc(n_tags, sizeof(*names));
    if (names == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_tags; i++) {
        err = parse_new_tag(&r.ref, tags[i], names[i], sizeof(names[i]), res->error,
                            sizeof(res->error));
        if (err != 0)
            goto out;
    }
    /* The manifest, byte for byte (by digest: the registry layer checks it). */
    err = engine_session_get(&r.s, r.reg, r.ref.repository, oci_ref_target(&r.ref), false, &raw,
                             &raw_len, ct, sizeof(ct), msg, sizeof(msg));
    if (err == 0)
        err = oci_manifest_parse(ct[0] ? ct : NULL, raw, raw_len, &m, msg, sizeof(msg));
    if (err != 0) {
        snprintf(res->error, sizeof(res->error), "%s: %s", ref, msg);
        goto out;
    }
    parsed = true;
    err = oci_digest_buffer(r.ref.has_digest ? r.ref.digest.alg : OCI_DIGEST_SHA256, raw, raw_len,
                            &d);
    if (err != 0)
        goto out;
    snprintf(res->digest, sizeof(res->digest), "%s", d.str);
    for (size_t i = 0; i < n_tags; i++) {
        err = head_digest(&r, names[i], have, sizeof(have), msg, sizeof(msg));
        if (err == 0 && strcmp(have, d.str) == 0) {
            LOG_DEBUG("tag %s already names %s", names[i], d.str);
            continue;
        }
        if (err != 0 && err != OCISYNC_ENOTFOUND) {
            snprintf(res->error, sizeof(res->error), "%s/%s:%s: %s", r.ref.registry,
                     r.ref.repository, names[i], msg);
            goto out;
        }
        err = put_manifest(&r, names[i], m.media_type[0] ? m.media_type : ct, raw, raw_len, msg,
                           sizeof(msg));
        if (err != 0) {
            snprintf(res->error, sizeof(res->error), "%s/%s:%s: %s", r.ref.registry,
                     r.ref.repository, names[i], msg);
            goto out;
        }
        res->changed[i] = 1;
        res->n_changed++;
    }
out:
    if (parsed)
        oci_manifest_free(&m);
    free(raw);
    free(names);
    one_close(&r);
    err = stop_leave(opts, err, res->error, sizeof(res->error));
    if (err != 0 && res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "%s: %s", ref, ocisync_strerror(err));
    return err;
}

int ocisync_delete(const char *ref, const struct ocisync_copy_opts *opts,
                   struct ocisync_delete_result *result)
{
    struct ocisync_delete_result local;
    struct ocisync_delete_result *res = result != NULL ? result : &local;
    struct ocisync_copy_opts dflt;
    struct one_repo r;
    struct proto_reg_op op;
    bool op_ready = false;
    char msg[1024], digest[OCI_DIGEST_MAX];
    int err;

    memset(res, 0, sizeof(*res));
    if (opts == NULL) {
        memset(&dflt, 0, sizeof(dflt));
        opts = &dflt;
    }
    if (opts->debug)
        ocisync_set_debug(1);
    if (opts->handle_signals)
        engine_stop_enter();
    err = one_open(&r, ref, opts, "pull,delete", res->error, sizeof(res->error));
    if (err != 0)
        goto out;
    if (r.ref.has_digest) {
        snprintf(digest, sizeof(digest), "%s", r.ref.digest.str);
    } else {
        err = head_digest(&r, r.ref.tag, digest, sizeof(digest), msg, sizeof(msg));
        if (err == 0 && digest[0] == '\0') {
            /* No Docker-Content-Digest: the digest of the bytes the tag serves. */
            char *raw = NULL;
            size_t len = 0;
            struct oci_digest d;
            err = engine_session_get(&r.s, r.reg, r.ref.repository, r.ref.tag, false, &raw, &len,
                                     NULL, 0, msg, sizeof(msg));
            if (err == 0)
                err = oci_digest_buffer(OCI_DIGEST_SHA256, raw, len, &d);
            if (err == 0)
                snprintf(digest, sizeof(digest), "%s", d.str);
            free(raw);
        }
        if (err != 0) {
            snprintf(res->error, sizeof(res->error), "%s: %s", ref, msg);
            goto out;
        }
    }
    snprintf(res->digest, sizeof(res->digest), "%s", digest);
    err = proto_reg_manifest_delete(&op, r.reg, r.ref.repository, digest);
    op_ready = true;
    if (err == 0)
        err = engine_session_run(&r.s, &op, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "%s", ocisync_strerror(err));
    if (err != 0) {
        int status = proto_reg_status(&op);
        snprintf(res->error, sizeof(res->error), "%s: %s%s", ref, msg,
                 status == 405 ? ": the registry does not allow deleting manifests (on "
                                 "distribution, storage.delete.enabled is off)"
                               : "");
    }
out:
    if (op_ready)
        proto_reg_op_dispose(&op);
    one_close(&r);
    err = stop_leave(opts, err, res->error, sizeof(res->error));
    if (err != 0 && res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "%s: %s", ref, ocisync_strerror(err));
    return err;
}
