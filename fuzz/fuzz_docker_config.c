/*
 * libFuzzer target for proto__cred_parse_authfile (src/proto/creds.c), the
 * parser behind proto_cred_lookup for Docker config.json, containers
 * auth.json and Kubernetes .dockerconfigjson files.
 *
 * The first input byte picks the registry asked for (so docker.io's aliases,
 * ports and namespace paths are all reached); the rest is the file. Beyond
 * "no crash", it checks the contracts callers rely on: a failure leaves
 * nothing allocated and a printable message, a success is consistent with
 * what it says was found, and parsing is deterministic.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_docker_config.c \
 *       src/proto/creds.c src/common/log.c -ljansson -lcrypto -luv
 *   ./a.out -dict=fuzz/docker_config.dict fuzz/corpus/docker_config
 *
 * Seeds in corpus/docker_config/ therefore start with one selector byte.
 */
#include "ocisync.h"
#include "proto/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

static const char *const registries[] = {
    "docker.io",        "index.docker.io", "registry-1.docker.io", "reg.example",
    "reg.example:5000", "127.0.0.1:5000",  "quay.io/team/app",     "quay.io",
    "ghcr.io",          "[::1]:5000",
};

#define N_REGISTRIES (sizeof(registries) / sizeof(registries[0]))

static void check_text(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);

    if (end == NULL)
        __builtin_trap();
    for (; s < end; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            __builtin_trap();
    }
}

static void check_match(const struct proto__authfile_match *m)
{
    const struct proto_cred *c = &m->cred;

    if (memchr(m->key, '\0', sizeof(m->key)) == NULL)
        __builtin_trap();
    switch (m->use) {
    case PROTO__AUTHFILE_NOTHING:
        if (c->kind != PROTO_CRED_NONE || c->username != NULL || c->secret != NULL)
            __builtin_trap();
        break;
    case PROTO__AUTHFILE_CRED:
        if (c->secret == NULL || strcmp(c->source, "fuzz.json") != 0)
            __builtin_trap();
        if (c->kind == PROTO_CRED_BASIC || c->kind == PROTO_CRED_IDENTITY) {
            if (c->username == NULL || c->username[0] == '\0')
                __builtin_trap();
            if (c->kind == PROTO_CRED_BASIC && strchr(c->username, ':') != NULL)
                __builtin_trap();
        } else if (c->kind == PROTO_CRED_REGISTRY_TOKEN) {
            if (c->username != NULL || c->secret[0] == '\0')
                __builtin_trap();
            for (const char *p = c->secret; *p != '\0'; p++) {
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                    __builtin_trap();
            }
        } else {
            __builtin_trap();
        }
        break;
    case PROTO__AUTHFILE_HELPER:
        if (c->kind != PROTO_CRED_NONE || c->secret != NULL || m->helper[0] == '\0' ||
            memchr(m->helper, '\0', sizeof(m->helper)) == NULL || strchr(m->helper, '/') != NULL)
            __builtin_trap();
        break;
    default:
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto__authfile_match m, again;
    char err[512], err2[512];
    const char *registry;
    const char *json;
    bool legacy;
    int r, r2;

    if (size == 0)
        return 0;
    registry = registries[data[0] % N_REGISTRIES];
    /* The high bit picks ~/.dockercfg's legacy format. */
    legacy = (data[0] & 0x80) != 0;
    json = (const char *)data + 1;
    size--;

    memset(err, 'x', sizeof(err));
    r = proto__cred_parse_authfile(json, size, "fuzz.json", registry, legacy, &m, err, sizeof(err));
    if (r != 0) {
        if (r >= 0 || err[0] == '\0' || m.use != PROTO__AUTHFILE_NOTHING ||
            m.cred.username != NULL || m.cred.secret != NULL)
            __builtin_trap();
        check_text(err, sizeof(err));
        /* Every message names the file it is about. */
        if (strstr(err, "fuzz.json") == NULL && r != OCISYNC_EUSAGE)
            __builtin_trap();
    } else {
        check_match(&m);
    }

    /* The same input gives the same answer. */
    r2 = proto__cred_parse_authfile(json, size, "fuzz.json", registry, legacy, &again, err2,
                                    sizeof(err2));
    if (r2 != r || again.use != m.use || strcmp(again.key, m.key) != 0 ||
        strcmp(again.helper, m.helper) != 0 || again.cred.kind != m.cred.kind ||
        (m.cred.secret != NULL && strcmp(again.cred.secret, m.cred.secret) != 0))
        __builtin_trap();
    proto_cred_dispose(&again.cred);
    proto_cred_dispose(&m.cred);
    return 0;
}
