#include "proto/registry.h"

#include "common/log.h"
#include "ocisync.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_ACCEPT                                                                            \
    "application/vnd.oci.image.index.v1+json, "                                                    \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                                  \
    "application/vnd.oci.image.manifest.v1+json, "                                                 \
    "application/vnd.docker.distribution.manifest.v2+json"
#define MANIFEST_MAX (4 * 1024 * 1024)

int proto_registry_init(struct proto_registry *reg, struct proto_client *cl, const char *name,
                        const char *scheme, const char *hostport)
{
    memset(reg, 0, sizeof(*reg));
    reg->client = cl;
    if (snprintf(reg->name, sizeof(reg->name), "%s", name) >= (int)sizeof(reg->name))
        return OCISYNC_EUSAGE;
    if (snprintf(reg->base, sizeof(reg->base), "%s://%s", scheme, hostport) >=
        (int)sizeof(reg->base))
        return OCISYNC_EUSAGE;
    return 0;
}

static void on_http_done(struct proto_http_req *r, int err);

/* Prepares op for method on base + path, or on an absolute URL (upload locations). */
static int op_init(struct proto_reg_op *op, struct proto_registry *reg, const char *method,
                   const char *url_or_path, const char *what)
{
    char *url;
    int err;
    memset(op, 0, sizeof(*op));
    op->reg = reg;
    snprintf(op->what, sizeof(op->what), "%s", what);
    if (url_or_path[0] == '/') {
        size_t n = strlen(reg->base) + strlen(url_or_path) + 1;
        url = malloc(n);
        if (url == NULL)
            return UV_ENOMEM;
        snprintf(url, n, "%s%s", reg->base, url_or_path);
    } else {
        url = strdup(url_or_path);
        if (url == NULL)
            return UV_ENOMEM;
    }
    err = proto_http_req_init(&op->http, reg->client, method, url);
    free(url);
    if (err != 0) {
        snprintf(op->errmsg, sizeof(op->errmsg), "%s: %s: invalid URL", reg->name, what);
        return err;
    }
    op->http.on_done = on_http_done;
    op->http.data = op;
    op->expect[0] = 200;
    return 0;
}

int proto_reg_ping(struct proto_reg_op *op, struct proto_registry *reg)
{
    return op_init(op, reg, "GET", "/v2/", "ping /v2/");
}

int proto_reg_manifest_get(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *ref, bool head)
{
    char path[1024], what[160];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    snprintf(what, sizeof(what), "%s manifest %s:%s", head ? "HEAD" : "GET", repo, ref);
    err = op_init(op, reg, head ? "HEAD" : "GET", path, what);
    if (err != 0)
        return err;
    op->http.collect_max = MANIFEST_MAX;
    return proto_http_add_header(&op->http, "Accept", MANIFEST_ACCEPT);
}

int proto_reg_manifest_put(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *ref, const char *media_type, const void *data, size_t len)
{
    char path[1024], what[160];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    snprintf(what, sizeof(what), "PUT manifest %s:%s", repo, ref);
    err = op_init(op, reg, "PUT", path, what);
    if (err != 0)
        return err;
    op->expect[0] = 201;
    op->expect[1] = 200;
    op->expect[2] = 204;
    proto_http_set_body_mem(&op->http, data, len);
    op->http.collect_max = 64 * 1024;
    return proto_http_add_header(&op->http, "Content-Type", media_type);
}

int proto_reg_blob_head(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                        const char *digest)
{
    char path[1024], what[256];
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, digest);
    snprintf(what, sizeof(what), "HEAD blob %s@%s", repo, digest);
    return op_init(op, reg, "HEAD", path, what);
}

int proto_reg_blob_get(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                       const char *digest)
{
    char path[1024], what[256];
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, digest);
    snprintf(what, sizeof(what), "GET blob %s@%s", repo, digest);
    return op_init(op, reg, "GET", path, what);
}

int proto_reg_upload_start(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *mount_digest, const char *from)
{
    char path[1024], what[256];
    int err;
    if (mount_digest != NULL) {
        snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, mount_digest,
                 from);
        snprintf(what, sizeof(what), "mount blob %s from %s into %s", mount_digest, from, repo);
    } else {
        snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", repo);
        snprintf(what, sizeof(what), "start upload to %s", repo);
    }
    err = op_init(op, reg, "POST", path, what);
    op->expect[0] = 202;
    op->expect[1] = 201;
    op->http.collect_max = 64 * 1024;
    return err;
}

int proto_reg_upload_patch(struct proto_reg_op *op, struct proto_registry *reg,
                           const char *location, uint64_t start, const struct proto_body *body)
{
    char range[64], what[64];
    int err;
    snprintf(what, sizeof(what), "PATCH upload chunk at %llu", (unsigned long long)start);
    err = op_init(op, reg, "PATCH", location, what);
    if (err != 0)
        return err;
    op->expect[0] = 202;
    op->http.has_body = true;
    op->http.body = *body;
    op->http.follow_redirects = false;
    op->http.collect_max = 64 * 1024;
    snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)start,
             (unsigned long long)(start + (uint64_t)body->length - 1));
    err = proto_http_add_header(&op->http, "Content-Type", "application/octet-stream");
    if (err == 0)
        err = proto_http_add_header(&op->http, "Content-Range", range);
    return err;
}

int proto_reg_upload_put(struct proto_reg_op *op, struct proto_registry *reg, const char *location,
                         const char *digest, const struct proto_body *body)
{
    size_t n = strlen(location) + strlen(digest) + 16;
    char *url = malloc(n);
    char what[256];
    int err;
    if (url == NULL)
        return UV_ENOMEM;
    snprintf(url, n, "%s%sdigest=%s", location, strchr(location, '?') ? "&" : "?", digest);
    snprintf(what, sizeof(what), "PUT upload of %s", digest);
    err = op_init(op, reg, "PUT", url, what);
    free(url);
    if (err != 0)
        return err;
    op->expect[0] = 201;
    op->expect[1] = 204;
    op->http.follow_redirects = false;
    op->http.collect_max = 64 * 1024;
    if (body != NULL) {
        op->http.has_body = true;
        op->http.body = *body;
        err = proto_http_add_header(&op->http, "Content-Type", "application/octet-stream");
    }
    return err;
}

int proto_reg_op_start(struct proto_reg_op *op, proto_reg_cb cb)
{
    int err;
    op->cb = cb;
    err = proto_http_start(&op->http);
    if (err != 0)
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: %s", op->reg->name, op->what,
                 op->http.error_detail ? op->http.error_detail : ocisync_strerror(err));
    return err;
}

void proto_reg_op_dispose(struct proto_reg_op *op)
{
    proto_http_req_dispose(&op->http);
}

bool proto_reg_format_errors(const char *body, size_t len, char *buf, size_t buflen)
{
    json_error_t jerr;
    json_t *root, *errors, *e;
    size_t i, n = 0;
    bool ok = false;
    if (body == NULL || len == 0 || buflen == 0)
        return false;
    buf[0] = '\0';
    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL)
        return false;
    errors = json_object_get(root, "errors");
    if (!json_is_array(errors))
        goto out;
    json_array_foreach(errors, i, e)
    {
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code == NULL && msg == NULL)
            continue;
        n += (size_t)snprintf(buf + n, n < buflen ? buflen - n : 0, "%s%s%s%s", n > 0 ? "; " : "",
                              code ? code : "", code && msg ? ": " : "", msg ? msg : "");
        if (n >= buflen)
            break;
        ok = true;
    }
out:
    json_decref(root);
    return ok;
}

static int status_error(int status)
{
    switch (status) {
    case 401:
        return OCISYNC_EUNAUTHORIZED;
    case 403:
        return OCISYNC_EDENIED;
    case 404:
        return OCISYNC_ENOTFOUND;
    default:
        return OCISYNC_EREGISTRY;
    }
}

static void on_http_done(struct proto_http_req *r, int err)
{
    struct proto_reg_op *op = r->data;
    if (err != 0) {
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: %s", op->reg->name, op->what,
                 r->error_detail ? r->error_detail : ocisync_strerror(err));
        op->cb(op, err);
        return;
    }
    for (size_t i = 0; i < sizeof(op->expect) / sizeof(op->expect[0]); i++) {
        if (op->expect[i] != 0 && op->expect[i] == r->status) {
            op->cb(op, 0);
            return;
        }
    }
    {
        char detail[512];
        bool have = r->resp_body != NULL &&
                    proto_reg_format_errors(r->resp_body, r->resp_len, detail, sizeof(detail));
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: HTTP %d%s%s%s", op->reg->name,
                 op->what, r->status, have ? " (" : "", have ? detail : "", have ? ")" : "");
        LOG_DEBUG("%s", op->errmsg);
        op->cb(op, status_error(r->status));
    }
}

char *proto_reg_upload_location(struct proto_reg_op *op)
{
    const char *loc = proto_http_header(&op->http, "Location");
    struct proto_url u;
    char *s;
    if (loc == NULL || *loc == '\0')
        return NULL;
    if (proto_url_resolve(&op->http.url, loc, &u) != 0)
        return NULL;
    s = proto_url_string(&u);
    proto_url_free(&u);
    return s;
}

uint64_t proto_reg_chunk_min(struct proto_reg_op *op)
{
    const char *v = proto_http_header(&op->http, "OCI-Chunk-Min-Length");
    char *end;
    unsigned long long n;
    if (v == NULL || *v < '0' || *v > '9')
        return 0;
    n = strtoull(v, &end, 10);
    if (*end != '\0')
        return 0;
    return n;
}
