/* `ocisync index create` and `ocisync index append`. */
#include "cli/toolbox.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 16
#define MAX_SOURCES 64
#define MAX_ANNOTATIONS 64

static void index_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s index create [OPTIONS] --tag REF [--tag REF]... SRC...\n"
            "       %s index append [OPTIONS] --tag REF [--tag REF]... SRC...\n"
            "\n"
            "Joins single-platform images (or the children of indexes) from any\n"
            "repositories and registries into one OCI image index, pushed under every\n"
            "--tag. Each image's platform is read from its config. The children are copied\n"
            "into each tag's repository first (blobs mounted within a registry, relayed\n"
            "from others), the index last: no tag names an index with a child missing.\n"
            "append starts from the index at the first --tag, keeping its children.\n"
            "\n"
            "Options:\n"
            "  -t, --tag REF             where the index goes (repeatable, at most %d)\n"
            "      --annotation KEY=VALUE\n"
            "                            an annotation on the index (repeatable)\n"
            "      --replace             a platform given twice: the later one wins (else\n"
            "                            an error)\n"
            "      --creds USER:PASS, --registry-token TOKEN, --tls-verify[=BOOL],\n"
            "      --cert-dir DIR        the same for the sources' and the tags' registries\n"
            "      --json                print the index's digest and children as JSON\n"
            "%s"
            "  -q, --quiet               print nothing but errors\n"
            "  -h, --help                this help\n",
            cli_prog, cli_prog, MAX_TAGS, cli_transfer_help);
}

static int print_result(const struct ocisync_index_opts *o, const struct ocisync_index_result *r,
                        bool json)
{
    if (json) {
        json_t *j = json_object(), *kids = json_array(), *tags = json_array();
        char *s;
        for (size_t i = 0; i < r->n_entries; i++) {
            const struct ocisync_index_entry *e = &r->entries[i];
            json_t *k = json_object();
            json_object_set_new(k, "digest", json_string(e->digest));
            json_object_set_new(k, "mediaType", json_string(e->media_type));
            json_object_set_new(k, "size", json_integer(e->size));
            json_object_set_new(k, "platform", json_string(e->platform));
            json_object_set_new(k, "source", json_string(e->source));
            json_array_append_new(kids, k);
        }
        for (size_t t = 0; t < o->n_tags; t++)
            json_array_append_new(tags, json_string(o->tags[t]));
        json_object_set_new(j, "digest", json_string(r->digest));
        json_object_set_new(j, "tags", tags);
        json_object_set_new(j, "manifests", kids);
        json_object_set_new(j, "blobsCopied", json_integer((json_int_t)r->blobs_copied));
        json_object_set_new(j, "blobsMounted", json_integer((json_int_t)r->blobs_mounted));
        json_object_set_new(j, "blobsSkipped", json_integer((json_int_t)r->blobs_skipped));
        s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (s == NULL) {
            fprintf(stderr, "%s index: out of memory\n", cli_prog);
            return EXIT_FAIL;
        }
        puts(s);
        free(s);
        return 0;
    }
    for (size_t i = 0; i < r->n_entries; i++) {
        const struct ocisync_index_entry *e = &r->entries[i];
        printf("%-24s %s ", e->platform, e->digest);
        cli_put_clean(stdout, e->source);
        fputc('\n', stdout);
    }
    printf("Index %s (%zu manifests; %" PRIu64 " blobs copied, %" PRIu64 " mounted, %" PRIu64
           " skipped) -> ",
           r->digest, r->n_entries, r->blobs_copied, r->blobs_mounted, r->blobs_skipped);
    for (size_t t = 0; t < o->n_tags; t++) {
        cli_put_clean(stdout, o->tags[t]);
        fputs(t + 1 < o->n_tags ? ", " : "\n", stdout);
    }
    return 0;
}

int cli_index(int argc, char **argv)
{
    enum { OPT_ANNOTATION = CLI_OPT_OWN, OPT_REPLACE };
    static const struct option longopts[] = {
        {"tag", required_argument, NULL, 't'},
        {"annotation", required_argument, NULL, OPT_ANNOTATION},
        {"replace", no_argument, NULL, OPT_REPLACE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"creds", required_argument, NULL, CLI_OPT_CREDS},
        {"registry-token", required_argument, NULL, CLI_OPT_TOKEN},
        {"tls-verify", optional_argument, NULL, CLI_OPT_TLS_VERIFY},
        {"cert-dir", required_argument, NULL, CLI_OPT_CERT_DIR},
        {"json", no_argument, NULL, CLI_OPT_JSON},
        CLI_TRANSFER_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_index_opts o;
    struct ocisync_index_result res;
    const char *tags[MAX_TAGS], *ann[MAX_ANNOTATIONS];
    const char *cmd;
    bool quiet = false, json = false;
    int c, err, rc;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        index_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    cmd = argv[1];
    if (strcmp(cmd, "create") != 0 && strcmp(cmd, "append") != 0) {
        fprintf(stderr, "%s index: unknown subcommand \"", cli_prog);
        cli_put_clean(stderr, cmd);
        fprintf(stderr, "\" (create or append)\n");
        return EXIT_USAGE;
    }
    memset(&o, 0, sizeof(o));
    o.append = strcmp(cmd, "append") == 0;
    argc--;
    argv++;
    argc = cli_bool_forms("index", argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (o.n_tags == MAX_TAGS) {
                fprintf(stderr, "%s index: at most %d --tag options\n", cli_prog, MAX_TAGS);
                return EXIT_USAGE;
            }
            tags[o.n_tags++] = optarg;
            break;
        case OPT_ANNOTATION:
            if (o.n_annotations == MAX_ANNOTATIONS) {
                fprintf(stderr, "%s index: at most %d --annotation options\n", cli_prog,
                        MAX_ANNOTATIONS);
                return EXIT_USAGE;
            }
            ann[o.n_annotations++] = optarg;
            break;
        case OPT_REPLACE:
            o.replace = 1;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            index_usage(stdout);
            return 0;
        case CLI_OPT_JSON:
            json = true;
            break;
        default:
            switch (cli_registry_opt("index", c, optarg, &o.copy)) {
            case 1:
                break;
            case -1:
                return EXIT_USAGE;
            default:
                cli_bad_option("index", argc, argv);
                return EXIT_USAGE;
            }
        }
    }
    if (cli_transfer_finish("index", &o.copy) != 0)
        return EXIT_USAGE;
    if (o.n_tags == 0) {
        fprintf(stderr, "%s index %s: give the index's name with --tag REF\n", cli_prog, cmd);
        return EXIT_USAGE;
    }
    if (argc - optind == 0 && !o.append) {
        fprintf(stderr, "%s index create: expected at least one source image\n", cli_prog);
        return EXIT_USAGE;
    }
    if (argc - optind > MAX_SOURCES) {
        fprintf(stderr, "%s index: at most %d sources\n", cli_prog, MAX_SOURCES);
        return EXIT_USAGE;
    }
    o.tags = tags;
    o.annotations = ann;
    o.sources = (const char *const *)argv + optind;
    o.n_sources = (size_t)(argc - optind);
    o.copy.handle_signals = 1;
    err = ocisync_index(&o, &res);
    if (err != 0) {
        cli_print_error(o.append ? "index append" : "index create", res.error, err);
        ocisync_index_result_free(&res);
        return cli_exit_code(err);
    }
    rc = quiet && !json ? 0 : print_result(&o, &res, json);
    ocisync_index_result_free(&res);
    return rc;
}
