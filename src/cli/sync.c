/*
 * `ocisync sync`: skopeo sync's command line (--src docker|dir|yaml|oci,
 * --dest docker|dir|oci, --scoped, --dry-run, --append-suffix, ...) and ocisync's own config
 * format, on top of ocisync_sync. Prints a line per image as it starts and ends (or JSON events
 * with --json), then a summary that lists what failed.
 */
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/progress.h"
#include "ocisync.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static void sync_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s sync [OPTIONS] --src docker|dir|yaml|oci --dest docker|dir|oci SOURCE "
            "[DESTINATION]\n"
            "\n"
            "Mirrors images into DESTINATION (a registry, optionally with a path, or a\n"
            "directory).\n"
            "  --src docker SOURCE   a repository (every tag) or one image (repository:tag)\n"
            "  --src dir SOURCE      a skopeo dir: image, or a directory tree of them (each\n"
            "                        directory holding manifest.json; \"app:v1\" is app, tag\n"
            "                        v1; no tag is latest)\n"
            "  --src oci SOURCE      every named image of an OCI layout\n"
            "  --src yaml FILE       the images a config file lists: skopeo sync's format,\n"
            "                        or ocisync's (its `mirrors:` name their destinations,\n"
            "                        so DESTINATION is not given)\n"
            "  --src oci DIR         the images of an OCI layout directory\n"
            "  --dest oci DIR        a layout per repository under DIR (DIR/NAME)\n"
            "An image lands at DESTINATION/NAME:TAG, NAME being the last component of its\n"
            "repository, or its whole source path with --scoped. --dest dir writes each as a\n"
            "skopeo dir: directory DESTINATION/NAME:TAG; --dest oci as a layout per\n"
            "repository, DESTINATION/NAME, its images named by tag.\n"
            "\n"
            "Options:\n"
            "  -s, --src TYPE            docker, dir, yaml or oci\n"
            "  -d, --dest TYPE           docker, dir or oci\n"
            "  -a, --all                 every platform of an index (the default)\n"
            "  -p, --platform OS/ARCH[/VARIANT]\n"
            "                            copy only these platforms (repeatable)\n"
            "      --scoped              keep the source's registry and path under DESTINATION\n"
            "      --append-suffix SUFFIX\n"
            "                            append SUFFIX to every destination tag (v1 -> v1SUFFIX)\n"
            "      --digestfile FILE     write a line \"DESTINATION-REF@DIGEST\" per image synced\n"
            "      --dry-run             list and filter, print the plan, copy nothing\n"
            "      --shard I/N           only the repositories of shard I (0-based) of N\n"
            "      --json                one JSON event per line on stdout\n"
            "      --keep-going          accepted for skopeo compatibility: a failed image never\n"
            "                            stops the others\n"
            "  -q, --quiet               print nothing but errors and the summary of failures\n"
            "%s"
            "%s"
            "  -h, --help                this help\n"
            "\n"
            "Exit codes: 0 everything synced, 1 something failed (the summary lists it),\n"
            "2 wrong command line or config file, 130 interrupted.\n",
            cli_prog, cli_convert_help, cli_transfer_help);
}

struct sync_out {
    bool quiet, json;
    uint64_t start_ms;
    struct cli_progress progress; /* lines per image, and bars on a terminal */
    bool progress_on;
};

static void json_line(json_t *o)
{
    /* Seconds are rounded to hundredths: printed as 0.36, not 0.35999999999999999. */
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (s != NULL) {
        puts(s);
        free(s);
    }
    json_decref(o);
    fflush(stdout);
}

static void on_event(const struct ocisync_event *ev, void *arg)
{
    struct sync_out *o = arg;
    if (o->json && ev->kind != OCISYNC_EV_IMAGE_START && ev->kind != OCISYNC_EV_DONE)
        return;
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "event",
                              ev->kind == OCISYNC_EV_DONE ? "image_done" : "image_start", "src",
                              ev->src, "dst", ev->dst);
        if (j == NULL)
            return;
        if (ev->kind == OCISYNC_EV_DONE) {
            json_object_set_new(j, "ok", json_boolean(ev->err == 0));
            if (ev->digest != NULL)
                json_object_set_new(j, "digest", json_string(ev->digest));
            if (ev->err != 0)
                json_object_set_new(j, "error", json_string(ev->message ? ev->message : ""));
            json_object_set_new(j, "blobs_copied", json_integer((json_int_t)ev->blobs_copied));
            json_object_set_new(j, "blobs_mounted", json_integer((json_int_t)ev->blobs_mounted));
            json_object_set_new(j, "blobs_skipped", json_integer((json_int_t)ev->blobs_skipped));
            json_object_set_new(j, "bytes", json_integer((json_int_t)ev->bytes));
        }
        json_line(j);
        return;
    }
    if (o->progress_on)
        cli_progress_event(&o->progress, ev, uv_hrtime() / 1000000);
}

/*
 * "docker.io/library/busybox" -> "DEST/busybox" (or DEST/ and the whole path,
 * scoped); "oci:DEST/busybox", a layout per repository, with --dest oci.
 */
static void dest_repo(const char *dest, const char *source, bool scoped, const char *prefix,
                      char *out, size_t len)
{
    const char *name = source;
    size_t dl, pl = strlen(prefix);
    if (!scoped) {
        const char *slash = strrchr(source, '/');
        if (slash != NULL)
            name = slash + 1;
    }
    if (pl > 0 && strncmp(dest, prefix, pl) == 0)
        dest += pl;
    dl = strlen(dest);
    while (dl > 1 && dest[dl - 1] == '/')
        dl--;
    snprintf(out, len, "%s%.*s/%s", prefix, (int)dl, dest, name);
}

static const char *strip_docker(const char *s)
{
    return strncmp(s, "docker://", 9) == 0 ? s + 9 : s;
}

/* Registry options from a config file's registry entry, on top of the command line's. */
struct reg_opts {
    struct ocisync_registry_opts o;
    char *creds; /* owned: "user:password" from the file */
};

static void apply_conf(struct reg_opts *r, const struct ocisync_registry_opts *base,
                       const struct cli_registry_conf *c)
{
    r->o = *base;
    if (c == NULL)
        return;
    if (c->tls_verify >= 0)
        r->o.tls_verify = c->tls_verify ? OCISYNC_TLS_VERIFY_ON : OCISYNC_TLS_VERIFY_OFF;
    if (c->cert_dir != NULL)
        r->o.cert_dir = c->cert_dir;
    if (c->max_concurrency > 0)
        r->o.max_connections = c->max_concurrency;
    if (c->username != NULL && c->password != NULL) {
        size_t n = strlen(c->username) + strlen(c->password) + 2;
        r->creds = malloc(n);
        if (r->creds != NULL) {
            snprintf(r->creds, n, "%s:%s", c->username, c->password);
            r->o.creds = r->creds;
        }
    }
}

/* The registry part of "registry/path". */
static void registry_of(const char *ref, char *out, size_t len)
{
    snprintf(out, len, "%.*s", (int)strcspn(ref, "/"), ref);
}

static void print_summary(struct sync_out *o, const struct ocisync_sync_result *r, int dry_run)
{
    uint64_t copied = 0, mounted = 0, skipped = 0, bytes = 0;
    size_t up_to_date = 0, done = 0, n_stopped = 0;
    const char *stopped_msg = "interrupted";
    double secs = (double)(uv_hrtime() / 1000000 - o->start_ms) / 1000.0;
    for (size_t i = 0; i < r->n_images; i++) {
        const struct ocisync_sync_image *im = &r->images[i];
        if (im->err != 0)
            continue;
        copied += im->res.blobs_copied;
        mounted += im->res.blobs_mounted;
        skipped += im->res.blobs_skipped;
        bytes += im->res.bytes_copied;
        if (im->res.blobs_copied + im->res.blobs_mounted + im->res.blobs_skipped +
                im->res.manifests_pushed ==
            0)
            up_to_date++;
        else
            done++;
    }
    for (size_t i = 0; i < r->n_images; i++) {
        if (r->images[i].err != OCISYNC_EINTERRUPTED)
            continue;
        if (n_stopped++ == 0 || stopped_msg[0] == '\0')
            stopped_msg = r->images[i].res.error;
    }
    if (stopped_msg[0] == '\0')
        stopped_msg = "interrupted";
    if (o->json) {
        json_t *j = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "event",
                              "summary", "dry_run", dry_run, "images", (json_int_t)r->n_planned,
                              "copied", (json_int_t)done, "up_to_date", (json_int_t)up_to_date,
                              "failed", (json_int_t)(r->n_failed - n_stopped), "blobs_copied",
                              (json_int_t)copied, "blobs_mounted", (json_int_t)mounted,
                              "blobs_skipped", (json_int_t)skipped, "bytes", (json_int_t)bytes,
                              "seconds", (double)(int64_t)(secs * 100 + 0.5) / 100);
        json_t *fails = json_array();
        for (size_t i = 0; j != NULL && fails != NULL && i < r->n_images; i++) {
            const struct ocisync_sync_image *im = &r->images[i];
            if (im->err != 0 && im->err != OCISYNC_EINTERRUPTED)
                json_array_append_new(fails, json_pack("{s:s, s:s, s:s}", "src", im->src, "dst",
                                                       im->dst, "error", im->res.error));
        }
        if (j != NULL && n_stopped > 0)
            json_object_set_new(j, "stopped", json_integer((json_int_t)n_stopped));
        if (j != NULL)
            json_object_set_new(j, "failures", fails);
        else
            json_decref(fails);
        if (j != NULL)
            json_line(j);
        return;
    }
    if (o->quiet && r->n_failed == 0)
        return;
    if (dry_run) {
        for (size_t i = 0; i < r->n_planned; i++) {
            fputs("Would copy ", stdout);
            cli_put_clean(stdout, r->images[i].src);
            fputs(" -> ", stdout);
            cli_put_clean(stdout, r->images[i].dst);
            fputc('\n', stdout);
        }
        printf("Dry run: %zu images planned", r->n_planned);
    } else {
        printf(
            "Synced %zu images in %.1f s: %zu copied, %zu up to date, %zu failed; blobs: %" PRIu64
            " copied (%" PRIu64 " bytes), %" PRIu64 " mounted, %" PRIu64 " skipped",
            r->n_planned, secs, done, up_to_date,
            r->n_failed - (r->n_images - r->n_planned) - n_stopped, copied, bytes, mounted,
            skipped);
        if (n_stopped > 0)
            printf("; %zu stopped", n_stopped);
    }
    if (r->n_images > r->n_planned)
        printf("; %zu repositories could not be listed", r->n_images - r->n_planned);
    printf("\n");
    if (r->n_failed > n_stopped) {
        fprintf(stderr, "Failed:\n");
        for (size_t i = 0; i < r->n_images; i++) {
            const struct ocisync_sync_image *im = &r->images[i];
            if (im->err == 0 || im->err == OCISYNC_EINTERRUPTED)
                continue;
            /* Names and messages may come from the registry: one line each, whatever they hold. */
            fputs("  ", stderr);
            cli_put_clean(stderr, im->src);
            fputs(" -> ", stderr);
            cli_put_clean(stderr, im->dst);
            fputs(": ", stderr);
            cli_put_clean(stderr, im->res.error);
            fputc('\n', stderr);
        }
    }
    if (n_stopped > 0) {
        /* One line for the signal, whatever the number of images it stopped. */
        fprintf(stderr, "%s sync: %s; %zu image%s not finished\n", cli_prog, stopped_msg, n_stopped,
                n_stopped == 1 ? "" : "s");
    }
    fflush(stdout);
}

/*
 * --digestfile: "DESTINATION-REF@DIGEST" per image synced, in plan order, as
 * copy's --digestfile gives one image's digest (skopeo sync has none).
 */
static int write_digests(const char *path, const struct ocisync_sync_result *r)
{
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (f == NULL) {
        fprintf(stderr, "%s sync: cannot write %s: %s\n", cli_prog, path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < r->n_planned; i++)
        if (r->images[i].err == 0 && r->images[i].res.digest[0] != '\0')
            fprintf(f, "%s@%s\n", r->images[i].dst, r->images[i].res.digest);
    if (fclose(f) != 0) {
        fprintf(stderr, "%s sync: cannot write %s: %s\n", cli_prog, path, strerror(errno));
        rc = -1;
    }
    return rc;
}

int cli_sync(int argc, char **argv)
{
    enum {
        OPT_SCOPED = CLI_OPT_OWN,
        OPT_DRY_RUN,
        OPT_SHARD,
        OPT_JSON,
        OPT_KEEP_GOING,
        OPT_APPEND_SUFFIX,
        OPT_DIGESTFILE,
    };
    static const struct option longopts[] = {
        {"src", required_argument, NULL, 's'},
        {"dest", required_argument, NULL, 'd'},
        {"all", no_argument, NULL, 'a'},
        {"platform", required_argument, NULL, 'p'},
        {"scoped", no_argument, NULL, OPT_SCOPED},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"json", no_argument, NULL, OPT_JSON},
        {"keep-going", no_argument, NULL, OPT_KEEP_GOING},
        {"append-suffix", required_argument, NULL, OPT_APPEND_SUFFIX},
        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_CONVERT_LONGOPTS,
        CLI_TRANSFER_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *platforms[CLI_MAX_PLATFORMS];
    const char *src_type = NULL, *dest_type = NULL, *digestfile = NULL, *dest_prefix = "";
    struct ocisync_sync_opts opts;
    struct ocisync_sync_result res;
    struct ocisync_sync_source *sources = NULL, one;
    struct cli_sync_config cfg;
    struct reg_opts *ropts = NULL;
    struct sync_out out;
    char(*dests)[600] = NULL;
    size_t n_sources = 0, n_platforms = 0;
    bool scoped = false, all = false, have_cfg = false;
    char msg[1024];
    int c, err, rc = EXIT_FAIL;

    memset(&opts, 0, sizeof(opts));
    memset(&out, 0, sizeof(out));
    memset(&cfg, 0, sizeof(cfg));
    memset(&res, 0, sizeof(res));
    argc = cli_bool_forms("sync", argc, argv, longopts);
    if (argc < 0)
        return EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:d:ap:f:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            src_type = optarg;
            break;
        case 'd':
            dest_type = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'p':
            if (n_platforms == CLI_MAX_PLATFORMS) {
                fprintf(stderr, "%s sync: at most %d --platform options\n", cli_prog,
                        CLI_MAX_PLATFORMS);
                return EXIT_USAGE;
            }
            platforms[n_platforms++] = optarg;
            break;
        case OPT_SCOPED:
            scoped = true;
            break;
        case OPT_DRY_RUN:
            opts.dry_run = 1;
            break;
        case OPT_SHARD: {
            unsigned i, n;
            char tail;
            if (sscanf(optarg, "%u/%u%c", &i, &n, &tail) != 2 || n == 0 || i >= n) {
                fprintf(stderr,
                        "%s sync: --shard takes I/N with 0 <= I < N (like 0/4), not \"%s\"\n",
                        cli_prog, optarg);
                return EXIT_USAGE;
            }
            opts.shard_index = i;
            opts.shard_count = n;
            break;
        }
        case OPT_JSON:
            out.json = true;
            break;
        case OPT_KEEP_GOING:
            break;
        case OPT_APPEND_SUFFIX:
            opts.append_suffix = optarg;
            break;
        case OPT_DIGESTFILE:
            digestfile = optarg;
            break;
        case 'q':
            out.quiet = true;
            break;
        case 'h':
            sync_usage(stdout);
            return 0;
        default:
            err = cli_convert_opt("sync", c, optarg, &opts.copy);
            if (err == 0)
                err = cli_transfer_opt("sync", c, optarg, &opts.copy);
            switch (err) {
            case 1:
                break;
            case -1:
                return EXIT_USAGE;
            default:
                cli_bad_option("sync", argc, argv);
                return EXIT_USAGE;
            }
            break;
        }
    }
    if (cli_transfer_finish("sync", &opts.copy) != 0)
        return EXIT_USAGE;
    if (all && n_platforms > 0) {
        fprintf(stderr, "%s sync: --all and --platform exclude each other\n", cli_prog);
        return EXIT_USAGE;
    }
    if (src_type == NULL || (strcmp(src_type, "docker") != 0 && strcmp(src_type, "yaml") != 0 &&
                             strcmp(src_type, "oci") != 0 && strcmp(src_type, "dir") != 0)) {
        fprintf(stderr, "%s sync: --src must be docker, dir, yaml or oci%s%s%s\n", cli_prog,
                src_type ? " (not \"" : "", src_type ? src_type : "", src_type ? "\")" : "");
        return EXIT_USAGE;
    }
    if (dest_type != NULL && strcmp(dest_type, "docker") != 0 && strcmp(dest_type, "oci") != 0 &&
        strcmp(dest_type, "dir") != 0) {
        fprintf(stderr, "%s sync: --dest must be docker, dir or oci (not \"%s\")\n", cli_prog,
                dest_type);
        return EXIT_USAGE;
    }
    if (opts.append_suffix != NULL && strpbrk(opts.append_suffix, "/:@ ") != NULL) {
        fprintf(stderr, "%s sync: --append-suffix \"%s\" cannot be part of a tag\n", cli_prog,
                opts.append_suffix);
        return EXIT_USAGE;
    }
    if (dest_type != NULL && strcmp(dest_type, "oci") == 0)
        dest_prefix = "oci:";
    else if (dest_type != NULL && strcmp(dest_type, "dir") == 0)
        dest_prefix = "dir:";

    if (strcmp(src_type, "yaml") == 0) {
        if (argc - optind < 1 || argc - optind > 2) {
            fprintf(stderr, "%s sync: expected a config file and a destination\n", cli_prog);
            return EXIT_USAGE;
        }
        err = cli_sync_config_load(argv[optind], &cfg, msg, sizeof(msg));
        if (err != 0) {
            fprintf(stderr, "%s sync: %s\n", cli_prog, msg);
            return EXIT_USAGE;
        }
        have_cfg = true;
        if (cfg.format == CLI_SYNC_OCISYNC && argc - optind == 2) {
            fprintf(stderr,
                    "%s sync: %s names the destination of each mirror; give no DESTINATION\n",
                    cli_prog, argv[optind]);
            rc = EXIT_USAGE;
            goto out;
        }
        if (cfg.format == CLI_SYNC_SKOPEO && argc - optind != 2) {
            fprintf(stderr, "%s sync: expected a destination after %s\n", cli_prog, argv[optind]);
            rc = EXIT_USAGE;
            goto out;
        }
        if (cfg.jobs != 0 && opts.copy.jobs == 0)
            opts.copy.jobs = cfg.jobs;
        n_sources = cfg.n_entries;
        sources = calloc(n_sources ? n_sources : 1, sizeof(*sources));
        ropts = calloc(2 * (n_sources ? n_sources : 1), sizeof(*ropts));
        dests = calloc(n_sources ? n_sources : 1, sizeof(*dests));
        if (sources == NULL || ropts == NULL || dests == NULL) {
            fprintf(stderr, "%s sync: out of memory\n", cli_prog);
            goto out;
        }
        for (size_t i = 0; i < n_sources; i++) {
            const struct cli_sync_entry *e = &cfg.entries[i];
            struct ocisync_sync_source *s = &sources[i];
            if (e->src_conf != NULL && e->src_conf->identity_token != NULL) {
                fprintf(stderr,
                        "%s sync: %s: identity tokens in the config are not supported; use "
                        "%s login or an auth file\n",
                        cli_prog, e->source, cli_prog);
                rc = EXIT_USAGE;
                goto out;
            }
            s->src = e->source;
            if (cfg.format == CLI_SYNC_SKOPEO) {
                dest_repo(strip_docker(argv[optind + 1]), e->source, scoped, dest_prefix, dests[i],
                          sizeof(dests[i]));
                s->dst = dests[i];
            } else {
                char reg[300];
                s->dst = e->dest;
                registry_of(e->dest, reg, sizeof(reg));
                apply_conf(&ropts[2 * i + 1], &opts.copy.dst, cli_sync_config_registry(&cfg, reg));
                s->dst_opts = &ropts[2 * i + 1].o;
            }
            s->catalog = e->catalog;
            s->tags = (const char *const *)e->tags;
            s->n_tags = e->n_tags;
            s->include_regex = (const char *const *)e->include_regex;
            s->n_include = e->n_include;
            s->exclude_regex = (const char *const *)e->exclude_regex;
            s->n_exclude = e->n_exclude;
            s->semver = e->semver;
            s->latest = e->latest;
            s->platforms = e->n_platforms ? (const char *const *)e->platforms : platforms;
            s->n_platforms = e->n_platforms ? e->n_platforms : n_platforms;
            apply_conf(&ropts[2 * i], &opts.copy.src, e->src_conf);
            s->src_opts = &ropts[2 * i].o;
        }
    } else {
        static char dst[600];
        const char *src;
        if (argc - optind != 2) {
            fprintf(stderr, "%s sync: expected a source and a destination\n", cli_prog);
            return EXIT_USAGE;
        }
        src = strip_docker(argv[optind]);
        memset(&one, 0, sizeof(one));
        if (strcmp(src_type, "oci") == 0) {
            /* A layout: its images go to DEST/<the directory's name>:<their names>. */
            static char lsrc[4200];
            char name[600];
            const char *dir = ocisync_location_of(src) == OCISYNC_LOC_LAYOUT ? src + 4 : src;
            size_t dl = strlen(dir);
            while (dl > 1 && dir[dl - 1] == '/')
                dl--;
            snprintf(lsrc, sizeof(lsrc), "oci:%.*s", (int)dl, dir);
            snprintf(name, sizeof(name), "%.*s", (int)dl, dir);
            one.src = lsrc;
            dest_repo(strip_docker(argv[optind + 1]), name, false, dest_prefix, dst, sizeof(dst));
        } else if (strcmp(src_type, "dir") == 0) {
            /* A tree of dir: images, each to DEST/<its directory's name> (the engine walks it). */
            static char dsrc[4200];
            const char *dir = ocisync_location_of(src) == OCISYNC_LOC_DIR ? src + 4 : src;
            const char *d = strip_docker(argv[optind + 1]);
            size_t dl;
            snprintf(dsrc, sizeof(dsrc), "dir:%s", dir);
            one.src = dsrc;
            if (*dest_prefix != '\0' && strncmp(d, dest_prefix, strlen(dest_prefix)) == 0)
                d += strlen(dest_prefix);
            dl = strlen(d);
            while (dl > 1 && d[dl - 1] == '/')
                dl--;
            snprintf(dst, sizeof(dst), "%s%.*s", dest_prefix, (int)dl, d);
        } else {
            /* The repository part names the destination: "reg/a/b:tag" -> DEST/b:tag. */
            char repo[600];
            const char *last = strrchr(src, '/');
            size_t n = strlen(src);
            one.src = src;
            if (last != NULL && strpbrk(last, ":@") != NULL)
                n = (size_t)(strpbrk(last, ":@") - src);
            snprintf(repo, sizeof(repo), "%.*s", (int)n, src);
            dest_repo(strip_docker(argv[optind + 1]), repo, scoped, dest_prefix, dst, sizeof(dst));
        }
        one.dst = dst;
        one.platforms = platforms;
        one.n_platforms = n_platforms;
        sources = &one;
        n_sources = 1;
    }

    opts.copy.handle_signals = 1;
    opts.copy.on_event = on_event;
    opts.copy.event_arg = &out;
    out.start_ms = uv_hrtime() / 1000000;
    if (!out.json && !out.quiet) {
        cli_progress_init(&out.progress, stdout, isatty(STDOUT_FILENO), cli_term_width());
        out.progress_on = true;
    }
    err = ocisync_sync(sources, n_sources, &opts, &res);
    if (out.progress_on)
        cli_progress_finish(&out.progress, uv_hrtime() / 1000000);
    if (err != 0 && err != OCISYNC_EPARTIAL && res.n_planned == 0) {
        cli_print_error("sync", res.error, err);
        rc = cli_exit_code(err);
        goto out;
    }
    if (opts.dry_run && out.json) {
        for (size_t i = 0; i < res.n_planned; i++) {
            json_t *j = json_pack("{s:s, s:s, s:s}", "event", "plan", "src", res.images[i].src,
                                  "dst", res.images[i].dst);
            if (j != NULL)
                json_line(j);
        }
    }
    print_summary(&out, &res, opts.dry_run);
    if (digestfile != NULL && !opts.dry_run && write_digests(digestfile, &res) != 0) {
        rc = EXIT_FAIL;
        goto out;
    }
    if (err == OCISYNC_EINTERRUPTED)
        rc = EXIT_INTERRUPTED;
    else
        rc = res.n_failed > 0 ? EXIT_FAIL : 0;
out:
    ocisync_sync_result_free(&res);
    if (have_cfg)
        cli_sync_config_free(&cfg);
    if (sources != &one)
        free(sources);
    for (size_t i = 0; ropts != NULL && i < 2 * n_sources; i++)
        free(ropts[i].creds);
    free(ropts);
    free(dests);
    return rc;
}
