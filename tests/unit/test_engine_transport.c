/* The one parser of where an image is: src/engine/transport.c. */
#include "test.h"

#include "engine/transport.h"

static void parses(const char *s, enum engine_transport_kind kind, const char *path,
                   const char *name, const char *formatted)
{
    struct engine_transport t;
    char err[256], buf[1024];
    CHECK_INT(engine_transport_parse(s, &t, err, sizeof(err)), 0);
    CHECK_INT(t.kind, kind);
    CHECK_INT(ocisync_location_of(s), kind);
    if (kind != ENGINE_TRANSPORT_REGISTRY) {
        CHECK_STR(t.path, path);
        CHECK_STR(t.name, name);
    }
    engine_transport_format(&t, buf, sizeof(buf));
    CHECK_STR(buf, formatted);
}

static void refused(const char *s, int rc, const char *says)
{
    struct engine_transport t;
    char err[256];
    CHECK_INT(engine_transport_parse(s, &t, err, sizeof(err)), rc);
    CHECK(strstr(err, says) != NULL);
    CHECK_INT(ocisync_location_of(s), 0);
}

TEST(kinds)
{
    parses("alpine", ENGINE_TRANSPORT_REGISTRY, NULL, NULL, "docker.io/library/alpine:latest");
    parses("docker://127.0.0.1:5000/team/app:v1", ENGINE_TRANSPORT_REGISTRY, NULL, NULL,
           "127.0.0.1:5000/team/app:v1");
    parses("oci:/tmp/lay", ENGINE_TRANSPORT_LAYOUT, "/tmp/lay", "", "oci:/tmp/lay");
    parses("oci:/tmp/lay:v1.2", ENGINE_TRANSPORT_LAYOUT, "/tmp/lay", "v1.2", "oci:/tmp/lay:v1.2");
    parses("oci-archive:out.tar:app", ENGINE_TRANSPORT_OCI_ARCHIVE, "out.tar", "app",
           "oci-archive:out.tar:app");
    /* docker-archive splits at the first colon: the rest is REPO:TAG. */
    parses("docker-archive:img.tar:docker.io/x:1", ENGINE_TRANSPORT_DOCKER_ARCHIVE, "img.tar",
           "docker.io/x:1", "docker-archive:img.tar:docker.io/x:1");
    parses("docker-archive:img.tar", ENGINE_TRANSPORT_DOCKER_ARCHIVE, "img.tar", "",
           "docker-archive:img.tar");
    /* dir: takes the whole rest as its path, colons included, trailing slashes dropped. */
    parses("dir:/tmp/x", ENGINE_TRANSPORT_DIR, "/tmp/x", "", "dir:/tmp/x");
    parses("dir:/tmp/a:b/", ENGINE_TRANSPORT_DIR, "/tmp/a:b", "", "dir:/tmp/a:b");
}

TEST(refusals)
{
    refused("oci:", OCISYNC_EUSAGE, "expected oci:DIRECTORY[:NAME]");
    refused("oci-archive:", OCISYNC_EUSAGE, "expected oci-archive:FILE[:NAME]");
    refused("docker-archive::x", OCISYNC_EUSAGE, "expected docker-archive:FILE[:REPO:TAG]");
    refused("dir:", OCISYNC_EUSAGE, "expected dir:DIRECTORY");
    refused("containers-storage:alpine", OCISYNC_EUSAGE, "not supported yet");
    refused("https://example.com/app", OCISYNC_EUSAGE, "unsupported transport");
    refused("Foo/Bar", OCISYNC_EREF, "invalid reference");
    CHECK_INT(ocisync_location_of(NULL), 0);
}

TEST(layout_value)
{
    struct engine_transport t;
    char buf[256];
    engine_transport_layout(&t, "/tmp/staging", "build");
    CHECK_INT(t.kind, ENGINE_TRANSPORT_LAYOUT);
    engine_transport_format(&t, buf, sizeof(buf));
    CHECK_STR(buf, "oci:/tmp/staging:build");
}

TEST_MAIN(T(kinds), T(refusals), T(layout_value))
