#include "engine/transport.h"

#include "oci/layout.h"

#include <stdio.h>
#include <string.h>

/* "oci:" and friends: a transport name before the first colon, as skopeo spells them. */
static const struct {
    const char *prefix;
    enum engine_transport_kind kind;
} transports[] = {
    {"oci:", ENGINE_TRANSPORT_LAYOUT},
    {"oci-archive:", ENGINE_TRANSPORT_OCI_ARCHIVE},
    {"docker-archive:", ENGINE_TRANSPORT_DOCKER_ARCHIVE},
    {"dir:", ENGINE_TRANSPORT_DIR},
};

/* skopeo's other transports: named, so the message can say they are not supported. */
static const char *const unsupported[] = {
    "containers-storage:", "docker-daemon:", "ostree:", "sif:"};

static const char *const expected[] = {
    [ENGINE_TRANSPORT_LAYOUT] = "oci:DIRECTORY[:NAME]",
    [ENGINE_TRANSPORT_OCI_ARCHIVE] = "oci-archive:FILE[:NAME]",
    [ENGINE_TRANSPORT_DOCKER_ARCHIVE] = "docker-archive:FILE[:REPO:TAG]",
    [ENGINE_TRANSPORT_DIR] = "dir:DIRECTORY",
};

int engine_transport_parse(const char *s, struct engine_transport *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
        size_t n = strlen(transports[i].prefix);
        const char *rest = s + n;
        int rc;
        if (strncmp(s, transports[i].prefix, n) != 0)
            continue;
        out->kind = transports[i].kind;
        if (out->kind == ENGINE_TRANSPORT_DOCKER_ARCHIVE) {
            /* docker-archive:FILE[:REF], split at the first colon as skopeo does. */
            const char *colon = strchr(rest, ':');
            size_t fl = colon != NULL ? (size_t)(colon - rest) : strlen(rest);
            rc = fl == 0 || fl >= sizeof(out->path) ||
                         (colon != NULL && strlen(colon + 1) >= sizeof(out->name))
                     ? OCISYNC_EUSAGE
                     : 0;
            if (rc == 0) {
                memcpy(out->path, rest, fl);
                snprintf(out->name, sizeof(out->name), "%s", colon != NULL ? colon + 1 : "");
            }
        } else if (out->kind == ENGINE_TRANSPORT_DIR) {
            /* dir:PATH, the whole rest a path (colons included), as skopeo takes it. */
            rc = rest[0] == '\0' || strlen(rest) >= sizeof(out->path) ? OCISYNC_EUSAGE : 0;
            if (rc == 0) {
                size_t pl = strlen(rest);
                /* "dir:x/" is x: the temp directories made beside it must not be inside. */
                while (pl > 1 && rest[pl - 1] == '/')
                    pl--;
                snprintf(out->path, sizeof(out->path), "%.*s", (int)pl, rest);
            }
        } else {
            rc = oci_layout_ref_split(rest, out->path, sizeof(out->path), out->name,
                                      sizeof(out->name));
            if (rc == 0 && out->path[0] == '\0')
                rc = OCISYNC_EUSAGE;
        }
        if (rc != 0) {
            if (err != NULL)
                snprintf(err, errlen, "\"%s\": expected %s", s, expected[out->kind]);
            memset(out, 0, sizeof(*out));
            return OCISYNC_EUSAGE;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (strncmp(s, unsupported[i], strlen(unsupported[i])) == 0) {
            if (err != NULL)
                snprintf(err, errlen,
                         "\"%s\": not supported yet (docker://, oci:, oci-archive:, "
                         "docker-archive: and dir: are)",
                         s);
            return OCISYNC_EUSAGE;
        }
    }
    if (strstr(s, "://") != NULL && strncmp(s, "docker://", 9) != 0) {
        if (err != NULL)
            snprintf(err, errlen, "\"%s\": unsupported transport (use docker:// or oci:)", s);
        return OCISYNC_EUSAGE;
    }
    out->kind = ENGINE_TRANSPORT_REGISTRY;
    return oci_ref_parse(s, &out->ref, err, errlen);
}

void engine_transport_layout(struct engine_transport *t, const char *dir, const char *name)
{
    memset(t, 0, sizeof(*t));
    t->kind = ENGINE_TRANSPORT_LAYOUT;
    snprintf(t->path, sizeof(t->path), "%s", dir);
    snprintf(t->name, sizeof(t->name), "%s", name != NULL ? name : "");
}

int engine_transport_format(const struct engine_transport *t, char *buf, size_t len)
{
    const char *prefix = "";
    if (t->kind == ENGINE_TRANSPORT_REGISTRY)
        return oci_ref_format(&t->ref, buf, len);
    for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
        if (transports[i].kind == t->kind)
            prefix = transports[i].prefix;
    return snprintf(buf, len, "%s%s%s%s", prefix, t->path, t->name[0] ? ":" : "", t->name);
}

ocisync_location_kind ocisync_location_of(const char *s)
{
    struct engine_transport t;
    if (s == NULL || engine_transport_parse(s, &t, NULL, 0) != 0)
        return 0;
    return (ocisync_location_kind)t.kind;
}
