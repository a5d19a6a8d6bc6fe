/* The options every transfer command shares. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

const char *cli_prog = "ocisync";

const char cli_transfer_help[] =
    "  -j, --jobs N              blob transfers in flight (default 8)\n"
    "      --chunk-size SIZE     upload blobs larger than SIZE in PATCH chunks of SIZE,\n"
    "                            resumable where the registry allows (default: one\n"
    "                            streamed request per blob; suffixes K, M, G)\n"
    "      --plain-http          talk plain HTTP to both registries\n"
    "      --src-plain-http      talk plain HTTP to the source registry\n"
    "      --dest-plain-http     talk plain HTTP to the destination registry\n"
    "                            (plain HTTP is the default for localhost and 127.0.0.0/8)\n"
    "      --src-tls-verify[=BOOL], --dest-tls-verify[=BOOL]\n"
    "                            verify the registry's certificate (default true);\n"
    "                            either form also makes a loopback registry use HTTPS\n"
    "      --src-cert-dir DIR, --dest-cert-dir DIR\n"
    "                            *.crt CA certificates and NAME.cert/NAME.key client\n"
    "                            certificates for the registry\n"
    "      --src-creds USER[:PASS], --dest-creds USER[:PASS]\n"
    "                            (without :PASS, asked for on the terminal)\n"
    "      --src-registry-token TOKEN, --dest-registry-token TOKEN\n"
    "                            credentials (see README: Credentials for the order)\n"
    "      --src-username USER, --src-password PASS\n"
    "      --dest-username USER, --dest-password PASS\n"
    "                            credentials in two flags, as skopeo's\n"
    "      --src-no-creds, --dest-no-creds\n"
    "                            talk to the registry anonymously\n"
    "      --authfile FILE       auth file to read credentials from\n"
    "      --src-authfile FILE, --dest-authfile FILE\n"
    "                            the auth file of one side\n"
    "      --retry-times N       retries of a failed request or blob transfer (default 5)\n"
    "      --retry-delay DURATION first backoff, doubling with jitter (default 0.5)\n"
    "      --timeout SECONDS     a request making no progress this long fails (default\n"
    "                            120); one that is not a blob body also fails when not\n"
    "                            over within twice as long\n"
    "      --low-speed-limit BYTES, --low-speed-time SECONDS\n"
    "                            a blob body slower than BYTES a second over SECONDS\n"
    "                            fails (default 1K over --timeout; 0 turns it off)\n"
    "      --referrers           also copy the images' referrers (signatures, SBOMs,\n"
    "                            attestations), and theirs\n"
    "      --preserve-digests    fail rather than change a digest (a Docker-format\n"
    "                            image into oci:/oci-archive: takes OCI media types)\n"
    "      --debug               trace requests and state changes on stderr\n";

const char cli_convert_help[] =
    "  -f, --format oci|v2s2     write manifests as OCI or Docker schema 2, converting\n"
    "                            what is in the other format (new digests)\n"
    "      --dest-compress-format gzip|zstd\n"
    "                            recompress layers in another compression while they\n"
    "                            are relayed (new digests; diff_ids unchanged)\n"
    "      --dest-compress-level N\n"
    "                            the level for --dest-compress-format (gzip 1-9,\n"
    "                            default 6; zstd 1-19, default 3)\n";

int cli_convert_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts)
{
    switch (c) {
    case CLI_OPT_FORMAT:
        if (strcmp(arg, "oci") == 0) {
            opts->format = OCISYNC_FORMAT_OCI;
        } else if (strcmp(arg, "v2s2") == 0) {
            opts->format = OCISYNC_FORMAT_V2S2;
        } else {
            fprintf(stderr, "%s %s: --format takes oci or v2s2, not \"%s\"%s\n", cli_prog, cmd, arg,
                    strcmp(arg, "v2s1") == 0 ? " (schema 1 is not written)" : "");
            return -1;
        }
        return 1;
    case CLI_OPT_COMPRESS_FORMAT:
        if (strcmp(arg, "gzip") == 0) {
            opts->compression = OCISYNC_GZIP;
        } else if (strcmp(arg, "zstd") == 0) {
            opts->compression = OCISYNC_ZSTD;
        } else {
            fprintf(stderr, "%s %s: --dest-compress-format takes gzip or zstd, not \"%s\"%s\n",
                    cli_prog, cmd, arg,
                    strcmp(arg, "zstd:chunked") == 0 ? " (zstd:chunked is not written)" : "");
            return -1;
        }
        opts->recompress = 1;
        return 1;
    case CLI_OPT_COMPRESS_LEVEL: {
        char *end;
        long n = strtol(arg, &end, 10);
        if (*end != '\0' || end == arg || n < 1 || n > 19) {
            fprintf(stderr,
                    "%s %s: --dest-compress-level takes a number from 1 to 19, not \"%s\"\n",
                    cli_prog, cmd, arg);
            return -1;
        }
        opts->compression_level = (int)n;
        return 1;
    }
    default:
        return 0;
    }
}

int cli_parse_bool(const char *s, bool *out)
{
    if (s == NULL || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 ||
        strcasecmp(s, "yes") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

static int tls_verify_opt(const char *cmd, const char *flag, const char *arg,
                          ocisync_tls_verify *out)
{
    bool v;
    if (cli_parse_bool(arg, &v) != 0) {
        fprintf(stderr, "%s %s: %s takes true or false, not \"%s\"\n", cli_prog, cmd, flag, arg);
        return -1;
    }
    *out = v ? OCISYNC_TLS_VERIFY_ON : OCISYNC_TLS_VERIFY_OFF;
    return 0;
}

/*
 * cli_clean_char: what is printed for byte c of a string that came from outside (a
 * registry's names and messages): printable ASCII as is, whitespace as a
 * space, anything else (escapes, other control characters, bytes of UTF-8
 * sequences, which may encode C1 controls) as '?', so that nothing a
 * registry says can move the cursor or split a line of the summary.
 */
char cli_clean_char(unsigned char c)
{
    if (c == '\t' || c == '\n' || c == '\r')
        return ' ';
    if (c < 0x20 || c >= 0x7f)
        return '?';
    return (char)c;
}

void cli_put_clean(FILE *out, const char *s)
{
    for (s = s != NULL ? s : ""; *s != '\0'; s++)
        fputc(cli_clean_char((unsigned char)*s), out);
}

void cli_print_error(const char *cmd, const char *msg, int err)
{
    fprintf(stderr, "%s %s: ", cli_prog, cmd);
    cli_put_clean(stderr, msg != NULL && msg[0] != '\0' ? msg : ocisync_strerror(err));
    fputc('\n', stderr);
}

int cli_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long n;
    uint64_t mul = 1;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mul = 1024;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024ULL * 1024 * 1024;
        end++;
        break;
    default:
        return -1;
    }
    if ((*end == 'i' || *end == 'B') && mul > 1)
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end != '\0' || n == 0 || n > UINT64_MAX / mul)
        return -1;
    *out = n * mul;
    return 0;
}

int cli_write_digestfile(const char *path, const char *digest)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot write digest file %s: %s\n", cli_prog, path, strerror(errno));
        return -1;
    }
    fputs(digest, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write digest file %s: %s\n", cli_prog, path, strerror(errno));
        return -1;
    }
    return 0;
}

unsigned cli_term_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

int cli_exit_code(int err)
{
    if (err == OCISYNC_EINTERRUPTED)
        return EXIT_INTERRUPTED;
    return err == OCISYNC_EUSAGE || err == OCISYNC_EREF || err == OCISYNC_EPLATFORM ||
                   err == OCISYNC_ETLSCONFIG
               ? EXIT_USAGE
               : EXIT_FAIL;
}

/* The pieces of one side's credentials (--src-username, ...), joined by cli_transfer_finish. */
static struct side_creds {
    const char *user, *password;
} pieces[2];

int cli_transfer_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts)
{
    switch (c) {
    case CLI_OPT_JOBS: {
        char *end;
        long n = strtol(arg, &end, 10);
        if (*end != '\0' || n < 1 || n > 256) {
            fprintf(stderr, "%s %s: --jobs takes a number from 1 to 256, not \"%s\"\n", cli_prog,
                    cmd, arg);
            return -1;
        }
        opts->jobs = (unsigned)n;
        return 1;
    }
    case CLI_OPT_CHUNK:
        if (cli_parse_size(arg, &opts->chunk_size) != 0) {
            fprintf(stderr, "%s %s: --chunk-size takes a size like 16M, not \"%s\"\n", cli_prog,
                    cmd, arg);
            return -1;
        }
        return 1;
    case CLI_OPT_PLAIN_HTTP:
        opts->src.plain_http = opts->dst.plain_http = OCISYNC_PLAIN_HTTP_ALWAYS;
        return 1;
    case CLI_OPT_SRC_PLAIN_HTTP:
        opts->src.plain_http = OCISYNC_PLAIN_HTTP_ALWAYS;
        return 1;
    case CLI_OPT_DEST_PLAIN_HTTP:
        opts->dst.plain_http = OCISYNC_PLAIN_HTTP_ALWAYS;
        return 1;
    case CLI_OPT_SRC_TLS_VERIFY:
        return tls_verify_opt(cmd, "--src-tls-verify", arg, &opts->src.tls_verify) ? -1 : 1;
    case CLI_OPT_DEST_TLS_VERIFY:
        return tls_verify_opt(cmd, "--dest-tls-verify", arg, &opts->dst.tls_verify) ? -1 : 1;
    case CLI_OPT_SRC_CERT_DIR:
        opts->src.cert_dir = arg;
        return 1;
    case CLI_OPT_DEST_CERT_DIR:
        opts->dst.cert_dir = arg;
        return 1;
    case CLI_OPT_SRC_CREDS:
        opts->src.creds = arg;
        return 1;
    case CLI_OPT_DEST_CREDS:
        opts->dst.creds = arg;
        return 1;
    case CLI_OPT_SRC_TOKEN:
        opts->src.registry_token = arg;
        return 1;
    case CLI_OPT_DEST_TOKEN:
        opts->dst.registry_token = arg;
        return 1;
    case CLI_OPT_AUTHFILE:
        opts->authfile = arg;
        return 1;
    case CLI_OPT_RETRY_TIMES: {
        char *end;
        long n = strtol(arg, &end, 10);
        if (*end != '\0' || n < 0 || n > 100) {
            fprintf(stderr, "%s %s: --retry-times takes a number from 0 to 100, not \"%s\"\n",
                    cli_prog, cmd, arg);
            return -1;
        }
        opts->retry_times = n == 0 ? -1 : (int)n;
        return 1;
    }
    case CLI_OPT_RETRY_DELAY:
    case CLI_OPT_TIMEOUT: {
        double v = 0;
        double max = c == CLI_OPT_TIMEOUT ? 86400 : 600;
        if (cli_parse_duration(arg, &v) != 0 || !(v > 0) || v > max) {
            fprintf(stderr,
                    "%s %s: %s takes seconds or a duration like 1s, 500ms or 1m30s (at most "
                    "%.0f s), not \"%s\"\n",
                    cli_prog, cmd, c == CLI_OPT_TIMEOUT ? "--timeout" : "--retry-delay", max, arg);
            return -1;
        }
        if (c == CLI_OPT_TIMEOUT)
            opts->idle_timeout = v < 1 ? 1 : (unsigned)(v + 0.5);
        else
            opts->retry_delay_ms = v * 1000 < 1 ? 1 : (unsigned)(v * 1000);
        return 1;
    }
    case CLI_OPT_LOW_SPEED_LIMIT: {
        uint64_t v = 0;
        if (strcmp(arg, "0") != 0 && (cli_parse_size(arg, &v) != 0 || v > INT64_MAX)) {
            fprintf(stderr,
                    "%s %s: --low-speed-limit takes bytes a second like 1K, or 0 for none, not "
                    "\"%s\"\n",
                    cli_prog, cmd, arg);
            return -1;
        }
        opts->low_speed_limit = v == 0 ? -1 : (int64_t)v;
        return 1;
    }
    case CLI_OPT_LOW_SPEED_TIME: {
        double n = 0;
        if (cli_parse_duration(arg, &n) != 0 || n < 1 || n > 86400) {
            fprintf(stderr,
                    "%s %s: --low-speed-time takes seconds or a duration like 30s (1 s to 24 h), "
                    "not \"%s\"\n",
                    cli_prog, cmd, arg);
            return -1;
        }
        opts->low_speed_time = (unsigned)(n + 0.5);
        return 1;
    }
    case CLI_OPT_DEBUG:
        opts->debug = 1;
        return 1;
    case CLI_OPT_REFERRERS:
        opts->referrers = 1;
        return 1;
    case CLI_OPT_SRC_USERNAME:
        pieces[0].user = arg;
        return 1;
    case CLI_OPT_DEST_USERNAME:
        pieces[1].user = arg;
        return 1;
    case CLI_OPT_SRC_PASSWORD:
        pieces[0].password = arg;
        return 1;
    case CLI_OPT_DEST_PASSWORD:
        pieces[1].password = arg;
        return 1;
    case CLI_OPT_SRC_AUTHFILE:
        opts->src.authfile = arg;
        return 1;
    case CLI_OPT_DEST_AUTHFILE:
        opts->dst.authfile = arg;
        return 1;
    case CLI_OPT_SRC_NO_CREDS:
        opts->src.no_creds = 1;
        return 1;
    case CLI_OPT_DEST_NO_CREDS:
        opts->dst.no_creds = 1;
        return 1;
    case CLI_OPT_PRESERVE_DIGESTS:
        opts->preserve_digests = 1;
        return 1;
    default:
        return 0;
    }
}

int cli_parse_duration(const char *s, double *seconds)
{
    static const struct {
        const char *unit;
        double secs;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3},
                 {"s", 1},     {"m", 60},    {"h", 3600}};
    double total = 0;
    bool plain = true;
    if (s == NULL || *s == '\0')
        return -1;
    /* Plain seconds as ocisync always took them, or Go's NUMBER UNIT... like 1h2m3.5s. */
    while (*s != '\0') {
        char num[64];
        size_t n = strspn(s, "0123456789."), k;
        double v;
        char *end;
        if (n == 0 || n >= sizeof(num) || strspn(s, ".") == n)
            return -1;
        memcpy(num, s, n);
        num[n] = '\0';
        errno = 0;
        v = strtod(num, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v))
            return -1;
        s += n;
        if (*s == '\0' && plain) {
            total = v;
            break;
        }
        plain = false;
        for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
            size_t ul = strlen(units[k].unit);
            /* "m" must not take the "m" of "ms". */
            if (strncmp(s, units[k].unit, ul) == 0 && !(ul == 1 && s[0] == 'm' && s[1] == 's'))
                break;
        }
        if (k == sizeof(units) / sizeof(units[0]))
            return -1;
        total += v * units[k].secs;
        s += strlen(units[k].unit);
    }
    if (!isfinite(total))
        return -1;
    *seconds = total;
    return 0;
}

int cli_bool_forms(const char *cmd, int argc, char **argv, const struct option *longopts)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq;
        const struct option *o = NULL;
        bool v;
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq != NULL) {
            for (o = longopts; o->name != NULL; o++)
                if (o->has_arg == no_argument && strlen(o->name) == (size_t)(eq - a - 2) &&
                    strncmp(o->name, a + 2, (size_t)(eq - a - 2)) == 0)
                    break;
        }
        if (o == NULL || o->name == NULL) {
            argv[out++] = argv[i];
            continue;
        }
        if (cli_parse_bool(eq + 1, &v) != 0) {
            fprintf(stderr, "%s %s: --%s takes true or false, not \"%s\"; see %s %s --help\n",
                    cli_prog, cmd, o->name, eq + 1, cli_prog, cmd);
            return -1;
        }
        if (v) {
            /* "--all=true" -> "--all", in place: the option is a prefix of the argument. */
            argv[i][eq - a] = '\0';
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    return out;
}

void cli_bad_option(const char *cmd, int argc, char **argv)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (optopt != 0 && strncmp(arg, "--", 2) != 0)
        fprintf(stderr, "%s %s: unknown option -%c, or its value is missing; see %s %s --help\n",
                cli_prog, cmd, optopt, cli_prog, cmd);
    else
        fprintf(stderr, "%s %s: unknown option %s, or its value is missing; see %s %s --help\n",
                cli_prog, cmd, arg, cli_prog, cmd);
}

/* ------------------------------------------------------------------------------------------ */
/* Credentials given in pieces */

/*
 * "USER:PASSWORD" of one side, in storage of the process's own (one per
 * side: a command runs once per process, so nothing is left to free).
 */
static char joined[2][8192];

static char *join_creds(int i, const char *user, const char *password)
{
    if (strlen(user) + strlen(password) + 2 > sizeof(joined[i]))
        return NULL;
    snprintf(joined[i], sizeof(joined[i]), "%s:%s", user, password);
    return joined[i];
}

/* Reads a line from the terminal without echo; false when stdin is no terminal. */
static bool ask_password(const char *what, char *buf, size_t len)
{
    struct termios old, quiet;
    bool ok;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &old) != 0)
        return false;
    fprintf(stderr, "Password for %s: ", what);
    fflush(stderr);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    ok = fgets(buf, (int)len, stdin) != NULL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    if (ok)
        buf[strcspn(buf, "\r\n")] = '\0';
    return ok;
}

static int finish_side(const char *cmd, int i, const char *side, struct side_creds *p,
                       struct ocisync_registry_opts *r)
{
    char password[4096];
    if ((p->user != NULL) != (p->password != NULL)) {
        fprintf(stderr, "%s %s: --%s-username and --%s-password go together\n", cli_prog, cmd, side,
                side);
        return -1;
    }
    if (p->user != NULL && r->creds != NULL) {
        fprintf(stderr, "%s %s: --%s-creds and --%s-username exclude each other\n", cli_prog, cmd,
                side, side);
        return -1;
    }
    if (r->no_creds && (p->user != NULL || r->creds != NULL || r->registry_token != NULL)) {
        fprintf(stderr, "%s %s: --%s-no-creds and credentials for the %s exclude each other\n",
                cli_prog, cmd, side, side);
        return -1;
    }
    if (p->user != NULL) {
        r->creds = join_creds(i, p->user, p->password);
        if (r->creds == NULL)
            fprintf(stderr, "%s %s: --%s-username and --%s-password are too long\n", cli_prog, cmd,
                    side, side);
        return r->creds != NULL ? 0 : -1;
    }
    if (r->creds == NULL || strchr(r->creds, ':') != NULL)
        return 0;
    if (r->creds[0] == '\0') {
        fprintf(stderr, "%s %s: --%s-creds is empty\n", cli_prog, cmd, side);
        return -1;
    }
    /* "USER" alone: skopeo asks for the password. */
    if (!ask_password(r->creds, password, sizeof(password))) {
        fprintf(stderr,
                "%s %s: --%s-creds %s has no password and standard input is not a terminal to "
                "ask for it: give USER:PASSWORD or --%s-password\n",
                cli_prog, cmd, side, r->creds, side);
        return -1;
    }
    r->creds = join_creds(i, r->creds, password);
    memset(password, 0, sizeof(password));
    if (r->creds == NULL)
        fprintf(stderr, "%s %s: the --%s-creds password is too long\n", cli_prog, cmd, side);
    return r->creds != NULL ? 0 : -1;
}

int cli_transfer_finish(const char *cmd, struct ocisync_copy_opts *opts)
{
    if (cli_global.debug)
        opts->debug = 1;
    int rc = 0;
    if (finish_side(cmd, 0, "src", &pieces[0], &opts->src) != 0 ||
        finish_side(cmd, 1, "dest", &pieces[1], &opts->dst) != 0)
        rc = -1;
    memset(pieces, 0, sizeof(pieces));
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Global options */

struct cli_global cli_global;

static void on_command_timeout(int sig)
{
    static const char msg[] = "ocisync: --command-timeout reached: stopped\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* Nothing more to say. */
    }
    _exit(EXIT_FAIL);
}

int cli_global_opts(int argc, char **argv)
{
    static const char *const ignored[] = {"--insecure-policy", "--policy", "--registries.d",
                                          "--registries-conf"};
    static const char *const why[] = {
        "ocisync checks no signature policy",
        "ocisync checks no signature policy",
        "ocisync reads no lookaside signature configuration",
        "ocisync reads no registries.conf (no mirrors, no short-name aliases)",
    };
    const char *said[4] = {NULL};
    double timeout = 0;
    int i;
    for (i = 1; i < argc && argv[i][0] == '-' && strcmp(argv[i], "-") != 0; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t nl = eq != NULL ? (size_t)(eq - a) : strlen(a);
        const char *val = NULL;
        bool known = false;
        static const char *const with_value[] = {
            "--policy",      "--registries.d",     "--registries-conf", "--override-arch",
            "--override-os", "--override-variant", "--tmpdir",          "--command-timeout",
        };
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--version") == 0 ||
            strcmp(a, "-v") == 0)
            break; /* main answers these as commands */
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            if (strlen(with_value[k]) != nl || strncmp(a, with_value[k], nl) != 0)
                continue;
            known = true;
            if (eq != NULL) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "%s: %.*s needs a value; see %s --help\n", cli_prog, (int)nl, a,
                        cli_prog);
                return -1;
            }
        }
        if (!known && (strncmp(a, "--debug", nl) == 0 && nl == 7)) {
            bool v;
            if (cli_parse_bool(eq != NULL ? eq + 1 : NULL, &v) != 0) {
                fprintf(stderr, "%s: --debug takes true or false, not \"%s\"\n", cli_prog, eq + 1);
                return -1;
            }
            cli_global.debug = v;
            continue;
        }
        if (!known && nl == 17 && strncmp(a, "--insecure-policy", nl) == 0) {
            bool v;
            if (cli_parse_bool(eq != NULL ? eq + 1 : NULL, &v) != 0) {
                fprintf(stderr, "%s: --insecure-policy takes true or false, not \"%s\"\n", cli_prog,
                        eq + 1);
                return -1;
            }
            said[0] = "true";
            continue;
        }
        if (!known) {
            fprintf(stderr, "%s: unknown global option %s; see %s --help\n", cli_prog, a, cli_prog);
            return -1;
        }
        if (strncmp(a, "--policy", nl) == 0)
            said[1] = val;
        else if (strncmp(a, "--registries.d", nl) == 0)
            said[2] = val;
        else if (strncmp(a, "--registries-conf", nl) == 0)
            said[3] = val;
        else if (strncmp(a, "--override-arch", nl) == 0)
            cli_global.override_arch = val;
        else if (strncmp(a, "--override-os", nl) == 0)
            cli_global.override_os = val;
        else if (strncmp(a, "--override-variant", nl) == 0)
            cli_global.override_variant = val;
        else if (strncmp(a, "--tmpdir", nl) == 0) {
            if (val[0] == '\0' || setenv("TMPDIR", val, 1) != 0) {
                fprintf(stderr, "%s: --tmpdir needs a directory\n", cli_prog);
                return -1;
            }
        } else if (strncmp(a, "--command-timeout", nl) == 0) {
            if (cli_parse_duration(val, &timeout) != 0) {
                fprintf(stderr,
                        "%s: --command-timeout takes a duration like 90s, 1m30s or 500ms, not "
                        "\"%s\"\n",
                        cli_prog, val);
                return -1;
            }
        }
    }
    if (cli_global.debug) {
        ocisync_set_debug(1);
        for (size_t k = 0; k < sizeof(said) / sizeof(said[0]); k++)
            if (said[k] != NULL)
                fprintf(stderr, "%s: debug: %s%s%s ignored: %s\n", cli_prog, ignored[k],
                        k == 0 ? "" : " ", k == 0 ? "" : said[k], why[k]);
    }
    {
        char host[128], os[64], arch[64], variant[64] = "";
        ocisync_host_platform(host, sizeof(host));
        if (sscanf(host, "%63[^/]/%63[^/]/%63s", os, arch, variant) < 2)
            snprintf(os, sizeof(os), "linux"), snprintf(arch, sizeof(arch), "amd64");
        if (cli_global.override_arch != NULL && cli_global.override_variant == NULL)
            variant[0] = '\0'; /* the host's variant belongs to the host's arch */
        snprintf(cli_global.platform, sizeof(cli_global.platform), "%s/%s%s%s",
                 cli_global.override_os ? cli_global.override_os : os,
                 cli_global.override_arch ? cli_global.override_arch : arch,
                 (cli_global.override_variant ? cli_global.override_variant : variant)[0] ? "/"
                                                                                          : "",
                 cli_global.override_variant ? cli_global.override_variant : variant);
        if (cli_global.debug &&
            (cli_global.override_arch || cli_global.override_os || cli_global.override_variant))
            fprintf(stderr, "%s: debug: the platform chosen from an index is %s\n", cli_prog,
                    cli_global.platform);
    }
    if (timeout > 0) {
        struct itimerval it;
        memset(&it, 0, sizeof(it));
        it.it_value.tv_sec = (time_t)timeout;
        it.it_value.tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6);
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
            it.it_value.tv_usec = 1;
        signal(SIGALRM, on_command_timeout);
        setitimer(ITIMER_REAL, &it, NULL);
    }
    return i;
}
