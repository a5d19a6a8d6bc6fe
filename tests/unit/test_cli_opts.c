/*
 * Tests for the option forms skopeo scripts use: Go durations and plain
 * seconds, pflag's --FLAG=true/false for flags without a value, booleans,
 * and the shared transfer options that take them.
 */
#define _GNU_SOURCE

#include "test.h"

#include "cli/cli.h"
#include "ocisync.h"

#include <string.h>

static bool dur(const char *s, double want)
{
    double got = -1;
    if (cli_parse_duration(s, &got) != 0)
        return false;
    return got > want - 1e-9 && got < want + 1e-9;
}

static bool dur_bad(const char *s)
{
    double got = 0;
    return cli_parse_duration(s, &got) != 0;
}

TEST(duration_plain_seconds)
{
    CHECK(dur("1", 1));
    CHECK(dur("0.5", 0.5));
    CHECK(dur("120", 120));
    CHECK(dur("0", 0));
}

TEST(duration_go_forms)
{
    CHECK(dur("1s", 1));
    CHECK(dur("500ms", 0.5));
    CHECK(dur("1m30s", 90));
    CHECK(dur("1m", 60));
    CHECK(dur("2h", 7200));
    CHECK(dur("1h2m3s", 3723));
    CHECK(dur("1.5s", 1.5));
    CHECK(dur("1.5m", 90));
    CHECK(dur("250us", 0.00025));
    CHECK(dur("250\xc2\xb5s", 0.00025));
    CHECK(dur("100ns", 1e-7));
    CHECK(dur("1m500ms", 60.5));
}

TEST(duration_rejects)
{
    CHECK(dur_bad(""));
    CHECK(dur_bad("s"));
    CHECK(dur_bad("-1s"));
    CHECK(dur_bad("-1"));
    CHECK(dur_bad("+1"));
    CHECK(dur_bad("1x"));
    CHECK(dur_bad("1 s"));
    CHECK(dur_bad(" 1s"));
    CHECK(dur_bad("1s "));
    CHECK(dur_bad("ms"));
    CHECK(dur_bad("1d"));
    CHECK(dur_bad("1sm"));
    CHECK(dur_bad("nan"));
    CHECK(dur_bad("inf"));
    CHECK(dur_bad("1e400"));
    CHECK(dur_bad(NULL));
}

TEST(bool_values)
{
    bool v = false;
    CHECK_INT(cli_parse_bool(NULL, &v), 0);
    CHECK(v);
    CHECK_INT(cli_parse_bool("false", &v), 0);
    CHECK(!v);
    CHECK_INT(cli_parse_bool("TRUE", &v), 0);
    CHECK(v);
    CHECK_INT(cli_parse_bool("0", &v), 0);
    CHECK(!v);
    CHECK_INT(cli_parse_bool("1", &v), 0);
    CHECK(v);
    CHECK(cli_parse_bool("", &v) != 0);
    CHECK(cli_parse_bool("maybe", &v) != 0);
    CHECK(cli_parse_bool("truee", &v) != 0);
}

static const struct option longopts[] = {
    {"all", no_argument, NULL, 'a'},
    {"quiet", no_argument, NULL, 'q'},
    {"platform", required_argument, NULL, 'p'},
    {"src-tls-verify", optional_argument, NULL, 300},
    {NULL, 0, NULL, 0},
};

TEST(bool_forms_rewritten)
{
    char a0[] = "copy", a1[] = "--all=true", a2[] = "--quiet=false", a3[] = "--platform=x=y",
         a4[] = "--src-tls-verify=false", a5[] = "src", a6[] = "--", a7[] = "--all=false";
    char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, NULL};
    int argc = cli_bool_forms("copy", 8, argv, longopts);
    CHECK_INT(argc, 7);
    CHECK_STR(argv[0], "copy");
    CHECK_STR(argv[1], "--all");
    /* --quiet=false is gone: the flag's default. */
    CHECK_STR(argv[2], "--platform=x=y");
    /* A flag with an optional value parses its own. */
    CHECK_STR(argv[3], "--src-tls-verify=false");
    CHECK_STR(argv[4], "src");
    /* After "--" nothing is an option. */
    CHECK_STR(argv[5], "--");
    CHECK_STR(argv[6], "--all=false");
    CHECK(argv[7] == NULL);
}

TEST(bool_forms_reject_non_booleans)
{
    char a0[] = "copy", a1[] = "--quiet=maybe";
    char *argv[] = {a0, a1, NULL};
    CHECK_INT(cli_bool_forms("copy", 2, argv, longopts), -1);
}

TEST(bool_forms_leave_prefixes_alone)
{
    /* "--al=true" is not "--all": only whole names are rewritten, getopt says the rest. */
    char a0[] = "copy", a1[] = "--al=true", a2[] = "--allx=true";
    char *argv[] = {a0, a1, a2, NULL};
    CHECK_INT(cli_bool_forms("copy", 3, argv, longopts), 3);
    CHECK_STR(argv[1], "--al=true");
    CHECK_STR(argv[2], "--allx=true");
}

TEST(transfer_durations)
{
    struct ocisync_copy_opts o;
    memset(&o, 0, sizeof(o));
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_RETRY_DELAY, "1s", &o), 1);
    CHECK_INT(o.retry_delay_ms, 1000);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_RETRY_DELAY, "250ms", &o), 1);
    CHECK_INT(o.retry_delay_ms, 250);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_RETRY_DELAY, "0.5", &o), 1);
    CHECK_INT(o.retry_delay_ms, 500);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_TIMEOUT, "1m30s", &o), 1);
    CHECK_INT(o.idle_timeout, 90);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_LOW_SPEED_TIME, "2m", &o), 1);
    CHECK_INT(o.low_speed_time, 120);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_RETRY_DELAY, "0s", &o), -1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_RETRY_DELAY, "11m", &o), -1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_TIMEOUT, "1x", &o), -1);
}

TEST(transfer_credential_pieces)
{
    struct ocisync_copy_opts o;
    memset(&o, 0, sizeof(o));
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_SRC_USERNAME, "alice", &o), 1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_SRC_PASSWORD, "pw:with:colons", &o), 1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_AUTHFILE, "/a.json", &o), 1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_NO_CREDS, NULL, &o), 1);
    CHECK_INT(cli_transfer_finish("copy", &o), 0);
    CHECK_STR(o.src.creds, "alice:pw:with:colons");
    CHECK_STR(o.dst.authfile, "/a.json");
    CHECK_INT(o.dst.no_creds, 1);
    CHECK(o.dst.creds == NULL);
}

TEST(transfer_credential_conflicts)
{
    struct ocisync_copy_opts o;
    /* A username without its password. */
    memset(&o, 0, sizeof(o));
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_USERNAME, "bob", &o), 1);
    CHECK_INT(cli_transfer_finish("copy", &o), -1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_PASSWORD, "pw", &o), 1);
    /* --dest-creds and --dest-username together. */
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_CREDS, "bob:pw", &o), 1);
    CHECK_INT(cli_transfer_finish("copy", &o), -1);
    /* --src-no-creds with --src-creds. */
    memset(&o, 0, sizeof(o));
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_USERNAME, "bob", &o), 1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_SRC_CREDS, "a:b", &o), 1);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_SRC_NO_CREDS, NULL, &o), 1);
    CHECK_INT(cli_transfer_finish("copy", &o), -1);
}

TEST(creds_without_password_needs_a_terminal)
{
    struct ocisync_copy_opts o;
    FILE *saved = NULL;
    memset(&o, 0, sizeof(o));
    /* The test runs with stdin from ctest (not a terminal, or made one that is not). */
    saved = freopen("/dev/null", "r", stdin);
    CHECK(saved != NULL);
    CHECK_INT(cli_transfer_opt("copy", CLI_OPT_DEST_CREDS, "bob", &o), 1);
    CHECK_INT(cli_transfer_finish("copy", &o), -1);
}

TEST_MAIN(T(duration_plain_seconds), T(duration_go_forms), T(duration_rejects), T(bool_values),
          T(bool_forms_rewritten), T(bool_forms_reject_non_booleans),
          T(bool_forms_leave_prefixes_alone), T(transfer_durations), T(transfer_credential_pieces),
          T(transfer_credential_conflicts), T(creds_without_password_needs_a_terminal))
