/*
 * `ocisync build-push`, `ocisync build` and `ocisync push`: the command line
 * of ocisync_build. Tags may be repeated or given as one list separated by
 * ';', ',' or newlines, as docker/metadata-action prints them.
 */
#include "cli/cli.h"
#include "cli/progress.h"
#include "ocisync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define MAX_ITEMS 256

extern char **environ;

static void build_usage(FILE *f, bool push)
{
    fprintf(f,
            "Usage: %s %s [OPTIONS] %s\n"
            "       %s %s [OPTIONS] [-f Dockerfile] CONTEXT %s\n"
            "\n"
            "Builds an image from local directories on top of a base image (or scratch), or\n"
            "from a Dockerfile, for one or more platforms, and %s.\n"
            "\n"
            "Dockerfile builds:\n"
            "  -f, --file FILE           the Dockerfile (default CONTEXT/Dockerfile)\n"
            "      --build-arg KEY[=VALUE]  a build argument; KEY alone takes it from the\n"
            "                            environment (repeatable)\n"
            "      --target STAGE        the stage to build (default the last)\n"
            "      --secret id=ID,src=FILE|env=VAR  a secret RUN --mount=type=secret reads\n"
            "                            (never in a layer or the cache; repeatable)\n"
            "  -p, --platform OS/ARCH[/VARIANT]  a platform to build for (repeatable; default\n"
            "                            the host's)\n"
            "\n"
            "Builds from directories:\n"
            "      --base REF            the base image, or scratch (default scratch)\n"
            "  -p, --platform OS/ARCH[/VARIANT][=SRC[:DEST][,SRC[:DEST]...]]\n"
            "                            a platform, with the directories of its own layer\n"
            "                            (repeatable; DEST is absolute, default /)\n"
            "      --layer SRC[:DEST]    a layer every platform gets, built once (repeatable)\n"
            "      --chown UID:GID       owner of the new files (default 0:0)\n"
            "      --entrypoint CMD      a program, or a JSON array ('[\"/app\",\"-v\"]');\n"
            "                            an empty string clears the base's\n"
            "      --cmd CMD             the same for the default arguments\n"
            "      --env KEY=VALUE       (repeatable)\n"
            "      --workdir DIR, --user USER\n"
            "      --expose PORT[/PROTO] (repeatable)\n"
            "\n"
            "Both:\n"
            "      --compression gzip|zstd  new layers' compression (default gzip)\n"
            "      --level N             compression level (default: gzip 6, zstd 3)\n"
            "      --cache-dir DIR       the build cache (default $XDG_CACHE_HOME/ocisync)\n"
            "      --no-cache            build every layer, and keep none in the cache\n"
            "      --cache-max SIZE      the most the cache keeps (default 10G); the least\n"
            "                            recently used layers go first\n"
            "      --cache-from REF      also find layers in this registry cache image\n"
            "                            (or type=registry,ref=REF, as buildx takes it)\n"
            "      --cache-to REF        write this build's layers to a registry cache image\n"
            "      --label KEY=VALUE     (repeatable)\n"
            "      --annotation KEY=VALUE  on the manifests and the index (repeatable)\n"
            "      --version V, --source URL, --revision REV\n"
            "                            org.opencontainers.image.* annotations; source and\n"
            "                            revision default to the git checkout's, if any\n"
            "%s"
            "      --digest-file FILE    write the index digest to FILE\n"
            "  -q, --quiet               print nothing but errors\n"
            "%s"
            "  -h, --help                this help\n",
            cli_prog, push ? "build-push" : "build", push ? "--tag REF..." : "--output DEST...",
            cli_prog, push ? "build-push" : "build", push ? "--tag REF..." : "--output DEST...",
            push ? "pushes it under every tag" : "writes it to OCI layouts or archives",
            push ? "  -t, --tag REF             a destination (repeatable; or a list separated by\n"
                   "                            ';', ',' or newlines)\n"
                   "      --no-stream           upload a new layer once built, if a HEAD finds it\n"
                   "                            missing, not while it is built\n"
                 : "  -o, --output DEST         oci:DIR[:NAME], oci-archive:FILE[:NAME] or\n"
                   "                            docker-archive:FILE[:REPO:TAG] (repeatable)\n",
            cli_transfer_help);
}

/* Runs argv, returns its first output line (trimmed) in out, or "" on any failure. */
static void capture(char *const argv[], char *out, size_t len)
{
    int fds[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    ssize_t n;
    size_t got = 0;
    int st;
    out[0] = '\0';
    if (pipe(fds) != 0)
        return;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(fds[0]);
        close(fds[1]);
        return;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    while (got + 1 < len && (n = read(fds[0], out + got, len - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    out[got] = '\0';
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        out[0] = '\0';
        return;
    }
    out[strcspn(out, "\r\n")] = '\0';
}

/* Splits a tag list on ';', ',' and newlines into items (pointers into s, which is modified). */
static int split_tags(char *s, const char **items, size_t *n)
{
    for (char *t = strtok(s, ";,\n\r"); t != NULL; t = strtok(NULL, ";,\n\r")) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t l = strlen(t);
        while (l > 0 && (t[l - 1] == ' ' || t[l - 1] == '\t'))
            t[--l] = '\0';
        if (*t == '\0')
            continue;
        if (*n == MAX_ITEMS)
            return -1;
        items[(*n)++] = t;
    }
    return 0;
}

/*
 * A command: a JSON array of strings, or one program path. Fills items with
 * malloc'ed strings (freed by the caller).
 */
static int parse_command(const char *flag, const char *v, char **items, size_t *n)
{
    *n = 0;
    if (v[0] == '\0')
        return 0;
    if (v[0] == '[') {
        json_error_t jerr;
        json_t *a = json_loads(v, 0, &jerr), *e;
        size_t i;
        if (!json_is_array(a)) {
            fprintf(stderr, "%s: %s: not a JSON array of strings: %s\n", cli_prog, flag, v);
            json_decref(a);
            return -1;
        }
        json_array_foreach(a, i, e)
        {
            if (!json_is_string(e) || *n == MAX_ITEMS) {
                fprintf(stderr, "%s: %s: not a JSON array of strings: %s\n", cli_prog, flag, v);
                json_decref(a);
                return -1;
            }
            items[(*n)++] = strdup(json_string_value(e));
        }
        json_decref(a);
        return 0;
    }
    items[(*n)++] = strdup(v);
    return 0;
}

struct build_out {
    bool quiet, bars;
    struct cli_progress progress;
};

static void on_build_event(const struct ocisync_event *ev, void *arg)
{
    struct build_out *o = arg;
    if (o->bars)
        cli_progress_event(&o->progress, ev, uv_hrtime() / 1000000);
}

static int add_item(const char *flag, const char **items, size_t *n, const char *v)
{
    if (*n == MAX_ITEMS) {
        fprintf(stderr, "%s: too many %s options (at most %d)\n", cli_prog, flag, MAX_ITEMS);
        return -1;
    }
    items[(*n)++] = v;
    return 0;
}

int cli_build(int argc, char **argv, bool push)
{
    enum {
        OPT_BASE = CLI_OPT_OWN,
        OPT_LAYER,
        OPT_COMPRESSION,
        OPT_LEVEL,
        OPT_CHOWN,
        OPT_ENTRYPOINT,
        OPT_CMD,
        OPT_ENV,
        OPT_WORKDIR,
        OPT_USER,
        OPT_EXPOSE,
        OPT_LABEL,
        OPT_ANNOTATION,
        OPT_VERSION,
        OPT_SOURCE,
        OPT_REVISION,
        OPT_DIGESTFILE,
        OPT_NO_STREAM,
        OPT_BUILD_ARG,
        OPT_SECRET,
        OPT_TARGET,
        OPT_CACHE_DIR,
        OPT_NO_CACHE,
        OPT_CACHE_FROM,
        OPT_CACHE_TO,
        OPT_CACHE_MAX,
    };
    static const struct option longopts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"file", required_argument, NULL, 'f'},
        {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"target", required_argument, NULL, OPT_TARGET},
        {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"cache-from", required_argument, NULL, OPT_CACHE_FROM},
        {"cache-to", required_argument, NULL, OPT_CACHE_TO},
        {"cache-max", required_argument, NULL, OPT_CACHE_MAX},
        {"platform", required_argument, NULL, 'p'},
        {"layer", required_argument, NULL, OPT_LAYER},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"no-stream", no_argument, NULL, OPT_NO_STREAM},
        {"chown", required_argument, NULL, OPT_CHOWN},
        {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
        {"cmd", required_argument, NULL, OPT_CMD},
        {"env", required_argument, NULL, OPT_ENV},
        {"workdir", required_argument, NULL, OPT_WORKDIR},
        {"user", required_argument, NULL, OPT_USER},
        {"expose", required_argument, NULL, OPT_EXPOSE},
        {"label", required_argument, NULL, OPT_LABEL},
        {"annotation", required_argument, NULL, OPT_ANNOTATION},
        {"version", required_argument, NULL, OPT_VERSION},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"revision", required_argument, NULL, OPT_REVISION},
        {"tag", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"digest-file", required_argument, NULL, OPT_DIGESTFILE},
        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_TRANSFER_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct ocisync_build_platform plats[CLI_MAX_PLATFORMS];
    const char *plat_contents[CLI_MAX_PLATFORMS][64];
    char *plat_specs[CLI_MAX_PLATFORMS];
    const char *layers[MAX_ITEMS], *env[MAX_ITEMS], *expose[MAX_ITEMS], *labels[MAX_ITEMS];
    const char *ann[MAX_ITEMS + 4], *tags[MAX_ITEMS], *build_args[MAX_ITEMS];
    const char *secrets[MAX_ITEMS];
    char *entry[MAX_ITEMS], *cmd[MAX_ITEMS], *tag_lists[MAX_ITEMS];
    size_t n_plats = 0, n_layers = 0, n_env = 0, n_expose = 0, n_labels = 0, n_ann = 0, n_tags = 0;
    size_t n_entry = 0, n_cmd = 0, n_tag_lists = 0, n_build_args = 0, n_secrets = 0;
    char dockerfile[4200];
    bool flag_only = false; /* an option a Dockerfile build does not take was given */
    const char *version = NULL, *source = NULL, *revision = NULL, *digestfile = NULL;
    char ann_buf[3][1200] = {"", "", ""}, git_rev[200], git_src[1000];
    struct ocisync_build_opts o;
    struct ocisync_build_result res;
    struct ocisync_copy_result *tag_res = NULL; /* owned: n_tags */
    struct build_out out;
    const char *cmdname = push ? "build-push" : "build";
    int c, err, rc = EXIT_USAGE;

    memset(&o, 0, sizeof(o));
    memset(&out, 0, sizeof(out));
    memset(plat_specs, 0, sizeof(plat_specs));
    argc = cli_bool_forms(cmdname, argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:p:t:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BASE:
            o.base = optarg;
            flag_only = true;
            break;
        case 'f':
            o.dockerfile = optarg;
            break;
        case OPT_SECRET:
            if (strncmp(optarg, "id=", 3) != 0 ||
                (strstr(optarg, ",src=") == NULL && strstr(optarg, ",source=") == NULL &&
                 strstr(optarg, ",env=") == NULL)) {
                fprintf(stderr,
                        "%s %s: --secret takes id=ID,src=FILE or id=ID,env=VAR, not \"%s\"\n",
                        cli_prog, cmdname, optarg);
                goto out;
            }
            if (add_item("--secret", secrets, &n_secrets, optarg) != 0)
                goto out;
            break;
        case OPT_BUILD_ARG:
            if (add_item("--build-arg", build_args, &n_build_args, optarg) != 0)
                goto out;
            break;
        case OPT_TARGET:
            o.target = optarg;
            break;
        case OPT_CACHE_DIR:
            o.cache_dir = optarg;
            break;
        case OPT_NO_CACHE:
            o.no_cache = 1;
            break;
        case OPT_CACHE_FROM:
            o.cache_from = optarg;
            break;
        case OPT_CACHE_TO:
            o.cache_to = optarg;
            break;
        case OPT_CACHE_MAX:
            if (cli_parse_size(optarg, &o.cache_max) != 0 || o.cache_max == 0) {
                fprintf(stderr, "%s %s: --cache-max takes a size like 20G, not \"%s\"\n", cli_prog,
                        cmdname, optarg);
                goto out;
            }
            break;
        case 'p': {
            char *eq;
            struct ocisync_build_platform *p;
            if (n_plats == CLI_MAX_PLATFORMS) {
                fprintf(stderr, "%s %s: at most %d platforms\n", cli_prog, cmdname,
                        CLI_MAX_PLATFORMS);
                goto out;
            }
            p = &plats[n_plats];
            memset(p, 0, sizeof(*p));
            plat_specs[n_plats] = strdup(optarg);
            eq = strchr(plat_specs[n_plats], '=');
            p->platform = plat_specs[n_plats];
            p->contents = plat_contents[n_plats];
            if (eq != NULL) {
                *eq = '\0';
                for (char *t = strtok(eq + 1, ","); t != NULL; t = strtok(NULL, ",")) {
                    if (p->n_contents == 64) {
                        fprintf(stderr, "%s %s: too many directories for %s\n", cli_prog, cmdname,
                                p->platform);
                        n_plats++;
                        goto out;
                    }
                    plat_contents[n_plats][p->n_contents++] = t;
                }
            }
            n_plats++;
            break;
        }
        case OPT_LAYER:
            flag_only = true;
            if (add_item("--layer", layers, &n_layers, optarg) != 0)
                goto out;
            break;
        case OPT_COMPRESSION:
            if (strcmp(optarg, "gzip") == 0) {
                o.compression = OCISYNC_GZIP;
            } else if (strcmp(optarg, "zstd") == 0) {
                o.compression = OCISYNC_ZSTD;
            } else {
                fprintf(stderr, "%s %s: --compression takes gzip or zstd, not \"%s\"\n", cli_prog,
                        cmdname, optarg);
                goto out;
            }
            break;
        case OPT_NO_STREAM:
            o.no_stream = 1;
            break;
        case OPT_LEVEL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 22) {
                fprintf(stderr, "%s %s: --level takes 1-9 (gzip) or 1-22 (zstd), not \"%s\"\n",
                        cli_prog, cmdname, optarg);
                goto out;
            }
            o.level = (int)v;
            break;
        }
        case OPT_CHOWN: {
            flag_only = true;
            unsigned u, g;
            char tail;
            if (sscanf(optarg, "%u:%u%c", &u, &g, &tail) != 2) {
                fprintf(stderr, "%s %s: --chown takes UID:GID (numbers), not \"%s\"\n", cli_prog,
                        cmdname, optarg);
                goto out;
            }
            o.chown = 1;
            o.uid = u;
            o.gid = g;
            break;
        }
        case OPT_ENTRYPOINT:
            flag_only = true;
            for (size_t i = 0; i < n_entry; i++)
                free(entry[i]);
            if (parse_command("--entrypoint", optarg, entry, &n_entry) != 0)
                goto out;
            o.set_entrypoint = 1;
            break;
        case OPT_CMD:
            flag_only = true;
            for (size_t i = 0; i < n_cmd; i++)
                free(cmd[i]);
            if (parse_command("--cmd", optarg, cmd, &n_cmd) != 0)
                goto out;
            o.set_cmd = 1;
            break;
        case OPT_ENV:
            flag_only = true;
            if (add_item("--env", env, &n_env, optarg) != 0)
                goto out;
            break;
        case OPT_WORKDIR:
            flag_only = true;
            o.workdir = optarg;
            break;
        case OPT_USER:
            flag_only = true;
            o.user = optarg;
            break;
        case OPT_EXPOSE:
            flag_only = true;
            if (add_item("--expose", expose, &n_expose, optarg) != 0)
                goto out;
            break;
        case OPT_LABEL:
            if (add_item("--label", labels, &n_labels, optarg) != 0)
                goto out;
            break;
        case OPT_ANNOTATION:
            if (add_item("--annotation", ann, &n_ann, optarg) != 0)
                goto out;
            break;
        case OPT_VERSION:
            version = optarg;
            break;
        case OPT_SOURCE:
            source = optarg;
            break;
        case OPT_REVISION:
            revision = optarg;
            break;
        case 't':
        case 'o':
            if ((c == 't') != push) {
                fprintf(stderr, "%s %s: %s is for %s\n", cli_prog, cmdname,
                        c == 't' ? "--tag" : "--output", c == 't' ? "build-push" : "build");
                goto out;
            }
            if (n_tag_lists == MAX_ITEMS)
                goto out;
            tag_lists[n_tag_lists] = strdup(optarg);
            if (tag_lists[n_tag_lists] == NULL ||
                split_tags(tag_lists[n_tag_lists++], tags, &n_tags) != 0) {
                fprintf(stderr, "%s %s: too many tags\n", cli_prog, cmdname);
                goto out;
            }
            break;
        case OPT_DIGESTFILE:
            digestfile = optarg;
            break;
        case 'q':
            out.quiet = true;
            break;
        case 'h':
            build_usage(stdout, push);
            rc = 0;
            goto out;
        default:
            switch (cli_transfer_opt(cmdname, c, optarg, &o.copy)) {
            case 1:
                break;
            case -1:
                goto out;
            default:
                cli_bad_option(cmdname, argc, argv);
                goto out;
            }
            break;
        }
    }
    if (cli_transfer_finish(cmdname, &o.copy) != 0)
        goto out;
    /* A context directory: a Dockerfile build (CONTEXT/Dockerfile unless -f names one). */
    if (optind < argc) {
        o.context = argv[optind++];
        if (o.dockerfile == NULL) {
            snprintf(dockerfile, sizeof(dockerfile), "%s/Dockerfile", o.context);
            o.dockerfile = dockerfile;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s %s: unexpected argument \"%s\"\n", cli_prog, cmdname, argv[optind]);
        goto out;
    }
    if (o.dockerfile != NULL && geteuid() != 0) {
        /* RUN as a user other than root: in a user namespace of our own, before any thread. */
        char uerr[512];
        uid_t before = getuid();
        if (ocisync_enter_user_namespace(uerr, sizeof(uerr)) != 0 && getuid() != before) {
            fprintf(stderr, "%s %s: %s\n", cli_prog, cmdname, uerr);
            rc = EXIT_FAIL;
            goto out;
        }
    }
    if (o.dockerfile != NULL) {
        if (flag_only) {
            fprintf(stderr,
                    "%s %s: with a Dockerfile, the base, layers, owner, entrypoint, cmd, env, "
                    "workdir, user and ports come from the Dockerfile (--label and "
                    "--annotation add to it)\n",
                    cli_prog, cmdname);
            goto out;
        }
        for (size_t i = 0; i < n_plats; i++) {
            if (plats[i].n_contents > 0) {
                fprintf(stderr,
                        "%s %s: with a Dockerfile, --platform takes a name only, not \"%s=...\"\n",
                        cli_prog, cmdname, plats[i].platform);
                goto out;
            }
        }
    } else if (n_build_args > 0 || o.target != NULL || n_secrets > 0) {
        fprintf(stderr,
                "%s %s: --build-arg, --target and --secret are for Dockerfile builds (-f)\n",
                cli_prog, cmdname);
        goto out;
    }
    if (n_plats == 0 && o.dockerfile == NULL) {
        fprintf(stderr, "%s %s: give at least one --platform\n", cli_prog, cmdname);
        goto out;
    }
    if (n_tags == 0) {
        fprintf(stderr, "%s %s: give at least one %s\n", cli_prog, cmdname,
                push ? "--tag" : "--output");
        goto out;
    }
    for (size_t i = 0; i < n_tags; i++) {
        ocisync_location_kind k = ocisync_location_of(tags[i]);
        bool layout = k != 0 && k != OCISYNC_LOC_REGISTRY;
        if (!push && !layout) {
            fprintf(stderr,
                    "%s build: --output takes oci:DIR[:NAME], oci-archive:FILE[:NAME] or "
                    "docker-archive:FILE[:REPO:TAG], not \"%s\" (push to a registry with "
                    "build-push)\n",
                    cli_prog, tags[i]);
            goto out;
        }
    }
    /* The org.opencontainers.image.* annotations; source and revision from git by default. */
    {
        const char *dir = o.context != NULL                        ? o.context
                          : n_plats > 0 && plats[0].n_contents > 0 ? plats[0].contents[0]
                          : n_layers > 0                           ? layers[0]
                                                                   : ".";
        char gitdir[4096];
        snprintf(gitdir, sizeof(gitdir), "%.*s", (int)strcspn(dir, ":"), dir);
        if (revision == NULL) {
            char *const av[] = {"git", "-C", gitdir, "rev-parse", "HEAD", NULL};
            capture(av, git_rev, sizeof(git_rev));
            if (git_rev[0] != '\0')
                revision = git_rev;
        }
        if (source == NULL) {
            char *const av[] = {"git", "-C", gitdir, "config", "--get", "remote.origin.url", NULL};
            capture(av, git_src, sizeof(git_src));
            if (git_src[0] != '\0')
                source = git_src;
        }
        if (version != NULL)
            snprintf(ann_buf[0], sizeof(ann_buf[0]), "org.opencontainers.image.version=%s",
                     version);
        if (source != NULL)
            snprintf(ann_buf[1], sizeof(ann_buf[1]), "org.opencontainers.image.source=%s", source);
        if (revision != NULL)
            snprintf(ann_buf[2], sizeof(ann_buf[2]), "org.opencontainers.image.revision=%s",
                     revision);
        for (int i = 0; i < 3; i++)
            if (ann_buf[i][0] != '\0')
                ann[n_ann++] = ann_buf[i];
    }
    o.platforms = plats;
    o.n_platforms = n_plats;
    o.build_args = build_args;
    o.n_build_args = n_build_args;
    o.secrets = secrets;
    o.n_secrets = n_secrets;
    o.layers = layers;
    o.n_layers = n_layers;
    o.env = env;
    o.n_env = n_env;
    o.entrypoint = (const char *const *)entry;
    o.n_entrypoint = n_entry;
    o.cmd = (const char *const *)cmd;
    o.n_cmd = n_cmd;
    o.labels = labels;
    o.n_labels = n_labels;
    o.expose = expose;
    o.n_expose = n_expose;
    o.annotations = ann;
    o.n_annotations = n_ann;
    o.tags = tags;
    o.n_tags = n_tags;
    o.copy.handle_signals = 1;
    o.copy.on_event = on_build_event;
    o.copy.event_arg = &out;
    if (!out.quiet && isatty(STDOUT_FILENO)) {
        out.bars = true;
        cli_progress_init(&out.progress, stdout, true, cli_term_width());
    }
    tag_res = calloc(n_tags ? n_tags : 1, sizeof(*tag_res));
    if (tag_res == NULL) {
        fprintf(stderr, "%s %s: out of memory\n", cli_prog, cmdname);
        rc = EXIT_FAIL;
        goto out;
    }
    o.tag_results = tag_res;
    err = ocisync_build(&o, &res);
    if (out.bars)
        cli_progress_finish(&out.progress, uv_hrtime() / 1000000);
    if (res.cache_warning[0] != '\0')
        fprintf(stderr, "%s %s: warning: %s\n", cli_prog, cmdname, res.cache_warning);
    if (err != 0) {
        cli_print_error(cmdname, res.error, err);
        rc = cli_exit_code(err);
        goto out;
    }
    if (!out.quiet) {
        printf("Built %zu platform%s, %" PRIu64 " new layer%s (%" PRIu64 " from the cache; %" PRIu64
               " bytes of tar, %" PRIu64 " compressed); blobs: %" PRIu64 " uploaded (%" PRIu64
               " while building), %" PRIu64 " mounted, %" PRIu64 " already there\n",
               n_plats ? n_plats : 1, n_plats <= 1 ? "" : "s", res.layers_built,
               res.layers_built == 1 ? "" : "s", res.layers_cached, res.tar_bytes, res.bytes_built,
               res.blobs_copied, res.blobs_streamed, res.blobs_mounted, res.blobs_skipped);
        for (size_t i = 0; i < n_tags; i++) {
            /* A docker-archive holds one platform's image: its own digest. */
            const struct ocisync_copy_result *t = &tag_res[i];
            printf("%s %s: %s%s%s%s\n", push ? "Pushed" : "Wrote", tags[i],
                   t->digest[0] ? t->digest : res.digest, t->platform[0] ? " (" : "", t->platform,
                   t->platform[0] ? ")" : "");
        }
    }
    if (digestfile != NULL && cli_write_digestfile(digestfile, res.digest) != 0) {
        rc = EXIT_FAIL;
        goto out;
    }
    rc = 0;
out:
    free(tag_res);
    for (size_t i = 0; i < n_plats; i++)
        free(plat_specs[i]);
    for (size_t i = 0; i < n_entry; i++)
        free(entry[i]);
    for (size_t i = 0; i < n_cmd; i++)
        free(cmd[i]);
    for (size_t i = 0; i < n_tag_lists; i++)
        free(tag_lists[i]);
    return rc;
}
