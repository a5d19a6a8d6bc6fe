/*
 * The ocisync command line. It parses arguments, calls the library through
 * include/ocisync.h only, and prints what happened.
 *
 * Exit codes: 0 success, 1 the operation failed, 2 the command line is wrong,
 * 130 interrupted by SIGINT or SIGTERM.
 */
#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/toolbox.h"
#include "ocisync.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#define MAX_PLATFORMS CLI_MAX_PLATFORMS
#define prog cli_prog

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s COMMAND [OPTIONS] ARGS\n"
            "\n"
            "Commands:\n"
            "  copy SRC DST     copy an image (or a multi-platform index) between registries\n"
            "  sync SRC DST     mirror repositories, tags and whole registries (skopeo sync's\n"
            "                   YAML accepted)\n"
            "  build-push       build a multi-platform image from directories and push it\n"
            "  build            the same into an OCI layout or archive\n"
            "  push SRC DST     push a built layout or archive (copy by another name)\n"
            "  inspect REF      describe an image as skopeo inspect does (JSON)\n"
            "  ls REPO          list a repository's tags (alias list-tags)\n"
            "  catalog REGISTRY [PREFIX]\n"
            "                   list a registry's repositories\n"
            "  digest REF       print the digest a reference resolves to\n"
            "  manifest REF     write a manifest's bytes to standard output\n"
            "  config REF       write an image's config to standard output\n"
            "  blob REPO@DIGEST stream a blob to standard output, verified\n"
            "  tag REF NEWTAG...  point more tags at an image (no blob moves)\n"
            "  delete REF       delete a manifest (by digest; a tag is resolved first)\n"
            "  index create|append --tag REF SRC...\n"
            "                   join images into one multi-platform index\n"
            "  login REGISTRY   check credentials against a registry and store them\n"
            "  logout REGISTRY  remove a registry's stored credentials\n"
            "  version          print the version\n"
            "\n"
            "Global options (before COMMAND, as skopeo's):\n"
            "  --debug                   trace requests and state changes on stderr\n"
            "  --tmpdir DIR              where temporary files go ($TMPDIR for the run)\n"
            "  --command-timeout DURATION\n"
            "                            stop the command after DURATION (90s, 1m30s, 500ms)\n"
            "  --override-os OS, --override-arch ARCH, --override-variant VARIANT\n"
            "                            the platform chosen from an index (inspect, config,\n"
            "                            copy --multi-arch system) instead of this machine's\n"
            "  --insecure-policy, --policy FILE, --registries.d DIR\n"
            "                            accepted and ignored: ocisync checks no signature\n"
            "                            policy (--debug says so)\n"
            "\n"
            "Run '%s COMMAND --help' or '%s help COMMAND' for a command's options.\n",
            prog, prog, prog);
}

static void copy_usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "push") == 0)
        fprintf(f,
                "Usage: %s push [OPTIONS] SRC docker://DST\n"
                "\n"
                "Pushes a built image (SRC an oci:DIR[:NAME] layout, an oci-archive:FILE[:NAME]\n"
                "or a docker-archive:FILE) to a registry: copy by another name, with copy's\n"
                "options.\n",
                prog);
    else
        fprintf(f,
                "Usage: %s copy [OPTIONS] SRC DST\n"
                "\n"
                "Copies an image, streaming every blob from the source straight into the\n"
                "destination. Manifests are copied byte for byte, so digests are preserved\n"
                "(except with --platform, which writes a new index).\n",
                prog);
    fprintf(f,
            "\n"
            "SRC and DST are transport:reference, as skopeo's:\n"
            "  docker://REGISTRY/REPO[:TAG|@DIGEST]  a registry (docker:// may be left out)\n"
            "  oci:DIR[:NAME]                        an OCI layout directory\n"
            "  oci-archive:FILE[:NAME]               an OCI layout in a tar file\n"
            "  docker-archive:FILE[:REPO:TAG]        a docker save tar file\n"
            "  dir:DIR                               skopeo's directory format\n"
            "\n"
            "Options:\n"
            "  -a, --all                 copy every platform of an index (the default)\n"
            "  -p, --platform OS/ARCH[/VARIANT]\n"
            "                            copy only this platform (repeatable)\n"
            "      --multi-arch all|system|index-only\n"
            "                            all: every platform (the default); system: only this\n"
            "                            machine's (or --override-*'s) image, without its\n"
            "                            index, as skopeo without --all; index-only: the\n"
            "                            index alone, none of its images\n"
            "      --remove-signatures   accepted: signatures are copied only with\n"
            "                            --referrers, so none are without it\n"
            "      --dest-precompute-digests\n"
            "                            accepted: blobs are always checked with HEAD first\n"
            "      --additional-tag REPO:TAG\n"
            "                            another name in a docker-archive's RepoTags\n"
            "                            (repeatable; other destinations ignore it)\n"
            "      --digestfile FILE     write the digest the destination now has to FILE\n"
            "%s"
            "%s"
            "  -q, --quiet               print nothing but errors\n"
            "  -h, --help                this help\n"
            "Every flag without a value also takes =true or =false (--all=true).\n",
            cli_convert_help, cli_transfer_help);
}

/* skopeo's --multi-arch system: SRC pinned to the digest of this platform's image. */
static int system_image(const char *src, const struct ocisync_copy_opts *opts, char *out,
                        size_t len)
{
    struct ocisync_read_opts ro;
    struct ocisync_read_result r;
    const char *ref = strncmp(src, "docker://", 9) == 0 ? src + 9 : src;
    int err;
    if (ocisync_location_of(src) != OCISYNC_LOC_REGISTRY) {
        fprintf(stderr, "%s copy: --multi-arch system takes a registry source; use -p %s\n", prog,
                cli_global.platform);
        return EXIT_USAGE;
    }
    memset(&ro, 0, sizeof(ro));
    ro.copy = *opts;
    ro.copy.on_event = NULL;
    ro.platform = cli_global.platform;
    err = ocisync_digest(src, &ro, &r);
    if (err != 0) {
        cli_print_error("copy", r.error, err);
        return cli_exit_code(err);
    }
    /* "reg/repo:tag" keeps its tag (the destination may take it) and is pinned to the digest. */
    snprintf(out, len, "docker://%.*s@%s", (int)strcspn(ref, "@"), ref, r.digest);
    ocisync_read_result_free(&r);
    return 0;
}

struct copy_out {
    bool quiet;
    /* On a terminal: bars for the transfers in flight instead of lines per platform. */
    bool bars;
    struct cli_progress progress;
};

static void on_copy_event(const struct ocisync_event *ev, void *arg)
{
    struct copy_out *o = arg;
    if (o->quiet)
        return;
    if (o->bars) {
        cli_progress_event(&o->progress, ev, uv_hrtime() / 1000000);
        return;
    }
    switch (ev->kind) {
    case OCISYNC_EV_IMAGE_DONE:
        printf("%-16s %s: %" PRIu64 " copied, %" PRIu64 " mounted, %" PRIu64 " skipped\n",
               ev->platform ? ev->platform : "image", ev->digest, ev->blobs_copied,
               ev->blobs_mounted, ev->blobs_skipped);
        break;
    case OCISYNC_EV_MANIFEST_SKIPPED:
        printf("%-16s %s: already at the destination\n", ev->platform ? ev->platform : "manifest",
               ev->digest);
        break;
    case OCISYNC_EV_INDEX_FILTERED:
        printf("%-16s %s: new index with the selected platforms (source index %s)\n", "index",
               ev->digest, ev->source_digest);
        break;
    case OCISYNC_EV_MANIFEST_CONVERTED:
        printf("%-16s %s -> %s: now %s (new digest)\n", ev->platform ? ev->platform : "manifest",
               ev->source_digest, ev->digest, ev->media_type);
        break;
    case OCISYNC_EV_BLOB_RECOMPRESSED:
        printf("%-16s %s -> %s: recompressed as %s, %lld bytes (new digest)\n", "layer",
               ev->source_digest, ev->digest, ev->media_type, (long long)ev->size);
        break;
    default:
        break;
    }
    fflush(stdout);
}

static int main_dispatch(int argc, char **argv);

static int cmd_copy(int argc, char **argv)
{
    enum {
        OPT_DIGESTFILE = CLI_OPT_OWN,
        OPT_MULTI_ARCH,
        OPT_REMOVE_SIGS,
        OPT_PRECOMPUTE,
        OPT_ADDITIONAL_TAG,
    };
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"platform", required_argument, NULL, 'p'},
        {"multi-arch", required_argument, NULL, OPT_MULTI_ARCH},
        {"remove-signatures", no_argument, NULL, OPT_REMOVE_SIGS},
        {"dest-precompute-digests", no_argument, NULL, OPT_PRECOMPUTE},
        {"additional-tag", required_argument, NULL, OPT_ADDITIONAL_TAG},
        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_CONVERT_LONGOPTS,
        CLI_TRANSFER_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *platforms[MAX_PLATFORMS];
    struct ocisync_copy_opts opts;
    struct ocisync_copy_result res;
    struct copy_out out = {0};
    const char *digestfile = NULL, *multi_arch = NULL;
    const char *extra_tags[OCISYNC_MAX_ADDITIONAL_TAGS];
    const char *src;
    char pinned[4200];
    bool all = false, remove_sigs = false;
    int c, err;

    memset(&opts, 0, sizeof(opts));
    argc = cli_bool_forms(argv[0], argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ap:f:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'p':
            if (opts.n_platforms == MAX_PLATFORMS) {
                fprintf(stderr, "%s copy: at most %d --platform options\n", prog, MAX_PLATFORMS);
                return EXIT_USAGE;
            }
            platforms[opts.n_platforms++] = optarg;
            break;
        case OPT_DIGESTFILE:
            digestfile = optarg;
            break;
        case OPT_MULTI_ARCH:
            multi_arch = optarg;
            break;
        case OPT_REMOVE_SIGS:
            remove_sigs = true;
            break;
        case OPT_PRECOMPUTE:
            break;
        case OPT_ADDITIONAL_TAG: {
            const char *slash = strrchr(optarg, '/'), *colon = strrchr(optarg, ':');
            if (colon == NULL || colon == optarg || colon[1] == '\0' ||
                (slash != NULL && colon < slash) || strchr(optarg, '@') != NULL) {
                fprintf(stderr,
                        "%s copy: --additional-tag takes REPO:TAG (like example/app:v1), not "
                        "\"%s\"\n",
                        prog, optarg);
                return EXIT_USAGE;
            }
            if (opts.n_additional_tags == OCISYNC_MAX_ADDITIONAL_TAGS) {
                fprintf(stderr, "%s copy: at most %d --additional-tag options\n", prog,
                        OCISYNC_MAX_ADDITIONAL_TAGS);
                return EXIT_USAGE;
            }
            extra_tags[opts.n_additional_tags++] = optarg;
            break;
        }
        case 'q':
            out.quiet = true;
            break;
        case 'h':
            copy_usage(stdout, argv[0]);
            return 0;
        default:
            err = cli_convert_opt(argv[0], c, optarg, &opts);
            if (err == 0)
                err = cli_transfer_opt(argv[0], c, optarg, &opts);
            switch (err) {
            case 1:
                break;
            case -1:
                return EXIT_USAGE;
            default:
                cli_bad_option(argv[0], argc, argv);
                return EXIT_USAGE;
            }
            break;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr,
                "%s %s: expected a source and a destination, got %d argument%s; see %s %s --help\n",
                prog, argv[0], argc - optind, argc - optind == 1 ? "" : "s", prog, argv[0]);
        return EXIT_USAGE;
    }
    if (cli_transfer_finish(argv[0], &opts) != 0)
        return EXIT_USAGE;
    if (all && opts.n_platforms > 0) {
        fprintf(stderr, "%s copy: --all and --platform exclude each other\n", prog);
        return EXIT_USAGE;
    }
    opts.additional_tags = extra_tags;
    if (opts.n_additional_tags > 0 &&
        ocisync_location_of(argv[optind + 1]) != OCISYNC_LOC_DOCKER_ARCHIVE)
        fprintf(stderr,
                "%s copy: warning: --additional-tag names a docker-archive's images; %s is not "
                "one, so it is ignored (as skopeo ignores it)\n",
                prog, argv[optind + 1]);
    if (remove_sigs && opts.referrers) {
        fprintf(stderr, "%s copy: --remove-signatures and --referrers exclude each other\n", prog);
        return EXIT_USAGE;
    }
    src = argv[optind];
    if (multi_arch != NULL && strcmp(multi_arch, "all") != 0) {
        if (all || opts.n_platforms > 0) {
            fprintf(stderr, "%s copy: --multi-arch %s excludes --all and --platform\n", prog,
                    multi_arch);
            return EXIT_USAGE;
        }
        if (strcmp(multi_arch, "index-only") == 0) {
            opts.index_only = 1;
        } else if (strcmp(multi_arch, "system") == 0) {
            err = system_image(src, &opts, pinned, sizeof(pinned));
            if (err != 0)
                return err;
            src = pinned;
        } else {
            fprintf(stderr, "%s copy: --multi-arch takes all, system or index-only, not \"%s\"\n",
                    prog, multi_arch);
            return EXIT_USAGE;
        }
    }
    opts.platforms = platforms;
    opts.handle_signals = 1;
    opts.on_event = on_copy_event;
    if (!out.quiet && isatty(STDOUT_FILENO)) {
        out.bars = true;
        cli_progress_init(&out.progress, stdout, true, cli_term_width());
    }
    opts.event_arg = &out;

    err = ocisync_copy(src, argv[optind + 1], &opts, &res);
    if (out.bars)
        cli_progress_finish(&out.progress, uv_hrtime() / 1000000);
    if (err != 0) {
        cli_print_error("copy", res.error, err);
        return cli_exit_code(err);
    }
    if (!out.quiet && !out.bars) {
        if (res.blobs_copied + res.blobs_mounted + res.blobs_skipped + res.manifests_pushed == 0)
            printf("%s is up to date: %s\n", argv[optind + 1], res.digest);
        else
            printf("Copied %s -> %s: %s%s%s%s (%" PRIu64 " blobs copied, %" PRIu64
                   " mounted, %" PRIu64 " skipped, %" PRIu64 " bytes)\n",
                   argv[optind], argv[optind + 1], res.digest, res.platform[0] ? " (" : "",
                   res.platform, res.platform[0] ? ")" : "", res.blobs_copied, res.blobs_mounted,
                   res.blobs_skipped, res.bytes_copied);
    }
    if (digestfile != NULL && cli_write_digestfile(digestfile, res.digest) != 0)
        return EXIT_FAIL;
    return 0;
}

/* Reads one line (without its newline) from f into buf; false at EOF with nothing read. */
static bool read_line(FILE *f, char *buf, size_t len)
{
    if (fgets(buf, (int)len, f) == NULL)
        return false;
    buf[strcspn(buf, "\r\n")] = '\0';
    return true;
}

/* Asks on the terminal, without echo for secrets. */
static bool prompt(const char *what, bool secret, char *buf, size_t len)
{
    struct termios old, quiet;
    bool ok;
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr, "%s: ", what);
    fflush(stderr);
    if (secret && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        ok = read_line(stdin, buf, len);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
        return ok;
    }
    return read_line(stdin, buf, len);
}

static void login_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s login [OPTIONS] REGISTRY\n"
            "\n"
            "Checks the credentials against REGISTRY and stores them in the auth file\n"
            "(mode 0600) for later commands.\n"
            "\n"
            "Options:\n"
            "  -u, --username USER       the user (asked for on a terminal if missing)\n"
            "  -p, --password PASS       the password (visible to other users: prefer\n"
            "                            --password-stdin)\n"
            "      --password-stdin      read the password from standard input\n"
            "      --authfile FILE       the auth file to write (default: see README)\n"
            "      --tls-verify[=BOOL]   verify the registry's certificate (default true)\n"
            "      --cert-dir DIR        CA and client certificates for the registry\n"
            "      --plain-http          talk plain HTTP to the registry\n"
            "      --debug               trace requests on stderr (never credentials)\n"
            "  -h, --help                this help\n",
            prog);
}

static int cmd_login(int argc, char **argv)
{
    enum {
        OPT_PASSWORD_STDIN = 256,
        OPT_AUTHFILE,
        OPT_TLS_VERIFY,
        OPT_CERT_DIR,
        OPT_PLAIN,
        OPT_DBG,
    };
    static const struct option longopts[] = {
        {"username", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'p'},
        {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
        {"authfile", required_argument, NULL, OPT_AUTHFILE},
        {"tls-verify", optional_argument, NULL, OPT_TLS_VERIFY},
        {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
        {"plain-http", no_argument, NULL, OPT_PLAIN},
        {"debug", no_argument, NULL, OPT_DBG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ocisync_registry_opts ro;
    char user[256] = "", password[4096] = "", err[1024] = "";
    const char *authfile = NULL;
    bool from_stdin = false, have_password = false;
    int c, rc;

    memset(&ro, 0, sizeof(ro));
    argc = cli_bool_forms("login", argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            snprintf(user, sizeof(user), "%s", optarg);
            break;
        case 'p':
            snprintf(password, sizeof(password), "%s", optarg);
            have_password = true;
            break;
        case OPT_PASSWORD_STDIN:
            from_stdin = true;
            break;
        case OPT_AUTHFILE:
            authfile = optarg;
            break;
        case OPT_TLS_VERIFY: {
            bool v;
            if (cli_parse_bool(optarg, &v) != 0) {
                fprintf(stderr, "%s login: --tls-verify takes true or false, not \"%s\"\n", prog,
                        optarg);
                return EXIT_USAGE;
            }
            ro.tls_verify = v ? OCISYNC_TLS_VERIFY_ON : OCISYNC_TLS_VERIFY_OFF;
        } break;
        case OPT_CERT_DIR:
            ro.cert_dir = optarg;
            break;
        case OPT_PLAIN:
            ro.plain_http = OCISYNC_PLAIN_HTTP_ALWAYS;
            break;
        case OPT_DBG:
            ocisync_set_debug(1);
            break;
        case 'h':
            login_usage(stdout);
            return 0;
        default:
            cli_bad_option("login", argc, argv);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "%s login: expected one registry\n", prog);
        login_usage(stderr);
        return EXIT_USAGE;
    }
    if (from_stdin && have_password) {
        fprintf(stderr, "%s login: --password and --password-stdin exclude each other\n", prog);
        return EXIT_USAGE;
    }
    if (user[0] == '\0' && !prompt("Username", false, user, sizeof(user))) {
        fprintf(stderr, "%s login: no username: give --username\n", prog);
        return EXIT_USAGE;
    }
    if (from_stdin) {
        if (!read_line(stdin, password, sizeof(password))) {
            fprintf(stderr, "%s login: no password on standard input\n", prog);
            return EXIT_USAGE;
        }
    } else if (!have_password && !prompt("Password", true, password, sizeof(password))) {
        fprintf(stderr, "%s login: no password: give --password-stdin or --password\n", prog);
        return EXIT_USAGE;
    }
    rc = ocisync_login(argv[optind], user, password, &ro, authfile, err, sizeof(err));
    memset(password, 0, sizeof(password));
    if (rc != 0) {
        cli_print_error("login", err, rc);
        return rc == OCISYNC_EUSAGE || rc == OCISYNC_ETLSCONFIG ? EXIT_USAGE : EXIT_FAIL;
    }
    printf("Login Succeeded\n");
    return 0;
}

static int cmd_logout(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"authfile", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *authfile = NULL;
    char err[1024] = "";
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            authfile = optarg;
            break;
        case 'h':
            printf("Usage: %s logout [OPTIONS] REGISTRY\n"
                   "\n"
                   "Removes REGISTRY's credentials, in every spelling, from the auth file login\n"
                   "writes (exit 1 if it had none).\n"
                   "\n"
                   "Options:\n"
                   "      --authfile FILE       the auth file to edit (default: see README)\n"
                   "  -h, --help                this help\n",
                   prog);
            return 0;
        default:
            cli_bad_option("logout", argc, argv);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "%s logout: expected one registry\n", prog);
        return EXIT_USAGE;
    }
    rc = ocisync_logout(argv[optind], authfile, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s logout: %s\n", prog, err[0] ? err : ocisync_strerror(rc));
        return EXIT_FAIL;
    }
    printf("Removed login credentials for %s\n", argv[optind]);
    return 0;
}

/*
 * The version of the library this program runs with (the one it was built
 * against, unless a newer libocisync.so.0 was installed since), its git
 * revision and the versions of the libraries under it, as a bug report wants.
 */
static int cmd_version(int argc, char **argv)
{
    const struct ocisync_version_info *v = ocisync_version_info();
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: %s version\n"
               "\n"
               "Prints ocisync's version, the git revision it was built from (when it was\n"
               "built from a git checkout) and the versions of the libraries it runs with.\n"
               "\n"
               "Options:\n"
               "  -h, --help                this help\n",
               prog);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "%s version: takes no arguments; see %s version --help\n", prog, prog);
        return EXIT_USAGE;
    }
    printf("ocisync %s\n", v->version);
    if (v->revision[0] != '\0')
        printf("revision: %s\n", v->revision);
    printf("libuv %s, OpenSSL %s, zlib %s, zstd %s, llhttp %s, jansson %s, libyaml %s\n", v->libuv,
           v->openssl, v->zlib, v->zstd, v->llhttp, v->jansson, v->libyaml);
    return 0;
}

int main(int argc, char **argv)
{
    int first;
    /* Each command says what is wrong with an option in one line of its own. */
    opterr = 0;
    first = cli_global_opts(argc, argv);
    if (first < 0)
        return EXIT_USAGE;
    /* What follows the global options is the command line as a command sees it. */
    argc -= first - 1;
    argv += first - 1;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 && argc >= 3) {
        /* `ocisync help COMMAND` is `ocisync COMMAND --help`. */
        static char help_opt[] = "--help";
        char *hv[4] = {argv[0], argv[2], help_opt, NULL};
        if (strcmp(argv[2], "index") == 0 && argc >= 4) {
            char *iv[5] = {argv[0], argv[2], argv[3], help_opt, NULL};
            return main_dispatch(4, iv);
        }
        return main_dispatch(3, hv);
    }
    return main_dispatch(argc, argv);
}

static int main_dispatch(int argc, char **argv)
{
    if (strcmp(argv[1], "copy") == 0)
        return cmd_copy(argc - 1, argv + 1);
    if (strcmp(argv[1], "sync") == 0)
        return cli_sync(argc - 1, argv + 1);
    if (strcmp(argv[1], "build-push") == 0)
        return cli_build(argc - 1, argv + 1, true);
    if (strcmp(argv[1], "build") == 0)
        return cli_build(argc - 1, argv + 1, false);
    /* push: a copy whose source is a build artifact (oci:, oci-archive:), as ko and crane say it.
     */
    if (strcmp(argv[1], "push") == 0)
        return cmd_copy(argc - 1, argv + 1);
    if (strcmp(argv[1], "tag") == 0)
        return cli_tag(argc - 1, argv + 1);
    if (strcmp(argv[1], "delete") == 0)
        return cli_delete(argc - 1, argv + 1);
    if (strcmp(argv[1], "index") == 0)
        return cli_index(argc - 1, argv + 1);
    if (strcmp(argv[1], "login") == 0)
        return cmd_login(argc - 1, argv + 1);
    if (strcmp(argv[1], "logout") == 0)
        return cmd_logout(argc - 1, argv + 1);
    {
        bool handled;
        int rc = cli_read(argc - 1, argv + 1, &handled);
        if (handled)
            return rc;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "%s: unknown command \"%s\"; see %s --help\n", prog, argv[1], prog);
    return EXIT_USAGE;
}
