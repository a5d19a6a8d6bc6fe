/*
 * Tests for credential lookup (flags, environment, auth files, credential
 * helpers) and for storing and erasing auth-file entries.
 *
 * Every test runs in a fresh temporary directory that stands in for HOME and
 * XDG_RUNTIME_DIR, with the credential variables cleared and a bin/ directory
 * of small docker-credential-* shell scripts put first on PATH. Every secret
 * used contains "S3CR3T", so one check per error proves no message leaks it.
 */
#define _GNU_SOURCE

#include "test.h"

#include "ocisync.h"
#include "proto/auth.h"
#include "proto/internal.h"

#include <openssl/evp.h>
#include <uv.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define NO_SECRET(msg) CHECK(strstr((msg), "S3CR3T") == NULL)

static char root_dir[128];
static char home_dir[256], run_dir[256], bin_dir[256];
static char saved_path[8192];

static const char *const cleared_vars[] = {
    "REGISTRY_AUTH_FILE",    "DOCKER_CONFIG",      "XDG_CONFIG_HOME",
    "OCISYNC_USERNAME",      "OCISYNC_PASSWORD",   "OCISYNC_TOKEN",
    "OCISYNC_PULL_USERNAME", "OCISYNC_PULL_TOKEN", "OCISYNC_PULL_PASSWORD",
    "OCISYNC_PUSH_USERNAME", "OCISYNC_PUSH_TOKEN", "OCISYNC_PUSH_PASSWORD",
};

static void write_file_mode(const char *path, const char *content, mode_t mode)
{
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(content, f);
    fclose(f);
    chmod(path, mode);
}

static void write_file(const char *path, const char *content)
{
    write_file_mode(path, content, 0600);
}

/* Reads a whole small file; "" when it cannot. Static buffer. */
static const char *read_back(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = 0;

    buf[0] = '\0';
    if (f == NULL)
        return buf;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *in_root(const char *rel)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];

    snprintf(b, 512, "%s/%s", root_dir, rel);
    return b;
}

static void helper_script(const char *name, const char *body)
{
    char path[512], text[4096];

    snprintf(path, sizeof(path), "%s/docker-credential-%s", bin_dir, name);
    snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
    write_file_mode(path, text, 0755);
}

static void setup(void)
{
    char path[sizeof(saved_path) + 300];

    snprintf(root_dir, sizeof(root_dir), "/tmp/ocisync-creds-XXXXXX");
    CHECK(mkdtemp(root_dir) != NULL);
    snprintf(home_dir, sizeof(home_dir), "%s/home", root_dir);
    snprintf(run_dir, sizeof(run_dir), "%s/run", root_dir);
    snprintf(bin_dir, sizeof(bin_dir), "%s/bin", root_dir);
    CHECK(mkdir(home_dir, 0700) == 0);
    CHECK(mkdir(run_dir, 0700) == 0);
    CHECK(mkdir(bin_dir, 0700) == 0);
    setenv("HOME", home_dir, 1);
    setenv("XDG_RUNTIME_DIR", run_dir, 1);
    for (size_t i = 0; i < sizeof(cleared_vars) / sizeof(cleared_vars[0]); i++)
        unsetenv(cleared_vars[i]);
    if (saved_path[0] == '\0')
        snprintf(saved_path, sizeof(saved_path), "%s",
                 getenv("PATH") != NULL ? getenv("PATH") : "/usr/bin:/bin");
    snprintf(path, sizeof(path), "%s:%s", bin_dir, saved_path);
    setenv("PATH", path, 1);

    /* Answers for any registry, recording what it was asked on stdin. */
    helper_script("testhelper",
                  "[ \"$1\" = get ] || exit 2\n"
                  "reg=$(cat)\n"
                  "printf '%s\\n' \"$reg\" >> \"$(dirname \"$0\")/../helper-calls\"\n"
                  "case \"$reg\" in\n"
                  "notfound.example) echo 'credentials not found in native keychain'; exit 1;;\n"
                  "token.example) printf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\","
                  "\"Secret\":\"S3CR3T-identity\"}\\n' \"$reg\";;\n"
                  "*) printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-%s\","
                  "\"Secret\":\"S3CR3T-helper\"}\\n' \"$reg\" \"${reg#*://}\";;\n"
                  "esac");
    /* Knows Docker Hub only under "docker.io", as podman login stores it. */
    helper_script("podmanstyle",
                  "reg=$(cat)\n"
                  "printf '%s\\n' \"$reg\" >> \"$(dirname \"$0\")/../helper-calls\"\n"
                  "if [ \"$reg\" = docker.io ]; then\n"
                  "  echo '{\"Username\":\"podman-user\",\"Secret\":\"S3CR3T-podman\"}'; exit 0\n"
                  "fi\n"
                  "echo 'credentials not found in native keychain'; exit 1");
    helper_script("notfound", "cat >/dev/null\n"
                              "echo 'credentials not found in native keychain'\n"
                              "exit 1");
    helper_script("failing", "cat >/dev/null\n"
                             "echo 'error getting credentials: keychain is locked'\n"
                             "echo 'S3CR3T on the second line'\n"
                             "exit 1");
    helper_script("stderrfail", "cat >/dev/null\n"
                                "echo 'boom from stderr' >&2\n"
                                "exit 3");
    helper_script("slow", "sleep 5\necho '{}'");
    helper_script("closedpipes", "exec >&- 2>&-\nsleep 5");
    helper_script("bigout", "cat >/dev/null\nhead -c 70000 /dev/zero | tr '\\000' a");
    helper_script("badjson", "cat >/dev/null\necho 'S3CR3T-not-json {'");
    helper_script("colonuser", "cat >/dev/null\n"
                               "echo '{\"Username\":\"a:b\",\"Secret\":\"S3CR3T\"}'");
    helper_script("killed", "cat >/dev/null\nkill -9 $$");
    helper_script("empty", "cat >/dev/null\n"
                           "echo '{\"ServerURL\":\"x\",\"Username\":\"\",\"Secret\":\"\"}'");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static void teardown(void)
{
    /* Directories made unreadable by a test must be opened again to be removed. */
    chmod(in_root("home"), 0700);
    nftw(root_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    setenv("PATH", saved_path, 1);
}

/* base64 of s, for writing "auth" fields. Rotating static buffers. */
static const char *b64(const char *s)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];

    EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)s, (int)strlen(s));
    return b;
}

/* An auth file with one "auths" entry: {"auths":{key:{"auth":b64(userpass)}}}. */
static void write_auths(const char *path, const char *key, const char *userpass)
{
    char text[2048];

    snprintf(text, sizeof(text), "{\"auths\": {\"%s\": {\"auth\": \"%s\"}}}\n", key, b64(userpass));
    write_file(path, text);
}

static const char *docker_config(void)
{
    static char p[512];
    char dir[512];

    snprintf(dir, sizeof(dir), "%s/.docker", home_dir);
    mkdir(dir, 0700);
    snprintf(p, sizeof(p), "%s/config.json", dir);
    return p;
}

static const char *xdg_authfile(void)
{
    static char p[512];
    char dir[512];

    snprintf(dir, sizeof(dir), "%s/containers", run_dir);
    mkdir(dir, 0700);
    snprintf(p, sizeof(p), "%s/auth.json", dir);
    return p;
}

/* Looks up registry with nothing but the environment and the files. */
static int lookup(const char *registry, struct proto_cred *c, char *err, size_t errlen)
{
    struct proto_cred_query q = {.registry = registry};
    return proto_cred_lookup(&q, c, err, errlen);
}

/* ---------------------------------------------------------------------------------------------
 * Flags
 */

TEST(flags_creds_colons)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example", .creds = "user:pa:ss:S3CR3T:"};

    setup();
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_BASIC);
    CHECK_STR(c.username, "user");
    CHECK_STR(c.secret, "pa:ss:S3CR3T:");
    CHECK_STR(c.source, "--creds");
    proto_cred_dispose(&c);
    CHECK(c.username == NULL && c.secret == NULL && c.kind == PROTO_CRED_NONE);

    q.env_side = "OCISYNC_PULL";
    q.creds = "user:";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.secret, "");
    CHECK_STR(c.source, "--src-creds");
    proto_cred_dispose(&c);
    teardown();
}

TEST(flags_errors)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example", .env_side = "OCISYNC_PUSH"};

    setup();
    q.creds = "S3CR3Tnocolon";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "--dest-creds") != NULL);
    NO_SECRET(err);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    CHECK(c.secret == NULL);

    q.creds = ":S3CR3T";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "--dest-creds") != NULL);
    NO_SECRET(err);

    q.creds = "";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);

    q.creds = "u:S3CR3T";
    q.registry_token = "S3CR3T-token";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "--dest-registry-token") != NULL);
    NO_SECRET(err);

    q.creds = NULL;
    q.registry_token = "S3CR3T\r\nX-Injected: 1";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    NO_SECRET(err);
    q.registry_token = "";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);

    q.registry_token = NULL;
    q.registry = "";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    teardown();
}

TEST(flags_registry_token)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {
        .registry = "reg.example", .registry_token = "S3CR3T.tok", .env_side = "OCISYNC_PULL"};

    setup();
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_REGISTRY_TOKEN);
    CHECK_STR(c.secret, "S3CR3T.tok");
    CHECK_STR(c.source, "--src-registry-token");
    proto_cred_dispose(&c);
    teardown();
}

/* ---------------------------------------------------------------------------------------------
 * Order: flags, then environment, then files
 */

TEST(order_flags_env_file)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example", .creds = "flaguser:S3CR3T-f"};

    setup();
    write_auths(docker_config(), "reg.example", "fileuser:S3CR3T-file");
    setenv("OCISYNC_USERNAME", "envuser", 1);
    setenv("OCISYNC_PASSWORD", "S3CR3T-env", 1);

    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "flaguser");
    proto_cred_dispose(&c);

    q.creds = NULL;
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "envuser");
    CHECK_STR(c.secret, "S3CR3T-env");
    CHECK_STR(c.source, "$OCISYNC_USERNAME");
    proto_cred_dispose(&c);

    unsetenv("OCISYNC_USERNAME");
    unsetenv("OCISYNC_PASSWORD");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_BASIC);
    CHECK_STR(c.username, "fileuser");
    CHECK_STR(c.secret, "S3CR3T-file");
    CHECK_STR(c.source, docker_config());
    proto_cred_dispose(&c);

    /* Nothing for another registry: anonymous, not an error. */
    CHECK_INT(lookup("other.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    CHECK(c.username == NULL && c.secret == NULL);
    teardown();
}

/* ---------------------------------------------------------------------------------------------
 * Environment
 */

TEST(env_empty_ignored)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example", .env_side = "OCISYNC_PULL"};

    setup();
    write_auths(docker_config(), "reg.example", "fileuser:S3CR3T-file");
    setenv("OCISYNC_PULL_USERNAME", "", 1);
    setenv("OCISYNC_PULL_PASSWORD", "", 1);
    setenv("OCISYNC_PULL_TOKEN", "", 1);
    setenv("OCISYNC_USERNAME", "", 1);
    setenv("OCISYNC_TOKEN", "", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "fileuser");
    proto_cred_dispose(&c);

    /* An empty password makes a set username an error, as if it were unset. */
    setenv("OCISYNC_USERNAME", "u", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "$OCISYNC_PASSWORD") != NULL);
    teardown();
}

TEST(env_side_beats_generic)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example", .env_side = "OCISYNC_PULL"};

    setup();
    setenv("OCISYNC_USERNAME", "generic", 1);
    setenv("OCISYNC_PASSWORD", "S3CR3T-g", 1);
    setenv("OCISYNC_PULL_USERNAME", "puller", 1);
    setenv("OCISYNC_PULL_PASSWORD", "S3CR3T-p", 1);
    setenv("OCISYNC_PUSH_TOKEN", "S3CR3T-push", 1);

    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "puller");
    CHECK_STR(c.secret, "S3CR3T-p");
    CHECK_STR(c.source, "$OCISYNC_PULL_USERNAME");
    proto_cred_dispose(&c);

    q.env_side = "OCISYNC_PUSH";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_REGISTRY_TOKEN);
    CHECK(c.username == NULL);
    CHECK_STR(c.secret, "S3CR3T-push");
    CHECK_STR(c.source, "$OCISYNC_PUSH_TOKEN");
    proto_cred_dispose(&c);

    q.env_side = NULL;
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "generic");
    proto_cred_dispose(&c);

    unsetenv("OCISYNC_USERNAME");
    unsetenv("OCISYNC_PASSWORD");
    setenv("OCISYNC_TOKEN", "S3CR3T-gt", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_REGISTRY_TOKEN);
    CHECK_STR(c.source, "$OCISYNC_TOKEN");
    proto_cred_dispose(&c);
    teardown();
}

TEST(env_errors)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example", .env_side = "OCISYNC_PUSH"};

    setup();
    setenv("OCISYNC_PUSH_USERNAME", "u", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "$OCISYNC_PUSH_USERNAME") != NULL);
    CHECK(strstr(err, "$OCISYNC_PUSH_PASSWORD") != NULL);
    CHECK(c.secret == NULL);

    unsetenv("OCISYNC_PUSH_USERNAME");
    setenv("OCISYNC_PUSH_PASSWORD", "S3CR3T", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "$OCISYNC_PUSH_PASSWORD") != NULL);
    NO_SECRET(err);

    setenv("OCISYNC_PUSH_USERNAME", "u", 1);
    setenv("OCISYNC_PUSH_TOKEN", "S3CR3T-t", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "$OCISYNC_PUSH_TOKEN") != NULL);
    NO_SECRET(err);

    unsetenv("OCISYNC_PUSH_USERNAME");
    unsetenv("OCISYNC_PUSH_PASSWORD");
    setenv("OCISYNC_PUSH_TOKEN", "S3CR3T with space", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    NO_SECRET(err);

    unsetenv("OCISYNC_PUSH_TOKEN");
    setenv("OCISYNC_USERNAME", "a:b", 1);
    setenv("OCISYNC_PASSWORD", "S3CR3T", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "$OCISYNC_USERNAME") != NULL);
    teardown();
}

/* ---------------------------------------------------------------------------------------------
 * Which auth file
 */

TEST(authfile_order)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example"};

    setup();
    write_auths(in_root("flag.json"), "reg.example", "flag:S3CR3T");
    write_auths(in_root("env.json"), "reg.example", "env:S3CR3T");
    write_auths(xdg_authfile(), "reg.example", "xdg:S3CR3T");
    write_auths(docker_config(), "reg.example", "docker:S3CR3T");
    setenv("REGISTRY_AUTH_FILE", in_root("env.json"), 1);

    q.authfile = in_root("flag.json");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "flag");
    CHECK_STR(c.source, in_root("flag.json"));
    proto_cred_dispose(&c);

    q.authfile = NULL;
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "env");
    proto_cred_dispose(&c);

    unsetenv("REGISTRY_AUTH_FILE");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "xdg");
    CHECK_STR(c.source, xdg_authfile());
    proto_cred_dispose(&c);

    /* An empty XDG_RUNTIME_DIR counts as unset. */
    setenv("XDG_RUNTIME_DIR", "", 1);
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    proto_cred_dispose(&c);

    setenv("XDG_RUNTIME_DIR", run_dir, 1);
    unlink(xdg_authfile());
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    CHECK_STR(c.source, docker_config());
    proto_cred_dispose(&c);
    teardown();
}

TEST(authfile_env_falls_through)
{
    struct proto_cred c;
    char err[512];
    struct proto_cred_query q = {.registry = "reg.example"};

    setup();
    /*
     * $REGISTRY_AUTH_FILE (skopeo's --authfile default) replaces
     * $XDG_RUNTIME_DIR's file; as in skopeo 1.9.3, the files after it are
     * still read, and a missing one reads as empty.
     */
    setenv("REGISTRY_AUTH_FILE", in_root("missing.json"), 1);
    write_auths(xdg_authfile(), "reg.example", "xdg:S3CR3T");
    write_auths(docker_config(), "reg.example", "docker:S3CR3T");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    proto_cred_dispose(&c);
    write_auths(in_root("missing.json"), "other.example", "env:S3CR3T");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    proto_cred_dispose(&c);

    /* --authfile, the same. */
    unsetenv("REGISTRY_AUTH_FILE");
    q.authfile = in_root("missing.json");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    proto_cred_dispose(&c);

    /* Nothing at all: anonymous. */
    q.authfile = NULL;
    unlink(docker_config());
    unlink(xdg_authfile());
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    teardown();
}

TEST(authfile_named_must_exist)
{
    struct proto_cred c;
    char err[512] = "";
    struct proto_cred_query q = {.registry = "reg.example", .authfile = "/nonexistent/a.json"};

    setup();
    /* A typo in --authfile must not silently use another file's credentials. */
    write_auths(docker_config(), "reg.example", "docker:S3CR3T");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "/nonexistent/a.json") != NULL);
    CHECK(strstr(err, "S3CR3T") == NULL);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    teardown();
}

/* Writes {"<key>": {"auth": b64(userpass)}}, ~/.dockercfg's legacy format. */
static void write_legacy(const char *path, const char *key, const char *userpass)
{
    char text[2048];

    snprintf(text, sizeof(text), "{\"%s\": {\"auth\": \"%s\", \"email\": \"\"}}\n", key,
             b64(userpass));
    write_file(path, text);
}

TEST(authfile_falls_through)
{
    struct proto_cred c;
    char err[512], path[512], runc[512];

    setup();
    /* A file with nothing for the registry passes the lookup on to the next. */
    write_auths(xdg_authfile(), "elsewhere.example", "x:S3CR3T");
    write_auths(docker_config(), "reg.example", "docker:S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    CHECK_STR(c.source, docker_config());
    proto_cred_dispose(&c);

    /* ~/.config/containers/auth.json comes between the two. */
    snprintf(path, sizeof(path), "%s/.config/containers", home_dir);
    CHECK(system("mkdir -p \"$HOME/.config/containers\"") == 0);
    strncat(path, "/auth.json", sizeof(path) - strlen(path) - 1);
    write_auths(path, "reg.example", "config:S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "config");
    proto_cred_dispose(&c);
    /* $XDG_CONFIG_HOME moves it. */
    setenv("XDG_CONFIG_HOME", in_root("cfg"), 1);
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    proto_cred_dispose(&c);

    /* $DOCKER_CONFIG moves config.json; then the legacy ~/.dockercfg is last. */
    setenv("DOCKER_CONFIG", in_root("dockercfg"), 1);
    snprintf(path, sizeof(path), "%s/.dockercfg", home_dir);
    write_legacy(path, "https://reg.example/v1/", "legacy:S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "legacy");
    CHECK_STR(c.source, path);
    proto_cred_dispose(&c);
    mkdir(in_root("dockercfg"), 0700);
    write_auths(in_root("dockercfg/config.json"), "reg.example", "dc:S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "dc");
    proto_cred_dispose(&c);
    unlink(in_root("dockercfg/config.json"));

    /*
     * Legacy keys are registries only: containers/image drops any path, so
     * "reg.example/team" stands for the whole registry there.
     */
    write_legacy(path, "reg.example/team", "legacy:S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "legacy");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("reg.example:5000", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    write_legacy(path, "reg.example", "legacy:S3CR3T");
    {
        struct proto_cred_query q = {.registry = "reg.example", .repository = "team/app"};
        CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
        CHECK_STR(c.username, "legacy");
        CHECK_STR(c.scope, "");
        proto_cred_dispose(&c);
    }

    /* Without XDG_RUNTIME_DIR the primary file is /run/containers/$UID/auth.json. */
    unsetenv("XDG_RUNTIME_DIR");
    proto__run_containers = in_root("runc");
    snprintf(runc, sizeof(runc), "mkdir -p '%s/%u'", in_root("runc"), (unsigned)getuid());
    CHECK(system(runc) == 0);
    snprintf(runc, sizeof(runc), "%s/%u/auth.json", in_root("runc"), (unsigned)getuid());
    write_auths(runc, "reg.example", "runc:S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "runc");
    CHECK_STR(c.source, runc);
    proto_cred_dispose(&c);

    /* An XDG_RUNTIME_DIR that does not exist is skipped (containers/image warns). */
    setenv("XDG_RUNTIME_DIR", in_root("no-such-dir"), 1);
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "legacy");
    proto_cred_dispose(&c);
    proto__run_containers = "/run/containers";
    teardown();
}

TEST(authfile_helper_falls_through)
{
    struct proto_cred c;
    char err[512], text[512];

    setup();
    /* A helper with nothing for the registry passes on to the next file. */
    snprintf(text, sizeof(text), "{\"credHelpers\":{\"notfound.example\":\"testhelper\"}}");
    write_file(xdg_authfile(), text);
    write_auths(docker_config(), "notfound.example", "docker:S3CR3T");
    CHECK_INT(lookup("notfound.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "docker");
    proto_cred_dispose(&c);
    teardown();
}

TEST(repository_keys)
{
    struct proto_cred c;
    struct proto_cred_query q = {.registry = "reg.example:5000"};
    char err[512], text[2048], scope[256];
    static const struct {
        const char *repo, *user, *scope;
    } cases[] = {
        {"team/app", "app", "reg.example:5000/team/app"},
        {"team/app/sub", "app", "reg.example:5000/team/app"},
        {"team/app/sub/deeper", "sub", "reg.example:5000/team/app/sub/deeper"},
        {"team/appx", "team", "reg.example:5000/team"},
        {"team", "team", "reg.example:5000/team"},
        {"other/app", "host", ""},
        {"teamwork/app", "host", ""},
        {NULL, "host", ""},
    };

    setup();
    /* The longest key that is a whole-component prefix of registry/repository wins. */
    snprintf(text, sizeof(text),
             "{\"auths\":{\"https://reg.example:5000/v2/\":{\"auth\":\"%s\"},"
             "\"reg.example:5000/team\":{\"auth\":\"%s\"},"
             "\"reg.example:5000/team/app\":{\"auth\":\"%s\"},"
             "\"reg.example:5000/team/app/sub/deeper\":{\"auth\":\"%s\"}}}",
             b64("host:S3CR3T"), b64("team:S3CR3T"), b64("app:S3CR3T"), b64("sub:S3CR3T"));
    write_file(xdg_authfile(), text);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        q.repository = cases[i].repo;
        CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
        CHECK_STR(c.username, cases[i].user);
        CHECK_STR(c.scope, cases[i].scope);
        proto_cred_dispose(&c);
        CHECK_INT(proto_cred_scope(&q, scope, sizeof(scope), err, sizeof(err)), 0);
        CHECK_STR(scope, cases[i].scope);
    }

    /* Another registry's keys never match, with or without a port. */
    q.registry = "reg.example";
    q.repository = "team/app";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);

    /* The first file with an entry wins, even when a later one has a longer key. */
    q.registry = "reg.example:5000";
    write_auths(docker_config(), "reg.example:5000/other/app", "later:S3CR3T");
    q.repository = "other/app";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "host");
    proto_cred_dispose(&c);
    write_auths(xdg_authfile(), "reg.example:5000/team", "team:S3CR3T");
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "later");
    CHECK_STR(c.scope, "reg.example:5000/other/app");
    proto_cred_dispose(&c);

    /* docker.io: the repository key and then each spelling of the registry. */
    write_file(xdg_authfile(), "{}");
    snprintf(text, sizeof(text),
             "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"%s\"},"
             "\"docker.io/library/busybox\":{\"auth\":\"%s\"}}}",
             b64("hub:S3CR3T"), b64("bb:S3CR3T"));
    write_file(docker_config(), text);
    q.registry = "docker.io";
    q.repository = "library/busybox";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "bb");
    proto_cred_dispose(&c);
    q.repository = "library/alpine";
    CHECK_INT(proto_cred_lookup(&q, &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "hub");
    CHECK_STR(c.scope, "");
    proto_cred_dispose(&c);

    /* Flags and the environment hold for the whole registry. */
    q.creds = "flag:S3CR3T";
    q.repository = "library/busybox";
    CHECK_INT(proto_cred_scope(&q, scope, sizeof(scope), err, sizeof(err)), 0);
    CHECK_STR(scope, "");
    teardown();
}

TEST(find_file)
{
    char err[512], path[512];

    setup();
    CHECK_INT(proto_cred_find_file(NULL, "reg.example", path, sizeof(path), err, sizeof(err)),
              OCISYNC_ENOTFOUND);
    write_auths(xdg_authfile(), "elsewhere.example", "x:S3CR3T");
    write_auths(docker_config(), "reg.example", "docker:S3CR3T");
    CHECK_INT(proto_cred_find_file(NULL, "reg.example", path, sizeof(path), err, sizeof(err)), 0);
    CHECK_STR(path, docker_config());
    CHECK_INT(proto_cred_find_file(NULL, "elsewhere.example", path, sizeof(path), err, sizeof(err)),
              0);
    CHECK_STR(path, xdg_authfile());
    teardown();
}

TEST(authfile_unreadable)
{
    struct proto_cred c;
    char err[512];

    setup();
    /* A directory where the file should be exists but cannot be read. */
    CHECK(mkdir(in_root("dir.json"), 0700) == 0);
    setenv("REGISTRY_AUTH_FILE", in_root("dir.json"), 1);
    write_auths(docker_config(), "reg.example", "docker:S3CR3T");
    CHECK(lookup("reg.example", &c, err, sizeof(err)) < 0);
    CHECK(strstr(err, "dir.json") != NULL);
    CHECK_INT(c.kind, PROTO_CRED_NONE);

    if (geteuid() != 0) {
        write_auths(in_root("noperm.json"), "reg.example", "x:S3CR3T");
        chmod(in_root("noperm.json"), 0);
        setenv("REGISTRY_AUTH_FILE", in_root("noperm.json"), 1);
        CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), UV_EACCES);
        CHECK(strstr(err, "noperm.json") != NULL);
    }
    teardown();
}

/* ---------------------------------------------------------------------------------------------
 * Auth file contents
 */

TEST(auth_bad_base64)
{
    struct proto_cred c;
    char err[512];
    static const char *const bad[] = {
        "S3CR3T!!", "dXNlcjpwYXNz=", "dXNlcjpwYXN=", "a", "YQ==YQ==", "YR=="};

    setup();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "{\"auths\":{\"reg.example\":{\"auth\":\"%s\"}}}", bad[i]);
        write_file(docker_config(), text);
        CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_EJSON);
        CHECK(strstr(err, docker_config()) != NULL);
        CHECK(strstr(err, "reg.example") != NULL);
        CHECK(strstr(err, "base64") != NULL);
        NO_SECRET(err);
        CHECK(c.secret == NULL);
    }
    /* Missing padding is accepted. */
    write_file(docker_config(), "{\"auths\":{\"reg.example\":{\"auth\":\"dTpw\"}}}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "u");
    CHECK_STR(c.secret, "p");
    proto_cred_dispose(&c);
    write_file(docker_config(), "{\"auths\":{\"reg.example\":{\"auth\":\"dTpwcQ\"}}}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.secret, "pq");
    proto_cred_dispose(&c);
    teardown();
}

TEST(auth_no_colon)
{
    struct proto_cred c;
    char err[512];

    setup();
    write_auths(docker_config(), "reg.example", "S3CR3T-without-colon");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_EJSON);
    CHECK(strstr(err, docker_config()) != NULL);
    CHECK(strstr(err, "reg.example") != NULL);
    NO_SECRET(err);
    CHECK(strstr(err, b64("S3CR3T-without-colon")) == NULL);

    /* An entry for another registry does not matter. */
    CHECK_INT(lookup("other.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);

    write_auths(docker_config(), "reg.example", ":S3CR3T");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_EJSON);
    NO_SECRET(err);
    teardown();
}

TEST(auth_nul_bytes)
{
    struct proto_cred c;
    char err[512];

    setup();
    /* "u:S3CR3T\0\0": docker and containers/image trim NULs around the password. */
    write_file(docker_config(), "{\"auths\":{\"reg.example\":{\"auth\":\"dTpTM0NSM1QAAA==\"}}}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "u");
    CHECK_STR(c.secret, "S3CR3T");
    proto_cred_dispose(&c);
    /* "u:S3\0CR3T" cannot be represented. */
    write_file(docker_config(), "{\"auths\":{\"reg.example\":{\"auth\":\"dTpTMwBDUjNU\"}}}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_EJSON);
    NO_SECRET(err);
    teardown();
}

TEST(key_variants)
{
    struct proto_cred c;
    char err[512];
    static const struct {
        const char *key, *query;
    } match[] = {
        {"https://reg.example", "reg.example"},
        {"http://reg.example/", "reg.example"},
        {"https://reg.example/v1/", "reg.example"},
        {"reg.example/v1/", "reg.example"},
        {"reg.example/v2/", "reg.example"},
        {"HTTPS://reg.example:5000/v2/", "reg.example:5000"},
        {"https://index.docker.io/v1/", "docker.io"},
        {"index.docker.io", "docker.io"},
        {"registry-1.docker.io", "docker.io"},
        {"docker.io", "index.docker.io"},
        {"docker.io", "registry-1.docker.io"},
        {"https://index.docker.io/v1/", "index.docker.io"},
        {"127.0.0.1:5000", "127.0.0.1:5000"},
    };
    static const struct {
        const char *key, *query;
    } nomatch[] = {
        {"reg.example:5000", "reg.example"},
        {"https://reg.example:5000", "reg.example"},
        {"reg.example", "reg.example:5000"},
        {"reg.example/team", "reg.example"},
        {"sub.reg.example", "reg.example"},
        {"https://reg.example.evil", "reg.example"},
        {"docker.io", "quay.io"},
        {"ftp://reg.example", "reg.example"},
    };

    setup();
    for (size_t i = 0; i < sizeof(match) / sizeof(match[0]); i++) {
        write_auths(docker_config(), match[i].key, "kv:S3CR3T");
        CHECK_INT(lookup(match[i].query, &c, err, sizeof(err)), 0);
        CHECK_INT(c.kind, PROTO_CRED_BASIC);
        if (c.kind != PROTO_CRED_BASIC)
            fprintf(stderr, "  key %s query %s\n", match[i].key, match[i].query);
        proto_cred_dispose(&c);
    }
    for (size_t i = 0; i < sizeof(nomatch) / sizeof(nomatch[0]); i++) {
        write_auths(docker_config(), nomatch[i].key, "kv:S3CR3T");
        CHECK_INT(lookup(nomatch[i].query, &c, err, sizeof(err)), 0);
        CHECK_INT(c.kind, PROTO_CRED_NONE);
        if (c.kind != PROTO_CRED_NONE)
            fprintf(stderr, "  key %s query %s\n", nomatch[i].key, nomatch[i].query);
        proto_cred_dispose(&c);
    }

    /* The exact key wins over another spelling, wherever it is in the file. */
    {
        char text[1024];
        snprintf(text, sizeof(text),
                 "{\"auths\":{\"https://reg.example/v1/\":{\"auth\":\"%s\"},"
                 "\"reg.example\":{\"auth\":\"%s\"}}}",
                 b64("legacy:S3CR3T"), b64("exact:S3CR3T"));
        write_file(docker_config(), text);
        CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
        CHECK_STR(c.username, "exact");
        proto_cred_dispose(&c);
    }
    teardown();
}

TEST(namespace_keys)
{
    struct proto_cred c;
    char err[512], text[1024];

    setup();
    snprintf(text, sizeof(text),
             "{\"auths\":{\"quay.io\":{\"auth\":\"%s\"},\"quay.io/team\":{\"auth\":\"%s\"},"
             "\"quay.io/team/app\":{\"auth\":\"%s\"}}}",
             b64("host:S3CR3T"), b64("team:S3CR3T"), b64("app:S3CR3T"));
    write_file(docker_config(), text);
    CHECK_INT(lookup("quay.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "host");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("quay.io/team/other", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "team");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("quay.io/team/app", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "app");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("quay.io/elsewhere/app", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "host");
    proto_cred_dispose(&c);
    teardown();
}

TEST(identity_token)
{
    struct proto_cred c;
    char err[512], text[1024];

    setup();
    snprintf(text, sizeof(text),
             "{\"auths\":{\"a.example\":{\"auth\":\"%s\",\"identitytoken\":\"S3CR3T-id\"},"
             "\"b.example\":{\"identitytoken\":\"S3CR3T-id2\"},"
             "\"c.example\":{\"auth\":\"\",\"identitytoken\":\"S3CR3T-id3\"},"
             "\"d.example\":{\"registrytoken\":\"S3CR3T-rt\"}}}",
             b64("azure:"));
    write_file(docker_config(), text);
    CHECK_INT(lookup("a.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_IDENTITY);
    CHECK_STR(c.username, "azure");
    CHECK_STR(c.secret, "S3CR3T-id");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("b.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_IDENTITY);
    CHECK_STR(c.username, "<token>");
    CHECK_STR(c.secret, "S3CR3T-id2");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("c.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_IDENTITY);
    CHECK_STR(c.username, "<token>");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("d.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_REGISTRY_TOKEN);
    CHECK_STR(c.secret, "S3CR3T-rt");
    proto_cred_dispose(&c);
    teardown();
}

TEST(kubernetes_dockerconfigjson)
{
    struct proto_cred c;
    char err[512], text[1024];

    setup();
    /* What `kubectl create secret docker-registry` puts in .dockerconfigjson. */
    snprintf(text, sizeof(text),
             "{\"auths\":{\"registry.k8s.example:5000\":{\"username\":\"kube\","
             "\"password\":\"S3CR3T-kube\",\"email\":\"k@example.com\",\"auth\":\"%s\"},"
             "\"plain.example\":{\"username\":\"plain\",\"password\":\"S3CR3T-plain\"}}}",
             b64("kube:S3CR3T-kube"));
    write_file(in_root("dockerconfigjson"), text);
    setenv("REGISTRY_AUTH_FILE", in_root("dockerconfigjson"), 1);
    CHECK_INT(lookup("registry.k8s.example:5000", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_BASIC);
    CHECK_STR(c.username, "kube");
    CHECK_STR(c.secret, "S3CR3T-kube");
    proto_cred_dispose(&c);
    /* docker/cli also reads plain "username" and "password" when "auth" is absent. */
    CHECK_INT(lookup("plain.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "plain");
    CHECK_STR(c.secret, "S3CR3T-plain");
    proto_cred_dispose(&c);
    /* ... but a ':' in such a username could not go into a Basic header. */
    write_file(in_root("dockerconfigjson"),
               "{\"auths\":{\"plain.example\":{\"username\":\"a:b\",\"password\":\"S3CR3T\"}}}");
    CHECK_INT(lookup("plain.example", &c, err, sizeof(err)), OCISYNC_EJSON);
    CHECK(strstr(err, "plain.example") != NULL);
    NO_SECRET(err);
    teardown();
}

TEST(empty_entries_and_files)
{
    struct proto_cred c;
    char err[512];

    setup();
    write_file(docker_config(), "");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    write_file(docker_config(), " \n\t\n");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    write_file(docker_config(), "{}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    write_file(docker_config(), "{\"auths\":{}}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    write_file(docker_config(), "{\"auths\":{\"reg.example\":{}}}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    write_file(docker_config(),
               "{\"auths\":{\"reg.example\":{\"auth\":\"\"}},\"credsStore\":\"\"}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    write_file(docker_config(), "{\"auths\":null,\"credHelpers\":null,\"credsStore\":null}");
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);
    teardown();
}

TEST(invalid_json)
{
    struct proto_cred c;
    char err[512];
    static const char *const docs[] = {
        "{\"auths\": {\"reg.example\": {\"auth\": \"S3CR3T-in-an-unterminated-string",
        "{\"auths\": {\"reg.example\": {\"auth\": \"S3CR3T\\q\"}}}",
        "{\"auths\": {\"reg.example\": {\"auth\": S3CR3T}}}",
        "{\"auths\": {} } S3CR3T",
        "[\"S3CR3T\"]",
        "{\"auths\": [\"S3CR3T\"]}",
        "{\"auths\": {\"reg.example\": \"S3CR3T\"}}",
        "{\"auths\": {\"reg.example\": {\"auth\": 5}}}",
        "{\"auths\": {\"reg.example\": {\"identitytoken\": [\"S3CR3T\"]}}}",
        "{\"auths\": {\"reg.example\": {\"auth\": \"u:S3CR3T\\u0000\"}}}",
        "{\"credHelpers\": \"S3CR3T\"}",
        "{\"credHelpers\": {\"reg.example\": \"../../bin/sh\"}}",
        "{\"credHelpers\": {\"reg.example\": 1}}",
        "{\"credsStore\": \"a/b\"}",
        "{\"credsStore\": 7}",
        "\"S3CR3T\"",
        "{\"auths\": {\"reg.example\": {\"auth\": \"\xff\xfeS3CR3T\"}}}",
    };

    setup();
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        write_file(docker_config(), docs[i]);
        memset(err, 0, sizeof(err));
        CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_EJSON);
        CHECK(strstr(err, docker_config()) != NULL);
        NO_SECRET(err);
        CHECK(c.secret == NULL && c.username == NULL);
        if (strstr(err, "S3CR3T") != NULL || strstr(err, docker_config()) == NULL)
            fprintf(stderr, "  doc %zu: %s\n", i, err);
    }
    teardown();
}

TEST(oversized_and_deep)
{
    struct proto_cred c;
    char err[512];
    size_t big = 4 * 1024 * 1024 + 16;
    char *text = malloc(big + 1);

    setup();
    CHECK(text != NULL);
    if (text == NULL)
        return;
    /* Valid JSON, padded with whitespace past the cap. */
    memset(text, ' ', big);
    memcpy(text, "{}", 2);
    text[big] = '\0';
    write_file(docker_config(), text);
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(strstr(err, docker_config()) != NULL);

    /* Just under the cap is fine. */
    text[4 * 1024 * 1024 - 1] = '\0';
    write_file(docker_config(), text);
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), 0);

    /* Deep nesting is refused before jansson recurses. */
    snprintf(text, big, "{\"x\":");
    memset(text + 5, '[', 100000);
    text[100005] = '\0';
    write_file(docker_config(), text);
    CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_EJSON);
    free(text);

    /* An "auth" longer than any credential. */
    {
        size_t n = 40000;
        char *doc = malloc(n + 100);
        CHECK(doc != NULL);
        if (doc != NULL) {
            int off = snprintf(doc, n + 100, "{\"auths\":{\"reg.example\":{\"auth\":\"");
            memset(doc + off, 'A', n);
            strcpy(doc + off + n, "\"}}}");
            write_file(docker_config(), doc);
            CHECK_INT(lookup("reg.example", &c, err, sizeof(err)), OCISYNC_ETOOBIG);
            free(doc);
        }
    }
    teardown();
}

/* ---------------------------------------------------------------------------------------------
 * Credential helpers
 */

TEST(helper_credhelpers)
{
    struct proto_cred c;
    char err[512], text[1024];

    setup();
    snprintf(text, sizeof(text),
             "{\"credHelpers\":{\"helped.example\":\"testhelper\",\"token.example\":\"testhelper\","
             "\"notfound.example\":\"testhelper\",\"broken.example\":\"failing\","
             "\"https://legacy.example\":\"testhelper\",\"filed.example\":\"\"},"
             "\"auths\":{\"helped.example\":{\"auth\":\"%s\"},\"filed.example\":{\"auth\":\"%s\"},"
             "\"notfound.example\":{\"auth\":\"%s\"}},"
             "\"credsStore\":\"failing\"}",
             b64("fileuser:S3CR3T"), b64("filed:S3CR3T"), b64("nf:S3CR3T"));
    write_file(docker_config(), text);

    /* credHelpers beat auths. */
    CHECK_INT(lookup("helped.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_BASIC);
    CHECK_STR(c.username, "helper-helped.example");
    CHECK_STR(c.secret, "S3CR3T-helper");
    CHECK_STR(c.source, "docker-credential-testhelper");
    proto_cred_dispose(&c);
    CHECK_STR(read_back(in_root("helper-calls")), "helped.example\n");

    /* "<token>" means an identity token. */
    CHECK_INT(lookup("token.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_IDENTITY);
    CHECK_STR(c.username, "<token>");
    CHECK_STR(c.secret, "S3CR3T-identity");
    proto_cred_dispose(&c);

    /* The helper's "not found" is anonymous, with no fallback to auths. */
    CHECK_INT(lookup("notfound.example", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);

    /* Keys are matched like auths keys. */
    CHECK_INT(lookup("legacy.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "helper-legacy.example");
    proto_cred_dispose(&c);

    /* An empty helper name means the file, and keeps credsStore out. */
    CHECK_INT(lookup("filed.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "filed");
    proto_cred_dispose(&c);

    /* A failing helper is an error naming it. */
    CHECK_INT(lookup("broken.example", &c, err, sizeof(err)), OCISYNC_EUNAUTHORIZED);
    CHECK(strstr(err, "docker-credential-failing") != NULL);
    CHECK(strstr(err, "keychain is locked") != NULL);
    NO_SECRET(err);
    teardown();
}

TEST(helper_docker_hub)
{
    struct proto_cred c;
    char err[512];

    setup();
    write_file(docker_config(),
               "{\"credHelpers\":{\"https://index.docker.io/v1/\":\"testhelper\"}}");
    CHECK_INT(lookup("docker.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "helper-index.docker.io/v1/");
    proto_cred_dispose(&c);
    CHECK_STR(read_back(in_root("helper-calls")), "https://index.docker.io/v1/\n");
    unlink(in_root("helper-calls"));

    /* What podman login stores, under "docker.io", is found second. */
    write_file(docker_config(), "{\"credHelpers\":{\"docker.io\":\"podmanstyle\"}}");
    CHECK_INT(lookup("docker.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "podman-user");
    CHECK_STR(c.secret, "S3CR3T-podman");
    proto_cred_dispose(&c);
    CHECK_STR(read_back(in_root("helper-calls")), "https://index.docker.io/v1/\ndocker.io\n");
    teardown();
}

TEST(helper_credsstore)
{
    struct proto_cred c;
    char err[512], text[1024];

    setup();
    snprintf(text, sizeof(text),
             "{\"auths\":{\"a.example\":{\"auth\":\"%s\"},\"c.example\":{}},"
             "\"credsStore\":\"testhelper\"}",
             b64("fileuser:S3CR3T"));
    write_file(xdg_authfile(), text);
    CHECK_INT(lookup("a.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "fileuser");
    CHECK_STR(c.source, xdg_authfile());
    proto_cred_dispose(&c);
    CHECK_INT(lookup("b.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "helper-b.example");
    CHECK_STR(c.source, "docker-credential-testhelper");
    proto_cred_dispose(&c);
    /* Docker writes empty entries next to a credsStore; they defer to it. */
    CHECK_INT(lookup("c.example", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "helper-c.example");
    proto_cred_dispose(&c);

    write_file(xdg_authfile(), "{\"credsStore\":\"notinstalled\"}");
    CHECK_INT(lookup("b.example", &c, err, sizeof(err)), UV_ENOENT);
    CHECK(strstr(err, "docker-credential-notinstalled") != NULL);
    teardown();
}

TEST(helper_get_outcomes)
{
    struct proto_cred c;
    char err[512];

    setup();
    CHECK_INT(proto_cred_helper_get("notfound", "reg.example", 5000, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);

    CHECK_INT(proto_cred_helper_get("empty", "reg.example", 5000, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);

    CHECK_INT(proto_cred_helper_get("failing", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUNAUTHORIZED);
    CHECK(strstr(err, "docker-credential-failing") != NULL);
    CHECK(strstr(err, "error getting credentials: keychain is locked") != NULL);
    CHECK(strstr(err, "exited with 1") != NULL);
    NO_SECRET(err);

    CHECK_INT(proto_cred_helper_get("stderrfail", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUNAUTHORIZED);
    CHECK(strstr(err, "docker-credential-stderrfail") != NULL);
    CHECK(strstr(err, "boom from stderr") != NULL);
    CHECK(strstr(err, "exited with 3") != NULL);

    CHECK_INT(proto_cred_helper_get("killed", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUNAUTHORIZED);
    CHECK(strstr(err, "signal 9") != NULL);

    CHECK_INT(proto_cred_helper_get("badjson", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUNAUTHORIZED);
    CHECK(strstr(err, "docker-credential-badjson") != NULL);
    NO_SECRET(err);
    CHECK(c.secret == NULL);

    CHECK_INT(proto_cred_helper_get("colonuser", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUNAUTHORIZED);
    NO_SECRET(err);

    CHECK_INT(proto_cred_helper_get("bigout", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_ETOOBIG);
    CHECK(strstr(err, "docker-credential-bigout") != NULL);

    CHECK_INT(proto_cred_helper_get("absent", "reg.example", 5000, &c, err, sizeof(err)),
              UV_ENOENT);
    CHECK(strstr(err, "docker-credential-absent") != NULL);

    CHECK_INT(proto_cred_helper_get("../bin/sh", "reg.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_INT(proto_cred_helper_get("", "reg.example", 5000, &c, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(proto_cred_helper_get("testhelper", "reg\n.example", 5000, &c, err, sizeof(err)),
              OCISYNC_EUSAGE);

    CHECK_INT(proto_cred_helper_get("testhelper", "token.example", 5000, &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_IDENTITY);
    CHECK_STR(c.secret, "S3CR3T-identity");
    proto_cred_dispose(&c);
    teardown();
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

TEST(helper_timeout)
{
    struct proto_cred c;
    struct timespec t0;
    char err[512];
    double took;

    setup();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(proto_cred_helper_get("slow", "reg.example", 300, &c, err, sizeof(err)),
              OCISYNC_ETIMEOUT);
    took = seconds_since(&t0);
    CHECK(took >= 0.25 && took < 3.0);
    CHECK(strstr(err, "docker-credential-slow") != NULL);
    CHECK(strstr(err, "300 ms") != NULL);

    /* Closing its output does not make a helper done: the wait has the same deadline. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(proto_cred_helper_get("closedpipes", "reg.example", 300, &c, err, sizeof(err)),
              OCISYNC_ETIMEOUT);
    took = seconds_since(&t0);
    CHECK(took >= 0.25 && took < 3.0);
    teardown();
}

/* ---------------------------------------------------------------------------------------------
 * Storing and erasing
 */

static mode_t file_mode(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

/* Whether dir holds any leftover "*.tmp.*" file. */
static bool has_temp_files(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -q '\\.tmp\\.'", dir);
    return system(cmd) == 0;
}

TEST(store_erase_roundtrip)
{
    struct proto_cred c;
    char err[512], path[512], dir[512];
    const char *text;

    setup();
    /* The default file is under XDG_RUNTIME_DIR, whose containers/ does not exist yet. */
    CHECK_INT(proto_cred_default_authfile(NULL, path, sizeof(path)), 0);
    snprintf(dir, sizeof(dir), "%s/containers", run_dir);
    CHECK_STR(path, xdg_authfile());
    rmdir(dir);

    umask(022);
    CHECK_INT(proto_cred_store(path, "docker.io", "me", "pa:ss S3CR3T", err, sizeof(err)), 0);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(file_mode(dir), 0700);
    CHECK(!has_temp_files(dir));
    text = read_back(path);
    /* podman login writes "docker.io" as it is. */
    CHECK(strstr(text, "\"docker.io\"") != NULL);
    CHECK(strstr(text, "index.docker.io") == NULL);
    CHECK(strstr(text, b64("me:pa:ss S3CR3T")) != NULL);
    CHECK(strstr(text, "S3CR3T") == NULL);

    CHECK_INT(lookup("docker.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "me");
    CHECK_STR(c.secret, "pa:ss S3CR3T");
    proto_cred_dispose(&c);
    CHECK_INT(lookup("registry-1.docker.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "me");
    proto_cred_dispose(&c);

    /* Storing again replaces the entry. */
    CHECK_INT(proto_cred_store(path, "docker.io", "you", "S3CR3T2", err, sizeof(err)), 0);
    CHECK_INT(lookup("docker.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "you");
    proto_cred_dispose(&c);

    CHECK_INT(proto_cred_erase(path, "docker.io", err, sizeof(err)), 0);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(lookup("docker.io", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    CHECK_INT(proto_cred_erase(path, "docker.io", err, sizeof(err)), OCISYNC_ENOTFOUND);
    CHECK(strstr(err, "docker.io") != NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK(!has_temp_files(dir));

    /* No file at all. */
    CHECK_INT(proto_cred_erase(in_root("none/auth.json"), "docker.io", err, sizeof(err)),
              OCISYNC_ENOTFOUND);
    CHECK(access(in_root("none"), F_OK) != 0);
    teardown();
}

TEST(store_preserves_other_keys)
{
    char err[512];
    const char *path;
    const char *text;
    char doc[2048];
    struct proto_cred c;

    setup();
    path = docker_config();
    snprintf(doc, sizeof(doc),
             "{\n\t\"auths\": {\n\t\t\"other.example\": {\"auth\": \"%s\", \"email\": \"x@y\"},\n"
             "\t\t\"quay.io/team\": {\"auth\": \"%s\"}\n\t},\n"
             "\t\"credHelpers\": {\"gcr.io\": \"gcloud\"},\n\t\"credsStore\": \"desktop\",\n"
             "\t\"HttpHeaders\": {\"X-Meta\": \"1\"},\n\t\"psFormat\": \"table {{.ID}}\",\n"
             "\t\"experimental\": true, \"n\": 1.5, \"list\": [1, null, \"x\"]\n}\n",
             b64("other:S3CR3T"), b64("team:S3CR3T"));
    write_file_mode(path, doc, 0644);
    CHECK_INT(proto_cred_store(path, "new.example:5000", "nu", "S3CR3T", err, sizeof(err)), 0);
    CHECK_INT(file_mode(path), 0600);
    text = read_back(path);
    CHECK(strstr(text, "\"other.example\"") != NULL);
    CHECK(strstr(text, "\"email\": \"x@y\"") != NULL);
    CHECK(strstr(text, "\"quay.io/team\"") != NULL);
    CHECK(strstr(text, "\"gcr.io\": \"gcloud\"") != NULL);
    CHECK(strstr(text, "\"credsStore\": \"desktop\"") != NULL);
    CHECK(strstr(text, "\"X-Meta\": \"1\"") != NULL);
    CHECK(strstr(text, "\"psFormat\": \"table {{.ID}}\"") != NULL);
    CHECK(strstr(text, "\"experimental\": true") != NULL);
    CHECK(strstr(text, "\"new.example:5000\"") != NULL);
    /* Keys keep their order; the new one comes last. */
    CHECK(strstr(text, "\"other.example\"") < strstr(text, "\"new.example:5000\""));

    /* The auths entry wins over credsStore for the registry just stored. */
    CHECK_INT(lookup("new.example:5000", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "nu");
    proto_cred_dispose(&c);

    CHECK_INT(proto_cred_erase(path, "new.example:5000", err, sizeof(err)), 0);
    text = read_back(path);
    CHECK(strstr(text, "new.example") == NULL);
    CHECK(strstr(text, "\"other.example\"") != NULL);
    CHECK(strstr(text, "\"credsStore\": \"desktop\"") != NULL);
    CHECK(strstr(text, "\"gcr.io\": \"gcloud\"") != NULL);

    /* Erasing a registry leaves its namespace keys alone. */
    CHECK_INT(proto_cred_erase(path, "quay.io", err, sizeof(err)), OCISYNC_ENOTFOUND);
    CHECK(strstr(read_back(path), "\"quay.io/team\"") != NULL);
    CHECK_INT(proto_cred_erase(path, "quay.io/team", err, sizeof(err)), 0);
    CHECK(strstr(read_back(path), "quay.io") == NULL);
    teardown();
}

TEST(erase_other_spellings)
{
    char err[512], doc[1024];
    struct proto_cred c;

    setup();
    snprintf(doc, sizeof(doc),
             "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"%s\"},"
             "\"docker.io\":{\"auth\":\"%s\"},\"ghcr.io\":{\"auth\":\"%s\"}}}",
             b64("legacy:S3CR3T"), b64("new:S3CR3T"), b64("gh:S3CR3T"));
    write_file(docker_config(), doc);
    CHECK_INT(proto_cred_erase(docker_config(), "docker.io", err, sizeof(err)), 0);
    CHECK_INT(lookup("docker.io", &c, err, sizeof(err)), 0);
    CHECK_INT(c.kind, PROTO_CRED_NONE);
    CHECK_INT(lookup("ghcr.io", &c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "gh");
    proto_cred_dispose(&c);
    teardown();
}

TEST(store_errors)
{
    char err[512];
    const char *path;
    static const char broken[] = "{\"auths\": {\"x\": {\"auth\": \"S3CR3T\"}";

    setup();
    path = docker_config();
    write_file(path, broken);
    CHECK_INT(proto_cred_store(path, "reg.example", "u", "S3CR3T-new", err, sizeof(err)),
              OCISYNC_EJSON);
    CHECK(strstr(err, path) != NULL);
    NO_SECRET(err);
    CHECK_STR(read_back(path), broken);
    CHECK_INT(proto_cred_erase(path, "reg.example", err, sizeof(err)), OCISYNC_EJSON);
    CHECK_STR(read_back(path), broken);

    write_file(path, "{\"auths\": []}");
    CHECK_INT(proto_cred_store(path, "reg.example", "u", "S3CR3T", err, sizeof(err)),
              OCISYNC_EJSON);

    CHECK_INT(proto_cred_store(path, "reg.example", "a:b", "S3CR3T", err, sizeof(err)),
              OCISYNC_EUSAGE);
    NO_SECRET(err);
    CHECK_INT(proto_cred_store(path, "reg.example", "", "S3CR3T", err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK_INT(proto_cred_store(path, "", "u", "S3CR3T", err, sizeof(err)), OCISYNC_EUSAGE);

    /* A parent that is a file cannot become a directory. */
    write_file(in_root("afile"), "x");
    CHECK(proto_cred_store(in_root("afile/sub/auth.json"), "reg.example", "u", "S3CR3T", err,
                           sizeof(err)) < 0);
    CHECK(strstr(err, "afile") != NULL);
    teardown();
}

TEST(default_authfile)
{
    char buf[512], small[8], uid[16];

    setup();
    CHECK_INT(proto_cred_default_authfile("/x/given.json", buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/x/given.json");
    setenv("REGISTRY_AUTH_FILE", "/x/env.json", 1);
    CHECK_INT(proto_cred_default_authfile(NULL, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/x/env.json");
    CHECK_INT(proto_cred_default_authfile("", buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/x/env.json");
    setenv("REGISTRY_AUTH_FILE", "", 1);
    CHECK_INT(proto_cred_default_authfile(NULL, buf, sizeof(buf)), 0);
    CHECK_STR(buf, xdg_authfile());
    /* As podman login: /run/containers/$UID without XDG_RUNTIME_DIR, never ~/.docker. */
    unsetenv("XDG_RUNTIME_DIR");
    CHECK_INT(proto_cred_default_authfile(NULL, buf, sizeof(buf)), 0);
    snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
    CHECK(strncmp(buf, "/run/containers/", 16) == 0);
    CHECK(strncmp(buf + 16, uid, strlen(uid)) == 0);
    CHECK_STR(buf + 16 + strlen(uid), "/auth.json");
    /* An XDG_RUNTIME_DIR that does not exist is refused, as podman does. */
    setenv("XDG_RUNTIME_DIR", in_root("no-such-dir"), 1);
    CHECK_INT(proto_cred_default_authfile(NULL, buf, sizeof(buf)), UV_ENOENT);
    setenv("XDG_RUNTIME_DIR", run_dir, 1);
    CHECK_INT(proto_cred_default_authfile(NULL, small, sizeof(small)), OCISYNC_ETOOBIG);
    teardown();
}

/* The parser on its own, as the fuzz target drives it. */
TEST(parse_authfile_direct)
{
    struct proto__authfile_match m;
    char err[512];
    static const char doc[] = "{\"credHelpers\":{\"gcr.io\":\"gcloud\"},\"credsStore\":\"desktop\","
                              "\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dTpw\"}}}";

    CHECK_INT(proto__cred_parse_authfile(doc, strlen(doc), "f.json", "gcr.io/proj/img", false, &m,
                                         err, sizeof(err)),
              0);
    CHECK_INT(m.use, PROTO__AUTHFILE_HELPER);
    CHECK_STR(m.helper, "gcloud");
    CHECK_STR(m.key, "gcr.io");

    CHECK_INT(proto__cred_parse_authfile(doc, strlen(doc), "f.json", "docker.io", false, &m, err,
                                         sizeof(err)),
              0);
    CHECK_INT(m.use, PROTO__AUTHFILE_CRED);
    CHECK_STR(m.key, "https://index.docker.io/v1/");
    CHECK_STR(m.cred.username, "u");
    CHECK_STR(m.cred.source, "f.json");
    proto_cred_dispose(&m.cred);

    CHECK_INT(proto__cred_parse_authfile(doc, strlen(doc), "f.json", "quay.io", false, &m, err,
                                         sizeof(err)),
              0);
    CHECK_INT(m.use, PROTO__AUTHFILE_HELPER);
    CHECK_STR(m.helper, "desktop");

    /* Not NUL-terminated: the length is what counts. */
    CHECK_INT(
        proto__cred_parse_authfile("{}xxxx", 2, "f.json", "quay.io", false, &m, err, sizeof(err)),
        0);
    CHECK_INT(m.use, PROTO__AUTHFILE_NOTHING);
}

TEST_MAIN(T(flags_creds_colons), T(flags_errors), T(flags_registry_token), T(order_flags_env_file),
          T(env_empty_ignored), T(env_side_beats_generic), T(env_errors), T(authfile_order),
          T(authfile_env_falls_through), T(authfile_named_must_exist), T(authfile_falls_through),
          T(authfile_helper_falls_through), T(repository_keys), T(find_file),
          T(authfile_unreadable), T(auth_bad_base64), T(auth_no_colon), T(auth_nul_bytes),
          T(key_variants), T(namespace_keys), T(identity_token), T(kubernetes_dockerconfigjson),
          T(empty_entries_and_files), T(invalid_json), T(oversized_and_deep), T(helper_credhelpers),
          T(helper_docker_hub), T(helper_credsstore), T(helper_get_outcomes), T(helper_timeout),
          T(store_erase_roundtrip), T(store_preserves_other_keys), T(erase_other_spellings),
          T(store_errors), T(default_authfile), T(parse_authfile_direct))
