/*
 * Manifest and index parsing, platforms and index filtering: real documents
 * as registries serve them, then truncated, oversized and hostile ones.
 */
#include "oci/imgconfig.h"
#include "oci/manifest.h"
#include "ocisync.h"
#include "test.h"

#include <jansson.h>

#define D_AMD64 "sha256:5861314d7fccb39c2192173240eab44fa35ca66426201ca2acd0630a6258dd51"
#define D_ARM64 "sha256:f69162950f235e3cdbbad33f1f912d1a504be90d8a37d002c735d6f3e3882265"
#define D_ARMV7 "sha256:5ba6c8710dd1369ce61603ab9b7a81b25f92d4a9f74956ab72a7ea75884f07ee"
#define D_ATT "sha256:f745a15153c4dacf0ea4bbf57265e73283941f8335939b33c693975315cf5916"
#define D_CFG "sha256:e67d23e7820c49a8051dac2831f38290f5e72f66c8db5079eeb60d82f14894c0"
#define D_L1 "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2"
#define D_L2 "sha256:95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06"
#define D_L3 "sha256:a0e70458d19e37e14d6388030a017c587283e2fb6ef10c0744cad0294c47e8f8"
#define D_SUBJ "sha256:ceaeee3c0f91c6c853bda5200efb5a1b94c85fd8bb21171047cbd19059c15722"
#define D_SBOM "sha256:a543997d84f12798350c09bdef2cdb171bf41ed3e4a5f808af2feb0c56263009"
#define D_EMPTY "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

/* As docker buildx pushes a multi-platform image with provenance. No trailing newline. */
static const char index_doc[] =
    "{\n"
    "  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n"
    "  \"manifests\": [\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "      \"digest\": \"" D_AMD64 "\",\n"
    "      \"size\": 1613,\n"
    "      \"platform\": {\n"
    "        \"architecture\": \"amd64\",\n"
    "        \"os\": \"linux\"\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "      \"digest\": \"" D_ARM64 "\",\n"
    "      \"size\": 1613,\n"
    "      \"platform\": {\n"
    "        \"architecture\": \"arm64\",\n"
    "        \"os\": \"linux\",\n"
    "        \"variant\": \"v8\"\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "      \"digest\": \"" D_ARMV7 "\",\n"
    "      \"size\": 1613,\n"
    "      \"platform\": {\n"
    "        \"architecture\": \"arm\",\n"
    "        \"os\": \"linux\",\n"
    "        \"variant\": \"v7\"\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "      \"digest\": \"" D_ATT "\",\n"
    "      \"size\": 839,\n"
    "      \"annotations\": {\n"
    "        \"vnd.docker.reference.digest\": \"" D_AMD64 "\",\n"
    "        \"vnd.docker.reference.type\": \"attestation-manifest\"\n"
    "      },\n"
    "      \"platform\": {\n"
    "        \"architecture\": \"unknown\",\n"
    "        \"os\": \"unknown\"\n"
    "      }\n"
    "    }\n"
    "  ],\n"
    "  \"annotations\": {\n"
    "    \"org.opencontainers.image.created\": \"2024-05-01T12:00:00Z\"\n"
    "  }\n"
    "}";

/* As Docker Hub serves an image pushed by an older docker. */
static const char docker_doc[] =
    "{\n"
    "   \"schemaVersion\": 2,\n"
    "   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
    "   \"config\": {\n"
    "      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
    "      \"size\": 7023,\n"
    "      \"digest\": \"" D_CFG "\"\n"
    "   },\n"
    "   \"layers\": [\n"
    "      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 32654,\n"
    "         \"digest\": \"" D_L1 "\"\n"
    "      },\n"
    "      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 16724,\n"
    "         \"digest\": \"" D_L2 "\"\n"
    "      },\n"
    "      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 73109,\n"
    "         \"digest\": \"" D_L3 "\"\n"
    "      }\n"
    "   ]\n"
    "}";

/* An OCI 1.1 SBOM attached to an image through "subject", as oras pushes it. */
static const char subject_doc[] =
    "{\n"
    "  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "  \"artifactType\": \"application/spdx+json\",\n"
    "  \"config\": {\n"
    "    \"mediaType\": \"application/vnd.oci.empty.v1+json\",\n"
    "    \"digest\": \"" D_EMPTY "\",\n"
    "    \"size\": 2,\n"
    "    \"data\": \"e30=\"\n"
    "  },\n"
    "  \"layers\": [\n"
    "    {\n"
    "      \"mediaType\": \"application/spdx+json\",\n"
    "      \"digest\": \"" D_SBOM "\",\n"
    "      \"size\": 4096,\n"
    "      \"annotations\": {\n"
    "        \"org.opencontainers.image.title\": \"sbom.spdx.json\"\n"
    "      }\n"
    "    }\n"
    "  ],\n"
    "  \"subject\": {\n"
    "    \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "    \"digest\": \"" D_SUBJ "\",\n"
    "    \"size\": 1024\n"
    "  },\n"
    "  \"annotations\": {\n"
    "    \"org.opencontainers.image.created\": \"2024-05-01T12:00:00Z\"\n"
    "  }\n"
    "}";

static char err[256];

static int parse(const char *ct, const char *doc, struct oci_manifest *m)
{
    return oci_manifest_parse(ct, doc, strlen(doc), m, err, sizeof(err));
}

/* doc with the first occurrence of from replaced by to (caller frees). */
static char *replace(const char *doc, const char *from, const char *to)
{
    const char *at = strstr(doc, from);
    size_t n = strlen(doc) - strlen(from) + strlen(to);
    char *s;

    if (at == NULL) {
        fprintf(stderr, "replace: \"%s\" not in document\n", from);
        abort();
    }
    s = malloc(n + 1);
    memcpy(s, doc, (size_t)(at - doc));
    strcpy(s + (at - doc), to);
    strcat(s, at + strlen(from));
    return s;
}

/* Parses a mutated doc and expects failure with code and a message containing msg. */
static void expect_fail(const char *ct, const char *doc, int code, const char *msg, int line)
{
    struct oci_manifest m;
    int r = parse(ct, doc, &m);

    if (r != code || (msg != NULL && strstr(err, msg) == NULL)) {
        fprintf(stderr, "line %d: got %s \"%s\", want %s containing \"%s\"\n", line,
                r ? ocisync_err_name(r) : "0", err, ocisync_err_name(code), msg ? msg : "");
    }
    CHECK_INT(r, code);
    CHECK(msg == NULL || strstr(err, msg) != NULL);
    /* A failed parse leaves nothing to free. */
    CHECK(m.layers == NULL && m.manifests == NULL && m.n_layers == 0 && m.n_manifests == 0);
    oci_manifest_free(&m);
}

static void expect_mutation_fails(const char *ct, const char *doc, const char *from, const char *to,
                                  int code, const char *msg, int line)
{
    char *bad = replace(doc, from, to);
    expect_fail(ct, bad, code, msg, line);
    free(bad);
}

#define FAILS(ct, doc, code, msg) expect_fail(ct, doc, code, msg, __LINE__)
#define MUTATION_FAILS(ct, doc, from, to, code, msg)                                               \
    expect_mutation_fails(ct, doc, from, to, code, msg, __LINE__)

/* ---------------------------------------------------------------------------------------------
 * Real documents
 */

TEST(index_real)
{
    struct oci_manifest m;

    CHECK_INT(parse(OCI_MT_OCI_INDEX, index_doc, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_INDEX);
    CHECK_STR(m.media_type, OCI_MT_OCI_INDEX);
    CHECK_INT(m.n_manifests, 4);
    CHECK_INT(m.n_layers, 0);
    CHECK(!m.has_subject);
    CHECK_STR(m.manifests[0].media_type, OCI_MT_OCI_MANIFEST);
    CHECK_STR(m.manifests[0].digest.str, D_AMD64);
    CHECK_INT(m.manifests[0].digest.alg, OCI_DIGEST_SHA256);
    CHECK_INT(m.manifests[0].size, 1613);
    CHECK(m.manifests[0].has_platform);
    CHECK_STR(m.manifests[0].platform.os, "linux");
    CHECK_STR(m.manifests[0].platform.arch, "amd64");
    CHECK_STR(m.manifests[0].platform.variant, "");
    CHECK_STR(m.manifests[1].platform.arch, "arm64");
    CHECK_STR(m.manifests[1].platform.variant, "v8");
    CHECK_STR(m.manifests[2].digest.str, D_ARMV7);
    CHECK_STR(m.manifests[2].platform.arch, "arm");
    CHECK_STR(m.manifests[2].platform.variant, "v7");
    CHECK_STR(m.manifests[3].digest.str, D_ATT);
    CHECK_INT(m.manifests[3].size, 839);
    CHECK_STR(m.manifests[3].platform.os, "unknown");
    CHECK_STR(m.manifests[3].platform.arch, "unknown");
    oci_manifest_free(&m);
    CHECK(m.manifests == NULL && m.n_manifests == 0);
    oci_manifest_free(&m); /* twice is harmless */

    /* No Content-Type (a file): the mediaType field decides. */
    CHECK_INT(parse(NULL, index_doc, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_INDEX);
    oci_manifest_free(&m);
}

TEST(docker_manifest_real)
{
    struct oci_manifest m;

    CHECK_INT(parse(OCI_MT_DOCKER_MANIFEST, docker_doc, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_IMAGE);
    CHECK_STR(m.media_type, OCI_MT_DOCKER_MANIFEST);
    CHECK_STR(m.config.media_type, OCI_MT_DOCKER_CONFIG);
    CHECK_STR(m.config.digest.str, D_CFG);
    CHECK_INT(m.config.size, 7023);
    CHECK(!m.config.has_platform);
    CHECK_INT(m.n_layers, 3);
    CHECK_STR(m.layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    CHECK_STR(m.layers[0].digest.str, D_L1);
    CHECK_INT(m.layers[0].size, 32654);
    CHECK_STR(m.layers[2].digest.str, D_L3);
    CHECK_INT(m.layers[2].size, 73109);
    CHECK_INT(m.n_manifests, 0);
    CHECK(!m.has_subject);
    oci_manifest_free(&m);
}

TEST(oci_manifest_with_subject)
{
    struct oci_manifest m;

    CHECK_INT(parse(OCI_MT_OCI_MANIFEST, subject_doc, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_IMAGE);
    CHECK_STR(m.media_type, OCI_MT_OCI_MANIFEST);
    CHECK_STR(m.config.media_type, "application/vnd.oci.empty.v1+json");
    CHECK_STR(m.config.digest.str, D_EMPTY);
    CHECK_INT(m.config.size, 2);
    CHECK_INT(m.n_layers, 1);
    CHECK_STR(m.layers[0].media_type, "application/spdx+json");
    CHECK(m.has_subject);
    CHECK_STR(m.subject.media_type, OCI_MT_OCI_MANIFEST);
    CHECK_STR(m.subject.digest.str, D_SUBJ);
    CHECK_INT(m.subject.size, 1024);
    oci_manifest_free(&m);
}

TEST(artifact_with_no_layers)
{
    struct oci_manifest m;
    char *doc = replace(subject_doc, "\"layers\": [\n    {\n",
                        "\"layers\": [],\n  \"x-removed\": [\n    {\n");

    CHECK_INT(parse(NULL, doc, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_IMAGE);
    CHECK_INT(m.n_layers, 0);
    CHECK(m.layers == NULL);
    oci_manifest_free(&m);
    free(doc);
}

TEST(content_type_handling)
{
    struct oci_manifest m;

    /* Parameters, whitespace and header case do not matter. */
    CHECK_INT(parse(" application/vnd.oci.image.index.v1+json ; charset=utf-8", index_doc, &m), 0);
    CHECK_STR(m.media_type, OCI_MT_OCI_INDEX);
    oci_manifest_free(&m);
    CHECK_INT(parse("Application/VND.Docker.Distribution.Manifest.V2+JSON", docker_doc, &m), 0);
    oci_manifest_free(&m);

    /* Generic types say nothing; the document decides. */
    CHECK_INT(parse("application/json", docker_doc, &m), 0);
    CHECK_STR(m.media_type, OCI_MT_DOCKER_MANIFEST);
    oci_manifest_free(&m);
    CHECK_INT(parse("application/octet-stream", index_doc, &m), 0);
    oci_manifest_free(&m);
    CHECK_INT(parse("", index_doc, &m), 0);
    oci_manifest_free(&m);

    /* A Docker manifest is not an OCI manifest: different bytes, different digest. */
    FAILS(OCI_MT_OCI_MANIFEST, docker_doc, OCISYNC_EMANIFEST,
          "manifest mediaType \"" OCI_MT_DOCKER_MANIFEST
          "\" contradicts Content-Type \"" OCI_MT_OCI_MANIFEST "\"");
    FAILS(OCI_MT_OCI_MANIFEST, index_doc, OCISYNC_EMANIFEST, "contradicts");
    FAILS(OCI_MT_DOCKER_LIST, index_doc, OCISYNC_EMANIFEST, "contradicts");
    FAILS("text/html", index_doc, OCISYNC_EMANIFEST, "contradicts Content-Type \"text/html\"");
}

TEST(kind_from_content_type_or_structure)
{
    struct oci_manifest m;
    char *idx =
        replace(index_doc, "\"mediaType\": \"application/vnd.oci.image.index.v1+json\",", "");
    char *img = replace(
        docker_doc, "\"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",", "");

    /* No mediaType field: the Content-Type decides. */
    CHECK_INT(parse(OCI_MT_DOCKER_LIST "; charset=utf-8", idx, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_INDEX);
    CHECK_STR(m.media_type, OCI_MT_DOCKER_LIST);
    oci_manifest_free(&m);

    /* Neither: the structure decides, and an untyped document is OCI. */
    CHECK_INT(parse(NULL, idx, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_INDEX);
    CHECK_STR(m.media_type, OCI_MT_OCI_INDEX);
    CHECK_INT(m.n_manifests, 4);
    oci_manifest_free(&m);
    CHECK_INT(parse("application/json", img, &m), 0);
    CHECK_INT(m.kind, OCI_KIND_IMAGE);
    CHECK_STR(m.media_type, OCI_MT_OCI_MANIFEST);
    CHECK_INT(m.n_layers, 3);
    oci_manifest_free(&m);

    /* The Content-Type says index but the document is an image. */
    FAILS(OCI_MT_OCI_INDEX, img, OCISYNC_EMANIFEST, "index has no \"manifests\"");
    FAILS(OCI_MT_OCI_MANIFEST, idx, OCISYNC_EMANIFEST, "manifest has no \"config\"");
    /* An unknown Content-Type with nothing in the document to overrule it. */
    FAILS("text/plain", img, OCISYNC_EMEDIATYPE, "\"text/plain\"");
    FAILS(NULL, "{\"schemaVersion\":2}", OCISYNC_EMANIFEST, "neither");
    free(idx);
    free(img);
}

TEST(media_types)
{
    CHECK(oci_media_type_is_index(OCI_MT_OCI_INDEX));
    CHECK(oci_media_type_is_index(OCI_MT_DOCKER_LIST));
    CHECK(!oci_media_type_is_index(OCI_MT_OCI_MANIFEST));
    CHECK(!oci_media_type_is_index(NULL));
    CHECK(oci_media_type_is_manifest(OCI_MT_OCI_MANIFEST));
    CHECK(oci_media_type_is_manifest(OCI_MT_DOCKER_MANIFEST));
    CHECK(!oci_media_type_is_manifest(OCI_MT_DOCKER_SCHEMA1));
    CHECK(!oci_media_type_is_manifest(OCI_MT_OCI_CONFIG));
    CHECK(!oci_media_type_is_manifest(""));
}

/* ---------------------------------------------------------------------------------------------
 * Hostile and broken documents
 */

static void check_all_prefixes_fail(const char *ct, const char *doc)
{
    size_t len = strlen(doc);
    int unexpected = 0;

    for (size_t n = 0; n < len; n++) {
        struct oci_manifest m;
        char e[256] = "unset";
        char *copy = malloc(n + 1); /* exactly n bytes readable, for ASan */
        int r;

        memcpy(copy, doc, n);
        r = oci_manifest_parse(ct, copy, n, &m, e, sizeof(e));
        if (r != OCISYNC_EMANIFEST || e[0] == '\0' || m.layers != NULL || m.manifests != NULL) {
            if (unexpected++ < 5)
                fprintf(stderr, "prefix %zu: %s \"%s\"\n", n, ocisync_err_name(r), e);
        }
        oci_manifest_free(&m);
        free(copy);
    }
    CHECK_INT(unexpected, 0);
}

TEST(truncated_at_every_length)
{
    check_all_prefixes_fail(NULL, index_doc);
    check_all_prefixes_fail(OCI_MT_OCI_INDEX, index_doc);
    check_all_prefixes_fail(NULL, docker_doc);
    check_all_prefixes_fail(OCI_MT_DOCKER_MANIFEST, docker_doc);
    check_all_prefixes_fail(NULL, subject_doc);
}

TEST(not_json)
{
    FAILS(NULL, "", OCISYNC_EMANIFEST, "not valid JSON");
    FAILS(NULL, "<html><body>502 Bad Gateway</body></html>", OCISYNC_EMANIFEST, "not valid JSON");
    FAILS(NULL, "[]", OCISYNC_EMANIFEST, "not a JSON object");
    FAILS(NULL, "\"manifest\"", OCISYNC_EMANIFEST, "not valid JSON");
    FAILS(NULL, "{} {}", OCISYNC_EMANIFEST, "not valid JSON");
    /* \u0000 would cut strings short after the checks. */
    MUTATION_FAILS(NULL, docker_doc, "rootfs.diff", "rootfs\\u0000.diff", OCISYNC_EMANIFEST,
                   "not valid JSON");
    /* Invalid UTF-8. */
    MUTATION_FAILS(NULL, docker_doc, "rootfs.diff", "rootfs\xff.diff", OCISYNC_EMANIFEST,
                   "not valid JSON");
}

TEST(manifests_and_layers_together)
{
    MUTATION_FAILS(NULL, index_doc, "\"annotations\": {\n    \"org",
                   "\"layers\": [],\n  \"annotations\": {\n    \"org", OCISYNC_EMANIFEST,
                   "both \"manifests\" and \"layers\"");
    MUTATION_FAILS(OCI_MT_OCI_INDEX, index_doc, "\"annotations\": {\n    \"org",
                   "\"config\": {},\n  \"annotations\": {\n    \"org", OCISYNC_EMANIFEST,
                   "both \"manifests\" and \"config\"");
    MUTATION_FAILS(NULL, docker_doc, "\"layers\"", "\"manifests\": [],\n   \"layers\"",
                   OCISYNC_EMANIFEST, "both");
}

TEST(bad_digests)
{
    /* Uppercase hex is a second spelling of the same digest. */
    MUTATION_FAILS(NULL, docker_doc, D_L2,
                   "sha256:95CF1A2E1698FE3CA1FCC3F653119146B271D0B62E487EC264441E886A11BD06",
                   OCISYNC_EMANIFEST,
                   "manifest layer 1: invalid digest "
                   "\"sha256:95CF1A2E1698FE3CA1FCC3F653119146B271D0B62E487EC264441E886A11BD06\"");
    MUTATION_FAILS(NULL, docker_doc, D_L3, "sha256:a0e70458", OCISYNC_EMANIFEST,
                   "manifest layer 2: invalid digest \"sha256:a0e70458\"");
    MUTATION_FAILS(NULL, docker_doc, D_CFG, "md5:d41d8cd98f00b204e9800998ecf8427e",
                   OCISYNC_EMANIFEST, "manifest config: invalid digest");
    MUTATION_FAILS(NULL, docker_doc, D_CFG, "sha256:../../../../etc/passwd", OCISYNC_EMANIFEST,
                   "manifest config: invalid digest");
    MUTATION_FAILS(NULL, index_doc, D_ARMV7, "", OCISYNC_EMANIFEST,
                   "index manifest 2: invalid digest \"\"");
    MUTATION_FAILS(NULL, subject_doc, D_SUBJ, D_SUBJ " ", OCISYNC_EMANIFEST,
                   "manifest subject: invalid digest");
    MUTATION_FAILS(NULL, index_doc, "\"" D_AMD64 "\",\n      \"size\"", "42,\n      \"size\"",
                   OCISYNC_EMANIFEST, "index manifest 0: \"digest\" is not a string");
}

TEST(long_strings_are_clipped_in_messages)
{
    char big[2000];
    char *doc;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    doc = replace(docker_doc, D_L1, big);
    FAILS(NULL, doc, OCISYNC_EMANIFEST, "manifest layer 0: invalid digest \"aaaa");
    CHECK(strstr(err, "...\"") != NULL);
    CHECK(strlen(err) < 200);
    free(doc);

    /* Control characters never reach the message. */
    MUTATION_FAILS(NULL, docker_doc, D_L1, "sha256:\\u001b[31mred", OCISYNC_EMANIFEST,
                   "invalid digest \"sha256:?[31mred\"");
}

TEST(sizes)
{
    MUTATION_FAILS(NULL, docker_doc, "32654", "-1", OCISYNC_EMANIFEST,
                   "manifest layer 0: negative size -1");
    MUTATION_FAILS(NULL, docker_doc, "7023", "\"7023\"", OCISYNC_EMANIFEST,
                   "manifest config: \"size\" is not an integer");
    MUTATION_FAILS(NULL, docker_doc, "7023", "7023.0", OCISYNC_EMANIFEST, "not an integer");
    MUTATION_FAILS(NULL, docker_doc, "7023", "7.5e3", OCISYNC_EMANIFEST, "not an integer");
    MUTATION_FAILS(NULL, docker_doc, "7023", "null", OCISYNC_EMANIFEST, "not an integer");
    /* Beyond int64: jansson refuses to parse it at all. */
    MUTATION_FAILS(NULL, docker_doc, "7023", "99999999999999999999", OCISYNC_EMANIFEST,
                   "not valid JSON");

    /* Zero and the largest int64 are sizes. */
    {
        struct oci_manifest m;
        char *doc = replace(docker_doc, "73109", "9223372036854775807");
        char *doc2 = replace(docker_doc, "73109", "0");
        CHECK_INT(parse(NULL, doc, &m), 0);
        CHECK(m.n_layers == 3 && m.layers[2].size == INT64_MAX);
        oci_manifest_free(&m);
        CHECK_INT(parse(NULL, doc2, &m), 0);
        CHECK(m.n_layers == 3 && m.layers[2].size == 0);
        oci_manifest_free(&m);
        free(doc);
        free(doc2);
    }
}

TEST(missing_fields)
{
    MUTATION_FAILS(NULL, docker_doc, "\"schemaVersion\": 2,", "", OCISYNC_EMANIFEST,
                   "no \"schemaVersion\"");
    MUTATION_FAILS(NULL, docker_doc, "\"config\"", "\"konfig\"", OCISYNC_EMANIFEST,
                   "manifest has no \"config\"");
    MUTATION_FAILS(NULL, docker_doc, "\"layers\"", "\"lairs\"", OCISYNC_EMANIFEST,
                   "manifest has no \"layers\"");
    MUTATION_FAILS(NULL, index_doc, "\"manifests\"", "\"manifestz\"", OCISYNC_EMANIFEST,
                   "index has no \"manifests\"");
    MUTATION_FAILS(NULL, docker_doc, "\"size\": 16724,", "", OCISYNC_EMANIFEST,
                   "manifest layer 1: missing \"size\"");
    MUTATION_FAILS(NULL, docker_doc, "\"size\": 16724,\n         \"digest\": \"" D_L2 "\"",
                   "\"size\": 16724", OCISYNC_EMANIFEST, "manifest layer 1: missing \"digest\"");
    MUTATION_FAILS(NULL, docker_doc,
                   "\"mediaType\": \"application/vnd.docker.container.image.v1+json\",", "",
                   OCISYNC_EMANIFEST, "manifest config: missing \"mediaType\"");
    MUTATION_FAILS(NULL, index_doc, "\"architecture\": \"arm\",", "", OCISYNC_EMANIFEST,
                   "index manifest 2 platform: missing \"architecture\"");
    MUTATION_FAILS(NULL, index_doc, "\"os\": \"linux\"\n", "\"os\": \"\"\n", OCISYNC_EMANIFEST,
                   "index manifest 0 platform: missing \"os\"");
}

TEST(wrong_json_types)
{
    MUTATION_FAILS(NULL, docker_doc, "\"schemaVersion\": 2", "\"schemaVersion\": \"2\"",
                   OCISYNC_EMANIFEST, "\"schemaVersion\" is not an integer");
    MUTATION_FAILS(NULL, docker_doc, "\"schemaVersion\": 2", "\"schemaVersion\": 3",
                   OCISYNC_EMANIFEST, "unsupported schemaVersion 3");
    MUTATION_FAILS(NULL, docker_doc, "\"mediaType\": \"application/vnd.docker.distribution",
                   "\"mediaType\": 7, \"x\": \"application/vnd.docker.distribution",
                   OCISYNC_EMANIFEST, "\"mediaType\" is not a string");
    MUTATION_FAILS(NULL, docker_doc, "\"layers\": [", "\"layers\": {}, \"l\": [", OCISYNC_EMANIFEST,
                   "\"layers\" is not an array");
    MUTATION_FAILS(NULL, docker_doc, "\"config\": {", "\"config\": [{", OCISYNC_EMANIFEST,
                   NULL); /* the brackets no longer balance */
    MUTATION_FAILS(NULL, docker_doc, "\"config\": {\n", "\"config\": \"x\", \"c\": {\n",
                   OCISYNC_EMANIFEST, "manifest config is not a JSON object");
    MUTATION_FAILS(NULL, index_doc, "\"manifests\": [", "\"manifests\": \"none\", \"m\": [",
                   OCISYNC_EMANIFEST, "index: \"manifests\" is not an array");
    MUTATION_FAILS(NULL, index_doc, "\"platform\": {", "\"platform\": [], \"p\": {",
                   OCISYNC_EMANIFEST, "index manifest 0 platform is not a JSON object");
    MUTATION_FAILS(NULL, index_doc, "\"os\": \"linux\"", "\"os\": 1", OCISYNC_EMANIFEST,
                   "index manifest 0 platform: \"os\" is not a string");
    MUTATION_FAILS(NULL, docker_doc, "\"layers\": [\n", "\"layers\": [\n 1,\n", OCISYNC_EMANIFEST,
                   "manifest layer 0 is not a JSON object");
    MUTATION_FAILS(NULL, subject_doc, "\"subject\": {", "\"subject\": true, \"s\": {",
                   OCISYNC_EMANIFEST, "manifest subject is not a JSON object");
}

TEST(descriptor_media_types_and_platform_fields)
{
    char longmt[400];

    /* A CR LF here would end up in a Content-Type header when the manifest is pushed. */
    MUTATION_FAILS(NULL, index_doc, "vnd.oci.image.manifest.v1+json",
                   "vnd.oci.image.manifest.v1+json\\r\\nX-Evil: 1", OCISYNC_EMANIFEST,
                   "index manifest 0: invalid mediaType");
    MUTATION_FAILS(NULL, docker_doc, "application/vnd.docker.container.image.v1+json", "",
                   OCISYNC_EMANIFEST, "manifest config: invalid mediaType \"\"");
    MUTATION_FAILS(NULL, docker_doc, "application/vnd.docker.container.image.v1+json",
                   "application/a/b", OCISYNC_EMANIFEST, "invalid mediaType");

    memcpy(longmt, "application/", 12);
    memset(longmt + 12, 'x', 300);
    longmt[312] = '\0';
    MUTATION_FAILS(NULL, docker_doc, "application/vnd.docker.container.image.v1+json", longmt,
                   OCISYNC_EMANIFEST, "manifest config: \"mediaType\" is longer than 255");

    MUTATION_FAILS(NULL, index_doc, "\"variant\": \"v8\"",
                   "\"variant\": \"v8-this-variant-is-far-too-long-to-fit\"", OCISYNC_EMANIFEST,
                   "index manifest 1 platform: \"variant\" is longer than 31");
    MUTATION_FAILS(NULL, index_doc, "\"variant\": \"v8\"", "\"variant\": \"v8/x\"",
                   OCISYNC_EMANIFEST, "contains '/'");

    /* os.version is kept, for Windows images. */
    {
        struct oci_manifest m;
        char *doc = replace(index_doc, "\"os\": \"linux\"\n",
                            "\"os\": \"windows\",\n \"os.version\": \"10.0.17763.5830\"\n");
        CHECK_INT(parse(NULL, doc, &m), 0);
        CHECK_STR(m.manifests[0].platform.os, "windows");
        CHECK_STR(m.manifests[0].platform.os_version, "10.0.17763.5830");
        oci_manifest_free(&m);
        free(doc);
    }
}

TEST(duplicate_keys)
{
    /* Two parsers could each pick a different one. */
    MUTATION_FAILS(NULL, docker_doc, "\"layers\": [", "\"config\": {}, \"layers\": [",
                   OCISYNC_EMANIFEST, "duplicate object key");
    MUTATION_FAILS(NULL, index_doc, "\"size\": 1613,", "\"size\": 1613, \"size\": 1,",
                   OCISYNC_EMANIFEST, "not valid JSON");
}

/* An image manifest with n identical layers. */
static char *many_layers(size_t n)
{
    static const char head[] = "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\","
                               "\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
                               "\",\"digest\":\"" D_CFG "\",\"size\":1},\"layers\":[";
    static const char layer[] = "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                                "\"digest\":\"" D_L1 "\",\"size\":100}";
    char *s = malloc(sizeof(head) + n * sizeof(layer) + 8);
    char *p = s;

    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        memcpy(p, layer, sizeof(layer) - 1);
        p += sizeof(layer) - 1;
    }
    strcpy(p, "]}");
    return s;
}

/* An index with n amd64 entries. */
static char *many_manifests(size_t n)
{
    static const char head[] = "{\"schemaVersion\":2,\"manifests\":[";
    static const char entry[] = "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D_AMD64
                                "\",\"size\":1,\"platform\":{\"os\":\"linux\","
                                "\"architecture\":\"amd64\"}}";
    char *s = malloc(sizeof(head) + n * sizeof(entry) + 8);
    char *p = s;

    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        memcpy(p, entry, sizeof(entry) - 1);
        p += sizeof(entry) - 1;
    }
    strcpy(p, "]}");
    return s;
}

TEST(layer_and_manifest_caps)
{
    struct oci_manifest m;
    char *doc;

    doc = many_layers(OCI_MANIFEST_MAX_LAYERS);
    CHECK_INT(parse(NULL, doc, &m), 0);
    CHECK_INT(m.n_layers, OCI_MANIFEST_MAX_LAYERS);
    CHECK_STR(m.layers[OCI_MANIFEST_MAX_LAYERS - 1].digest.str, D_L1);
    oci_manifest_free(&m);
    free(doc);

    doc = many_layers(OCI_MANIFEST_MAX_LAYERS + 1);
    FAILS(NULL, doc, OCISYNC_ETOOBIG, "manifest lists 1025 layers, over the limit of 1024");
    free(doc);

    doc = many_manifests(OCI_INDEX_MAX_MANIFESTS);
    CHECK_INT(parse(NULL, doc, &m), 0);
    CHECK_INT(m.n_manifests, OCI_INDEX_MAX_MANIFESTS);
    oci_manifest_free(&m);
    free(doc);

    doc = many_manifests(OCI_INDEX_MAX_MANIFESTS + 1);
    FAILS(NULL, doc, OCISYNC_ETOOBIG, "index lists 1025 manifests, over the limit of 1024");
    free(doc);
}

TEST(document_size_cap)
{
    struct oci_manifest m;
    size_t len = strlen(docker_doc);
    char *buf = malloc(OCI_MANIFEST_MAX_SIZE + 1);

    /* Trailing whitespace keeps the document valid, so only the size can reject it. */
    memcpy(buf, docker_doc, len);
    memset(buf + len, ' ', OCI_MANIFEST_MAX_SIZE + 1 - len);
    CHECK_INT(oci_manifest_parse(NULL, buf, OCI_MANIFEST_MAX_SIZE, &m, err, sizeof(err)), 0);
    CHECK_INT(m.n_layers, 3);
    oci_manifest_free(&m);
    CHECK_INT(oci_manifest_parse(NULL, buf, OCI_MANIFEST_MAX_SIZE + 1, &m, err, sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK(strstr(err, "4194305 bytes, over the limit of 4194304") != NULL);
    CHECK(m.layers == NULL);
    free(buf);
}

TEST(deep_nesting)
{
    struct oci_manifest m;
    size_t n = 100000;
    char *buf = malloc(n);
    char *out = NULL;
    size_t out_len = 0;
    struct oci_platform want;

    memset(buf, '[', n);
    CHECK_INT(oci_manifest_parse(NULL, buf, n, &m, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "deeper than 64") != NULL);
    CHECK_INT(oci_platform_parse("linux/amd64", &want), 0);
    CHECK_INT(oci_index_filter(buf, n, &want, 1, &out, &out_len), OCISYNC_ETOOBIG);
    CHECK(out == NULL);
    /* Objects count too, and it is the depth that is refused, whatever follows. */
    for (size_t i = 0; i + 5 <= n; i += 5)
        memcpy(buf + i, "{\"a\":", 5);
    CHECK_INT(oci_manifest_parse(NULL, buf, n, &m, err, sizeof(err)), OCISYNC_ETOOBIG);
    free(buf);
}

/* docker_doc with an extra member nested depth levels deep in total. */
static char *nested(int depth, const char *inner)
{
    char *x = malloc(2 * (size_t)depth + strlen(inner) + 32);
    char *doc;
    int arrays = depth - 1; /* the root object is the first level */

    strcpy(x, "\"x\": ");
    for (int i = 0; i < arrays; i++)
        strcat(x, "[");
    strcat(x, inner);
    for (int i = 0; i < arrays; i++)
        strcat(x, "]");
    strcat(x, ",\n   \"layers\"");
    doc = replace(docker_doc, "\"layers\"", x);
    free(x);
    return doc;
}

TEST(nesting_limit_is_exact)
{
    struct oci_manifest m;
    char *ok = nested(64, "");
    char *bad = nested(65, "");
    /* Brackets inside strings are not structure. */
    char *str = nested(
        2, "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"");

    CHECK_INT(parse(NULL, ok, &m), 0);
    CHECK_INT(m.n_layers, 3);
    oci_manifest_free(&m);
    FAILS(NULL, bad, OCISYNC_ETOOBIG, "deeper than 64");
    CHECK_INT(parse(NULL, str, &m), 0);
    oci_manifest_free(&m);
    free(ok);
    free(bad);
    free(str);
}

TEST(schema1)
{
    static const char schema1[] =
        "{\"schemaVersion\":1,\"name\":\"library/hello\",\"tag\":\"latest\","
        "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" D_L1 "\"}],"
        "\"history\":[{\"v1Compatibility\":\"{}\"}]}";

    FAILS(NULL, schema1, OCISYNC_EMEDIATYPE, "Docker schema 1");
    FAILS(OCI_MT_DOCKER_SCHEMA1_SIGNED, schema1, OCISYNC_EMEDIATYPE,
          "Docker schema 1 (" OCI_MT_DOCKER_SCHEMA1_SIGNED "), which is not supported");
    FAILS(OCI_MT_DOCKER_SCHEMA1 "; charset=utf-8", schema1, OCISYNC_EMEDIATYPE, "schema 1");
    /* Said by the Content-Type, whatever the body. */
    FAILS(OCI_MT_DOCKER_SCHEMA1_SIGNED, "not even json", OCISYNC_EMEDIATYPE, "schema 1");
    MUTATION_FAILS(NULL, docker_doc, OCI_MT_DOCKER_MANIFEST, OCI_MT_DOCKER_SCHEMA1,
                   OCISYNC_EMEDIATYPE, "schema 1");
}

TEST(unknown_media_types)
{
    /* The OCI 1.1 release candidates' artifact manifest never made it into the spec. */
    MUTATION_FAILS(
        NULL, subject_doc,
        "\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n  \"artifactType\"",
        "\"mediaType\": \"application/vnd.oci.artifact.manifest.v1+json\",\n  \"artifactType\"",
        OCISYNC_EMEDIATYPE,
        "unsupported manifest media type \"application/vnd.oci.artifact.manifest.v1+json\"");
    MUTATION_FAILS(OCI_MT_OCI_INDEX, index_doc, OCI_MT_OCI_INDEX, OCI_MT_OCI_CONFIG,
                   OCISYNC_EMEDIATYPE, OCI_MT_OCI_CONFIG);
    FAILS("application/vnd.oci.artifact.manifest.v1+json", "{\"schemaVersion\":2,\"blobs\":[]}",
          OCISYNC_EMEDIATYPE, "\"application/vnd.oci.artifact.manifest.v1+json\"");
}

TEST(null_err_and_data)
{
    struct oci_manifest m;
    char *doc = replace(docker_doc, D_L1, "sha256:bad");

    CHECK_INT(oci_manifest_parse(NULL, doc, strlen(doc), &m, NULL, 0), OCISYNC_EMANIFEST);
    CHECK_INT(oci_manifest_parse(NULL, docker_doc, strlen(docker_doc), &m, NULL, 0), 0);
    oci_manifest_free(&m);
    CHECK_INT(oci_manifest_parse(NULL, NULL, 10, &m, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(oci_manifest_parse(NULL, NULL, 0, &m, err, sizeof(err)), OCISYNC_EMANIFEST);
    /* A one-byte err buffer still ends up a terminated string. */
    err[0] = 'x';
    CHECK_INT(oci_manifest_parse(NULL, doc, strlen(doc), &m, err, 1), OCISYNC_EMANIFEST);
    CHECK_INT(err[0], '\0');
    oci_manifest_free(NULL);
    free(doc);
}

/* ---------------------------------------------------------------------------------------------
 * Platforms
 */

static void check_platform(const char *s, const char *os, const char *arch, const char *variant)
{
    struct oci_platform p;

    CHECK_INT(oci_platform_parse(s, &p), 0);
    CHECK_STR(p.os, os);
    CHECK_STR(p.arch, arch);
    CHECK_STR(p.variant, variant);
    CHECK_STR(p.os_version, "");
}

TEST(platform_parse)
{
    struct oci_platform p;
    static const char *const bad[] = {
        "",
        "linux",
        "linux/",
        "/amd64",
        "linux//v8",
        "linux/arm64/",
        "linux/arm64/v8/extra",
        "linux/amd 64",
        "linux/amd64\n",
        "linux/arm64;v8",
        "linux/abcdefghijklmnopqrstuvwxyz0123456", /* 37 > 31 */
        "linux/arm/v7\xc3\xa9",
    };

    check_platform("linux/amd64", "linux", "amd64", "");
    check_platform("linux/arm64/v8", "linux", "arm64", "v8");
    check_platform("linux/arm/v7", "linux", "arm", "v7");
    check_platform("linux/aarch64", "linux", "arm64", "");
    check_platform("linux/x86_64", "linux", "amd64", "");
    check_platform("linux/x86-64", "linux", "amd64", "");
    check_platform("linux/i386", "linux", "386", "");
    check_platform("linux/armhf", "linux", "arm", "v7");
    check_platform("linux/armel", "linux", "arm", "v6");
    check_platform("linux/arm/7", "linux", "arm", "v7");
    check_platform("Linux/AMD64", "linux", "amd64", "");
    check_platform("windows/amd64", "windows", "amd64", "");
    check_platform("linux/s390x", "linux", "s390x", "");
    check_platform("linux/ppc64le", "linux", "ppc64le", "");
    check_platform("linux/riscv64", "linux", "riscv64", "");
    check_platform("unknown/unknown", "unknown", "unknown", "");
    check_platform("linux/abcdefghijklmnopqrstuvwxyz01234", "linux",
                   "abcdefghijklmnopqrstuvwxyz01234", ""); /* exactly 31 */

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = oci_platform_parse(bad[i], &p);
        if (r != OCISYNC_EPLATFORM)
            fprintf(stderr, "platform \"%s\" parsed\n", bad[i]);
        CHECK_INT(r, OCISYNC_EPLATFORM);
        CHECK_STR(p.os, "");
    }
    CHECK_INT(oci_platform_parse(NULL, &p), OCISYNC_EPLATFORM);
}

TEST(platform_format)
{
    struct oci_platform p;
    char buf[64];

    CHECK_INT(oci_platform_parse("linux/armhf", &p), 0);
    CHECK_INT(oci_platform_format(&p, buf, sizeof(buf)), 12);
    CHECK_STR(buf, "linux/arm/v7");
    CHECK_INT(oci_platform_parse("linux/x86_64", &p), 0);
    CHECK_INT(oci_platform_format(&p, buf, sizeof(buf)), 11);
    CHECK_STR(buf, "linux/amd64");
    /* Like snprintf: the full length, a truncated string. */
    CHECK_INT(oci_platform_format(&p, buf, 6), 11);
    CHECK_STR(buf, "linux");
}

static bool match(const char *want, const char *have)
{
    struct oci_platform w, h;

    if (oci_platform_parse(want, &w) != 0 || oci_platform_parse(have, &h) != 0) {
        fprintf(stderr, "match: bad platform %s or %s\n", want, have);
        abort();
    }
    return oci_platform_match(&w, &h);
}

TEST(platform_match)
{
    struct oci_platform w, h;

    CHECK(match("linux/amd64", "linux/amd64"));
    CHECK(!match("linux/amd64", "linux/arm64"));
    CHECK(!match("linux/amd64", "windows/amd64"));
    CHECK(match("linux/arm64", "linux/arm64/v8"));
    CHECK(match("linux/arm64/v8", "linux/arm64"));
    CHECK(match("linux/arm64/v8", "linux/arm64/v8"));
    CHECK(!match("linux/arm64/v8", "linux/arm64/v9"));
    CHECK(match("linux/arm64", "linux/arm64/v9"));
    CHECK(match("linux/arm", "linux/arm/v6"));
    CHECK(match("linux/arm", "linux/arm/v7"));
    CHECK(match("linux/arm/v7", "linux/arm/v7"));
    CHECK(!match("linux/arm/v7", "linux/arm/v6"));
    CHECK(!match("linux/arm/v7", "linux/arm"));
    CHECK(!match("linux/arm/v7", "linux/arm64/v8"));
    CHECK(match("linux/armhf", "linux/arm/v7"));
    CHECK(!match("linux/amd64", "unknown/unknown"));

    /* What a document says is normalised too, without going through parse. */
    memset(&h, 0, sizeof(h));
    strcpy(h.os, "linux");
    strcpy(h.arch, "aarch64");
    CHECK_INT(oci_platform_parse("linux/arm64/v8", &w), 0);
    CHECK(oci_platform_match(&w, &h));
    strcpy(h.arch, "x86_64");
    CHECK_INT(oci_platform_parse("linux/amd64", &w), 0);
    CHECK(oci_platform_match(&w, &h));
    strcpy(h.arch, "arm");
    strcpy(h.variant, "7");
    CHECK_INT(oci_platform_parse("linux/arm/v7", &w), 0);
    CHECK(oci_platform_match(&w, &h));
    CHECK(!oci_platform_match(NULL, &h));
}

/* ---------------------------------------------------------------------------------------------
 * Filtering
 */

/* What filtering index_doc to linux/amd64 and linux/arm/v7 must give, byte for byte. */
static const char index_amd64_armv7[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":\"" D_AMD64 "\",\"size\":1613,\"platform\":{\"architecture\":\"amd64\","
    "\"os\":\"linux\"}},{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":\"" D_ARMV7 "\",\"size\":1613,\"platform\":{\"architecture\":\"arm\","
    "\"os\":\"linux\",\"variant\":\"v7\"}}],"
    "\"annotations\":{\"org.opencontainers.image.created\":\"2024-05-01T12:00:00Z\"}}";

TEST(filter_keeps_matching_entries_in_order)
{
    struct oci_platform want[2];
    struct oci_manifest m;
    char *out = NULL;
    size_t out_len = 0;

    /* Asked for in the opposite order to the index's; the index's order wins. */
    CHECK_INT(oci_platform_parse("linux/arm/v7", &want[0]), 0);
    CHECK_INT(oci_platform_parse("linux/amd64", &want[1]), 0);
    CHECK_INT(oci_index_filter(index_doc, strlen(index_doc), want, 2, &out, &out_len), 0);
    CHECK(out != NULL);
    if (out == NULL)
        return;
    CHECK_INT(out_len, strlen(out));
    CHECK_STR(out, index_amd64_armv7);

    CHECK_INT(oci_manifest_parse(OCI_MT_OCI_INDEX, out, out_len, &m, err, sizeof(err)), 0);
    CHECK_INT(m.n_manifests, 2);
    if (m.n_manifests == 2) {
        CHECK_STR(m.manifests[0].digest.str, D_AMD64);
        CHECK_STR(m.manifests[1].digest.str, D_ARMV7);
    }
    oci_manifest_free(&m);
    free(out);
}

TEST(filter_arm64_variants)
{
    struct oci_platform want;
    struct oci_manifest m;
    char *out = NULL;
    size_t out_len = 0;

    /* "linux/arm64" asks for any arm64, and the index says v8. */
    CHECK_INT(oci_platform_parse("linux/arm64", &want), 0);
    CHECK_INT(oci_index_filter(index_doc, strlen(index_doc), &want, 1, &out, &out_len), 0);
    CHECK_INT(oci_manifest_parse(NULL, out, out_len, &m, err, sizeof(err)), 0);
    CHECK_INT(m.n_manifests, 1);
    if (m.n_manifests == 1)
        CHECK_STR(m.manifests[0].digest.str, D_ARM64);
    oci_manifest_free(&m);
    free(out);
}

TEST(filter_that_keeps_everything_keeps_the_bytes)
{
    struct oci_platform want[4];
    char *doc = replace(index_doc, "\"unknown\",\n        \"os\": \"unknown\"",
                        "\"s390x\",\n        \"os\": \"linux\"");
    char *out = NULL;
    size_t out_len = 0;

    /* Same bytes, same digest: a subset that is the whole is not a new index. */
    CHECK_INT(oci_platform_parse("linux/amd64", &want[0]), 0);
    CHECK_INT(oci_platform_parse("linux/arm64", &want[1]), 0);
    CHECK_INT(oci_platform_parse("linux/arm", &want[2]), 0);
    CHECK_INT(oci_platform_parse("linux/s390x", &want[3]), 0);
    CHECK_INT(oci_index_filter(doc, strlen(doc), want, 4, &out, &out_len), 0);
    CHECK_INT(out_len, strlen(doc));
    CHECK(out != NULL && memcmp(out, doc, out_len) == 0 && out[out_len] == '\0');
    free(out);

    /* One fewer and it is rewritten. */
    CHECK_INT(oci_index_filter(doc, strlen(doc), want, 3, &out, &out_len), 0);
    CHECK(out != NULL && out_len < strlen(doc) && strstr(out, "s390x") == NULL);
    CHECK(out != NULL && strchr(out, '\n') == NULL);
    free(out);
    free(doc);
}

TEST(filter_drops_entries_without_platform)
{
    struct oci_platform want;
    struct oci_manifest m;
    char *out = NULL;
    size_t out_len = 0;
    /* A Docker manifest list whose attestation entry carries no platform at all. */
    char *doc = replace(index_doc,
                        ",\n      \"platform\": {\n        \"architecture\": \"unknown\",\n        "
                        "\"os\": \"unknown\"\n      }",
                        "");
    char *list = replace(doc, OCI_MT_OCI_INDEX, OCI_MT_DOCKER_LIST);

    CHECK_INT(parse(NULL, list, &m), 0);
    CHECK_INT(m.n_manifests, 4);
    CHECK(!m.manifests[3].has_platform);
    oci_manifest_free(&m);

    CHECK_INT(oci_platform_parse("linux/amd64", &want), 0);
    CHECK_INT(oci_index_filter(list, strlen(list), &want, 1, &out, &out_len), 0);
    CHECK(out != NULL && strstr(out, D_ATT) == NULL);
    CHECK(out != NULL && strstr(out, "\"mediaType\":\"" OCI_MT_DOCKER_LIST "\"") != NULL);
    CHECK_INT(oci_manifest_parse(OCI_MT_DOCKER_LIST, out, out_len, &m, err, sizeof(err)), 0);
    CHECK_INT(m.n_manifests, 1);
    oci_manifest_free(&m);
    free(out);
    free(doc);
    free(list);
}

TEST(filter_errors)
{
    struct oci_platform want;
    char *out = (char *)"untouched";
    size_t out_len = 99;
    char *doc;

    CHECK_INT(oci_platform_parse("linux/s390x", &want), 0);
    CHECK_INT(oci_index_filter(index_doc, strlen(index_doc), &want, 1, &out, &out_len),
              OCISYNC_ENOPLATFORM);
    CHECK(out == NULL);
    CHECK_INT(out_len, 0);
    CHECK_INT(oci_index_filter(index_doc, strlen(index_doc), &want, 0, &out, &out_len),
              OCISYNC_ENOPLATFORM);

    /* Only an index can be filtered, and only a valid one. */
    CHECK_INT(oci_platform_parse("linux/amd64", &want), 0);
    CHECK_INT(oci_index_filter(docker_doc, strlen(docker_doc), &want, 1, &out, &out_len),
              OCISYNC_EMANIFEST);
    CHECK(out == NULL);
    doc = replace(index_doc, D_ARMV7, "sha256:ABC");
    CHECK_INT(oci_index_filter(doc, strlen(doc), &want, 1, &out, &out_len), OCISYNC_EMANIFEST);
    CHECK(out == NULL);
    free(doc);
    CHECK_INT(oci_index_filter(index_doc, strlen(index_doc), NULL, 1, &out, &out_len),
              OCISYNC_EUSAGE);

    /* Every truncation of a good index fails. */
    for (size_t n = 0; n < strlen(index_doc); n++) {
        int r = oci_index_filter(index_doc, n, &want, 1, &out, &out_len);
        if (r != OCISYNC_EMANIFEST || out != NULL) {
            fprintf(stderr, "filter prefix %zu: %s\n", n, ocisync_err_name(r));
            CHECK(0);
            break;
        }
    }
}

/* Docker schema 2 to OCI media types, as skopeo writes a Docker image into a layout. */
TEST(to_oci_manifest)
{
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/"
        "vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":"
        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\",\"size\":9},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":"
        "\"sha256:3333333333333333333333333333333333333333333333333333333333333333\",\"size\":5,"
        "\"urls\":[\"https://example.com/l\"]}]}";
    static const char want[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":"
        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\",\"size\":9},"
        "{\"mediaType\":\"application/"
        "vnd.oci.image.layer.nondistributable.v1.tar+gzip\",\"digest\":"
        "\"sha256:3333333333333333333333333333333333333333333333333333333333333333\",\"size\":5,"
        "\"urls\":[\"https://example.com/l\"]}]}";
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(oci_manifest_to_oci(doc, strlen(doc), NULL, 0, &out, &len), 0);
    CHECK_STR(out, want);
    CHECK_INT(len, strlen(want));
    free(out);
    CHECK_INT(oci_manifest_to_oci("{", 1, NULL, 0, &out, &len), OCISYNC_EMANIFEST);
    CHECK(out == NULL);
}

/* A manifest list becomes an OCI index naming its children's converted bytes. */
TEST(to_oci_index)
{
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":"
        "\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":["
        "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":"
        "\"sha256:4444444444444444444444444444444444444444444444444444444444444444\",\"size\":585,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}}]}";
    static const char want[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":"
        "\"sha256:5555555555555555555555555555555555555555555555555555555555555555\",\"size\":557,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}}]}";
    struct oci_converted map;
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(
        oci_digest_parse_str(
            "sha256:4444444444444444444444444444444444444444444444444444444444444444", &map.from),
        0);
    CHECK_INT(
        oci_digest_parse_str(
            "sha256:5555555555555555555555555555555555555555555555555555555555555555", &map.to),
        0);
    map.size = 557;
    CHECK_INT(oci_manifest_to_oci(doc, strlen(doc), &map, 1, &out, &len), 0);
    CHECK_STR(out, want);
    free(out);
    CHECK(oci_media_type_is_docker(OCI_MT_DOCKER_LIST));
    CHECK(!oci_media_type_is_docker(OCI_MT_OCI_INDEX));
}

/* skopeo's -f v2s2: a fresh schema 2 document in its field order, annotations gone. */
TEST(to_docker_manifest)
{
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":"
        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\",\"size\":9,"
        "\"annotations\":{\"a\":\"b\"}},{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
        "\"digest\":\"sha256:3333333333333333333333333333333333333333333333333333333333333333\","
        "\"size\":5}],\"annotations\":{\"org.opencontainers.image.created\":\"x\"}}";
    static const char want[] =
        "{\"schemaVersion\":2,\"mediaType\":"
        "\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
        "\"application/vnd.docker.container.image.v1+json\",\"size\":7,\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\"},"
        "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        "\"size\":9,\"digest\":"
        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\",\"size\":5,\"digest\":"
        "\"sha256:3333333333333333333333333333333333333333333333333333333333333333\"}]}";
    char *out = NULL, why[256];
    size_t len = 0;
    CHECK_INT(
        oci_manifest_to_docker(doc, strlen(doc), NULL, 0, false, &out, &len, why, sizeof(why)), 0);
    CHECK_STR(out, want);
    CHECK_INT(len, strlen(want));
    free(out);
}

/* What schema 2 cannot hold is refused, saying what. */
TEST(to_docker_refusals)
{
    static const char zstd[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":"
        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\",\"size\":9}]}";
    static const char artifact[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.example.sbom\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[]}";
    static const char nested[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":"
        "\"sha256:4444444444444444444444444444444444444444444444444444444444444444\",\"size\":3}]}";
    char *out = NULL, why[256];
    size_t len = 0;
    CHECK_INT(
        oci_manifest_to_docker(zstd, strlen(zstd), NULL, 0, false, &out, &len, why, sizeof(why)),
        OCISYNC_EMEDIATYPE);
    CHECK(out == NULL);
    CHECK(strstr(why, "tar+zstd") != NULL && strstr(why, "gzip and plain tars only") != NULL);
    /* A caller recompressing zstd into gzip gets a placeholder type it renames later. */
    CHECK_INT(
        oci_manifest_to_docker(zstd, strlen(zstd), NULL, 0, true, &out, &len, why, sizeof(why)), 0);
    CHECK(out != NULL && strstr(out, "application/vnd.docker.image.rootfs.diff.tar.zstd") != NULL);
    free(out);
    out = NULL;
    CHECK_INT(oci_manifest_to_docker(artifact, strlen(artifact), NULL, 0, false, &out, &len, why,
                                     sizeof(why)),
              OCISYNC_EMEDIATYPE);
    CHECK(strstr(why, "application/vnd.example.sbom") != NULL);
    CHECK_INT(oci_manifest_to_docker(nested, strlen(nested), NULL, 0, false, &out, &len, why,
                                     sizeof(why)),
              OCISYNC_EMEDIATYPE);
    CHECK(strstr(why, "image manifests only") != NULL);
    CHECK_INT(oci_manifest_to_docker("{", 1, NULL, 0, false, &out, &len, why, sizeof(why)),
              OCISYNC_EMANIFEST);
}

/* An index becomes a list naming the converted children, platforms in schema 2's order. */
TEST(to_docker_index)
{
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":"
        "\"sha256:4444444444444444444444444444444444444444444444444444444444444444\",\"size\":557,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"},"
        "\"annotations\":{\"k\":\"v\"}}],\"annotations\":{\"k\":\"v\"}}";
    static const char want[] =
        "{\"schemaVersion\":2,\"mediaType\":"
        "\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":[{"
        "\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":585,"
        "\"digest\":\"sha256:5555555555555555555555555555555555555555555555555555555555555555\","
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}";
    struct oci_converted map;
    char *out = NULL, why[256];
    size_t len = 0;
    CHECK_INT(
        oci_digest_parse_str(
            "sha256:4444444444444444444444444444444444444444444444444444444444444444", &map.from),
        0);
    CHECK_INT(
        oci_digest_parse_str(
            "sha256:5555555555555555555555555555555555555555555555555555555555555555", &map.to),
        0);
    map.size = 585;
    CHECK_INT(
        oci_manifest_to_docker(doc, strlen(doc), &map, 1, false, &out, &len, why, sizeof(why)), 0);
    CHECK_STR(out, want);
    free(out);
}

/* Recompressed layers renamed: digest, size and media type; everything else kept in order. */
TEST(relink)
{
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":"
        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\",\"size\":9,"
        "\"annotations\":{\"a\":\"b\"}}]}";
    static const char want[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":"
        "\"sha256:6666666666666666666666666666666666666666666666666666666666666666\",\"size\":8,"
        "\"annotations\":{\"a\":\"b\"}}]}";
    struct oci_relink map;
    char *out = NULL;
    size_t len = 0;
    memset(&map, 0, sizeof(map));
    CHECK_INT(
        oci_digest_parse_str(
            "sha256:2222222222222222222222222222222222222222222222222222222222222222", &map.from),
        0);
    CHECK_INT(
        oci_digest_parse_str(
            "sha256:6666666666666666666666666666666666666666666666666666666666666666", &map.to),
        0);
    map.size = 8;
    snprintf(map.media_type, sizeof(map.media_type), "%s", OCI_MT_OCI_LAYER_ZSTD);
    CHECK_INT(oci_manifest_relink(doc, strlen(doc), &map, 1, &out, &len), 0);
    CHECK_STR(out, want);
    free(out);
    CHECK_INT(oci_manifest_relink("[]", 2, &map, 1, &out, &len), OCISYNC_EMANIFEST);
}

TEST_MAIN(T(index_real), T(docker_manifest_real), T(oci_manifest_with_subject),
          T(artifact_with_no_layers), T(content_type_handling),
          T(kind_from_content_type_or_structure), T(media_types), T(truncated_at_every_length),
          T(not_json), T(manifests_and_layers_together), T(bad_digests),
          T(long_strings_are_clipped_in_messages), T(sizes), T(missing_fields), T(wrong_json_types),
          T(descriptor_media_types_and_platform_fields), T(duplicate_keys),
          T(layer_and_manifest_caps), T(document_size_cap), T(deep_nesting),
          T(nesting_limit_is_exact), T(schema1), T(unknown_media_types), T(null_err_and_data),
          T(platform_parse), T(platform_format), T(platform_match),
          T(filter_keeps_matching_entries_in_order), T(filter_arm64_variants),
          T(filter_that_keeps_everything_keeps_the_bytes), T(filter_drops_entries_without_platform),
          T(filter_errors), T(to_oci_manifest), T(to_oci_index), T(to_docker_manifest),
          T(to_docker_refusals), T(to_docker_index), T(relink))
