/*
 * The registry toolbox's write commands (tag, delete, index) and the
 * options of a command that talks to one registry.
 */
#ifndef CLI_TOOLBOX_H
#define CLI_TOOLBOX_H

#include "cli/cli.h"

/* Option values of the one-registry options (below CLI_OPT_OWN, above the transfer ones). */
enum {
    CLI_OPT_CREDS = 480,
    CLI_OPT_TOKEN,
    CLI_OPT_TLS_VERIFY,
    CLI_OPT_CERT_DIR,
    CLI_OPT_JSON,
};

/* clang-format off */
/* The one-registry options: credentials, TLS, retries, timeouts, --json. */
#define CLI_REGISTRY_LONGOPTS                                                                      \
    {"creds", required_argument, NULL, CLI_OPT_CREDS},                                             \
        {"registry-token", required_argument, NULL, CLI_OPT_TOKEN},                                \
        {"tls-verify", optional_argument, NULL, CLI_OPT_TLS_VERIFY},                               \
        {"cert-dir", required_argument, NULL, CLI_OPT_CERT_DIR},                                   \
        {"plain-http", no_argument, NULL, CLI_OPT_PLAIN_HTTP},                                     \
        {"authfile", required_argument, NULL, CLI_OPT_AUTHFILE},                                   \
        {"retry-times", required_argument, NULL, CLI_OPT_RETRY_TIMES},                             \
        {"retry-delay", required_argument, NULL, CLI_OPT_RETRY_DELAY},                             \
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                     \
        {"json", no_argument, NULL, CLI_OPT_JSON},                                                 \
        {"debug", no_argument, NULL, CLI_OPT_DEBUG}
/* clang-format on */

/* The help text of the one-registry options. */
extern const char cli_registry_help[];

/*
 * Applies one-registry option c to opts (both sides: a command that reads
 * and writes one registry uses dst, index uses src for its sources too).
 * Returns 1 if c was one, 0 if not, -1 after printing why the value is
 * wrong. --json is the caller's.
 */
int cli_registry_opt(const char *cmd, int c, const char *arg, struct ocisync_copy_opts *opts);

/* `ocisync tag`, `ocisync delete`, `ocisync index create|append`. */
int cli_tag(int argc, char **argv);
int cli_delete(int argc, char **argv);
int cli_index(int argc, char **argv);

#endif
