/*
 * Tests for the `ocisync sync` configuration reader: both formats parsed into
 * the expected entries, every validation error reported with the right line,
 * the safety caps, hostile YAML (anchors, aliases, tags, several documents,
 * deep nesting) and the file loader.
 */
#define _GNU_SOURCE

#include "test.h"

#include "cli/config.h"
#include "ocisync.h"

#include <uv.h>

#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHA256_ZERO "sha256:0000000000000000000000000000000000000000000000000000000000000000"

static const char skopeo_example[] = "docker.io:\n"                                         /* 1 */
                                     "  images:\n"                                          /* 2 */
                                     "    busybox: []                      # all tags\n"    /* 3 */
                                     "    redis: [\"1.0\", \"2.0\", \"" SHA256_ZERO "\"]\n" /* 4 */
                                     "  images-by-tag-regex:\n"                             /* 5 */
                                     "    nginx: ^1\\.13\\.[12]-alpine-perl$\n"             /* 6 */
                                     "  images-by-semver:\n"                                /* 7 */
                                     "    alpine: \">= 3.12.0\"\n"                          /* 8 */
                                     "  credentials:\n"                                     /* 9 */
                                     "    username: john\n"                                 /* 10 */
                                     "    password: this is a secret\n"                     /* 11 */
                                     "  tls-verify: true\n"                                 /* 12 */
                                     "  cert-dir: /home/john/certs\n"                       /* 13 */
                                     "quay.io:\n"                                           /* 14 */
                                     "  tls-verify: false\n"                                /* 15 */
                                     "  images:\n"                                          /* 16 */
                                     "    coreos/etcd: [latest]\n";                         /* 17 */

static const char ocisync_example[] =
    "jobs: 16                        # optional: transfers in flight overall\n" /* 1 */
    "registries:\n"                                                             /* 2 */
    "  registry.example.com:\n"                                                 /* 3 */
    "    tls-verify: false\n"                                                   /* 4 */
    "    cert-dir: /etc/ocisync/certs\n"                                        /* 5 */
    "    credentials: {username: bot, password: secret}\n"                      /* 6 */
    "    max-concurrency: 4\n"                                                  /* 7 */
    "mirrors:\n"                                                                /* 8 */
    "  - from: docker.io/library/alpine\n"                                      /* 9 */
    "    to: registry.example.com/mirror/alpine\n"                              /* 10 */
    "    tags: [\"3.20\", \"3.19\"]\n"                                          /* 11 */
    "    tags-regex: ['^3\\.[0-9]+$']\n"                                        /* 12 */
    "    exclude-regex: '-rc'\n"                                                /* 13 */
    "    semver: \">= 3.18\"\n"                                                 /* 14 */
    "    latest: 3\n"                                                           /* 15 */
    "    platforms: [linux/amd64, linux/arm64]\n"                               /* 16 */
    "  - from: docker.io/library\n"                                             /* 17 */
    "    to: registry.example.com/mirror\n"                                     /* 18 */
    "    repositories: [busybox, redis]\n"                                      /* 19 */
    "  - from: registry.internal/base\n"                                        /* 20 */
    "    to: registry.example.com/mirror/base\n"                                /* 21 */
    "    repositories: all\n";                                                  /* 22 */

static int parse(const char *yaml, struct cli_sync_config *cfg, char *err, size_t errlen)
{
    return cli_sync_config_parse(yaml, strlen(yaml), "sync.yml", cfg, err, errlen);
}

static bool is_empty(const struct cli_sync_config *cfg)
{
    return cfg->entries == NULL && cfg->n_entries == 0 && cfg->registries == NULL &&
           cfg->n_registries == 0 && cfg->jobs == 0;
}

/*
 * Parses yaml expecting failure rc with a message that starts with
 * "sync.yml:LINE: " (or "sync.yml: " for line 0) and contains want.
 */
static void expect_err_(const char *file, int at, const char *yaml, int rc, unsigned line,
                        const char *want)
{
    struct cli_sync_config cfg;
    char err[512], prefix[64];
    int got;

    memset(err, 'x', sizeof(err));
    got = parse(yaml, &cfg, err, sizeof(err));
    if (line > 0)
        snprintf(prefix, sizeof(prefix), "sync.yml:%u: ", line);
    else
        snprintf(prefix, sizeof(prefix), "sync.yml: ");
    test_checks_++;
    if (got != rc || strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, want) == NULL ||
        !is_empty(&cfg)) {
        fprintf(stderr, "%s:%d: expected %d \"%s...%s\", got %d \"%.*s\"\n", file, at, rc, prefix,
                want, got, (int)sizeof(err) - 1, err);
        test_failures_++;
    }
    cli_sync_config_free(&cfg);
}

#define expect_err(yaml, line, want)                                                               \
    expect_err_(__FILE__, __LINE__, (yaml), OCISYNC_EUSAGE, (line), (want))
#define expect_toobig(yaml, line, want)                                                            \
    expect_err_(__FILE__, __LINE__, (yaml), OCISYNC_ETOOBIG, (line), (want))

/* A heap string of printf output, for generated documents. */
struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->s != NULL && (size_t)n < b->cap - b->n)
            break;
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (b->s == NULL)
            abort();
    }
    b->n += (size_t)n;
}

/* ---------------------------------------------------------------------------------------------
 * Format 1: skopeo
 */

TEST(skopeo_example)
{
    struct cli_sync_config cfg;
    const struct cli_sync_entry *e;
    const struct cli_registry_conf *hub, *quay;
    char err[256];

    CHECK_INT(parse(skopeo_example, &cfg, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.format, CLI_SYNC_SKOPEO);
    CHECK_INT(cfg.jobs, 0);
    CHECK_INT(cfg.n_registries, 2);
    CHECK_INT(cfg.n_entries, 5);
    if (cfg.n_entries != 5 || cfg.n_registries != 2)
        goto out;

    hub = &cfg.registries[0];
    CHECK_STR(hub->name, "docker.io");
    CHECK_INT(hub->tls_verify, 1);
    CHECK_STR(hub->cert_dir, "/home/john/certs");
    CHECK_STR(hub->username, "john");
    CHECK_STR(hub->password, "this is a secret");
    CHECK(hub->identity_token == NULL);
    CHECK_INT(hub->max_concurrency, 0);
    CHECK_INT(hub->line, 1);
    quay = &cfg.registries[1];
    CHECK_STR(quay->name, "quay.io");
    CHECK_INT(quay->tls_verify, 0);
    CHECK(quay->cert_dir == NULL && quay->username == NULL && quay->password == NULL);
    CHECK(cli_sync_config_registry(&cfg, "docker.io") == hub);
    CHECK(cli_sync_config_registry(&cfg, "index.docker.io") == hub);
    CHECK(cli_sync_config_registry(&cfg, "quay.io") == quay);
    CHECK(cli_sync_config_registry(&cfg, "ghcr.io") == NULL);

    e = &cfg.entries[0];
    CHECK_STR(e->source, "docker.io/library/busybox");
    CHECK(e->dest == NULL);
    CHECK(!e->catalog);
    CHECK_INT(e->n_tags, 0);
    CHECK(e->n_include == 0 && e->n_exclude == 0 && e->semver == NULL && e->latest == 0);
    CHECK(e->src_conf == hub);
    CHECK_INT(e->line, 3);

    e = &cfg.entries[1];
    CHECK_STR(e->source, "docker.io/library/redis");
    CHECK_INT(e->n_tags, 3);
    if (e->n_tags == 3) {
        CHECK_STR(e->tags[0], "1.0");
        CHECK_STR(e->tags[1], "2.0");
        CHECK_STR(e->tags[2], SHA256_ZERO);
    }
    CHECK_INT(e->line, 4);

    e = &cfg.entries[2];
    CHECK_STR(e->source, "docker.io/library/nginx");
    CHECK_INT(e->n_tags, 0);
    CHECK_INT(e->n_include, 1);
    if (e->n_include == 1)
        CHECK_STR(e->include_regex[0], "^1\\.13\\.[12]-alpine-perl$");
    CHECK_INT(e->line, 6);
    CHECK(e->src_conf == hub);

    e = &cfg.entries[3];
    CHECK_STR(e->source, "docker.io/library/alpine");
    CHECK_STR(e->semver, ">= 3.12.0");
    CHECK_INT(e->n_include, 0);
    CHECK_INT(e->line, 8);

    e = &cfg.entries[4];
    CHECK_STR(e->source, "quay.io/coreos/etcd");
    CHECK_INT(e->n_tags, 1);
    if (e->n_tags == 1)
        CHECK_STR(e->tags[0], "latest");
    CHECK(e->src_conf == quay);
    CHECK_INT(e->line, 17);
out:
    cli_sync_config_free(&cfg);
    CHECK(is_empty(&cfg));
    cli_sync_config_free(&cfg); /* twice is fine */
}

TEST(skopeo_variants)
{
    struct cli_sync_config cfg;
    char err[256];

    /* Registries with ports, namespaces in the key, nulls, YAML 1.1 booleans, identity tokens. */
    CHECK_INT(parse("my-registry.local.lan:5000:\n"
                    "  tls-verify: no\n"
                    "  images:\n"
                    "    team/app:\n" /* null: all tags, as []: */
                    "    other: [v1, \"sha512:" SHA256_ZERO "\"]\n"
                    "quay.io/coreos:\n"
                    "  tls-verify: yes\n"
                    "  credentials: {identitytoken: tok}\n"
                    "  images: {etcd: [3.5.0]}\n"
                    "localhost:\n"
                    "  images-by-semver: {app: '~1.2'}\n"
                    "index.docker.io:\n"
                    "  images: {library/busybox: []}\n"
                    "empty.example.com:\n"
                    "ghcr.io: {images: ~, images-by-tag-regex: {}, cert-dir: ~}\n",
                    &cfg, err, sizeof(err)),
              OCISYNC_EUSAGE);
    /* ...the sha512 "digest" above is too short: a message, then the fixed document. */
    CHECK(strstr(err, "sync.yml:5: images: \"other\": \"sha512:") != NULL);
    CHECK(strstr(err, "is not a valid digest") != NULL);

    CHECK_INT(parse("my-registry.local.lan:5000:\n"
                    "  tls-verify: no\n"
                    "  images:\n"
                    "    team/app:\n"
                    "    other: [v1, 1.10, _x-y.z]\n"
                    "quay.io/coreos:\n"
                    "  tls-verify: yes\n"
                    "  credentials: {identitytoken: tok}\n"
                    "  images: {etcd: [3.5.0]}\n"
                    "localhost:\n"
                    "  images-by-semver: {app: '~1.2'}\n"
                    "index.docker.io:\n"
                    "  images: {library/busybox: []}\n"
                    "empty.example.com:\n"
                    "ghcr.io: {images: ~, images-by-tag-regex: {}, cert-dir: ~}\n",
                    &cfg, err, sizeof(err)),
              0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.n_registries, 6);
    CHECK_INT(cfg.n_entries, 5);
    if (cfg.n_entries == 5 && cfg.n_registries == 6) {
        CHECK_STR(cfg.registries[0].name, "my-registry.local.lan:5000");
        CHECK_INT(cfg.registries[0].tls_verify, 0);
        CHECK_STR(cfg.registries[1].name, "quay.io/coreos");
        CHECK_INT(cfg.registries[1].tls_verify, 1);
        CHECK_STR(cfg.registries[1].identity_token, "tok");
        CHECK(cfg.registries[1].username == NULL);
        CHECK_STR(cfg.registries[3].name, "index.docker.io");
        CHECK(cli_sync_config_registry(&cfg, "docker.io") == &cfg.registries[3]);
        CHECK(cli_sync_config_registry(&cfg, "index.docker.io") == &cfg.registries[3]);
        CHECK_INT(cfg.registries[4].tls_verify, -1);
        CHECK(cfg.registries[4].cert_dir == NULL);
        CHECK_STR(cfg.registries[4].name, "empty.example.com");
        CHECK_STR(cfg.registries[5].name, "ghcr.io");
        CHECK(cfg.registries[5].cert_dir == NULL);
        CHECK_STR(cfg.entries[0].source, "my-registry.local.lan:5000/team/app");
        CHECK_INT(cfg.entries[0].n_tags, 0);
        CHECK_STR(cfg.entries[1].source, "my-registry.local.lan:5000/other");
        CHECK_INT(cfg.entries[1].n_tags, 3);
        if (cfg.entries[1].n_tags == 3)
            CHECK_STR(cfg.entries[1].tags[1], "1.10"); /* the text as written, not a float */
        CHECK_STR(cfg.entries[2].source, "quay.io/coreos/etcd");
        CHECK(cfg.entries[2].src_conf == &cfg.registries[1]);
        CHECK_STR(cfg.entries[3].source, "localhost/app");
        CHECK_STR(cfg.entries[3].semver, "~1.2");
        CHECK_STR(cfg.entries[4].source, "docker.io/library/busybox");
        CHECK(cfg.entries[4].src_conf == &cfg.registries[3]);
    }
    cli_sync_config_free(&cfg);

    /* An empty mapping is a valid skopeo file with nothing in it. */
    CHECK_INT(parse("{}\n", &cfg, err, sizeof(err)), 0);
    CHECK_INT(cfg.format, CLI_SYNC_SKOPEO);
    CHECK_INT(cfg.n_entries, 0);
    cli_sync_config_free(&cfg);

    /* An explicit !!str tag and document markers are fine. */
    CHECK_INT(parse("%YAML 1.1\n---\ndocker.io: {images: {busybox: [!!str 1.0]}}\n...\n", &cfg, err,
                    sizeof(err)),
              0);
    CHECK_INT(cfg.n_entries, 1);
    if (cfg.n_entries == 1 && cfg.entries[0].n_tags == 1)
        CHECK_STR(cfg.entries[0].tags[0], "1.0");
    cli_sync_config_free(&cfg);
}

TEST(skopeo_errors)
{
    expect_err("docker.io:\n"
               "  images:\n"
               "    busybox: []\n"
               "  tls_verify: false\n",
               4,
               "\"docker.io\": unknown key \"tls_verify\" (expected images, images-by-tag-regex, "
               "images-by-semver, credentials, tls-verify or cert-dir)");
    expect_err("docker.io:\n"
               "  images:\n"
               "    busybox: []\n"
               "    redis: []\n"
               "    busybox: [latest]\n",
               5, "\"docker.io\": images: duplicate key \"busybox\" (first at line 3)");
    expect_err("docker.io:\n"
               "  tls-verify: true\n"
               "  tls-verify: false\n",
               3, "duplicate key \"tls-verify\" (first at line 2)");
    expect_err("docker.io: {}\n"
               "quay.io: {}\n"
               "docker.io: {}\n",
               3, "top level: duplicate key \"docker.io\" (first at line 1)");
    expect_err("docker.io:\n"
               "  images-by-semver:\n"
               "    alpine: [\">= 3\"]\n",
               3, "images-by-semver: \"alpine\" needs a string, not a list");
    expect_err("docker.io:\n"
               "  images-by-tag-regex:\n"
               "    alpine:\n",
               3, "images-by-tag-regex: \"alpine\" needs a string, not null");
    expect_err("docker.io:\n"
               "  tls-verify: maybe\n",
               2, "\"docker.io\": tls-verify needs true or false, not \"maybe\"");
    expect_err("docker.io:\n"
               "  tls-verify:\n",
               2, "tls-verify needs true or false, not null");
    expect_err("\"\":\n"
               "  images: {busybox: []}\n",
               1, "the registry name is empty");
    expect_err("docker.io: {}\n"
               "myhost:\n"
               "  images: {busybox: []}\n",
               2, "\"myhost\" is not a registry host");
    expect_err("docker.io:\n"
               "  images:\n"
               "    redis:\n"
               "      - \"1.0\"\n"
               "      - \"bad tag!\"\n",
               5, "images: \"redis\": \"bad tag!\" is not a valid tag");
    expect_err("docker.io:\n"
               "  images:\n"
               "    redis: [\"sha256:abc\"]\n",
               3, "\"sha256:abc\" is not a valid digest");
    expect_err("docker.io:\n"
               "  images:\n"
               "    redis: [\"\"]\n",
               3, "\"\" is an empty tag");
    expect_err("docker.io:\n"
               "  images:\n"
               "    busybox:latest: []\n",
               3, "images: \"busybox:latest\": \"docker.io/busybox:latest\" names a tag or digest");
    expect_err("docker.io:\n"
               "  images:\n"
               "    BusyBox: []\n",
               3, "images: \"BusyBox\": invalid reference");
    expect_err("docker.io:\n"
               "  images:\n"
               "    redis: latest\n",
               3, "images: \"redis\" needs a list, not a string");
    expect_err("docker.io:\n"
               "  images:\n"
               "    redis: [[latest]]\n",
               3, "list items need to be strings, not a list");
    expect_err("docker.io:\n"
               "  - busybox\n",
               2, "registry \"docker.io\" needs a mapping, not a list");
    expect_err("docker.io:\n"
               "  images: [busybox]\n",
               2, "\"docker.io\": images needs a mapping of image names, not a list");
    expect_err("docker.io:\n"
               "  credentials:\n"
               "    password: secret\n",
               2, "credentials: a password needs a username");
    expect_err("docker.io:\n"
               "  credentials:\n"
               "    user: john\n",
               3, "\"docker.io\": credentials: unknown key \"user\"");
    expect_err("docker.io:\n"
               "  credentials: john\n",
               2, "credentials needs a mapping, not a string");
    expect_err("docker.io:\n"
               "  cert-dir: [a]\n",
               2, "\"docker.io\": cert-dir needs a string, not a list");
    expect_err("docker.io:\n"
               "  images: {busybox: []}\n"
               "mirrors: []\n",
               3, "\"mirrors\" is a key of ocisync's own format");
    expect_err("? [a, b]\n"
               ": docker.io\n",
               1, "top level: keys must be strings, not a list");
}

/* ---------------------------------------------------------------------------------------------
 * Format 2: ocisync
 */

TEST(ocisync_example)
{
    struct cli_sync_config cfg;
    const struct cli_sync_entry *e;
    const struct cli_registry_conf *reg;
    char err[256];

    CHECK_INT(parse(ocisync_example, &cfg, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.format, CLI_SYNC_OCISYNC);
    CHECK_INT(cfg.jobs, 16);
    CHECK_INT(cfg.n_registries, 1);
    CHECK_INT(cfg.n_entries, 4);
    if (cfg.n_entries != 4 || cfg.n_registries != 1)
        goto out;

    reg = &cfg.registries[0];
    CHECK_STR(reg->name, "registry.example.com");
    CHECK_INT(reg->tls_verify, 0);
    CHECK_STR(reg->cert_dir, "/etc/ocisync/certs");
    CHECK_STR(reg->username, "bot");
    CHECK_STR(reg->password, "secret");
    CHECK_INT(reg->max_concurrency, 4);
    CHECK_INT(reg->line, 3);
    CHECK(cli_sync_config_registry(&cfg, "registry.example.com") == reg);

    e = &cfg.entries[0];
    CHECK_STR(e->source, "docker.io/library/alpine");
    CHECK_STR(e->dest, "registry.example.com/mirror/alpine");
    CHECK(!e->catalog);
    CHECK_INT(e->n_tags, 2);
    if (e->n_tags == 2) {
        CHECK_STR(e->tags[0], "3.20");
        CHECK_STR(e->tags[1], "3.19");
    }
    CHECK_INT(e->n_include, 1);
    if (e->n_include == 1)
        CHECK_STR(e->include_regex[0], "^3\\.[0-9]+$");
    CHECK_INT(e->n_exclude, 1);
    if (e->n_exclude == 1)
        CHECK_STR(e->exclude_regex[0], "-rc");
    CHECK_STR(e->semver, ">= 3.18");
    CHECK_INT(e->latest, 3);
    CHECK_INT(e->n_platforms, 2);
    if (e->n_platforms == 2) {
        CHECK_STR(e->platforms[0], "linux/amd64");
        CHECK_STR(e->platforms[1], "linux/arm64");
    }
    CHECK(e->src_conf == NULL); /* docker.io has no settings */
    CHECK_INT(e->line, 9);

    /* repositories: [busybox, redis] expands into one entry per name. */
    e = &cfg.entries[1];
    CHECK_STR(e->source, "docker.io/library/busybox");
    CHECK_STR(e->dest, "registry.example.com/mirror/busybox");
    CHECK(!e->catalog);
    CHECK(e->n_tags == 0 && e->n_include == 0 && e->n_platforms == 0 && e->semver == NULL);
    CHECK_INT(e->line, 17);
    e = &cfg.entries[2];
    CHECK_STR(e->source, "docker.io/library/redis");
    CHECK_STR(e->dest, "registry.example.com/mirror/redis");

    /* repositories: all is one catalog entry over the prefix. */
    e = &cfg.entries[3];
    CHECK(e->catalog);
    CHECK_STR(e->source, "registry.internal/base");
    CHECK_STR(e->dest, "registry.example.com/mirror/base");
    CHECK_INT(e->line, 20);
out:
    cli_sync_config_free(&cfg);
}

TEST(ocisync_expansion)
{
    struct cli_sync_config cfg;
    char err[256];

    CHECK_INT(parse("mirrors:\n"
                    "- from: registry.internal:5000\n" /* a whole registry's catalog */
                    "  to: docker://registry.example.com\n"
                    "  repositories: all\n"
                    "  tags-regex: ^v\n"
                    "- from: index.docker.io/bitnami\n"
                    "  to: registry.example.com/hub/bitnami\n"
                    "  repositories: [redis, team/app]\n"
                    "  tags: latest\n"
                    "  platforms: linux/arm/v7\n"
                    "  exclude-regex: [a, b]\n"
                    "- from: alpine\n" /* docker's short names for single repositories */
                    "  to: registry.example.com/alpine\n"
                    "- from: docker.io/library\n"
                    "  to: registry.example.com/x\n"
                    "  repositories: []\n"
                    "registries:\n"
                    "  registry.internal:5000: {credentials: {username: u, password: p}}\n"
                    "  index.docker.io:\n"
                    "    max-concurrency: 2\n",
                    &cfg, err, sizeof(err)),
              0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.n_entries, 4);
    CHECK_INT(cfg.n_registries, 2);
    if (cfg.n_entries == 4 && cfg.n_registries == 2) {
        CHECK_STR(cfg.registries[1].name, "docker.io");
        CHECK(cfg.entries[0].catalog);
        CHECK_STR(cfg.entries[0].source, "registry.internal:5000");
        CHECK_STR(cfg.entries[0].dest, "registry.example.com");
        CHECK(cfg.entries[0].src_conf == &cfg.registries[0]);
        CHECK_INT(cfg.entries[0].n_include, 1);
        CHECK_STR(cfg.entries[1].source, "docker.io/bitnami/redis");
        CHECK_STR(cfg.entries[1].dest, "registry.example.com/hub/bitnami/redis");
        CHECK_STR(cfg.entries[2].source, "docker.io/bitnami/team/app");
        CHECK_STR(cfg.entries[2].dest, "registry.example.com/hub/bitnami/team/app");
        for (size_t i = 1; i <= 2; i++) {
            const struct cli_sync_entry *e = &cfg.entries[i];
            CHECK(e->src_conf == &cfg.registries[1]);
            CHECK(e->n_tags == 1 && strcmp(e->tags[0], "latest") == 0);
            CHECK(e->n_platforms == 1 && strcmp(e->platforms[0], "linux/arm/v7") == 0);
            CHECK(e->n_exclude == 2 && strcmp(e->exclude_regex[1], "b") == 0);
            /* Each entry owns its own copies. */
            if (i == 2)
                CHECK(e->tags[0] != cfg.entries[1].tags[0]);
        }
        CHECK_STR(cfg.entries[3].source, "docker.io/library/alpine");
        CHECK_STR(cfg.entries[3].dest, "registry.example.com/alpine");
    }
    cli_sync_config_free(&cfg);

    /* mirrors may be empty; so may the whole list. */
    CHECK_INT(parse("mirrors:\n", &cfg, err, sizeof(err)), 0);
    CHECK_INT(cfg.format, CLI_SYNC_OCISYNC);
    CHECK_INT(cfg.n_entries, 0);
    cli_sync_config_free(&cfg);
}

TEST(ocisync_errors)
{
    expect_err("mirrors:\n"
               "  - from: docker.io/library/alpine\n"
               "    tags: [latest]\n",
               2, "mirrors: a mirror needs to");
    expect_err("mirrors:\n"
               "  - tags: [latest]\n",
               2, "mirrors: a mirror needs from and to");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    latest: 0\n",
               4, "mirrors: latest needs a positive integer, not \"0\"");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    latest: -1\n",
               4, "latest needs a positive integer, not \"-1\"");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    latest: \"3\"\n",
               4, "latest needs a positive integer, not \"3\"");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    latest: 99999999999999999999999\n",
               4, "latest must be at most 100000");
    expect_err("jobs: many\n"
               "mirrors: []\n",
               1, "jobs needs a positive integer, not \"many\"");
    expect_err("jobs: 5000\n"
               "mirrors: []\n",
               1, "jobs must be at most 1024");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    platforms:\n"
               "      - linux/amd64\n"
               "      - linux\n",
               6, "mirrors: platforms: \"linux\" is not os/arch[/variant]");
    expect_err("mirrors:\n"
               "  - {from: a.io/x, to: b.io/x, platforms: [linux/arm/v7/x]}\n",
               2, "more than three parts");
    expect_err("mirrors:\n"
               "  - {from: a.io/x, to: b.io/x, platforms: [linux//v7]}\n",
               2, "a part is empty");
    expect_err("mirrors:\n"
               "  - {from: a.io/x, to: b.io/x, platforms: [linux/amd 64]}\n",
               2, "parts are letters");
    expect_err("mirrors:\n"
               "  - from: alpine:3\n"
               "    to: b.io/x\n",
               2, "mirrors: from: \"alpine:3\" names a tag or digest");
    expect_err("mirrors:\n"
               "  - from: alpine\n"
               "    to: b.io/x@" SHA256_ZERO "\n",
               2, "mirrors: to: \"b.io/x@sha256:");
    expect_err("mirrors:\n"
               "  - from: alpine\n"
               "    to: Registry.example.com/Foo\n",
               2, "mirrors: to: invalid reference \"Registry.example.com/Foo\"");
    expect_err("mirrors:\n"
               "  - from: alpine\n"
               "    to: mirror/alpine\n",
               2, "mirrors: to: \"mirror\" is not a registry host");
    expect_err("mirrors:\n"
               "  - from: alpine\n"
               "    to: alpine\n",
               2, "mirrors: to: \"alpine\" is not a registry host");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    repositories: some\n",
               4, "mirrors: repositories needs a list of repository names or all, not \"some\"");
    expect_err("mirrors:\n"
               "  - from: a.io\n"
               "    to: b.io\n"
               "    repositories: [ok, Bad]\n",
               4, "mirrors: repositories: \"Bad\" is not a valid repository name");
    expect_err("mirrors:\n"
               "  - from: a.io\n"
               "    to: b.io\n"
               "    repositories: [ok, \"busybox:1\"]\n",
               4, "\"busybox:1\" names a tag or digest");
    expect_err("mirrors:\n"
               "  - from: a.io\n"
               "    to: b.io\n"
               "    repositories: [x, y, x]\n",
               2, "mirrors: repositories: duplicate repository \"x\"");
    expect_err("mirrors:\n"
               "  - from: library\n"
               "    to: b.io\n"
               "    repositories: [busybox]\n",
               2, "mirrors: from: \"library\" is not a registry host");
    expect_err("mirrors:\n"
               "  - from: a.io/ns:tag\n"
               "    to: b.io\n"
               "    repositories: all\n",
               2, "mirrors: from: \"a.io/ns:tag\" names a tag or digest");
    expect_err("mirrors:\n"
               "  - from: a.io/ns/\n"
               "    to: b.io\n"
               "    repositories: all\n",
               2, "mirrors: from: invalid reference");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    tag: latest\n",
               4,
               "mirrors: unknown key \"tag\" (expected from, to, tags, tags-regex, "
               "exclude-regex, semver, latest, platforms or repositories)");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    tags: [latest, \"not a tag\"]\n",
               4, "mirrors: tags: \"not a tag\" is not a valid tag");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    from: a.io/y\n",
               3, "mirrors: duplicate key \"from\" (first at line 2)");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: ~\n",
               3, "mirrors: to needs a string, not null");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    semver: [\">= 1\"]\n",
               4, "mirrors: semver needs a string, not a list");
    expect_err("mirrors:\n"
               "  - from: a.io/x\n"
               "    to: b.io/x\n"
               "    tags-regex: {a: b}\n",
               4, "mirrors: tags-regex needs a list or a string, not a mapping");
    expect_err("mirrors:\n"
               "  - docker.io/library/alpine\n",
               2, "mirrors: each item needs a mapping with from and to, not a string");
    expect_err("mirrors:\n"
               "  from: a.io/x\n",
               2, "mirrors needs a list, not a mapping");
    expect_err("registries:\n"
               "  registry.example.com/ns: {tls-verify: false}\n"
               "mirrors: []\n",
               2, "registries: \"registry.example.com/ns\" is not a registry host[:port]");
    expect_err("registries:\n"
               "  docker.io: {}\n"
               "  index.docker.io: {}\n"
               "mirrors: []\n",
               3, "registries: duplicate registry \"docker.io\" (first at line 2)");
    expect_err("registries:\n"
               "  a.io:\n"
               "    max-concurrency: 0\n"
               "mirrors: []\n",
               3, "registries: \"a.io\": max-concurrency needs a positive integer");
    expect_err("registries:\n"
               "  a.io:\n"
               "    images: {busybox: []}\n"
               "mirrors: []\n",
               3,
               "registries: \"a.io\": unknown key \"images\" (expected tls-verify, cert-dir, "
               "credentials or max-concurrency)");
    expect_err("registries:\n"
               "  noport: {}\n"
               "mirrors: []\n",
               2, "registries: \"noport\" is not a registry host");
    expect_err("registries:\n"
               "  a.io: {tls-verify: false}\n",
               1, "the file has registries but no mirrors list");
    expect_err("jobs: 4\n", 1, "the file has jobs but no mirrors list");
    expect_err("mirrors: []\n"
               "jobs: 1\n"
               "extra: 1\n",
               3, "top level: unknown key \"extra\" (expected jobs, registries or mirrors)");
    expect_err("mirrors: []\n"
               "mirrors: []\n",
               2, "top level: duplicate key \"mirrors\" (first at line 1)");
}

/* ---------------------------------------------------------------------------------------------
 * Hostile YAML and caps
 */

TEST(yaml_refusals)
{
    struct cli_sync_config cfg;
    char err[512];
    static const char billion_laughs[] = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                                         "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                                         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                                         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";

    expect_err(billion_laughs, 1, "YAML anchors (&a) are not supported");
    expect_err("docker.io: &defaults {tls-verify: false}\n", 1, "YAML anchors (&defaults)");
    expect_err("docker.io:\n"
               "  images: {busybox: []}\n"
               "quay.io: *defaults\n",
               3, "YAML aliases (*defaults) are not supported");
    expect_err("docker.io:\n"
               "  cert-dir: !!binary aGVsbG8=\n",
               2, "the YAML tag tag:yaml.org,2002:binary is not supported");
    expect_err("docker.io: !custom {images: {}}\n", 1, "the YAML tag !custom is not supported");
    expect_err("docker.io: {images: {busybox: []}}\n"
               "---\n"
               "quay.io: {}\n",
               2, "more than one YAML document");
    expect_err("docker.io: {}\n"
               "quay.io:\n"
               "  images: {a: []}\n"
               "  cert-dir: \"abc\n"
               "\n",
               6,
               "invalid YAML: while scanning a quoted scalar (from line 4) found unexpected end "
               "of stream");
    expect_err("docker.io: {}\n"
               "quay.io:\n"
               "  cert-dir: a\n"
               " bad: b\n",
               4, "invalid YAML: ");
    expect_err("docker.io:\n"
               "  images: {busybox: [a}\n",
               2, "invalid YAML: while parsing a flow sequence");
    expect_err("docker.io:\n"
               "  cert-dir: \"a\\0b\"\n",
               2, "cert-dir contains a NUL byte");
    expect_err("docker.io:\n"
               "  images:\n"
               "    \"a\\0b\": []\n",
               3, "contains a NUL byte");
    expect_err("", 0, "the file has no configuration in it");
    expect_err("# just a comment\n\n", 0, "the file has no configuration in it");
    expect_err("---\n~\n", 2, "the file has no configuration in it");
    expect_err("- docker.io\n", 1, "the top level needs a mapping");
    expect_err("docker.io\n", 1,
               "the top level needs a mapping (of registries, or with mirrors), "
               "not a string");

    /* Invalid UTF-8 is a reader error; its line is found from the byte offset. */
    expect_err("docker.io:\n"
               "  images:\n"
               "    busybox: [\"\xff\"]\n",
               3, "invalid YAML: ");

    /* A NULL buffer with no length is an empty document; with a length it is a misuse. */
    CHECK_INT(cli_sync_config_parse(NULL, 0, "x.yml", &cfg, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(cli_sync_config_parse(NULL, 3, "x.yml", &cfg, err, sizeof(err)), UV_EINVAL);
    CHECK(is_empty(&cfg));
    /* A NULL err buffer is allowed. */
    CHECK_INT(cli_sync_config_parse("- x", 3, "x.yml", &cfg, NULL, 0), OCISYNC_EUSAGE);
}

TEST(deep_nesting)
{
    struct sbuf b = {0};
    const size_t depth = 200000;

    /* Flow nesting far beyond the schema stops at the first level the schema does not allow. */
    sb_add(&b, "docker.io:\n  images:\n    busybox: ");
    for (size_t i = 0; i < depth; i++)
        sb_add(&b, "[");
    for (size_t i = 0; i < depth; i++)
        sb_add(&b, "]");
    sb_add(&b, "\n");
    expect_err(b.s, 3, "list items need to be strings, not a list");
    free(b.s);

    /* The same at the top, in block style. */
    memset(&b, 0, sizeof(b));
    for (size_t i = 0; i < 2000; i++)
        sb_add(&b, "%*sa%zu.io:\n", (int)i, "", i);
    expect_err(b.s, 2, "\"a0.io\": unknown key \"a1.io\"");
    free(b.s);
}

TEST(caps)
{
    struct cli_sync_config cfg;
    struct sbuf b = {0};
    char err[512];
    char *big;

    /* File size. */
    big = malloc(CLI_SYNC_MAX_FILE + 1);
    memset(big, ' ', CLI_SYNC_MAX_FILE + 1);
    CHECK_INT(cli_sync_config_parse(big, CLI_SYNC_MAX_FILE + 1, "sync.yml", &cfg, err, sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK(strstr(err, "sync.yml: the file is larger than 4 MiB") != NULL);
    free(big);

    /* String length. */
    sb_add(&b, "docker.io:\n  cert-dir: %0*d\n", CLI_SYNC_MAX_STRING + 1, 0);
    expect_toobig(b.s, 2, "a value is longer than 4096 bytes");
    free(b.s);
    memset(&b, 0, sizeof(b));
    sb_add(&b, "docker.io:\n  cert-dir: %0*d\n", CLI_SYNC_MAX_STRING, 0);
    CHECK_INT(parse(b.s, &cfg, err, sizeof(err)), 0);
    cli_sync_config_free(&cfg);
    free(b.s);

    /* Items in one list. */
    memset(&b, 0, sizeof(b));
    sb_add(&b, "docker.io:\n  images:\n    redis: [");
    for (int i = 0; i <= CLI_SYNC_MAX_LIST; i++)
        sb_add(&b, "t%d,", i);
    sb_add(&b, "]\n");
    expect_toobig(b.s, 3, "images: \"redis\" has more than 10000 items");
    free(b.s);

    /* Entries, in one skopeo images mapping. */
    memset(&b, 0, sizeof(b));
    sb_add(&b, "docker.io:\n  images: {");
    for (int i = 0; i <= CLI_SYNC_MAX_ENTRIES; i++)
        sb_add(&b, "i%d: [], ", i);
    sb_add(&b, "}\n");
    expect_toobig(b.s, 2, "more than 100000 entries");
    free(b.s);

    /* Entries, by expanding repositories (each list within its own cap). */
    memset(&b, 0, sizeof(b));
    sb_add(&b, "mirrors:\n");
    for (int m = 0; m < 11; m++) {
        sb_add(&b, "- {from: a.io/m%d, to: b.io/m%d, repositories: [", m, m);
        for (int i = 0; i < CLI_SYNC_MAX_LIST; i++)
            sb_add(&b, "r%d,", i);
        sb_add(&b, "]}\n");
    }
    expect_toobig(b.s, 12, "more than 100000 entries");
    free(b.s);

    /* Bytes: copying a long tag list into every expanded entry hits the budget. */
    memset(&b, 0, sizeof(b));
    sb_add(&b, "mirrors:\n- from: a.io\n  to: b.io\n  tags: [");
    for (int i = 0; i < CLI_SYNC_MAX_LIST; i++)
        sb_add(&b, "tag-number-%d,", i);
    sb_add(&b, "]\n  repositories: [");
    for (int i = 0; i < CLI_SYNC_MAX_LIST; i++)
        sb_add(&b, "r%d,", i);
    sb_add(&b, "]\n");
    expect_toobig(b.s, 0, "the configuration expands to more than 64 MiB");
    free(b.s);
}

/* ---------------------------------------------------------------------------------------------
 * The file loader
 */

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK_INT(fwrite(data, 1, len, f), len);
    fclose(f);
}

TEST(load_file)
{
    struct cli_sync_config cfg;
    char dir[] = "/tmp/ocisync-config-XXXXXX";
    char path[128], missing[128], err[512], *big;
    int rc;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/sync.yml", dir);
    snprintf(missing, sizeof(missing), "%s/missing.yml", dir);

    write_file(path, ocisync_example, strlen(ocisync_example));
    CHECK_INT(cli_sync_config_load(path, &cfg, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.format, CLI_SYNC_OCISYNC);
    CHECK_INT(cfg.n_entries, 4);
    cli_sync_config_free(&cfg);

    /* Messages name the file given. */
    write_file(path, "docker.io:\n  tls-verify: perhaps\n", 33);
    CHECK_INT(cli_sync_config_load(path, &cfg, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strncmp(err, path, strlen(path)) == 0);
    CHECK(strstr(err, "sync.yml:2: \"docker.io\": tls-verify needs true or false") != NULL);
    CHECK(is_empty(&cfg));

    rc = cli_sync_config_load(missing, &cfg, err, sizeof(err));
    CHECK_INT(rc, UV_ENOENT);
    CHECK(strstr(err, "cannot open ") != NULL && strstr(err, "missing.yml") != NULL);
    CHECK(is_empty(&cfg));

    CHECK_INT(cli_sync_config_load(dir, &cfg, err, sizeof(err)), UV_EISDIR);
    CHECK(strstr(err, "is a directory") != NULL);
    CHECK(is_empty(&cfg));

    /* A file past the cap is refused before parsing. */
    big = malloc(CLI_SYNC_MAX_FILE + 10);
    memset(big, '#', CLI_SYNC_MAX_FILE + 10);
    write_file(path, big, CLI_SYNC_MAX_FILE + 10);
    free(big);
    CHECK_INT(cli_sync_config_load(path, &cfg, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "is larger than 4 MiB") != NULL);
    CHECK(is_empty(&cfg));

    /* An empty file. */
    write_file(path, "", 0);
    CHECK_INT(cli_sync_config_load(path, &cfg, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "no configuration") != NULL);

    CHECK_INT(cli_sync_config_load(NULL, &cfg, err, sizeof(err)), UV_EINVAL);

    unlink(path);
    rmdir(dir);
}

/* A pipe has no size to go by; a document larger than the first read buffer still loads. */
TEST(load_pipe)
{
    struct cli_sync_config cfg;
    struct sbuf b = {0};
    char dir[] = "/tmp/ocisync-config-XXXXXX", path[128], err[512];
    pid_t pid;
    int status;

    sb_add(&b, "docker.io:\n  images:\n");
    for (int i = 0; i < 10000; i++)
        sb_add(&b, "    image%d: []\n", i);
    CHECK(b.n > 65536);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    CHECK_INT(mkfifo(path, 0600), 0);
    pid = fork();
    if (pid == 0) {
        FILE *f = fopen(path, "wb");
        if (f == NULL)
            _exit(1);
        fwrite(b.s, 1, b.n, f);
        fclose(f);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_INT(cli_sync_config_load(path, &cfg, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.n_entries, 10000);
    if (cfg.n_entries == 10000)
        CHECK_STR(cfg.entries[9999].source, "docker.io/library/image9999");
    cli_sync_config_free(&cfg);
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(path);
    rmdir(dir);
    free(b.s);
}

TEST_MAIN(T(skopeo_example), T(skopeo_variants), T(skopeo_errors), T(ocisync_example),
          T(ocisync_expansion), T(ocisync_errors), T(yaml_refusals), T(deep_nesting), T(caps),
          T(load_file), T(load_pipe))
