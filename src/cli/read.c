/*
 * The read commands: inspect, ls (list-tags), catalog, digest, manifest,
 * config and blob. Each parses its options, calls the library once and
 * prints what it got: JSON where the output is structured, raw bytes where
 * it is a document or a blob.
 */
#include "cli/cli.h"
#include "ocisync.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define prog cli_prog
#define MAX_REGEX 64

/* The registry options of a read, named as skopeo inspect names them; values are copy's src ones.
 */
/* clang-format off */
#define READ_LONGOPTS                                                                              \
    {"tls-verify", optional_argument, NULL, CLI_OPT_SRC_TLS_VERIFY},                               \
        {"cert-dir", required_argument, NULL, CLI_OPT_SRC_CERT_DIR},                               \
        {"creds", required_argument, NULL, CLI_OPT_SRC_CREDS},                                     \
        {"registry-token", required_argument, NULL, CLI_OPT_SRC_TOKEN},                            \
        {"plain-http", no_argument, NULL, CLI_OPT_SRC_PLAIN_HTTP},                                 \
        {"authfile", required_argument, NULL, CLI_OPT_AUTHFILE},                                   \
        {"retry-times", required_argument, NULL, CLI_OPT_RETRY_TIMES},                             \
        {"retry-delay", required_argument, NULL, CLI_OPT_RETRY_DELAY},                             \
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                     \
        {"debug", no_argument, NULL, CLI_OPT_DEBUG},                                               \
        {"help", no_argument, NULL, 'h'}
/* clang-format on */

static const char read_help[] =
    "      --tls-verify[=BOOL]   verify the registry's certificate (default true); either\n"
    "                            form also makes a loopback registry use HTTPS\n"
    "      --cert-dir DIR        *.crt CA certificates and NAME.cert/NAME.key client\n"
    "                            certificates for the registry\n"
    "      --creds USER:PASS, --registry-token TOKEN\n"
    "                            credentials (see README: Credentials for the order)\n"
    "      --authfile FILE       auth file to read credentials from\n"
    "      --plain-http          talk plain HTTP to the registry\n"
    "      --retry-times N       retries of a failed request (default 5)\n"
    "      --retry-delay SECONDS first backoff, doubling with jitter (default 0.5)\n"
    "      --timeout SECONDS     a request making no progress this long fails (default 120)\n"
    "      --debug               trace requests on stderr (never credentials)\n"
    "  -h, --help                this help\n";

struct read_cmd {
    const char *name;
    const char *usage; /* after "Usage: ocisync NAME " */
    const char *about;
    const char *own_help;
};

static void usage(const struct read_cmd *c, FILE *f)
{
    fprintf(f, "Usage: %s %s %s\n\n%s\n\nOptions:\n%s%s", prog, c->name, c->usage, c->about,
            c->own_help, read_help);
}

/* The shared registry options; 1 handled, 0 not one of them, -1 wrong (said why). */
static int read_opt(const char *cmd, int c, const char *arg, struct ocisync_read_opts *o)
{
    switch (c) {
    case CLI_OPT_SRC_TLS_VERIFY:
    case CLI_OPT_SRC_CERT_DIR:
    case CLI_OPT_SRC_CREDS:
    case CLI_OPT_SRC_TOKEN:
    case CLI_OPT_SRC_PLAIN_HTTP:
    case CLI_OPT_AUTHFILE:
    case CLI_OPT_RETRY_TIMES:
    case CLI_OPT_RETRY_DELAY:
    case CLI_OPT_TIMEOUT:
    case CLI_OPT_DEBUG:
        return cli_transfer_opt(cmd, c, arg, &o->copy);
    default:
        return 0;
    }
}

static int write_all(const void *data, size_t len, void *arg)
{
    FILE *f = arg;
    if (len > 0 && fwrite(data, 1, len, f) != len)
        return errno == EPIPE ? UV_EPIPE : UV_EIO;
    return 0;
}

/* Ends a command whose output went to stdout: a failed write is a failure too. */
static int finish_stdout(const char *cmd)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s %s: writing to standard output failed: %s\n", prog, cmd,
                strerror(errno));
        return EXIT_FAIL;
    }
    return 0;
}

static int fail(const char *cmd, const char *msg, int err)
{
    cli_print_error(cmd, msg, err);
    return cli_exit_code(err);
}

/* Arguments: exactly want of them (or between want and max). */
static bool want_args(const struct read_cmd *c, int n, int want, int max)
{
    if (n >= want && n <= max)
        return true;
    fprintf(stderr, "%s %s: expected %s, got %d argument%s; see %s %s --help\n", prog, c->name,
            c->usage, n, n == 1 ? "" : "s", prog, c->name);
    return false;
}

static int cmd_inspect(int argc, char **argv)
{
    enum { OPT_RAW = CLI_OPT_OWN, OPT_CONFIG, OPT_NO_TAGS };
    static const struct read_cmd c = {
        "inspect", "[OPTIONS] REF",
        "Prints what skopeo inspect prints about an image, as JSON with the same fields\n"
        "(Name, Digest, RepoTags, Created, DockerVersion, Labels, Architecture, Os,\n"
        "Layers, Env), plus Variant, LayersData and, for an index, Platforms. For an\n"
        "index the image described is this machine's platform's, or --platform's.\n"
        "REF is docker://REF (or a bare REF), oci:DIR[:NAME], oci-archive:FILE[:NAME]\n"
        "or docker-archive:FILE[:REPO:TAG].",
        "      --raw                 the manifest (or index) bytes exactly as served;\n"
        "                            with --config, the config bytes\n"
        "      --config              the image's config (as skopeo: OCI fields)\n"
        "  -n, --no-tags             do not list the repository's tags (RepoTags [])\n"
        "  -p, --platform OS/ARCH[/VARIANT]\n"
        "                            for an index: this platform's image\n"};
    static const struct option longopts[] = {
        {"raw", no_argument, NULL, OPT_RAW},
        {"config", no_argument, NULL, OPT_CONFIG},
        {"no-tags", no_argument, NULL, 'n'},
        {"platform", required_argument, NULL, 'p'},
        READ_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_read_opts o;
    struct ocisync_read_result res;
    bool raw = false, config = false;
    int ch, err, rc;
    memset(&o, 0, sizeof(o));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "np:h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_RAW:
            raw = true;
            break;
        case OPT_CONFIG:
            config = true;
            break;
        case 'n':
            o.no_tags = 1;
            break;
        case 'p':
            o.platform = optarg;
            break;
        case 'h':
            usage(&c, stdout);
            return 0;
        default:
            rc = read_opt(c.name, ch, optarg, &o);
            if (rc == 1)
                break;
            if (rc == 0)
                cli_bad_option(argv[0], argc, argv);
            return EXIT_USAGE;
        }
    }
    if (!want_args(&c, argc - optind, 1, 1))
        return EXIT_USAGE;
    /* skopeo's --override-os/--override-arch/--override-variant choose the image of an index. */
    if (o.platform == NULL && !(raw && !config) &&
        (cli_global.override_os || cli_global.override_arch || cli_global.override_variant))
        o.platform = cli_global.platform;
    if (raw && config)
        err = ocisync_config(argv[optind], &o, &res);
    else if (raw)
        err = ocisync_manifest(argv[optind], &o, &res);
    else if (config)
        err = ocisync_inspect_config(argv[optind], &o, &res);
    else
        err = ocisync_inspect(argv[optind], &o, &res);
    if (err != 0)
        return fail(c.name, res.error, err);
    rc = write_all(res.data, res.len, stdout);
    ocisync_read_result_free(&res);
    return rc != 0 ? finish_stdout(c.name) | EXIT_FAIL : finish_stdout(c.name);
}

/* digest, manifest, config: one reference, an optional platform. */
static int cmd_one(int argc, char **argv, const struct read_cmd *c,
                   int (*fn)(const char *, const struct ocisync_read_opts *,
                             struct ocisync_read_result *),
                   bool print_digest)
{
    static const struct option longopts[] = {
        {"platform", required_argument, NULL, 'p'},
        READ_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_read_opts o;
    struct ocisync_read_result res;
    int ch, err, rc;
    memset(&o, 0, sizeof(o));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            o.platform = optarg;
            break;
        case 'h':
            usage(c, stdout);
            return 0;
        default:
            rc = read_opt(c->name, ch, optarg, &o);
            if (rc == 1)
                break;
            if (rc == 0)
                cli_bad_option(argv[0], argc, argv);
            return EXIT_USAGE;
        }
    }
    if (!want_args(c, argc - optind, 1, 1))
        return EXIT_USAGE;
    err = fn(argv[optind], &o, &res);
    if (err != 0)
        return fail(c->name, res.error, err);
    if (print_digest)
        printf("%s\n", res.digest);
    else
        write_all(res.data, res.len, stdout);
    ocisync_read_result_free(&res);
    return finish_stdout(c->name);
}

static int cmd_digest(int argc, char **argv)
{
    static const struct read_cmd c = {
        "digest", "[OPTIONS] REF",
        "Prints the digest REF resolves to, from one HEAD request (the index's own for\n"
        "an index); with --platform, that platform's manifest's digest (the index is\n"
        "read then).",
        "  -p, --platform OS/ARCH[/VARIANT]\n"
        "                            for an index: this platform's manifest\n"};
    return cmd_one(argc, argv, &c, ocisync_digest, true);
}

static int cmd_manifest(int argc, char **argv)
{
    static const struct read_cmd c = {
        "manifest", "[OPTIONS] REF",
        "Writes the manifest (or index) REF names to standard output, byte for byte as\n"
        "the registry serves it; by digest, only if it hashes to that digest.",
        "  -p, --platform OS/ARCH[/VARIANT]\n"
        "                            for an index: this platform's manifest instead\n"};
    return cmd_one(argc, argv, &c, ocisync_manifest, false);
}

static int cmd_config(int argc, char **argv)
{
    static const struct read_cmd c = {
        "config", "[OPTIONS] REF",
        "Writes the image's config blob to standard output, byte for byte, verified\n"
        "against its digest. For an index, the image of this machine's platform or of\n"
        "--platform.",
        "  -p, --platform OS/ARCH[/VARIANT]\n"
        "                            for an index: this platform's image\n"};
    return cmd_one(argc, argv, &c, ocisync_config, false);
}

static int cmd_blob(int argc, char **argv)
{
    static const struct read_cmd c = {
        "blob", "[OPTIONS] REPOSITORY@DIGEST",
        "Streams the blob to standard output, hashing it on the way. The bytes go out\n"
        "before the digest can be checked: exit 1 after them means they are wrong, so\n"
        "trust `ocisync blob ... > FILE` only when it exits 0.",
        ""};
    static const struct option longopts[] = {
        READ_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_read_opts o;
    struct ocisync_read_result res;
    int ch, err, rc;
    memset(&o, 0, sizeof(o));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(&c, stdout);
            return 0;
        }
        rc = read_opt(c.name, ch, optarg, &o);
        if (rc != 1) {
            if (rc == 0)
                cli_bad_option(argv[0], argc, argv);
            return EXIT_USAGE;
        }
    }
    if (!want_args(&c, argc - optind, 1, 1))
        return EXIT_USAGE;
    err = ocisync_blob(argv[optind], &o, write_all, stdout, &res);
    rc = finish_stdout(c.name);
    if (err != 0)
        return fail(c.name, res.error, err);
    return rc;
}

/* Names one a line, or as JSON {KEY1: label, KEY2: [names]}. */
static int print_names(const char *cmd, const struct ocisync_list_result *res, bool json,
                       const char *k1, const char *label, const char *k2)
{
    if (json) {
        json_t *doc = json_object(), *arr = json_array();
        char *s;
        for (size_t i = 0; i < res->n; i++)
            json_array_append_new(arr, json_string(res->names[i]));
        json_object_set_new(doc, k1, json_string(label));
        json_object_set_new(doc, k2, arr);
        s = json_dumps(doc, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        if (s == NULL) {
            fprintf(stderr, "%s %s: out of memory\n", prog, cmd);
            return EXIT_FAIL;
        }
        printf("%s\n", s);
        free(s);
    } else {
        for (size_t i = 0; i < res->n; i++)
            printf("%s\n", res->names[i]);
    }
    return finish_stdout(cmd);
}

static int parse_latest(const char *s, unsigned *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 1 || n > 1000000)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int cmd_ls(int argc, char **argv, const char *name)
{
    enum { OPT_JSON = CLI_OPT_OWN, OPT_TAGS_REGEX, OPT_EXCLUDE_REGEX, OPT_SEMVER, OPT_LATEST };
    struct read_cmd c = {
        name, "[OPTIONS] REPOSITORY",
        "Lists the repository's tags, every page of them (the registry's order), one a\n"
        "line; --json prints skopeo list-tags' {\"Repository\": ..., \"Tags\": [...]}.\n"
        "With filters (as sync's), the selected tags, sorted as sync sorts them.",
        "      --json                skopeo list-tags' JSON\n"
        "      --tags-regex RE       keep tags matching RE (Go/RE2 syntax, searched;\n"
        "                            repeatable: any of them)\n"
        "      --exclude-regex RE    drop tags matching RE (repeatable)\n"
        "      --semver RANGE        keep versions in RANGE (\">= 3.18, < 4\")\n"
        "      --latest N            keep the N highest versions\n"};
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"tags-regex", required_argument, NULL, OPT_TAGS_REGEX},
        {"exclude-regex", required_argument, NULL, OPT_EXCLUDE_REGEX},
        {"semver", required_argument, NULL, OPT_SEMVER},
        {"latest", required_argument, NULL, OPT_LATEST},
        READ_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *inc[MAX_REGEX], *exc[MAX_REGEX];
    struct ocisync_tag_filter f;
    struct ocisync_read_opts o;
    struct ocisync_list_result res;
    bool json = false;
    int ch, err, rc;
    memset(&o, 0, sizeof(o));
    memset(&f, 0, sizeof(f));
    f.include_regex = inc;
    f.exclude_regex = exc;
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_TAGS_REGEX:
        case OPT_EXCLUDE_REGEX:
            if ((ch == OPT_TAGS_REGEX ? f.n_include : f.n_exclude) == MAX_REGEX) {
                fprintf(stderr, "%s %s: at most %d of each regex option\n", prog, name, MAX_REGEX);
                return EXIT_USAGE;
            }
            if (ch == OPT_TAGS_REGEX)
                inc[f.n_include++] = optarg;
            else
                exc[f.n_exclude++] = optarg;
            break;
        case OPT_SEMVER:
            f.semver = optarg;
            break;
        case OPT_LATEST:
            if (parse_latest(optarg, &f.latest) != 0) {
                fprintf(stderr, "%s %s: --latest takes a number from 1 to 1000000, not \"%s\"\n",
                        prog, name, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(&c, stdout);
            return 0;
        default:
            rc = read_opt(name, ch, optarg, &o);
            if (rc == 1)
                break;
            if (rc == 0)
                cli_bad_option(argv[0], argc, argv);
            return EXIT_USAGE;
        }
    }
    if (!want_args(&c, argc - optind, 1, 1))
        return EXIT_USAGE;
    err = ocisync_list_tags(argv[optind], &o, &f, &res);
    if (err != 0)
        return fail(name, res.error, err);
    rc = print_names(name, &res, json, "Repository", res.repository, "Tags");
    ocisync_list_result_free(&res);
    return rc;
}

static int cmd_catalog(int argc, char **argv)
{
    enum { OPT_JSON = CLI_OPT_OWN };
    static const struct read_cmd c = {
        "catalog", "[OPTIONS] REGISTRY [PREFIX]",
        "Lists the registry's repositories (/v2/_catalog, every page), one a line, or\n"
        "with PREFIX only those under it (\"team\": team and team/...). --json prints\n"
        "{\"Registry\": ..., \"Repositories\": [...]}.",
        "      --json                JSON instead of lines\n"};
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        READ_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_read_opts o;
    struct ocisync_list_result res;
    bool json = false;
    int ch, err, rc;
    memset(&o, 0, sizeof(o));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            usage(&c, stdout);
            return 0;
        default:
            rc = read_opt(c.name, ch, optarg, &o);
            if (rc == 1)
                break;
            if (rc == 0)
                cli_bad_option(argv[0], argc, argv);
            return EXIT_USAGE;
        }
    }
    if (!want_args(&c, argc - optind, 1, 2))
        return EXIT_USAGE;
    err = ocisync_catalog(argv[optind], argc - optind == 2 ? argv[optind + 1] : NULL, &o, &res);
    if (err != 0)
        return fail(c.name, res.error, err);
    rc = print_names(c.name, &res, json, "Registry", argv[optind], "Repositories");
    ocisync_list_result_free(&res);
    return rc;
}

int cli_read(int argc, char **argv, bool *handled)
{
    const char *cmd = argv[0];
    *handled = true;
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc, argv);
    if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "list-tags") == 0)
        return cmd_ls(argc, argv, cmd);
    if (strcmp(cmd, "catalog") == 0)
        return cmd_catalog(argc, argv);
    if (strcmp(cmd, "digest") == 0)
        return cmd_digest(argc, argv);
    if (strcmp(cmd, "manifest") == 0)
        return cmd_manifest(argc, argv);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc, argv);
    if (strcmp(cmd, "blob") == 0)
        return cmd_blob(argc, argv);
    *handled = false;
    return 0;
}
