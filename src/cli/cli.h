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
    CLI_OPT_SRC_USERNAME,
    CLI_OPT_DEST_USERNAME,
    CLI_OPT_SRC_PASSWORD,
    CLI_OPT_DEST_PASSWORD,
    CLI_OPT_SRC_AUTHFILE,
    CLI_OPT_DEST_AUTHFILE,
    CLI_OPT_SRC_NO_CREDS,
    CLI_OPT_DEST_NO_CREDS,
    CLI_OPT_PRESERVE_DIGESTS,
    CLI_OPT_COMPRESS_FORMAT,
    CLI_OPT_COMPRESS_LEVEL,
    CLI_OPT_FORMAT = 'f',
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
        {"src-username", required_argument, NULL, CLI_OPT_SRC_USERNAME},                           \
        {"dest-username", required_argument, NULL, CLI_OPT_DEST_USERNAME},                         \
        {"src-password", required_argument, NULL, CLI_OPT_SRC_PASSWORD},                           \
        {"dest-password", required_argument, NULL, CLI_OPT_DEST_PASSWORD},                         \
        {"src-authfile", required_argument, NULL, CLI_OPT_SRC_AUTHFILE},                           \
        {"dest-authfile", required_argument, NULL, CLI_OPT_DEST_AUTHFILE},                         \
        {"src-no-creds", no_argument, NULL, CLI_OPT_SRC_NO_CREDS},                                 \
        {"dest-no-creds", no_argument, NULL, CLI_OPT_DEST_NO_CREDS},                               \
        {"preserve-digests", no_argument, NULL, CLI_OPT_PRESERVE_DIGESTS},                         \
        {"debug", no_argument, NULL, CLI_OPT_DEBUG}
/* clang-format on */

/* copy's and sync's options that change what is written: the format and the compression. */
/* clang-format off */
#define CLI_CONVERT_LONGOPTS                                                                       \
    {"format", required_argument, NULL, CLI_OPT_FORMAT},                                           \
        {"dest-compress-format", required_argument, NULL, CLI_OPT_COMPRESS_FORMAT},                \
        {"dest-compress-level", required_argument, NULL, CLI_OPT_COMPRESS_LEVEL}
/* clang-format on */
extern const char cli_convert_help[];
/* As cli_transfer_opt, for CLI_CONVERT_LONGOPTS. */
int cli_convert_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts);

/* The help text of the shared options. */
extern const char cli_transfer_help[];

/*
 * Applies shared option c (with its argument) to opts. Returns 1 if c was
 * one, 0 if it is not, -1 after printing why the value is wrong.
 */
int cli_transfer_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts);

/*
 * Completes the credentials the transfer options gave once every option is
 * read: --src-username with --src-password becomes the side's creds, and a
 * creds without ":PASSWORD" asks for the password on the terminal (no
 * echo), as skopeo does. -1 after printing why not.
 */
int cli_transfer_finish(const char *cmd, struct ocisync_copy_opts *opts);

/*
 * The options given before the command, as skopeo's: --debug,
 * --insecure-policy, --policy, --registries.d, --override-arch/-os/-variant,
 * --tmpdir, --command-timeout.
 */
struct cli_global {
    bool debug;
    const char *override_os, *override_arch, *override_variant;
    char platform[128]; /* the --override-* platform over the host's, "os/arch[/variant]" */
};
extern struct cli_global cli_global;

/*
 * Reads the global options at argv[1..] up to the command; returns the
 * index of the command in argv, or -1 after printing why the options are
 * wrong. Sets $TMPDIR for --tmpdir and arms --command-timeout.
 */
int cli_global_opts(int argc, char **argv);

/*
 * Rewrites pflag's boolean forms in argv for getopt_long: "--FLAG=true"
 * (or 1, yes) becomes "--FLAG" and "--FLAG=false" is dropped, for every
 * no_argument option of longopts. Returns the new argc; -1 after printing
 * why a value is not a boolean.
 */
int cli_bool_forms(const char *cmd, int argc, char **argv, const struct option *longopts);

/*
 * Parses a duration: plain seconds ("1.5") or Go's form ("1m30s", "500ms",
 * "2h", "1.5s", units ns us ms s m h). -1 when it is neither or negative.
 */
int cli_parse_duration(const char *s, double *seconds);

/* The one line for an unknown or malformed option, naming `PROG CMD --help`. */
void cli_bad_option(const char *cmd, int argc, char **argv);

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
