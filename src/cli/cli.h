/*
 * What the subcommands share: the program name, exit codes, and the options
 * every transfer command takes (registries, credentials, retries, jobs).
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include "ocisync.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130 /* as a shell reports a command ended by SIGINT */
#define CLI_MAX_PLATFORMS 16

extern const char *cli_prog;

/* Option values of the shared transfer options; a command's own start at CLI_OPT_OWN. */
enum {
    CLI_OPT_PLAIN_HTTP = 256,
    CLI_OPT_SRC_PLAIN_HTTP,
    CLI_OPT_DEST_PLAIN_HTTP,
    CLI_OPT_DEBUG,
    CLI_OPT_CHUNK,
    CLI_OPT_SRC_TLS_VERIFY,
    CLI_OPT_DEST_TLS_VERIFY,
    CLI_OPT_SRC_CERT_DIR,
    CLI_OPT_DEST_CERT_DIR,
    CLI_OPT_SRC_CREDS,
    CLI_OPT_DEST_CREDS,
    CLI_OPT_SRC_TOKEN,
    CLI_OPT_DEST_TOKEN,
    CLI_OPT_AUTHFILE,
    CLI_OPT_RETRY_TIMES,
    CLI_OPT_RETRY_DELAY,
    CLI_OPT_TIMEOUT,
    CLI_OPT_LOW_SPEED_LIMIT,
    CLI_OPT_LOW_SPEED_TIME,
    CLI_OPT_REFERRERS,
    CLI_OPT_JOBS = 'j',
    CLI_OPT_OWN = 512,
};

/* The getopt_long entries of the shared options, to put in a command's table. */
/* clang-format off */
#define CLI_TRANSFER_LONGOPTS                                                                      \
    {"jobs", required_argument, NULL, CLI_OPT_JOBS},                                               \
        {"chunk-size", required_argument, NULL, CLI_OPT_CHUNK},                                    \
        {"plain-http", no_argument, NULL, CLI_OPT_PLAIN_HTTP},                                     \
        {"src-plain-http", no_argument, NULL, CLI_OPT_SRC_PLAIN_HTTP},                             \
        {"dest-plain-http", no_argument, NULL, CLI_OPT_DEST_PLAIN_HTTP},                           \
        {"src-tls-verify", optional_argument, NULL, CLI_OPT_SRC_TLS_VERIFY},                       \
        {"dest-tls-verify", optional_argument, NULL, CLI_OPT_DEST_TLS_VERIFY},                     \
        {"src-cert-dir", required_argument, NULL, CLI_OPT_SRC_CERT_DIR},                           \
        {"dest-cert-dir", required_argument, NULL, CLI_OPT_DEST_CERT_DIR},                         \
        {"src-creds", required_argument, NULL, CLI_OPT_SRC_CREDS},                                 \
        {"dest-creds", required_argument, NULL, CLI_OPT_DEST_CREDS},                               \
        {"src-registry-token", required_argument, NULL, CLI_OPT_SRC_TOKEN},                        \
        {"dest-registry-token", required_argument, NULL, CLI_OPT_DEST_TOKEN},                      \
        {"authfile", required_argument, NULL, CLI_OPT_AUTHFILE},                                   \
        {"retry-times", required_argument, NULL, CLI_OPT_RETRY_TIMES},                             \
        {"retry-delay", required_argument, NULL, CLI_OPT_RETRY_DELAY},                             \
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                     \
        {"low-speed-limit", required_argument, NULL, CLI_OPT_LOW_SPEED_LIMIT},                     \
        {"low-speed-time", required_argument, NULL, CLI_OPT_LOW_SPEED_TIME},                       \
        {"referrers", no_argument, NULL, CLI_OPT_REFERRERS},                                       \
        {"debug", no_argument, NULL, CLI_OPT_DEBUG}
/* clang-format on */

/* The help text of the shared options. */
extern const char cli_transfer_help[];

/*
 * Applies shared option c (with its argument) to opts. Returns 1 if c was
 * one, 0 if it is not, -1 after printing why the value is wrong.
 */
int cli_transfer_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts);

/* Parses true/false (and 1/0, yes/no); an absent value (--flag alone) is true. */
int cli_parse_bool(const char *s, bool *out);
/* A byte of a string from outside as printed: controls and non-ASCII made harmless. */
char cli_clean_char(unsigned char c);
/* Writes s to out with control and non-ASCII bytes made harmless (NULL prints nothing). */
void cli_put_clean(FILE *out, const char *s);
/*
 * "PROG CMD: MSG" on stderr, MSG being msg or, when msg is empty,
 * ocisync_strerror(err), made harmless as cli_put_clean does: what
 * failed may quote a registry.
 */
void cli_print_error(const char *cmd, const char *msg, int err);
/* Parses "123", "16M", "1G" into bytes. */
int cli_parse_size(const char *s, uint64_t *out);
/* Writes digest to path (--digestfile); -1 after saying why it could not. */
int cli_write_digestfile(const char *path, const char *digest);
/* The terminal's width in columns (0 when unknown or not a terminal). */
unsigned cli_term_width(void);
/* The exit code for a failed operation's error. */
int cli_exit_code(int err);

/* `ocisync sync`. */
int cli_sync(int argc, char **argv);
/*
 * The read commands (inspect, ls / list-tags, catalog, digest, manifest,
 * config, blob), argv[0] naming one; *handled false when it names none.
 */
int cli_read(int argc, char **argv, bool *handled);
/* `ocisync build-push` (push) and `ocisync build`. */
int cli_build(int argc, char **argv, bool push);

#endif
