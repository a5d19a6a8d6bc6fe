/* `ocisync tag` and `ocisync delete`, and the options of one-registry commands. */
#include "cli/toolbox.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char cli_registry_help[] =
    "      --creds USER:PASS     credentials for the registry (see README: Credentials)\n"
    "      --registry-token TOKEN\n"
    "                            a bearer token for the registry\n"
    "      --tls-verify[=BOOL]   verify the registry's certificate (default true); either\n"
    "                            form also makes a loopback registry use HTTPS\n"
    "      --cert-dir DIR        *.crt CA certificates and NAME.cert/NAME.key client\n"
    "                            certificates for the registry\n"
    "      --plain-http          talk plain HTTP to the registry (the default for\n"
    "                            localhost and 127.0.0.0/8)\n"
    "      --authfile FILE       auth file to read credentials from\n"
    "      --retry-times N       retries of a failed request (default 5)\n"
    "      --retry-delay SECONDS first backoff, doubling with jitter (default 0.5)\n"
    "      --timeout SECONDS     a request making no progress this long fails (default 120)\n"
    "      --json                print the outcome as JSON\n"
    "      --debug               trace requests on stderr (never credentials)\n";

int cli_registry_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts)
{
    switch (c) {
    case CLI_OPT_CREDS:
        opts->src.creds = opts->dst.creds = arg;
        return 1;
    case CLI_OPT_TOKEN:
        opts->src.registry_token = opts->dst.registry_token = arg;
        return 1;
    case CLI_OPT_TLS_VERIFY: {
        bool v;
        if (cli_parse_bool(arg, &v) != 0) {
            fprintf(stderr, "%s %s: --tls-verify takes true or false, not \"%s\"\n", cli_prog, cmd,
                    arg);
            return -1;
        }
        opts->src.tls_verify = opts->dst.tls_verify =
            v ? OCISYNC_TLS_VERIFY_ON : OCISYNC_TLS_VERIFY_OFF;
        return 1;
    }
    case CLI_OPT_CERT_DIR:
        opts->src.cert_dir = opts->dst.cert_dir = arg;
        return 1;
    default:
        return cli_transfer_opt(cmd, c, arg, opts);
    }
}

/* Prints j (taken over) on stdout, one line. */
static int print_json(json_t *j)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (s == NULL) {
        fprintf(stderr, "%s: out of memory\n", cli_prog);
        return EXIT_FAIL;
    }
    puts(s);
    free(s);
    return 0;
}

static void tag_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s tag [OPTIONS] REF NEWTAG...\n"
            "\n"
            "Points more tags at the image REF (registry/repository:tag or @digest) without\n"
            "moving a blob: the manifest is read once and written, byte for byte, under each\n"
            "NEWTAG that does not name it yet. NEWTAG is a tag (\"v1.2\") or a reference in\n"
            "the same repository (\"registry/repository:v1.2\").\n"
            "\n"
            "Options:\n"
            "%s"
            "  -q, --quiet               print nothing but errors\n"
            "  -h, --help                this help\n",
            cli_prog, cli_registry_help);
}

int cli_tag(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_REGISTRY_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_copy_opts opts;
    struct ocisync_tag_result res;
    bool quiet = false, json = false;
    size_t n;
    int c, err;

    memset(&opts, 0, sizeof(opts));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'h':
            tag_usage(stdout);
            return 0;
        case CLI_OPT_JSON:
            json = true;
            break;
        default:
            switch (cli_registry_opt("tag", c, optarg, &opts)) {
            case 1:
                break;
            case -1:
                return EXIT_USAGE;
            default:
                cli_bad_option("tag", argc, argv);
                return EXIT_USAGE;
            }
        }
    }
    if (cli_transfer_finish("tag", &opts) != 0)
        return EXIT_USAGE;
    if (argc - optind < 2) {
        fprintf(stderr, "%s tag: expected an image and at least one new tag\n", cli_prog);
        tag_usage(stderr);
        return EXIT_USAGE;
    }
    n = (size_t)(argc - optind - 1);
    if (n > OCISYNC_TAG_MAX) {
        fprintf(stderr, "%s tag: at most %d new tags\n", cli_prog, OCISYNC_TAG_MAX);
        return EXIT_USAGE;
    }
    opts.handle_signals = 1;
    err = ocisync_tag(argv[optind], (const char *const *)argv + optind + 1, n, &opts, &res);
    if (err != 0) {
        cli_print_error("tag", res.error, err);
        return cli_exit_code(err);
    }
    if (json) {
        json_t *j = json_object(), *tags = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_object();
            json_object_set_new(t, "tag", json_string(argv[optind + 1 + (int)i]));
            json_object_set_new(t, "changed", json_boolean(res.changed[i]));
            json_array_append_new(tags, t);
        }
        json_object_set_new(j, "image", json_string(argv[optind]));
        json_object_set_new(j, "digest", json_string(res.digest));
        json_object_set_new(j, "tags", tags);
        return print_json(j);
    }
    if (!quiet)
        for (size_t i = 0; i < n; i++) {
            printf("%s %s: ", res.changed[i] ? "Tagged" : "Unchanged", res.digest);
            cli_put_clean(stdout, argv[optind + 1 + (int)i]);
            fputc('\n', stdout);
        }
    return 0;
}

static void delete_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s delete [OPTIONS] REF\n"
            "\n"
            "Deletes the manifest REF names (registry/repository:tag or @digest) from the\n"
            "registry, by digest: a tag is resolved first, and every tag of that manifest\n"
            "goes with it. Registries may refuse (distribution allows deletes only with\n"
            "storage.delete.enabled); blobs stay until the registry's garbage collection.\n"
            "\n"
            "Options:\n"
            "%s"
            "  -q, --quiet               print nothing but errors\n"
            "  -h, --help                this help\n",
            cli_prog, cli_registry_help);
}

int cli_delete(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_REGISTRY_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_copy_opts opts;
    struct ocisync_delete_result res;
    bool quiet = false, json = false;
    int c, err;

    memset(&opts, 0, sizeof(opts));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'h':
            delete_usage(stdout);
            return 0;
        case CLI_OPT_JSON:
            json = true;
            break;
        default:
            switch (cli_registry_opt("delete", c, optarg, &opts)) {
            case 1:
                break;
            case -1:
                return EXIT_USAGE;
            default:
                cli_bad_option("delete", argc, argv);
                return EXIT_USAGE;
            }
        }
    }
    if (cli_transfer_finish("delete", &opts) != 0)
        return EXIT_USAGE;
    if (argc - optind != 1) {
        fprintf(stderr, "%s delete: expected one image reference, got %d arguments\n", cli_prog,
                argc - optind);
        delete_usage(stderr);
        return EXIT_USAGE;
    }
    opts.handle_signals = 1;
    err = ocisync_delete(argv[optind], &opts, &res);
    if (err != 0) {
        cli_print_error("delete", res.error, err);
        return cli_exit_code(err);
    }
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "image", json_string(argv[optind]));
        json_object_set_new(j, "digest", json_string(res.digest));
        json_object_set_new(j, "deleted", json_true());
        return print_json(j);
    }
    if (!quiet) {
        printf("Deleted %s (", res.digest);
        cli_put_clean(stdout, argv[optind]);
        printf(")\n");
    }
    return 0;
}
