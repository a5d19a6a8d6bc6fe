/*
 * The config, manifest and index of a built image: on scratch and on an
 * alpine-like base, each kind of change, the Docker variants, and every
 * validation error with its message. Every manifest and index written is
 * parsed back with oci_manifest_parse.
 */
#include "test.h"

#include "oci/imgconfig.h"
#include "oci/manifest.h"
#include "ocisync.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdbool.h>

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define HEX_E "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
#define BASE_DIFF "sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8"
#define BASE_LAYER "sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf9"
#define BASE_CFG "sha256:05455a08881ea9cf0e752bc48e61bbd71a34c029bb13df01e40e3e70e0d007bd"
#define BASE_MANIFEST_DIGEST                                                                       \
    "sha256:6457d53fb065d6f250e1504b9bc42d5b6c65941d57532c072d929dd0628977d0"

/* As `docker inspect alpine` shows it, trimmed, plus a field nobody knows. */
static const char alpine_config[] =
    "{\"architecture\":\"amd64\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/"
    "usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"/bin/sh\"],\"WorkingDir\":\"/"
    "\","
    "\"Labels\":{\"maintainer\":\"alpine\",\"keep\":\"me\"},\"StopSignal\":"
    "\"SIGTERM\","
    "\"Volumes\":{\"/data\":{}},\"ArgsEscaped\":true,\"OnBuild\":null},"
    "\"created\":\"2024-01-27T00:00:00Z\",\"author\":\"the alpine builders\","
    "\"history\":[{\"created\":\"2024-01-27T00:00:00Z\",\"created_by\":\"/bin/"
    "sh -c #(nop) ADD "
    "file:37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473 in "
    "/ \"},"
    "{\"created\":\"2024-01-27T00:00:00Z\",\"created_by\":\"/bin/sh -c #(nop)  "
    "CMD "
    "[\\\"/bin/"
    "sh\\\"]\",\"empty_layer\":true}],\"os\":\"linux\",\"rootfs\":{\"type\":"
    "\"layers\","
    "\"diff_ids\":[\"" BASE_DIFF "\"]},\"x-unknown\":{\"nested\":[1,2.5,{\"a\":\"b\"}]}}";

/* The same document with its keys in another order. */
static const char alpine_config_reordered[] =
    "{\"x-unknown\":{\"nested\":[1,2.5,{\"a\":\"b\"}]},\"rootfs\":{\"diff_"
    "ids\":[\"" BASE_DIFF "\"],\"type\":\"layers\"},\"os\":\"linux\","
    "\"history\":[{\"created_by\":\"/bin/sh -c #(nop) "
    "ADD file:37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473 "
    "in / \","
    "\"created\":\"2024-01-27T00:00:00Z\"},{\"empty_layer\":true,\"created\":"
    "\"2024-01-27T00:00:00Z\",\"created_by\":\"/bin/sh -c #(nop)  CMD "
    "[\\\"/bin/sh\\\"]\"}],"
    "\"author\":\"the alpine "
    "builders\",\"created\":\"2024-01-27T00:00:00Z\",\"config\":{"
    "\"OnBuild\":null,\"ArgsEscaped\":true,\"Volumes\":{\"/"
    "data\":{}},\"StopSignal\":\"SIGTERM\","
    "\"Labels\":{\"keep\":\"me\",\"maintainer\":\"alpine\"},\"WorkingDir\":\"/"
    "\",\"Cmd\":"
    "[\"/bin/sh\"],\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/"
    "usr/bin:/sbin:/bin\""
    "]},\"architecture\":\"amd64\"}";

/* alpine's Docker manifest. */
static const char alpine_docker_manifest[] =
    "{\n   \"schemaVersion\": 2,\n   \"mediaType\": "
    "\"application/vnd.docker.distribution.manifest.v2+json\",\n   \"config\": "
    "{\n      "
    "\"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      "
    "\"size\": 1471,\n"
    "      \"digest\": \"" BASE_CFG "\"\n   },\n   \"layers\": [\n      {\n         \"mediaType\": "
    "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         "
    "\"size\": 3408729,\n"
    "         \"digest\": \"" BASE_LAYER "\"\n      }\n   ]\n}";

/* An OCI base whose layer carries annotations and urls that must survive. */
static const char oci_base_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/"
    "vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/"
    "vnd.oci.image.config.v1+json\",\"digest\":\"" BASE_CFG
    "\",\"size\":1471},\"layers\":[{\"mediaType\":\"application/"
    "vnd.oci.image.layer.v1.tar+gzip\","
    "\"digest\":\"" BASE_LAYER "\",\"size\":3408729,\"annotations\":{\"x.layer\":\"base\"},"
    "\"urls\":[\"https://example.com/"
    "layer\"]}],\"annotations\":{\"org.opencontainers.image."
    "title\":\"base\"}}";

static const char oci_base_zstd_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/"
    "vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/"
    "vnd.oci.image.config.v1+json\",\"digest\":\"" BASE_CFG
    "\",\"size\":1471},\"layers\":[{\"mediaType\":\"application/"
    "vnd.oci.image.layer.v1.tar+zstd\","
    "\"digest\":\"" BASE_LAYER "\",\"size\":3408729}]}";

static struct oci_digest dig(const char *s)
{
    struct oci_digest d;
    memset(&d, 0, sizeof(d));
    if (oci_digest_parse_str(s, &d) != 0)
        fprintf(stderr, "bad test digest %s\n", s);
    return d;
}

static struct oci_platform plat(const char *s)
{
    struct oci_platform p;
    if (oci_platform_parse(s, &p) != 0)
        fprintf(stderr, "bad test platform %s\n", s);
    return p;
}

/* One gzip layer, "ocisync: ./dist -> /app". */
static struct oci_build_layer layer(const char *diff_hex, const char *blob_hex, const char *mt)
{
    struct oci_build_layer l;
    char buf[80];

    memset(&l, 0, sizeof(l));
    snprintf(buf, sizeof(buf), "sha256:%s", diff_hex);
    l.diff_id = dig(buf);
    snprintf(buf, sizeof(buf), "sha256:%s", blob_hex);
    l.digest = dig(buf);
    l.size = 1234;
    l.media_type = mt;
    l.created_by = "ocisync: ./dist -> /app";
    return l;
}

static json_t *load(const char *s, size_t len)
{
    json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    CHECK(j != NULL);
    return j;
}

/* j at a path of object keys, "config", "Env" ... NULL-terminated. */
static json_t *at(json_t *j, ...)
{
    va_list ap;
    const char *k;

    va_start(ap, j);
    while (j != NULL && (k = va_arg(ap, const char *)) != NULL)
        j = json_object_get(j, k);
    va_end(ap);
    return j;
}

static const char *str_at(json_t *j, const char *a, const char *b)
{
    json_t *v = b != NULL ? at(j, a, b, (char *)NULL) : at(j, a, (char *)NULL);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The strings of array arr joined with '|', for one comparison. */
static const char *joined(json_t *arr, char *buf, size_t len)
{
    size_t i, n = 0;
    json_t *v;

    buf[0] = '\0';
    if (!json_is_array(arr))
        return "(not an array)";
    json_array_foreach(arr, i, v)
    {
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "|" : "",
                              json_is_string(v) ? json_string_value(v) : "(not a string)");
        if (n >= len)
            break;
    }
    return buf;
}

static bool contains(const char *haystack, const char *needle)
{
    bool ok = strstr(haystack, needle) != NULL;
    if (!ok)
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", haystack, needle);
    return ok;
}

/* Builds a config on the alpine base; returns the code, *out on success. */
static int build_alpine(const struct oci_build_changes *ch, const char *platform, char **out,
                        size_t *len, char *err, size_t errlen)
{
    struct oci_platform p = plat(platform);
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);

    return oci_build_config(alpine_config, strlen(alpine_config), 1, &p, ch, &l, 1, out, len, err,
                            errlen);
}

TEST(time_rfc3339)
{
    char buf[32];

    oci_time_rfc3339(0, buf, sizeof(buf));
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    oci_time_rfc3339(1704164645, buf, sizeof(buf));
    CHECK_STR(buf, "2024-01-02T03:04:05Z");
    oci_time_rfc3339(951782400, buf, sizeof(buf)); /* a leap day in a century year */
    CHECK_STR(buf, "2000-02-29T00:00:00Z");
    oci_time_rfc3339(4107542399LL, buf, sizeof(buf)); /* 2100 is no leap year */
    CHECK_STR(buf, "2100-02-28T23:59:59Z");
    oci_time_rfc3339(4107542400LL, buf, sizeof(buf));
    CHECK_STR(buf, "2100-03-01T00:00:00Z");
    oci_time_rfc3339(-1, buf, sizeof(buf));
    CHECK_STR(buf, "1969-12-31T23:59:59Z");
    oci_time_rfc3339(253402300799LL, buf, sizeof(buf));
    CHECK_STR(buf, "9999-12-31T23:59:59Z");
    oci_time_rfc3339(INT64_MAX, buf, sizeof(buf));
    CHECK_STR(buf, "9999-12-31T23:59:59Z");
    oci_time_rfc3339(INT64_MIN, buf, sizeof(buf));
    CHECK_STR(buf, "0000-01-01T00:00:00Z");
    oci_time_rfc3339(0, buf, 5);
    CHECK_STR(buf, "1970");
}

TEST(scratch_config)
{
    static const char *const entrypoint[] = {"/app/server", "--port=8080"};
    struct oci_platform p = plat("linux/arm64/v8");
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    struct oci_build_changes ch;
    char err[256], *out = NULL;
    size_t len = 0;

    memset(&ch, 0, sizeof(ch));
    ch.created = 1704164645;
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)), 0);
    /* Sorted keys, no Env: a scratch image has only what it is given. */
    CHECK_STR(out, "{\"architecture\":\"arm64\",\"config\":{},\"created\":\"2024-"
                   "01-02T03:04:05Z\","
                   "\"history\":[{\"comment\":\"ocisync\",\"created\":\"2024-01-"
                   "02T03:04:05Z\","
                   "\"created_by\":\"ocisync: ./dist -> "
                   "/app\"}],\"os\":\"linux\",\"rootfs\":{"
                   "\"diff_ids\":[\"sha256:" HEX_A "\"],\"type\":\"layers\"},\"variant\":\"v8\"}");
    CHECK_INT(len, out != NULL ? strlen(out) : 0);
    free(out);

    ch.set_entrypoint = true;
    ch.entrypoint = entrypoint;
    ch.n_entrypoint = 2;
    ch.author = "dev <dev@example.com>";
    p = plat("linux/amd64");
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)), 0);
    CHECK_STR(out, "{\"architecture\":\"amd64\",\"author\":\"dev "
                   "<dev@example.com>\",\"config\":{"
                   "\"Entrypoint\":[\"/app/server\",\"--port=8080\"]},\"created\":"
                   "\"2024-01-02T03:04:05Z\",\"history\":[{\"author\":\"dev "
                   "<dev@example.com>\","
                   "\"comment\":\"ocisync\",\"created\":\"2024-01-02T03:04:05Z\","
                   "\"created_by\":"
                   "\"ocisync: ./dist -> "
                   "/app\"}],\"os\":\"linux\",\"rootfs\":{\"diff_ids\":["
                   "\"sha256:" HEX_A "\"],\"type\":\"layers\"}}");
    free(out);
}

/*
 * What a Dockerfile sets beyond the flags (volumes, stop signal, shell,
 * healthcheck) and an explicit history, metadata-only steps included.
 */
TEST(dockerfile_fields)
{
    static const char *const vols[] = {"/data", "/cache"};
    static const char *const shell[] = {"/bin/bash", "-c"};
    static const char *const test[] = {"CMD-SHELL", "wget -q -O- localhost:8080"};
    struct oci_healthcheck hc = {test, 2, 30000000000LL, 0, 5000000000LL, 0, 3};
    struct oci_build_history hist[] = {
        {"WORKDIR /app", true}, {"COPY app /app # buildkit", false}, {"ENV A=1", true}};
    struct oci_build_changes ch;
    char err[256], buf[256], *out = NULL;
    size_t len = 0;
    json_t *j, *h;

    memset(&ch, 0, sizeof(ch));
    ch.created = 1704164645;
    ch.volumes = vols;
    ch.n_volumes = 2;
    ch.stop_signal = "SIGQUIT";
    ch.shell = shell;
    ch.n_shell = 2;
    ch.set_shell = true;
    ch.healthcheck = &hc;
    ch.history = hist;
    ch.n_history = 3;
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = json_loads(out, 0, NULL);
    CHECK(j != NULL);
    CHECK(json_is_object(at(j, "config", "Volumes", "/data", (char *)NULL)));
    CHECK(json_is_object(at(j, "config", "Volumes", "/cache", (char *)NULL)));
    CHECK_STR(str_at(j, "config", "StopSignal"), "SIGQUIT");
    CHECK_STR(joined(at(j, "config", "Shell", (char *)NULL), buf, sizeof(buf)), "/bin/bash|-c");
    CHECK_STR(joined(at(j, "config", "Healthcheck", "Test", (char *)NULL), buf, sizeof(buf)),
              "CMD-SHELL|wget -q -O- localhost:8080");
    CHECK_INT(json_integer_value(at(j, "config", "Healthcheck", "Interval", (char *)NULL)),
              30000000000LL);
    CHECK_INT(json_integer_value(at(j, "config", "Healthcheck", "StartPeriod", (char *)NULL)),
              5000000000LL);
    CHECK_INT(json_integer_value(at(j, "config", "Healthcheck", "Retries", (char *)NULL)), 3);
    CHECK(at(j, "config", "Healthcheck", "Timeout", (char *)NULL) == NULL);
    /* The base's two entries (ADD, then CMD), then the three steps, in order. */
    h = at(j, "history", (char *)NULL);
    CHECK_INT(json_array_size(h), 5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 2), "created_by")),
              "WORKDIR /app");
    CHECK(json_is_true(json_object_get(json_array_get(h, 2), "empty_layer")));
    CHECK(json_object_get(json_array_get(h, 3), "empty_layer") == NULL);
    CHECK(json_is_true(json_object_get(json_array_get(h, 4), "empty_layer")));
    json_decref(j);
    free(out);

    /* The history must name exactly the new layers. */
    hist[1].empty_layer = true;
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(contains(err, "lists 0 new layers but the build has 1"));
    hist[1].empty_layer = false;
    ch.n_volumes = 1;
    ch.volumes = (const char *const[]){"data"};
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(contains(err, "volume \"data\" is not an absolute path"));
}

TEST(alpine_changes)
{
    static const char *const env[] = {"FOO=1", "PATH=/app/bin:/usr/bin:/bin", "FOO=2",
                                      "EMPTY=", "MULTI=line1\nline2"};
    static const char *const entrypoint[] = {"/app/server"};
    static const char *const labels[] = {"maintainer=me", "org.example.a=b=c"};
    static const char *const expose[] = {"8080", "53/udp", "9000/TCP", "132/sctp", "8080/tcp"};
    struct oci_build_changes ch;
    char err[256], buf[512], *out = NULL;
    json_t *j, *h;
    size_t len;

    memset(&ch, 0, sizeof(ch));
    ch.env = env;
    ch.n_env = 5;
    ch.set_entrypoint = true;
    ch.entrypoint = entrypoint;
    ch.n_entrypoint = 1;
    ch.labels = labels;
    ch.n_labels = 2;
    ch.expose = expose;
    ch.n_expose = 5;
    ch.user = "65532:65532";
    ch.workdir = "/app";
    ch.created = 1704164645;
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = load(out, len);

    CHECK_STR(joined(at(j, "config", "Env", NULL), buf, sizeof(buf)),
              "PATH=/app/bin:/usr/bin:/bin|FOO=2|EMPTY=|MULTI=line1\nline2");
    CHECK_STR(joined(at(j, "config", "Entrypoint", NULL), buf, sizeof(buf)), "/app/server");
    /* Setting the entrypoint drops the base's Cmd (["/bin/sh"]), as Docker does.
     */
    CHECK(at(j, "config", "Cmd", NULL) == NULL);
    CHECK(at(j, "config", "ArgsEscaped", NULL) == NULL);
    CHECK_STR(str_at(j, "config", "WorkingDir"), "/app");
    CHECK_STR(str_at(j, "config", "User"), "65532:65532");
    CHECK_INT(json_object_size(at(j, "config", "Labels", NULL)), 3);
    CHECK_STR(json_string_value(at(j, "config", "Labels", "maintainer", NULL)), "me");
    CHECK_STR(json_string_value(at(j, "config", "Labels", "keep", NULL)), "me");
    CHECK_STR(json_string_value(at(j, "config", "Labels", "org.example.a", NULL)), "b=c");
    CHECK_INT(json_object_size(at(j, "config", "ExposedPorts", NULL)), 4);
    CHECK(json_is_object(at(j, "config", "ExposedPorts", "8080/tcp", NULL)));
    CHECK(json_is_object(at(j, "config", "ExposedPorts", "53/udp", NULL)));
    CHECK(json_is_object(at(j, "config", "ExposedPorts", "9000/tcp", NULL)));
    CHECK(json_is_object(at(j, "config", "ExposedPorts", "132/sctp", NULL)));
    /* The base's other fields and the unknown ones stay. */
    CHECK_STR(str_at(j, "config", "StopSignal"), "SIGTERM");
    CHECK(json_is_object(at(j, "config", "Volumes", "/data", NULL)));
    CHECK(json_is_null(at(j, "config", "OnBuild", NULL)));
    CHECK(json_is_real(json_array_get(at(j, "x-unknown", "nested", NULL), 1)));
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(at(j, "x-unknown", "nested", NULL), 2), "a")),
              "b");
    CHECK_STR(str_at(j, "created", NULL), "2024-01-02T03:04:05Z");
    CHECK_STR(str_at(j, "architecture", NULL), "amd64");
    CHECK_STR(str_at(j, "os", NULL), "linux");
    CHECK(at(j, "variant", NULL) == NULL);
    /* The base's author is not the new image's. */
    CHECK(at(j, "author", NULL) == NULL);
    CHECK_STR(joined(at(j, "rootfs", "diff_ids", NULL), buf, sizeof(buf)),
              BASE_DIFF "|sha256:" HEX_A);
    CHECK_STR(str_at(j, "rootfs", "type"), "layers");
    h = at(j, "history", NULL);
    CHECK_INT(json_array_size(h), 3);
    CHECK(json_is_true(json_object_get(json_array_get(h, 1), "empty_layer")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 2), "created_by")),
              "ocisync: ./dist -> /app");
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 2), "comment")), "ocisync");
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 2), "created")),
              "2024-01-02T03:04:05Z");
    CHECK(json_object_get(json_array_get(h, 2), "empty_layer") == NULL);
    json_decref(j);
    free(out);
}

TEST(entrypoint_cmd)
{
    static const char *const cmd[] = {"serve", "--verbose"};
    static const char *const entrypoint[] = {"/app/server"};
    struct oci_build_changes ch;
    char err[256], buf[256], *out = NULL;
    json_t *j;
    size_t len;

    /* Nothing changed: Cmd, Env, WorkingDir and ArgsEscaped are the base's. */
    memset(&ch, 0, sizeof(ch));
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = load(out, len);
    CHECK_STR(joined(at(j, "config", "Cmd", NULL), buf, sizeof(buf)), "/bin/sh");
    CHECK_STR(joined(at(j, "config", "Env", NULL), buf, sizeof(buf)),
              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    CHECK(json_is_true(at(j, "config", "ArgsEscaped", NULL)));
    CHECK_STR(str_at(j, "config", "WorkingDir"), "/");
    CHECK_STR(str_at(j, "created", NULL), "1970-01-01T00:00:00Z");
    json_decref(j);
    free(out);

    /* Entrypoint and Cmd both set. */
    ch.set_entrypoint = true;
    ch.entrypoint = entrypoint;
    ch.n_entrypoint = 1;
    ch.set_cmd = true;
    ch.cmd = cmd;
    ch.n_cmd = 2;
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = load(out, len);
    CHECK_STR(joined(at(j, "config", "Entrypoint", NULL), buf, sizeof(buf)), "/app/server");
    CHECK_STR(joined(at(j, "config", "Cmd", NULL), buf, sizeof(buf)), "serve|--verbose");
    json_decref(j);
    free(out);

    /* Entrypoint cleared, Cmd kept as given: the image runs its Cmd. */
    ch.n_entrypoint = 0;
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = load(out, len);
    CHECK(at(j, "config", "Entrypoint", NULL) == NULL);
    CHECK_STR(joined(at(j, "config", "Cmd", NULL), buf, sizeof(buf)), "serve|--verbose");
    json_decref(j);
    free(out);

    /* Only Cmd, cleared. */
    ch.set_entrypoint = false;
    ch.n_cmd = 0;
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = load(out, len);
    CHECK(at(j, "config", "Cmd", NULL) == NULL);
    CHECK(at(j, "config", "ArgsEscaped", NULL) == NULL);
    json_decref(j);
    free(out);

    /* User "" resets to root; a workdir with spaces is a path like any other. */
    memset(&ch, 0, sizeof(ch));
    ch.user = "";
    ch.workdir = "/srv/my app";
    CHECK_INT(build_alpine(&ch, "linux/amd64", &out, &len, err, sizeof(err)), 0);
    j = load(out, len);
    CHECK_STR(str_at(j, "config", "User"), "");
    CHECK_STR(str_at(j, "config", "WorkingDir"), "/srv/my app");
    json_decref(j);
    free(out);
}

TEST(platform_agreement)
{
    static const char arm64_config[] =
        "{\"architecture\":\"arm64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
        "\"layers\","
        "\"diff_ids\":[]}}";
    static const char armv7_config[] =
        "{\"architecture\":\"arm\",\"variant\":\"v7\",\"os\":\"linux\","
        "\"rootfs\":{\"type\":"
        "\"layers\",\"diff_ids\":[]}}";
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    struct oci_build_changes ch;
    struct oci_platform p;
    char err[256], *out = NULL;
    json_t *j;
    size_t len;

    memset(&ch, 0, sizeof(ch));
    CHECK_INT(build_alpine(&ch, "linux/arm64", &out, &len, err, sizeof(err)), OCISYNC_EMANIFEST);
    CHECK(out == NULL);
    CHECK_STR(err, "base image is for linux/amd64, not linux/arm64");
    CHECK_INT(build_alpine(&ch, "windows/amd64", &out, &len, err, sizeof(err)), OCISYNC_EMANIFEST);
    CHECK_STR(err, "base image is for linux/amd64, not windows/amd64");

    /* arm64 without a variant is v8. */
    p = plat("linux/arm64/v8");
    CHECK_INT(oci_build_config(arm64_config, strlen(arm64_config), 0, &p, &ch, &l, 1, &out, &len,
                               err, sizeof(err)),
              0);
    j = load(out, len);
    CHECK_STR(str_at(j, "variant", NULL), "v8");
    json_decref(j);
    free(out);

    /* A variant only the base names is kept; a different one is refused. */
    p = plat("linux/arm");
    CHECK_INT(oci_build_config(armv7_config, strlen(armv7_config), 0, &p, &ch, &l, 1, &out, &len,
                               err, sizeof(err)),
              0);
    j = load(out, len);
    CHECK_STR(str_at(j, "variant", NULL), "v7");
    json_decref(j);
    free(out);
    p = plat("linux/arm/v6");
    CHECK_INT(oci_build_config(armv7_config, strlen(armv7_config), 0, &p, &ch, &l, 1, &out, &len,
                               err, sizeof(err)),
              OCISYNC_EMANIFEST);
    CHECK_STR(err, "base image is for linux/arm/v7, not linux/arm/v6");

    /* The same os.version, or none on one side. */
    p = plat("windows/amd64");
    snprintf(p.os_version, sizeof(p.os_version), "10.0.20348.2227");
    static const char win_config[] =
        "{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.version\":\"10.0."
        "17763.5329\","
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    CHECK_INT(oci_build_config(win_config, strlen(win_config), 0, &p, &ch, &l, 1, &out, &len, err,
                               sizeof(err)),
              OCISYNC_EMANIFEST);
    CHECK_STR(err, "base image is for windows/amd64 10.0.17763.5329, not windows/amd64 "
                   "10.0.20348.2227");
    /* A bad target platform is the caller's mistake. */
    memset(&p, 0, sizeof(p));
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK(contains(err, "target platform is invalid"));
}

/* Expects oci_build_config(base) to fail with code and a message containing
 * msg. */
static void expect_base_error(const char *base, size_t base_layers, int code, const char *msg)
{
    struct oci_platform p = plat("linux/amd64");
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    static const char *const env[] = {"A=1"};
    static const char *const labels[] = {"a=1"};
    static const char *const expose[] = {"80"};
    struct oci_build_changes ch;
    char err[256], *out = (char *)"untouched";
    size_t len = 99;

    memset(&ch, 0, sizeof(ch));
    ch.env = env;
    ch.n_env = 1;
    ch.labels = labels;
    ch.n_labels = 1;
    ch.expose = expose;
    ch.n_expose = 1;
    CHECK_INT(oci_build_config(base, strlen(base), base_layers, &p, &ch, &l, 1, &out, &len, err,
                               sizeof(err)),
              code);
    CHECK(out == NULL);
    CHECK_INT(len, 0);
    CHECK(contains(err, msg));
}

TEST(bad_base_config)
{
    char deep[300];

    /* The manifest has two layers, the config lists one diff_id. */
    expect_base_error(alpine_config, 2, OCISYNC_EMANIFEST,
                      "base config lists 1 diff_ids but the base manifest has 2 layers");
    expect_base_error(alpine_config, 0, OCISYNC_EMANIFEST,
                      "base config lists 1 diff_ids but the base manifest has 0 layers");
    expect_base_error("", 0, OCISYNC_EMANIFEST, "base config is not valid JSON");
    expect_base_error("{\"os\":", 0, OCISYNC_EMANIFEST, "base config is not valid JSON");
    expect_base_error("[]", 0, OCISYNC_EMANIFEST, "base config is not a JSON object");
    expect_base_error("{\"os\":\"linux\",\"os\":\"linux\"}", 0, OCISYNC_EMANIFEST,
                      "duplicate object key");
    expect_base_error("{\"architecture\":\"amd64\",\"os\":\"linux\"}", 0, OCISYNC_EMANIFEST,
                      "base config has no \"rootfs\" object");
    expect_base_error("{\"rootfs\":{\"type\":\"tar\",\"diff_ids\":[]}}", 0, OCISYNC_EMANIFEST,
                      "base config rootfs type is not \"layers\"");
    expect_base_error("{\"rootfs\":{\"type\":\"layers\"}}", 0, OCISYNC_EMANIFEST,
                      "base config rootfs has no \"diff_ids\" array");
    expect_base_error("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:x\"]}}", 1,
                      OCISYNC_EMANIFEST, "base config rootfs diff_id 0 is not a digest");
    expect_base_error("{\"os\":7,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", 0,
                      OCISYNC_EMANIFEST, "base config: \"os\" is not a string");
    expect_base_error("{\"config\":[],\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", 0,
                      OCISYNC_EMANIFEST, "base config: config is not an object");
    expect_base_error("{\"config\":{\"Env\":\"A=1\"},\"rootfs\":{\"type\":"
                      "\"layers\",\"diff_ids\":[]}}",
                      0, OCISYNC_EMANIFEST, "base config: config.Env is not an array");
    expect_base_error("{\"config\":{\"Env\":[\"A=1\",2]},\"rootfs\":{\"type\":"
                      "\"layers\",\"diff_ids\":[]}}",
                      0, OCISYNC_EMANIFEST, "base config: config.Env entry 1 is not a string");
    expect_base_error("{\"config\":{\"Labels\":[]},\"rootfs\":{\"type\":"
                      "\"layers\",\"diff_ids\":[]}}",
                      0, OCISYNC_EMANIFEST, "base config: config.Labels is not an object");
    expect_base_error("{\"config\":{\"ExposedPorts\":1},\"rootfs\":{\"type\":"
                      "\"layers\",\"diff_ids\":[]}}",
                      0, OCISYNC_EMANIFEST, "base config: config.ExposedPorts is not an object");
    expect_base_error("{\"history\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", 0,
                      OCISYNC_EMANIFEST, "base config: \"history\" is not an array");
    expect_base_error("{\"history\":[1],\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", 0,
                      OCISYNC_EMANIFEST, "base config: history entry 0 is not an object");
    expect_base_error("{\"history\":[{\"empty_layer\":1}],\"rootfs\":{\"type\":\"layers\","
                      "\"diff_ids\":[]}}",
                      0, OCISYNC_EMANIFEST,
                      "base config: history entry 0 empty_layer is not a boolean");
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    expect_base_error(deep, 0, OCISYNC_ETOOBIG, "base config JSON nests deeper than 64 levels");
}

TEST(history_lines_up)
{
    static const char no_history[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
        "\"layers\",\"diff_ids\""
        ":[\"sha256:" HEX_C "\",\"sha256:" HEX_D "\"]}}";
    static const char too_much_history[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"history\":[{\"created_"
        "by\":\"one\"},"
        "{\"created_by\":\"two\",\"empty_layer\":false},{\"created_by\":"
        "\"three\"}],\"rootfs\":{"
        "\"type\":\"layers\",\"diff_ids\":[\"sha256:" HEX_C "\"]}}";
    struct oci_platform p = plat("linux/amd64");
    struct oci_build_layer l[2] = {layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP),
                                   layer(HEX_B, HEX_E, OCI_MT_DOCKER_LAYER_GZIP)};
    struct oci_build_changes ch;
    char err[256], *out = NULL;
    json_t *j, *h;
    size_t len;

    memset(&ch, 0, sizeof(ch));
    l[1].created_by = "ocisync: bad\n\xff bytes";
    CHECK_INT(oci_build_config(no_history, strlen(no_history), 2, &p, &ch, l, 2, &out, &len, err,
                               sizeof(err)),
              0);
    j = load(out, len);
    h = at(j, "history", NULL);
    CHECK_INT(json_array_size(h), 4);
    CHECK(contains(json_string_value(json_object_get(json_array_get(h, 0), "comment")),
                   "placeholder"));
    CHECK(contains(json_string_value(json_object_get(json_array_get(h, 1), "comment")),
                   "placeholder"));
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 3), "created_by")),
              "ocisync: bad?? bytes");
    CHECK_INT(json_array_size(at(j, "rootfs", "diff_ids", NULL)), 4);
    json_decref(j);
    free(out);

    /* Three layer entries for one layer: the two oldest become empty. */
    l[1].created_by = NULL;
    CHECK_INT(oci_build_config(too_much_history, strlen(too_much_history), 1, &p, &ch, l, 2, &out,
                               &len, err, sizeof(err)),
              0);
    j = load(out, len);
    h = at(j, "history", NULL);
    CHECK_INT(json_array_size(h), 5);
    CHECK(json_is_true(json_object_get(json_array_get(h, 0), "empty_layer")));
    CHECK(json_is_true(json_object_get(json_array_get(h, 1), "empty_layer")));
    CHECK(json_object_get(json_array_get(h, 2), "empty_layer") == NULL);
    CHECK(json_object_get(json_array_get(h, 4), "created_by") == NULL);
    json_decref(j);
    free(out);
}

TEST(determinism)
{
    static const char *const env[] = {"B=2", "A=1"};
    static const char *const labels[] = {"z=1", "a=2"};
    struct oci_platform p = plat("linux/amd64");
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    struct oci_build_changes ch;
    char err[256], *a = NULL, *b = NULL, *c = NULL;
    size_t alen, blen, clen;

    memset(&ch, 0, sizeof(ch));
    ch.env = env;
    ch.n_env = 2;
    ch.labels = labels;
    ch.n_labels = 2;
    ch.created = 1700000000;
    CHECK_INT(oci_build_config(alpine_config, strlen(alpine_config), 1, &p, &ch, &l, 1, &a, &alen,
                               err, sizeof(err)),
              0);
    CHECK_INT(oci_build_config(alpine_config, strlen(alpine_config), 1, &p, &ch, &l, 1, &b, &blen,
                               err, sizeof(err)),
              0);
    /* The base's key order does not leak into the output. */
    CHECK_INT(oci_build_config(alpine_config_reordered, strlen(alpine_config_reordered), 1, &p, &ch,
                               &l, 1, &c, &clen, err, sizeof(err)),
              0);
    CHECK(a != NULL && b != NULL && c != NULL);
    if (a != NULL && b != NULL && c != NULL) {
        CHECK_INT(alen, blen);
        CHECK(memcmp(a, b, alen) == 0);
        CHECK_INT(alen, clen);
        CHECK_STR(a, c);
    }
    free(a);
    free(b);
    free(c);
}

/* Expects ch (on the alpine base) to be refused with code and the whole message
 * msg. */
static void expect_change_error(const struct oci_build_changes *ch, int code, const char *msg)
{
    char err[256], *out = NULL;
    size_t len;

    CHECK_INT(build_alpine(ch, "linux/amd64", &out, &len, err, sizeof(err)), code);
    CHECK(out == NULL);
    CHECK_STR(err, msg);
}

TEST(validation_errors)
{
    static const struct {
        const char *env, *label, *port, *msg;
    } cases[] = {
        {"NOEQUALS", NULL, NULL, "env \"NOEQUALS\" has no '=': write it as KEY=VALUE"},
        {"=value", NULL, NULL, "env \"=value\" has an empty key"},
        {"MY VAR=1", NULL, NULL, "env key \"MY VAR\" contains whitespace"},
        {"A\tB=1", NULL, NULL, "env key \"A?B\" contains whitespace"},
        {"A\x01=1", NULL, NULL, "env key \"A?\" contains a control character"},
        {"A=\xc3\x28", NULL, NULL, "env \"A=?(\" is not valid UTF-8"},
        {"A=\xed\xa0\x80", NULL, NULL, "env \"A=???\" is not valid UTF-8"},
        {"A=\xc0\xaf", NULL, NULL, "env \"A=??\" is not valid UTF-8"},
        {NULL, "nolabel", NULL, "label \"nolabel\" has no '=': write it as KEY=VALUE"},
        {NULL, "=x", NULL, "label \"=x\" has an empty key"},
        {NULL, "a\nb=x", NULL, "label key \"a?b\" contains a control character"},
        {NULL, NULL, "0", "port \"0\" is not a number from 1 to 65535"},
        {NULL, NULL, "65536", "port \"65536\" is not a number from 1 to 65535"},
        {NULL, NULL, "123456", "port \"123456\" is not a number from 1 to 65535"},
        {NULL, NULL, "", "port \"\" is not a number from 1 to 65535"},
        {NULL, NULL, "-1", "port \"-1\" is not a number from 1 to 65535"},
        {NULL, NULL, " 80", "port \" 80\" is not a number from 1 to 65535"},
        {NULL, NULL, "80/", "port \"80/\" has protocol \"\": use tcp, udp or sctp"},
        {NULL, NULL, "80/http", "port \"80/http\" has protocol \"http\": use tcp, udp or sctp"},
        {NULL, NULL, "80 /tcp", "port \"80 /tcp\" is not a number from 1 to 65535"},
        {NULL, NULL, "8000-8010", "port \"8000-8010\": ranges are not supported; list each port"},
        {NULL, NULL, "http", "port \"http\" is not a number from 1 to 65535"},
    };
    static const char *const empty_prog[] = {"", "x"};
    static const char *const bad_arg[] = {"/bin/sh", "-c", "\xff"};
    static const char *const null_entry[] = {"A=1", NULL};
    struct oci_build_changes ch;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&ch, 0, sizeof(ch));
        ch.env = &cases[i].env;
        ch.n_env = cases[i].env != NULL;
        ch.labels = &cases[i].label;
        ch.n_labels = cases[i].label != NULL;
        ch.expose = &cases[i].port;
        ch.n_expose = cases[i].port != NULL;
        expect_change_error(&ch, OCISYNC_EUSAGE, cases[i].msg);
    }

    memset(&ch, 0, sizeof(ch));
    ch.workdir = "app";
    expect_change_error(&ch, OCISYNC_EUSAGE, "workdir \"app\" is not an absolute path");
    ch.workdir = "";
    expect_change_error(&ch, OCISYNC_EUSAGE, "workdir \"\" is not an absolute path");
    ch.workdir = "/app\n";
    expect_change_error(&ch, OCISYNC_EUSAGE, "workdir \"/app?\" contains a control character");
    ch.workdir = NULL;
    ch.user = "app user";
    expect_change_error(&ch, OCISYNC_EUSAGE, "user \"app user\" contains a space");
    ch.user = "app\r";
    expect_change_error(&ch, OCISYNC_EUSAGE, "user \"app?\" contains a control character");
    ch.user = NULL;
    ch.author = "me\n";
    expect_change_error(&ch, OCISYNC_EUSAGE, "author \"me?\" contains a control character");
    ch.author = NULL;
    ch.created = -1;
    expect_change_error(&ch, OCISYNC_EUSAGE,
                        "creation time -1 is outside 0 (1970) to 253402300799 "
                        "(9999-12-31T23:59:59Z)");
    ch.created = 0;

    ch.set_entrypoint = true;
    ch.entrypoint = empty_prog;
    ch.n_entrypoint = 2;
    expect_change_error(&ch, OCISYNC_EUSAGE, "entrypoint program (argument 0) is empty");
    ch.entrypoint = bad_arg;
    ch.n_entrypoint = 3;
    expect_change_error(&ch, OCISYNC_EUSAGE, "entrypoint argument 2 (\"?\") is not valid UTF-8");
    ch.entrypoint = NULL;
    expect_change_error(&ch, OCISYNC_EUSAGE, "entrypoint list is NULL");
    ch.set_entrypoint = false;
    ch.set_cmd = true;
    ch.cmd = bad_arg;
    ch.n_cmd = 3;
    expect_change_error(&ch, OCISYNC_EUSAGE, "cmd argument 2 (\"?\") is not valid UTF-8");
    ch.set_cmd = false;
    ch.env = null_entry;
    ch.n_env = 2;
    expect_change_error(&ch, OCISYNC_EUSAGE, "env entry 1 is NULL");
    ch.n_env = OCI_BUILD_MAX_LIST + 1;
    expect_change_error(&ch, OCISYNC_ETOOBIG, "4097 env entries, over the limit of 4096");
}

TEST(layer_errors)
{
    struct oci_platform p = plat("linux/amd64");
    struct oci_build_layer l = layer(HEX_A, HEX_B, "application/x-tar");
    struct oci_build_changes ch;
    char err[256], *out = NULL;
    size_t len;

    memset(&ch, 0, sizeof(ch));
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "new layer 0 has media type \"application/x-tar\", which is "
                   "not a layer type");
    l.media_type = NULL;
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "new layer 0 has no media type");
    l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    memset(&l.diff_id, 0, sizeof(l.diff_id));
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "new layer 0 has an invalid diff_id");
    l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    l.size = (uint64_t)INT64_MAX + 1;
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "new layer 0 has size 9223372036854775808, too large");
    /* Scratch needs a layer, and has no base layers. */
    CHECK_INT(oci_build_config(NULL, 0, 0, &p, &ch, NULL, 0, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "an image built on scratch needs at least one layer");
    l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    CHECK_INT(oci_build_config(NULL, 0, 3, &p, &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "an image built on scratch has no base layers, not 3");
    CHECK_INT(oci_build_config(alpine_config, strlen(alpine_config), OCI_MANIFEST_MAX_LAYERS, &p,
                               &ch, &l, 1, &out, &len, err, sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK_STR(err, "1024 base layers and 1 new ones are over the limit of 1024");
    /* A config-only rebuild on a base is fine. */
    CHECK_INT(oci_build_config(alpine_config, strlen(alpine_config), 1, &p, &ch, NULL, 0, &out,
                               &len, err, sizeof(err)),
              0);
    free(out);
}

/* Parses doc as a manifest or index; returns the result, to free. */
static struct oci_manifest parse_ok(const char *doc, size_t len)
{
    struct oci_manifest m;
    char err[256];
    int r = oci_manifest_parse(NULL, doc, len, &m, err, sizeof(err));

    CHECK_INT(r, 0);
    if (r != 0)
        fprintf(stderr, "  %s\n", err);
    return m;
}

TEST(manifest_oci)
{
    struct oci_build_layer l[2] = {layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP),
                                   layer(HEX_C, HEX_D, OCI_MT_OCI_LAYER_ZSTD)};
    struct oci_annotation ann[] = {
        {"org.opencontainers.image.source", "https://github.com/example/app"},
        {OCI_ANN_BASE_NAME, "docker.io/library/alpine:3.19"},
        {OCI_ANN_BASE_DIGEST, BASE_MANIFEST_DIGEST},
        {OCI_ANN_CREATED, "2024-01-02T03:04:05Z"},
    };
    struct oci_digest cfg = dig("sha256:" HEX_E);
    struct oci_manifest m;
    char err[256], *out = NULL;
    json_t *j, *base, *layers;
    size_t len;

    CHECK_INT(oci_build_manifest(oci_base_manifest, strlen(oci_base_manifest), &cfg, 777, false, l,
                                 2, ann, 4, &out, &len, err, sizeof(err)),
              0);
    m = parse_ok(out, len);
    CHECK_STR(m.media_type, OCI_MT_OCI_MANIFEST);
    CHECK_STR(m.config.media_type, OCI_MT_OCI_CONFIG);
    CHECK_STR(m.config.digest.str, "sha256:" HEX_E);
    CHECK_INT(m.config.size, 777);
    CHECK_INT(m.n_layers, 3);
    if (m.n_layers == 3) {
        CHECK_STR(m.layers[0].digest.str, BASE_LAYER);
        CHECK_STR(m.layers[1].media_type, OCI_MT_OCI_LAYER_GZIP);
        CHECK_STR(m.layers[1].digest.str, "sha256:" HEX_B);
        CHECK_INT(m.layers[1].size, 1234);
        CHECK_STR(m.layers[2].media_type, OCI_MT_OCI_LAYER_ZSTD);
        CHECK_STR(m.layers[2].digest.str, "sha256:" HEX_D);
    }
    oci_manifest_free(&m);

    /* The base layer's descriptor is the base's, annotations and urls included.
     */
    j = load(out, len);
    base = load(oci_base_manifest, strlen(oci_base_manifest));
    layers = at(j, "layers", NULL);
    CHECK(json_equal(json_array_get(layers, 0), json_array_get(at(base, "layers", NULL), 0)));
    CHECK_INT(json_object_size(at(j, "annotations", NULL)), 4);
    CHECK_STR(str_at(j, "annotations", OCI_ANN_BASE_NAME), "docker.io/library/alpine:3.19");
    CHECK_STR(str_at(j, "annotations", "org.opencontainers.image.source"),
              "https://github.com/example/app");
    /* The base's own annotations describe the base, not this image. */
    CHECK(at(j, "annotations", "org.opencontainers.image.title", NULL) == NULL);
    json_decref(base);
    json_decref(j);
    /* Fields in the order the spec's examples use. */
    CHECK(strncmp(out, "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"config\":",
                  strlen("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
                         "\",\"config\":")) == 0);
    free(out);

    /* Scratch, no annotations: no "annotations" member. */
    CHECK_INT(
        oci_build_manifest(NULL, 0, &cfg, 10, false, l, 1, NULL, 0, &out, &len, err, sizeof(err)),
        0);
    CHECK_STR(out,
              "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
              "\",\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG "\",\"digest\":\"sha256:" HEX_E
              "\",\"size\":10},\"layers\":[{\"mediaType\":\"" OCI_MT_OCI_LAYER_GZIP
              "\",\"digest\":\"sha256:" HEX_B "\",\"size\":1234}]}");
    m = parse_ok(out, len);
    oci_manifest_free(&m);
    free(out);
}

TEST(manifest_docker)
{
    struct oci_build_layer l[2] = {layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP),
                                   layer(HEX_C, HEX_D, OCI_MT_OCI_LAYER)};
    struct oci_annotation ann[] = {{OCI_ANN_BASE_NAME, "alpine"}};
    struct oci_digest cfg = dig("sha256:" HEX_E);
    struct oci_manifest m;
    char err[256], *out = NULL;
    json_t *j;
    size_t len;

    CHECK_INT(oci_build_manifest(alpine_docker_manifest, strlen(alpine_docker_manifest), &cfg, 500,
                                 true, l, 2, NULL, 0, &out, &len, err, sizeof(err)),
              0);
    m = parse_ok(out, len);
    CHECK_STR(m.media_type, OCI_MT_DOCKER_MANIFEST);
    CHECK_STR(m.config.media_type, OCI_MT_DOCKER_CONFIG);
    CHECK_INT(m.n_layers, 3);
    if (m.n_layers == 3) {
        CHECK_STR(m.layers[0].media_type, OCI_MT_DOCKER_LAYER_GZIP);
        CHECK_STR(m.layers[0].digest.str, BASE_LAYER);
        CHECK_INT(m.layers[0].size, 3408729);
        CHECK_STR(m.layers[1].media_type, OCI_MT_DOCKER_LAYER_GZIP);
        CHECK_STR(m.layers[2].media_type, OCI_MT_DOCKER_LAYER);
    }
    oci_manifest_free(&m);
    /* The base layer object is copied with its own key order (size before
     * digest). */
    CHECK(strstr(out, "{\"mediaType\":\"" OCI_MT_DOCKER_LAYER_GZIP "\",\"size\":3408729,"
                      "\"digest\":\"" BASE_LAYER "\"}") != NULL);
    free(out);

    /* An OCI manifest on the Docker base names the same gzip blob the OCI way. */
    CHECK_INT(oci_build_manifest(alpine_docker_manifest, strlen(alpine_docker_manifest), &cfg, 500,
                                 false, l, 1, NULL, 0, &out, &len, err, sizeof(err)),
              0);
    m = parse_ok(out, len);
    CHECK_STR(m.media_type, OCI_MT_OCI_MANIFEST);
    if (m.n_layers == 2) {
        CHECK_STR(m.layers[0].media_type, OCI_MT_OCI_LAYER_GZIP);
        CHECK_STR(m.layers[0].digest.str, BASE_LAYER);
    }
    oci_manifest_free(&m);
    j = load(out, len);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(at(j, "layers", NULL), 0), "size")),
              3408729);
    json_decref(j);
    free(out);

    /* And a Docker manifest on an OCI base keeps its annotations and urls. */
    CHECK_INT(oci_build_manifest(oci_base_manifest, strlen(oci_base_manifest), &cfg, 500, true, l,
                                 1, NULL, 0, &out, &len, err, sizeof(err)),
              0);
    m = parse_ok(out, len);
    if (m.n_layers == 2)
        CHECK_STR(m.layers[0].media_type, OCI_MT_DOCKER_LAYER_GZIP);
    oci_manifest_free(&m);
    CHECK(strstr(out, "\"urls\":[\"https://example.com/layer\"]") != NULL);
    free(out);

    /* zstd cannot be said in a Docker manifest, new layer or base layer. */
    l[1] = layer(HEX_C, HEX_D, OCI_MT_OCI_LAYER_ZSTD);
    CHECK_INT(oci_build_manifest(alpine_docker_manifest, strlen(alpine_docker_manifest), &cfg, 500,
                                 true, l, 2, NULL, 0, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK(out == NULL);
    CHECK_STR(err, "new layer 1 is zstd-compressed (" OCI_MT_OCI_LAYER_ZSTD
                   "), which a Docker manifest cannot hold; use --format oci");
    l[1].media_type = OCI_MT_DOCKER_LAYER_ZSTD;
    CHECK_INT(
        oci_build_manifest(NULL, 0, &cfg, 500, true, l, 2, NULL, 0, &out, &len, err, sizeof(err)),
        OCISYNC_EUSAGE);
    CHECK(contains(err, "new layer 1 is zstd-compressed"));
    /* containerd's Docker zstd spelling is read, and written the OCI way. */
    CHECK_INT(
        oci_build_manifest(NULL, 0, &cfg, 500, false, l, 2, NULL, 0, &out, &len, err, sizeof(err)),
        0);
    CHECK(strstr(out, OCI_MT_OCI_LAYER_ZSTD) != NULL && strstr(out, "docker") == NULL);
    free(out);
    CHECK_INT(oci_build_manifest(oci_base_zstd_manifest, strlen(oci_base_zstd_manifest), &cfg, 500,
                                 true, l, 1, NULL, 0, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "base layer 0 is zstd-compressed (" OCI_MT_OCI_LAYER_ZSTD
                   "), which a Docker manifest cannot hold; use --format oci");

    /* Docker manifests carry no annotations. */
    CHECK_INT(oci_build_manifest(alpine_docker_manifest, strlen(alpine_docker_manifest), &cfg, 500,
                                 true, l, 1, ann, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "a Docker manifest cannot carry annotations (\"" OCI_ANN_BASE_NAME
                   "\" given); use --format oci");
}

TEST(manifest_errors)
{
    static const char index_doc[] = "{\"schemaVersion\":2,\"mediaType\":"
                                    "\"application/vnd.oci.image.index.v1+json\","
                                    "\"manifests\":[]}";
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    struct oci_digest cfg = dig("sha256:" HEX_E), zero;
    struct oci_annotation dup[] = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
    struct oci_annotation base_on_scratch[] = {{OCI_ANN_BASE_DIGEST, BASE_MANIFEST_DIGEST}};
    struct oci_annotation bad_digest[] = {{OCI_ANN_BASE_DIGEST, "latest"}};
    struct oci_annotation empty_key[] = {{"", "x"}};
    struct oci_annotation ctl_key[] = {{"a\tb", "x"}};
    struct oci_annotation bad_value[] = {{"a", "\x80"}};
    struct oci_annotation null_value[] = {{"a", NULL}};
    char err[256], *out = NULL;
    size_t len;

    /* The last one wins nowhere: a computed annotation cannot be overridden by a
     * second copy. */
    CHECK_INT(oci_build_manifest(oci_base_manifest, strlen(oci_base_manifest), &cfg, 1, false, &l,
                                 1, dup, 3, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation \"a\" is given twice");
    CHECK_INT(oci_build_manifest(NULL, 0, &cfg, 1, false, &l, 1, base_on_scratch, 1, &out, &len,
                                 err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation \"" OCI_ANN_BASE_DIGEST
                   "\" names a base image, but the image is built on scratch");
    CHECK_INT(oci_build_manifest(oci_base_manifest, strlen(oci_base_manifest), &cfg, 1, false, &l,
                                 1, bad_digest, 1, &out, &len, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation \"" OCI_ANN_BASE_DIGEST "\" is not a digest: \"latest\"");
    CHECK_INT(oci_build_manifest(NULL, 0, &cfg, 1, false, &l, 1, empty_key, 1, &out, &len, err,
                                 sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation 0 has an empty key");
    CHECK_INT(oci_build_manifest(NULL, 0, &cfg, 1, false, &l, 1, ctl_key, 1, &out, &len, err,
                                 sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation 0 key \"a?b\" contains a control character");
    CHECK_INT(oci_build_manifest(NULL, 0, &cfg, 1, false, &l, 1, bad_value, 1, &out, &len, err,
                                 sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation 0 \"a\": the value is not valid UTF-8");
    CHECK_INT(oci_build_manifest(NULL, 0, &cfg, 1, false, &l, 1, null_value, 1, &out, &len, err,
                                 sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation 0 has no value");

    /* Bases that are not one platform's manifest. */
    CHECK_INT(oci_build_manifest(index_doc, strlen(index_doc), &cfg, 1, false, &l, 1, NULL, 0, &out,
                                 &len, err, sizeof(err)),
              OCISYNC_EMANIFEST);
    CHECK_STR(err, "base manifest is an index, not the manifest of one platform");
    CHECK_INT(
        oci_build_manifest("{}", 2, &cfg, 1, false, &l, 1, NULL, 0, &out, &len, err, sizeof(err)),
        OCISYNC_EMANIFEST);
    CHECK_STR(err, "base manifest: manifest has no \"schemaVersion\"");
    memset(&zero, 0, sizeof(zero));
    CHECK_INT(
        oci_build_manifest(NULL, 0, &zero, 1, false, &l, 1, NULL, 0, &out, &len, err, sizeof(err)),
        OCISYNC_EUSAGE);
    CHECK_STR(err, "the config digest is invalid");
    CHECK(out == NULL);
}

TEST(annotation_parse)
{
    struct oci_annotation a;
    char key[64], err[256];

    CHECK_INT(oci_annotation_parse("org.example.team=platform=core", &a, key, sizeof(key), err,
                                   sizeof(err)),
              0);
    CHECK_STR(a.key, "org.example.team");
    CHECK_STR(a.value, "platform=core");
    CHECK(a.key == key);
    CHECK_INT(oci_annotation_parse("k=", &a, key, sizeof(key), err, sizeof(err)), 0);
    CHECK_STR(a.value, "");
    /* The builder's own created annotation may be given (the caller then leaves
     * its own out). */
    CHECK_INT(oci_annotation_parse(OCI_ANN_CREATED "=2020-01-01T00:00:00Z", &a, key, sizeof(key),
                                   err, sizeof(err)),
              0);

    CHECK_INT(oci_annotation_parse("novalue", &a, key, sizeof(key), err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation \"novalue\" has no '=': write it as KEY=VALUE");
    CHECK(a.key == NULL && a.value == NULL);
    CHECK_INT(oci_annotation_parse("=v", &a, key, sizeof(key), err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation has an empty key");
    CHECK_INT(oci_annotation_parse("a b=v", &a, key, sizeof(key), err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation key \"a b\" contains a space");
    CHECK_INT(
        oci_annotation_parse(OCI_ANN_BASE_NAME "=evil", &a, key, sizeof(key), err, sizeof(err)),
        OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation \"" OCI_ANN_BASE_NAME "\" is set by ocisync and cannot be given");
    CHECK_INT(oci_annotation_parse(OCI_ANN_BASE_DIGEST "=" BASE_MANIFEST_DIGEST, &a, key,
                                   sizeof(key), err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_INT(oci_annotation_parse("a=\xff", &a, key, sizeof(key), err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation \"a\": the value is not valid UTF-8");
    CHECK_INT(oci_annotation_parse("abcdefgh=v", &a, key, 8, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "annotation key \"abcdefgh=v...\" is longer than 7 characters");
    CHECK(oci_annotation_is_computed(OCI_ANN_BASE_NAME));
    CHECK(!oci_annotation_is_computed(OCI_ANN_CREATED));
}

TEST(index)
{
    struct oci_index_entry e[2];
    struct oci_annotation ann[] = {{OCI_ANN_CREATED, "2024-01-02T03:04:05Z"}};
    struct oci_manifest m;
    char err[256], *out = NULL;
    size_t len;

    memset(e, 0, sizeof(e));
    e[0].digest = dig("sha256:" HEX_A);
    e[0].size = 500;
    e[0].platform = plat("linux/amd64");
    e[1].digest = dig("sha256:" HEX_B);
    e[1].size = 501;
    e[1].platform = plat("linux/arm64/v8");
    CHECK_INT(oci_build_index(e, 2, false, ann, 1, &out, &len, err, sizeof(err)), 0);
    CHECK_STR(out, "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"manifests\":["
                   "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"sha256:" HEX_A
                   "\",\"size\":500,\"platform\":{\"architecture\":\"amd64\","
                   "\"os\":\"linux\"}},"
                   "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"sha256:" HEX_B
                   "\",\"size\":501,\"platform\":{\"architecture\":\"arm64\","
                   "\"os\":\"linux\","
                   "\"variant\":\"v8\"}}],\"annotations\":{\"" OCI_ANN_CREATED
                   "\":\"2024-01-02T03:04:05Z\"}}");
    m = parse_ok(out, len);
    CHECK_INT(m.kind, OCI_KIND_INDEX);
    CHECK_INT(m.n_manifests, 2);
    if (m.n_manifests == 2) {
        CHECK(m.manifests[1].has_platform);
        CHECK_STR(m.manifests[1].platform.variant, "v8");
        CHECK_STR(m.manifests[0].digest.str, "sha256:" HEX_A);
    }
    oci_manifest_free(&m);
    free(out);

    /* A Docker manifest list, with Windows' os.version. */
    e[1].platform = plat("windows/amd64");
    snprintf(e[1].platform.os_version, sizeof(e[1].platform.os_version), "10.0.20348.2227");
    CHECK_INT(oci_build_index(e, 2, true, NULL, 0, &out, &len, err, sizeof(err)), 0);
    m = parse_ok(out, len);
    CHECK_STR(m.media_type, OCI_MT_DOCKER_LIST);
    if (m.n_manifests == 2) {
        CHECK_STR(m.manifests[0].media_type, OCI_MT_DOCKER_MANIFEST);
        CHECK_STR(m.manifests[1].platform.os_version, "10.0.20348.2227");
    }
    oci_manifest_free(&m);
    free(out);

    CHECK_INT(oci_build_index(e, 2, true, ann, 1, &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "a Docker manifest list cannot carry annotations (\"" OCI_ANN_CREATED
                   "\" given); use --format oci");
    e[1].media_type = OCI_MT_OCI_MANIFEST;
    CHECK_INT(oci_build_index(e, 2, true, NULL, 0, &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "index entry 1 has media type \"" OCI_MT_OCI_MANIFEST
                   "\"; a Docker manifest list lists " OCI_MT_DOCKER_MANIFEST);
    e[1].media_type = NULL;
    e[1].platform = e[0].platform;
    CHECK_INT(oci_build_index(e, 2, false, NULL, 0, &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "index entries 0 and 1 are both for linux/amd64");
    memset(&e[1].platform, 0, sizeof(e[1].platform));
    CHECK_INT(oci_build_index(e, 2, false, NULL, 0, &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "index entry 1 platform is invalid (it needs os and architecture)");
    memset(&e[1].digest, 0, sizeof(e[1].digest));
    CHECK_INT(oci_build_index(e, 2, false, NULL, 0, &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "index entry 1 has an invalid digest");
    CHECK_INT(oci_build_index(e, 0, false, NULL, 0, &out, &len, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_STR(err, "an index needs at least one manifest");
    CHECK(out == NULL);
}

/* The whole pipeline, the way the build command strings it together. */
TEST(pipeline)
{
    static const char *const env[] = {"APP_ENV=prod"};
    struct oci_platform p = plat("linux/amd64");
    struct oci_build_layer l = layer(HEX_A, HEX_B, OCI_MT_OCI_LAYER_GZIP);
    struct oci_build_changes ch;
    struct oci_digest cd, md;
    struct oci_index_entry e;
    struct oci_manifest m;
    char err[256], *cfg = NULL, *man = NULL, *idx = NULL;
    size_t cfg_len, man_len, idx_len;

    memset(&ch, 0, sizeof(ch));
    ch.env = env;
    ch.n_env = 1;
    CHECK_INT(oci_build_config(alpine_config, strlen(alpine_config), 1, &p, &ch, &l, 1, &cfg,
                               &cfg_len, err, sizeof(err)),
              0);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, cfg, cfg_len, &cd), 0);
    CHECK_INT(oci_build_manifest(alpine_docker_manifest, strlen(alpine_docker_manifest), &cd,
                                 cfg_len, true, &l, 1, NULL, 0, &man, &man_len, err, sizeof(err)),
              0);
    m = parse_ok(man, man_len);
    CHECK_INT(m.config.size, (long long)cfg_len);
    oci_manifest_free(&m);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, man, man_len, &md), 0);
    memset(&e, 0, sizeof(e));
    e.digest = md;
    e.size = man_len;
    e.platform = p;
    CHECK_INT(oci_build_index(&e, 1, true, NULL, 0, &idx, &idx_len, err, sizeof(err)), 0);
    m = parse_ok(idx, idx_len);
    if (m.n_manifests == 1)
        CHECK_STR(m.manifests[0].digest.str, md.str);
    oci_manifest_free(&m);
    free(cfg);
    free(man);
    free(idx);
}

TEST_MAIN(T(time_rfc3339), T(scratch_config), T(alpine_changes), T(dockerfile_fields),
          T(entrypoint_cmd), T(platform_agreement), T(bad_base_config), T(history_lines_up),
          T(determinism), T(validation_errors), T(layer_errors), T(manifest_oci),
          T(manifest_docker), T(manifest_errors), T(annotation_parse), T(index), T(pipeline))
