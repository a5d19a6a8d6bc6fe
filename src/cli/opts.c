/* The options every transfer command shares. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
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
    "      --src-creds USER:PASS, --dest-creds USER:PASS\n"
    "      --src-registry-token TOKEN, --dest-registry-token TOKEN\n"
    "                            credentials (see README: Credentials for the order)\n"
    "      --authfile FILE       auth file to read credentials from\n"
    "      --retry-times N       retries of a failed request or blob transfer (default 5)\n"
    "      --retry-delay SECONDS first backoff, doubling with jitter (default 0.5)\n"
    "      --timeout SECONDS     a request making no progress this long fails (default\n"
    "                            120); one that is not a blob body also fails when not\n"
    "                            over within twice as long\n"
    "      --low-speed-limit BYTES, --low-speed-time SECONDS\n"
    "                            a blob body slower than BYTES a second over SECONDS\n"
    "                            fails (default 1K over --timeout; 0 turns it off)\n"
    "      --referrers           also copy the images' referrers (signatures, SBOMs,\n"
    "                            attestations), and theirs\n"
    "      --debug               trace requests and state changes on stderr\n";

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
        char *end;
        double v = strtod(arg, &end);
        double max = c == CLI_OPT_TIMEOUT ? 86400 : 600;
        if (*end != '\0' || !(v > 0) || v > max) {
            fprintf(stderr, "%s %s: %s takes seconds (0 < s <= %.0f), not \"%s\"\n", cli_prog, cmd,
                    c == CLI_OPT_TIMEOUT ? "--timeout" : "--retry-delay", max, arg);
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
        char *end;
        long n = strtol(arg, &end, 10);
        if (*end != '\0' || end == arg || n < 1 || n > 86400) {
            fprintf(stderr, "%s %s: --low-speed-time takes seconds (1 to 86400), not \"%s\"\n",
                    cli_prog, cmd, arg);
            return -1;
        }
        opts->low_speed_time = (unsigned)n;
        return 1;
    }
    case CLI_OPT_DEBUG:
        opts->debug = 1;
        return 1;
    case CLI_OPT_REFERRERS:
        opts->referrers = 1;
        return 1;
    default:
        return 0;
    }
}
