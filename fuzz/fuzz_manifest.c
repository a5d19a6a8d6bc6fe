/*
 * libFuzzer target for oci_manifest_parse and oci_index_filter.
 *
 * The first input byte picks the Content-Type for the second parse; the rest
 * is the document, parsed once with no Content-Type and once with the chosen
 * one. Seeds in corpus/manifest/ therefore start with one selector byte.
 * Beyond "no crash", it checks the contracts callers rely on: a failure
 * leaves nothing allocated and a message, a success has well-formed
 * descriptors, and a filtered index parses again with no more entries.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_manifest.c \
 *       src/oci/manifest.c src/oci/digest.c src/common/error.c -ljansson -lcrypto -luv
 *   ./a.out -dict=fuzz/manifest.dict fuzz/corpus/manifest
 */
#include "oci/manifest.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const content_types[] = {
    NULL,
    OCI_MT_OCI_MANIFEST,
    OCI_MT_OCI_INDEX,
    OCI_MT_DOCKER_MANIFEST,
    OCI_MT_DOCKER_LIST,
    OCI_MT_DOCKER_SCHEMA1,
    OCI_MT_DOCKER_SCHEMA1_SIGNED,
    "application/json",
    "application/octet-stream",
    "",
    OCI_MT_OCI_INDEX "; charset=utf-8",
    "text/html",
};

#define N_CONTENT_TYPES (sizeof(content_types) / sizeof(content_types[0]))

static void check_descriptor(const struct oci_descriptor *d)
{
    struct oci_digest again;

    if (d->media_type[0] == '\0' || d->size < 0)
        __builtin_trap();
    if (oci_digest_parse_str(d->digest.str, &again) != 0)
        __builtin_trap();
}

static void check_filter(const uint8_t *data, size_t size, const struct oci_manifest *m)
{
    static const char *const platforms[] = {"linux/amd64", "linux/arm64", "linux/arm/v7"};
    struct oci_platform want[3];
    struct oci_manifest again;
    char *out = NULL;
    size_t out_len = 0;
    int r;

    for (size_t i = 0; i < 3; i++) {
        if (oci_platform_parse(platforms[i], &want[i]) != 0)
            __builtin_trap();
    }
    /* One platform, then all three, so both "some" and "none" outcomes are reached. */
    for (size_t n_want = 1; n_want <= 3; n_want += 2) {
        r = oci_index_filter(data, size, want, n_want, &out, &out_len);
        if (r != 0) {
            if (out != NULL)
                __builtin_trap();
            continue;
        }
        if (out == NULL || out_len == 0 || strlen(out) != out_len)
            __builtin_trap();
        /*
         * Re-serialising can make a document bigger (escapes), so only a
         * size or depth limit may reject it now.
         */
        r = oci_manifest_parse(NULL, out, out_len, &again, NULL, 0);
        if (r == 0) {
            if (again.kind != OCI_KIND_INDEX || again.n_manifests == 0 ||
                again.n_manifests > m->n_manifests)
                __builtin_trap();
        } else if (r != OCISYNC_ETOOBIG) {
            __builtin_trap();
        }
        oci_manifest_free(&again);
        free(out);
        out = NULL;
    }
}

static void parse_one(const char *ct, const uint8_t *data, size_t size)
{
    struct oci_manifest m;
    char err[256];
    int r;

    memset(err, 'x', sizeof(err));
    r = oci_manifest_parse(ct, data, size, &m, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    if (r != 0) {
        if (r >= 0 || err[0] == '\0' || m.layers != NULL || m.manifests != NULL ||
            m.n_layers != 0 || m.n_manifests != 0)
            __builtin_trap();
        return;
    }
    if (m.kind == OCI_KIND_INDEX) {
        if (!oci_media_type_is_index(m.media_type) || m.n_manifests > OCI_INDEX_MAX_MANIFESTS ||
            m.n_layers != 0)
            __builtin_trap();
        for (size_t i = 0; i < m.n_manifests; i++)
            check_descriptor(&m.manifests[i]);
        check_filter(data, size, &m);
    } else {
        if (m.kind != OCI_KIND_IMAGE || !oci_media_type_is_manifest(m.media_type) ||
            m.n_layers > OCI_MANIFEST_MAX_LAYERS || m.n_manifests != 0)
            __builtin_trap();
        check_descriptor(&m.config);
        for (size_t i = 0; i < m.n_layers; i++)
            check_descriptor(&m.layers[i]);
    }
    if (m.has_subject)
        check_descriptor(&m.subject);
    oci_manifest_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ct;

    if (size == 0)
        return 0;
    ct = content_types[data[0] % N_CONTENT_TYPES];
    parse_one(NULL, data + 1, size - 1);
    parse_one(ct, data + 1, size - 1);
    return 0;
}
