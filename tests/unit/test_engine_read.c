/*
 * The read commands' pure parts: listing pages (caps, bad names), skopeo
 * inspect's document and its --config form, and platform selection.
 */
#include "engine/read.h"
#include "test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

TEST(pages)
{
    char **names = NULL, fi[400] = "", err[256];
    size_t n = 0, cap = 0, invalid = 0;
    const char *p1 = "{\"name\":\"x\",\"tags\":[\"v1\",\"../etc\",\"v2\",7,\"\\u001b[2J\"]}";
    const char *p2 = "{\"name\":\"x\",\"tags\":null}";
    CHECK_INT(engine_list_take_page(p1, strlen(p1), true, &names, &n, &cap, &invalid, fi,
                                    sizeof(fi), err, sizeof(err)),
              0);
    CHECK_INT(engine_list_take_page(p2, strlen(p2), true, &names, &n, &cap, &invalid, fi,
                                    sizeof(fi), err, sizeof(err)),
              0);
    CHECK_INT((int)n, 2);
    CHECK_STR(names[0], "v1");
    CHECK_STR(names[1], "v2");
    CHECK_INT((int)invalid, 3);
    CHECK_STR(fi, "../etc");
    /* Repositories keep their paths; tags may not have slashes. */
    {
        const char *c = "{\"repositories\":[\"team/app\",\"a\"]}";
        CHECK_INT(engine_list_take_page(c, strlen(c), false, &names, &n, &cap, &invalid, fi,
                                        sizeof(fi), err, sizeof(err)),
                  0);
        CHECK_INT((int)n, 4);
        CHECK_STR(names[2], "team/app");
    }
    free_names(names, n);
}

TEST(bad_pages)
{
    char **names = NULL, err[256];
    size_t n = 0, cap = 0, invalid = 0, len;
    char *big;
    CHECK_INT(engine_list_take_page("[1,2]", 5, true, &names, &n, &cap, &invalid, NULL, 0, err,
                                    sizeof(err)),
              OCISYNC_EREGISTRY);
    CHECK_INT(engine_list_take_page("{\"tags\":\"v1\"}", 13, true, &names, &n, &cap, &invalid, NULL,
                                    0, err, sizeof(err)),
              OCISYNC_EREGISTRY);
    CHECK(strstr(err, "not a list") != NULL);
    CHECK_INT(engine_list_take_page("{\"tags\":[", 9, true, &names, &n, &cap, &invalid, NULL, 0,
                                    err, sizeof(err)),
              OCISYNC_EREGISTRY);
    /* A page of far more values than any page asked for is refused before parsing. */
    len = 16 + 2 * (size_t)(ENGINE_LIST_PAGE_MAX_VALUES + 10);
    big = malloc(len);
    {
        size_t o = (size_t)sprintf(big, "{\"tags\":[");
        for (size_t i = 0; i < ENGINE_LIST_PAGE_MAX_VALUES + 10; i++) {
            big[o++] = '0';
            big[o++] = ',';
        }
        big[o - 1] = ']';
        big[o++] = '}';
        big[o] = '\0';
    }
    CHECK_INT(engine_list_take_page(big, strlen(big), true, &names, &n, &cap, &invalid, NULL, 0,
                                    err, sizeof(err)),
              OCISYNC_ETOOBIG);
    free(big);
    CHECK_INT((int)n, 0);
    free_names(names, n);
}

static const char manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
    "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\",\"size\":2},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":"
    "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":42,"
    "\"annotations\":{\"b\":\"2\",\"a\":\"1\"}}]}";

TEST(inspect_doc)
{
    const char *cfg = "{\"created\":\"2024-01-02T03:04:05.5Z\",\"architecture\":\"arm64\","
                      "\"variant\":\"v8\",\"os\":\"linux\",\"docker_version\":\"24.0\","
                      "\"config\":{\"Labels\":{\"z\":\"1\",\"a\":\"2\"}},\"rootfs\":{}}";
    const char *tags[] = {"v1", "v2"};
    char *out = NULL, err[256];
    size_t len;
    json_t *d;
    CHECK_INT(engine_inspect_json("r.example/x", "sha256:ab", tags, 2, manifest,
                                  sizeof(manifest) - 1, cfg, strlen(cfg), NULL, &out, &len, err,
                                  sizeof(err)),
              0);
    CHECK(out[len - 1] == '\n');
    /* skopeo's order, with Variant after Architecture and LayersData after Layers. */
    CHECK(strstr(out, "\"Name\"") < strstr(out, "\"Digest\""));
    CHECK(strstr(out, "\"Architecture\"") < strstr(out, "\"Variant\""));
    CHECK(strstr(out, "\"Variant\"") < strstr(out, "\"Os\""));
    CHECK(strstr(out, "\"Layers\"") < strstr(out, "\"LayersData\""));
    CHECK(strstr(out, "\"LayersData\"") < strstr(out, "\"Env\""));
    /* Labels sorted as Go marshals a map. */
    CHECK(strstr(out, "\"a\": \"2\"") < strstr(out, "\"z\": \"1\""));
    d = json_loads(out, 0, NULL);
    CHECK(d != NULL);
    CHECK_STR(json_string_value(json_object_get(d, "DockerVersion")), "24.0");
    CHECK(json_is_null(json_object_get(d, "Env")));
    CHECK_INT((int)json_array_size(json_object_get(d, "RepoTags")), 2);
    CHECK_INT((int)json_integer_value(
                  json_object_get(json_array_get(json_object_get(d, "LayersData"), 0), "Size")),
              42);
    CHECK(json_object_get(d, "Platforms") == NULL);
    json_decref(d);
    free(out);
    /* No name (a layout), no labels, no created: omitted and nulls as skopeo. */
    cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    CHECK_INT(engine_inspect_json("", "sha256:ab", NULL, 0, manifest, sizeof(manifest) - 1, cfg,
                                  strlen(cfg), NULL, &out, &len, err, sizeof(err)),
              0);
    d = json_loads(out, 0, NULL);
    CHECK(json_object_get(d, "Name") == NULL);
    CHECK(json_is_null(json_object_get(d, "Created")));
    CHECK(json_is_null(json_object_get(d, "Labels")));
    CHECK(json_object_get(d, "Variant") == NULL);
    json_decref(d);
    free(out);
    /* A config that is not an object, or nests too deep, is refused. */
    CHECK(engine_inspect_json("", "sha256:ab", NULL, 0, manifest, sizeof(manifest) - 1, "[]", 2,
                              NULL, &out, &len, err, sizeof(err)) != 0);
    {
        char deep[200];
        memset(deep, '[', sizeof(deep));
        CHECK(engine_inspect_json("", "sha256:ab", NULL, 0, manifest, sizeof(manifest) - 1, deep,
                                  sizeof(deep), NULL, &out, &len, err, sizeof(err)) != 0);
    }
}

TEST(config_doc)
{
    const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"container\":\"abc\","
                      "\"config\":{\"Hostname\":\"h\",\"Env\":[\"A=1\"],\"Cmd\":[],"
                      "\"ExposedPorts\":{\"80/tcp\":{},\"443/tcp\":{}}},\"rootfs\":{\"type\":"
                      "\"layers\",\"diff_ids\":[]},\"history\":[{\"created_by\":\"x\","
                      "\"empty_layer\":true}],\"created\":\"2024-01-01T00:00:00Z\"}";
    char *out = NULL, err[256];
    size_t len;
    json_t *d, *c;
    CHECK_INT(engine_inspect_config_json(cfg, strlen(cfg), &out, &len, err, sizeof(err)), 0);
    CHECK(strstr(out, "\"created\"") < strstr(out, "\"architecture\""));
    d = json_loads(out, 0, NULL);
    c = json_object_get(d, "config");
    /* Docker-only fields are gone; empty lists are left out. */
    CHECK(json_object_get(d, "container") == NULL);
    CHECK(json_object_get(c, "Hostname") == NULL);
    CHECK(json_object_get(c, "Cmd") == NULL);
    CHECK_INT((int)json_array_size(json_object_get(c, "Env")), 1);
    CHECK(strstr(out, "\"443/tcp\"") < strstr(out, "\"80/tcp\""));
    CHECK(json_is_true(
        json_object_get(json_array_get(json_object_get(d, "history"), 0), "empty_layer")));
    json_decref(d);
    free(out);
}

TEST(pick)
{
    struct oci_descriptor ds[2];
    struct oci_manifest m;
    const struct oci_descriptor *got;
    char err[512];
    memset(ds, 0, sizeof(ds));
    memset(&m, 0, sizeof(m));
    ds[0].has_platform = ds[1].has_platform = true;
    oci_platform_parse("linux/amd64", &ds[0].platform);
    oci_platform_parse("linux/arm64/v8", &ds[1].platform);
    m.kind = OCI_KIND_INDEX;
    m.manifests = ds;
    m.n_manifests = 2;
    CHECK_INT(engine_read_pick(&m, "linux/arm64", &got, err, sizeof(err)), 0);
    CHECK(got == &ds[1]);
    CHECK_INT(engine_read_pick(&m, "linux/s390x", &got, err, sizeof(err)), OCISYNC_ENOPLATFORM);
    CHECK(strstr(err, "linux/amd64, linux/arm64/v8") != NULL);
    CHECK_INT(engine_read_pick(&m, "linux", &got, err, sizeof(err)), OCISYNC_EPLATFORM);
    CHECK_INT(engine_read_pick(&m, "linux/\x1b", &got, err, sizeof(err)), OCISYNC_EPLATFORM);
    CHECK(strchr(err, '\x1b') == NULL);
}

TEST_MAIN(T(pages), T(bad_pages), T(inspect_doc), T(config_doc), T(pick))
