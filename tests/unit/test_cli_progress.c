/*
 * The progress display of copy and sync, driven with made-up events and times
 * into a memory stream: the exact lines of a log, and on a "terminal" the bars,
 * the throttled redraws, the cap on transfer lines, line truncation, cleanup at
 * the end and hostile strings. Terminal output is also replayed through a small
 * VT100 model to check what the screen shows, not only which bytes were sent.
 */
#define _GNU_SOURCE

#include "test.h"

#include "cli/progress.h"
#include "ocisync.h"

#include <stdbool.h>

#define MIB (1024u * 1024u)

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* A memory stream the display writes into. */
struct cap {
    FILE *f;
    char *buf;
    size_t len;
};

static void cap_open(struct cap *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    if (c->f == NULL) {
        fprintf(stderr, "open_memstream failed\n");
        exit(1);
    }
}

/* What has been written so far (NUL-terminated). */
static const char *cap_text(struct cap *c)
{
    fflush(c->f);
    return c->buf != NULL ? c->buf : "";
}

static void cap_close(struct cap *c)
{
    fclose(c->f);
    free(c->buf);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *s = strstr(hay, needle); s != NULL; s = strstr(s + nl, needle))
        n++;
    return n;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t sl = strlen(s), xl = strlen(suffix);
    return sl >= xl && strcmp(s + sl - xl, suffix) == 0;
}

/* A valid digest whose first 12 hex characters are "000000abc" followed by n in hex. */
static const char *digest(int n)
{
    static char bufs[8][80];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 80, "sha256:%012x%052x", 0xabc000 + n, n);
    return b;
}

/* The 12 characters a transfer line is labelled with. */
static const char *short_digest(int n)
{
    static char bufs[8][16];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 16, "%012x", 0xabc000 + n);
    return b;
}

static void ev_image_start(struct cli_progress *p, size_t image, const char *src, const char *dst,
                           uint64_t t)
{
    struct ocisync_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = OCISYNC_EV_IMAGE_START;
    ev.image = image;
    ev.src = src;
    ev.dst = dst;
    cli_progress_event(p, &ev, t);
}

static void ev_blob(struct cli_progress *p, ocisync_event_kind kind, size_t image, const char *d,
                    int64_t size, uint64_t bytes, uint64_t t)
{
    struct ocisync_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.image = image;
    ev.digest = d;
    ev.size = size;
    ev.bytes = bytes;
    ev.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    cli_progress_event(p, &ev, t);
}

static void ev_done(struct cli_progress *p, size_t image, const char *src, const char *dst, int err,
                    const char *message, const char *d, uint64_t copied, uint64_t mounted,
                    uint64_t skipped, uint64_t bytes, uint64_t t)
{
    struct ocisync_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = OCISYNC_EV_DONE;
    ev.image = image;
    ev.src = src;
    ev.dst = dst;
    ev.err = err;
    ev.message = message;
    ev.digest = d;
    ev.blobs_copied = copied;
    ev.blobs_mounted = mounted;
    ev.blobs_skipped = skipped;
    ev.bytes = bytes;
    cli_progress_event(p, &ev, t);
}

/*
 * A model of the terminal: replays output the way a VT100 with ONLCR shows it
 * (a newline also returns the carriage) and keeps the rows and the cursor.
 * Only the escapes the display is meant to use are understood; any other
 * marks the replay bad.
 */
#define SCREEN_ROWS 64
#define SCREEN_COLS 600

struct screen {
    char rows[SCREEN_ROWS][SCREEN_COLS + 1];
    size_t n_rows;
    size_t row, col;
    bool bad;
};

static void screen_erase_line(struct screen *s)
{
    if (s->col < strlen(s->rows[s->row]))
        s->rows[s->row][s->col] = '\0';
}

static void screen_replay(struct screen *s, const char *out)
{
    memset(s, 0, sizeof(*s));
    s->n_rows = 1;
    for (const char *c = out; *c != '\0'; c++) {
        if (c[0] == '\033' && c[1] == '[') {
            unsigned n = 0;
            c += 2;
            while (*c >= '0' && *c <= '9')
                n = n * 10 + (unsigned)(*c++ - '0');
            if (*c == 'A') {
                n = n == 0 ? 1 : n;
                s->row = s->row >= n ? s->row - n : 0;
            } else if (*c == 'K') {
                screen_erase_line(s);
            } else if (*c == 'J') {
                screen_erase_line(s);
                for (size_t r = s->row + 1; r < SCREEN_ROWS; r++)
                    s->rows[r][0] = '\0';
                s->n_rows = s->row + 1;
            } else {
                s->bad = true;
                return;
            }
        } else if (*c == '\r') {
            s->col = 0;
        } else if (*c == '\n') {
            s->col = 0;
            if (++s->row >= SCREEN_ROWS) {
                s->bad = true;
                return;
            }
            if (s->n_rows < s->row + 1)
                s->n_rows = s->row + 1;
        } else if ((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f) {
            size_t len = strlen(s->rows[s->row]);
            if (s->col >= SCREEN_COLS)
                continue;
            while (len < s->col)
                s->rows[s->row][len++] = ' ';
            s->rows[s->row][s->col] = *c;
            if (s->col == len)
                s->rows[s->row][len + 1] = '\0';
            s->col++;
        } else {
            s->bad = true; /* a raw control character reached the terminal */
            return;
        }
    }
}

/* The rows of the screen above the cursor's, joined with newlines. */
static const char *screen_text(const struct screen *s)
{
    static char buf[SCREEN_ROWS * (SCREEN_COLS + 1) + 1];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t r = 0; r < s->row; r++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\n", s->rows[r]);
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

TEST(human_units)
{
    static const struct {
        uint64_t n;
        const char *want;
    } cases[] = {
        {0, "0 B"},
        {1, "1 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {10 * 1024 + 512, "10.5 KiB"},
        {1048575, "1.0 MiB"}, /* 1023.999 KiB would round to "1024.0 KiB" */
        {1048576, "1.0 MiB"},
        {(uint64_t)3 * MIB + MIB / 10 * 2, "3.2 MiB"},
        {(uint64_t)5 * 1024 * MIB + 512 * MIB, "5.5 GiB"},
        {(uint64_t)2 << 40, "2.0 TiB"},
        {UINT64_MAX, "16.0 EiB"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_progress_human(cases[i].n, buf, sizeof(buf));
        CHECK_STR(buf, cases[i].want);
    }
    /* A short buffer is cut, never overrun. */
    cli_progress_human(1536, buf, 4);
    CHECK_STR(buf, "1.5");
}

/* Drives three images, one copied, one up to date, one failed, with blob traffic in between. */
static void run_three_images(struct cli_progress *p)
{
    ev_image_start(p, 0, "docker://src.example/a:1", "docker://dst.example/a:1", 0);
    ev_blob(p, OCISYNC_EV_BLOB_START, 0, digest(1), 1536, 0, 10);
    ev_blob(p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), 1536, 1000, 150);
    ev_image_start(p, 1, "src.example/b:2", "dst.example/b:2", 160);
    ev_blob(p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), 1536, 1536, 300);
    ev_blob(p, OCISYNC_EV_BLOB_COPIED, 0, digest(1), 1536, 0, 300);
    ev_blob(p, OCISYNC_EV_BLOB_MOUNTED, 0, digest(2), 4096, 0, 310);
    ev_done(p, 0, "docker://src.example/a:1", "docker://dst.example/a:1", 0, NULL, digest(9), 1, 1,
            3, 1536, 400);
    ev_done(p, 1, "src.example/b:2", "dst.example/b:2", 0, NULL, digest(8), 0, 0, 0, 0, 500);
    ev_image_start(p, 2, "src.example/c:3", "dst.example/c:3", 600);
    ev_blob(p, OCISYNC_EV_BLOB_START, 2, digest(3), 5 * MIB, 0, 700);
    ev_blob(p, OCISYNC_EV_BLOB_PROGRESS, 2, digest(3), 5 * MIB, MIB, 900);
    ev_done(p, 2, "src.example/c:3", "dst.example/c:3", OCISYNC_EREGISTRY,
            "dst.example: PUT blob: 500 Internal Server Error", NULL, 0, 0, 0, MIB, 1000);
}

TEST(not_a_tty_prints_only_image_lines)
{
    struct cli_progress p;
    struct cap c;
    char want[2048];

    cap_open(&c);
    cli_progress_init(&p, c.f, false, 80);
    run_three_images(&p);
    cli_progress_finish(&p, 2000);
    snprintf(want, sizeof(want),
             "Copying docker://src.example/a:1 -> docker://dst.example/a:1\n"
             "Copying src.example/b:2 -> dst.example/b:2\n"
             "Copied docker://dst.example/a:1: %s (1 blobs copied, 1 mounted, 3 skipped, 1.5 KiB)\n"
             "Up to date dst.example/b:2: %s\n"
             "Copying src.example/c:3 -> dst.example/c:3\n"
             "FAILED dst.example/c:3: dst.example: PUT blob: 500 Internal Server Error\n",
             digest(9), digest(8));
    CHECK_STR(cap_text(&c), want);
    CHECK(strchr(cap_text(&c), '\033') == NULL);
    CHECK(strchr(cap_text(&c), '\r') == NULL);
    cap_close(&c);
}

TEST(not_a_tty_cleans_hostile_strings)
{
    struct cli_progress p;
    struct cap c;

    cap_open(&c);
    cli_progress_init(&p, c.f, false, 80);
    ev_image_start(&p, 0, "src\033[2J",
                   "dst\x9b"
                   "31m\xc2\x9b",
                   0);
    ev_done(&p, 0, "src", "dst", OCISYNC_EDENIED, "denied\nFAILED forged: line\r\tx\x7f", NULL, 0,
            0, 0, 0, 10);
    /* No message: the error's own description stands in. */
    ev_done(&p, 1, NULL, NULL, OCISYNC_ETIMEOUT, NULL, NULL, 0, 0, 0, 0, 20);
    cli_progress_finish(&p, 30);
    CHECK_STR(cap_text(&c), "Copying src?[2J -> dst?31m??\n"
                            "FAILED dst: denied FAILED forged: line  x?\n"
                            "FAILED : operation timed out\n");
    cap_close(&c);
}

TEST(tty_draws_bars_and_rates)
{
    struct cli_progress p;
    struct screen s;
    struct cap c;
    char want[256];
    const char *out;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 120);
    ev_image_start(&p, 0, "docker://src.example/app:1", "docker://reg.example/app:1", 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), 2 * MIB, 0, 200);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), 2 * MIB, MIB, 1200);
    out = cap_text(&c);

    /* The start line, then the live area drawn under it and redrawn in place. */
    CHECK(strncmp(out, "Copying docker://src.example/app:1 -> docker://reg.example/app:1\n",
                  strlen("Copying docker://src.example/app:1 -> docker://reg.example/app:1\n")) ==
          0);
    CHECK(strstr(out, "\r\033[KImages: 0/1 done   0 B\n") != NULL);
    CHECK(strstr(out, "\033[1A") != NULL); /* up over the total line alone */
    CHECK(strstr(out, "\033[2A") != NULL); /* up over the transfer and the total */
    snprintf(want, sizeof(want), "\r\033[K%s [=========>          ]    1.0 MiB / 2.0 MiB  ",
             short_digest(1));
    CHECK(strstr(out, want) != NULL);
    CHECK(strstr(out, "1.0 MiB/s  reg.example/app:1\n") != NULL); /* the scheme is left out */
    /* 1 MiB in the 1.2 s since the first event. */
    CHECK(strstr(out, "Images: 0/1 done   1.0 MiB   853.3 KiB/s\n") != NULL);

    screen_replay(&s, out);
    CHECK(!s.bad);
    CHECK_INT(s.row, 3);
    CHECK_INT(s.col, 0);
    CHECK_STR(s.rows[0], "Copying docker://src.example/app:1 -> docker://reg.example/app:1");
    CHECK(strncmp(s.rows[1], short_digest(1), 12) == 0);
    CHECK(strncmp(s.rows[2], "Images: 0/1 done", 16) == 0);

    /* A copied blob leaves the area; its bytes stay in the total. */
    ev_blob(&p, OCISYNC_EV_BLOB_COPIED, 0, digest(1), 2 * MIB, 0, 2200);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_INT(s.row, 2); /* the area shrank to the total line, and nothing is left below it */
    CHECK_INT(s.n_rows, 3);
    CHECK_STR(s.rows[2], "");
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(2), 0, 0, 2400);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(2), 0, 1536, 2600);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_INT(s.row, 3);
    CHECK(strstr(s.rows[1], short_digest(2)) != NULL);
    CHECK(strstr(s.rows[1], "[                    ]    1.5 KiB / ?") != NULL); /* size unknown */
    CHECK(strncmp(s.rows[2], "Images: 0/1 done   2.0 MiB", 26) == 0);
    CHECK(strstr(screen_text(&s), short_digest(1)) == NULL);
    cli_progress_finish(&p, 3000);
    cap_close(&c);
}

TEST(tty_throttles_redraws)
{
    struct cli_progress p;
    struct cap c;
    size_t draws, len;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 100);
    ev_image_start(&p, 0, "s", "d", 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), 100 * MIB, 0, 20);
    draws = count(cap_text(&c), "Images: ");
    CHECK_INT(draws, 1); /* the start line's redraw; the blob came 20 ms after it */

    /* 100 events within 50 ms: the first redraws, the others wait. */
    for (int i = 0; i < 100; i++)
        ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), 100 * MIB, (uint64_t)i * 1000,
                1000 + (uint64_t)i / 2);
    CHECK_INT(count(cap_text(&c), "Images: "), draws + 1);
    len = strlen(cap_text(&c));

    /* Still within 100 ms of that redraw: nothing is written at all. */
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), 100 * MIB, 200000, 1099);
    CHECK_INT(strlen(cap_text(&c)), len);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), 100 * MIB, 300000, 1100);
    CHECK_INT(count(cap_text(&c), "Images: "), draws + 2);

    /* Image lines are not throttled: they print at once, with the area after them. */
    ev_image_start(&p, 1, "s2", "d2", 1110);
    CHECK(ends_with(strstr(cap_text(&c), "Copying s2 -> d2\n"), "Images: 0/2 done   293.0 KiB   "
                                                                "263.9 KiB/s\n"));
    ev_done(&p, 1, "s2", "d2", 0, NULL, digest(7), 0, 0, 0, 0, 1120);
    CHECK(strstr(cap_text(&c), "Up to date d2: ") != NULL);
    CHECK_INT(count(cap_text(&c), "Images: "), draws + 4);
    cli_progress_finish(&p, 1200);
    cap_close(&c);
}

TEST(tty_caps_transfer_lines)
{
    struct cli_progress p;
    struct screen s;
    struct cap c;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 100);
    ev_image_start(&p, 0, "s", "d", 0);
    for (int i = 1; i <= 12; i++)
        ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(i), MIB, 0, 1 + (uint64_t)i);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(12), MIB, 512, 500);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    /* The start line, the 8 oldest transfers, the rest summed up, the total. */
    CHECK_INT(s.row, 11);
    for (int i = 1; i <= 8; i++)
        CHECK(strncmp(s.rows[i], short_digest(i), 12) == 0);
    CHECK_STR(s.rows[9], "... and 4 more");
    CHECK(strncmp(s.rows[10], "Images: 0/1 done   512 B", 24) == 0);
    CHECK(strstr(cap_text(&c), short_digest(9)) == NULL);

    /* When older transfers end, the waiting ones move up into view. */
    ev_blob(&p, OCISYNC_EV_BLOB_SKIPPED, 0, digest(1), MIB, 0, 600);
    ev_blob(&p, OCISYNC_EV_BLOB_COPIED, 0, digest(2), MIB, 0, 601);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(3), MIB, 1, 700);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK(strncmp(s.rows[8], short_digest(10), 12) == 0);
    CHECK_STR(s.rows[9], "... and 2 more");

    /* Fewer lines than before: what is left of the old area is erased. */
    ev_done(&p, 0, "s", "d", 0, NULL, digest(20), 3, 0, 1, 3 * MIB, 800);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_INT(s.row, 3);
    CHECK_INT(s.n_rows, 4);
    CHECK(strncmp(s.rows[1], "Copied d: ", 10) == 0);
    CHECK(strncmp(s.rows[2], "Images: 1/1 done", 16) == 0);
    cli_progress_finish(&p, 900);
    cap_close(&c);
}

TEST(tty_finish_clears_the_live_area)
{
    struct cli_progress p;
    struct screen s;
    struct cap c;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 100);
    ev_image_start(&p, 0, "s", "d", 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 100);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(2), MIB, 0, 200);
    cli_progress_finish(&p, 300);
    CHECK(ends_with(cap_text(&c), "\n\033[3A\r\033[J"));
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_STR(screen_text(&s), "Copying s -> d\n");
    CHECK_INT(s.row, 1);
    CHECK_INT(s.col, 0);
    CHECK_INT(s.n_rows, 2);
    CHECK_STR(s.rows[1], "");
    CHECK(p.xfers == NULL && p.images == NULL && p.n_xfers == 0 && p.live_lines == 0);

    /* Finishing again writes nothing. */
    {
        size_t len = strlen(cap_text(&c));
        cli_progress_finish(&p, 400);
        CHECK_INT(strlen(cap_text(&c)), len);
    }
    cap_close(&c);

    /* Nothing happened: nothing to clear. */
    cap_open(&c);
    cli_progress_init(&p, c.f, true, 0);
    cli_progress_finish(&p, 0);
    CHECK_STR(cap_text(&c), "");
    cap_close(&c);
}

/* True if every line drawn in the live area is at most cols columns, and one is exactly cols. */
static bool live_lines_fit(const char *out, size_t cols)
{
    bool full = false;
    for (const char *l = strstr(out, "\r\033[K"); l != NULL; l = strstr(l, "\r\033[K")) {
        size_t n;
        l += 4;
        n = strcspn(l, "\n\033");
        if (n > cols)
            return false;
        full |= n == cols;
    }
    return full;
}

TEST(tty_truncates_lines_to_width)
{
    struct cli_progress p;
    struct screen s;
    struct cap c;
    char dst[300];

    memset(dst, 'x', sizeof(dst) - 1);
    dst[sizeof(dst) - 1] = '\0';
    memcpy(dst, "reg.example/", 12);

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 40);
    ev_image_start(&p, 0, "s", dst, 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 200);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), MIB, 1, 400);
    CHECK(live_lines_fit(cap_text(&c), 39));
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_INT(strlen(s.rows[1]), 39);
    CHECK(strncmp(s.rows[1], short_digest(1), 12) == 0);
    /* The start line scrolls away and may wrap: it is not cut. */
    CHECK_INT(strlen(s.rows[0]), strlen("Copying s -> ") + strlen(dst));
    cli_progress_finish(&p, 500);
    cap_close(&c);

    /* A name too long for the line loses its beginning, not its tag. */
    cap_open(&c);
    cli_progress_init(&p, c.f, true, 100);
    ev_image_start(&p, 0, "s", "docker://reg.example/some/deep/path/to/a/repository:v1.2.3", 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 200);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), MIB, 1, 400);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_INT(strlen(s.rows[1]), 99);
    CHECK(ends_with(s.rows[1], "  ...to/a/repository:v1.2.3"));
    cli_progress_finish(&p, 500);
    cap_close(&c);

    /* Width 0 means 80. */
    cap_open(&c);
    cli_progress_init(&p, c.f, true, 0);
    ev_image_start(&p, 0, "s", dst, 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 200);
    CHECK(live_lines_fit(cap_text(&c), 79));
    cli_progress_finish(&p, 500);
    cap_close(&c);

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 100000);
    memset(dst, 'y', sizeof(dst) - 1);
    ev_image_start(&p, 0, "s", dst, 0);
    for (int i = 0; i < 3; i++)
        ev_image_start(&p, 1 + (size_t)i, "s", dst, 1);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 200);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    /* The destination is kept to CLI_PROGRESS_NAME_MAX - 1 characters. */
    CHECK_INT(strlen(s.rows[4]), 72 + 2 + CLI_PROGRESS_NAME_MAX - 1);
    cli_progress_finish(&p, 500);
    cap_close(&c);

    /* A one-column terminal still gets a column per line. */
    cap_open(&c);
    cli_progress_init(&p, c.f, true, 1);
    ev_image_start(&p, 0, "s", "d", 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 200);
    CHECK(live_lines_fit(cap_text(&c), 1));
    cli_progress_finish(&p, 500);
    cap_close(&c);
}

TEST(tty_failed_image_drops_its_blobs)
{
    struct cli_progress p;
    struct screen s;
    struct cap c;
    const char *after;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 120);
    ev_image_start(&p, 0, "src/a", "dst/a", 0);
    ev_image_start(&p, 1, "src/b", "dst/b", 0);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(1), MIB, 0, 10);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 1, digest(2), MIB, 0, 20);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(3), MIB, 0, 30);
    /* The same blob in another image is another transfer. */
    ev_blob(&p, OCISYNC_EV_BLOB_START, 1, digest(3), MIB, 0, 40);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(1), MIB, 4096, 200);
    CHECK_INT(p.n_xfers, 4);
    screen_replay(&s, cap_text(&c));
    CHECK(strstr(screen_text(&s), short_digest(1)) != NULL);
    CHECK(strstr(screen_text(&s), "dst/a") != NULL);

    ev_done(&p, 0, "src/a", "dst/a", OCISYNC_EUNAUTHORIZED, "dst/a: authentication required", NULL,
            0, 0, 0, 0, 250);
    CHECK_INT(p.n_xfers, 2);
    CHECK_INT(p.n_images, 1);
    after = strstr(cap_text(&c), "FAILED dst/a: dst/a: authentication required\n");
    CHECK(after != NULL);
    if (after != NULL) {
        CHECK(strstr(after, short_digest(1)) == NULL);
        CHECK(strstr(after, short_digest(2)) != NULL);
        CHECK(count(after, short_digest(3)) == 1); /* image 1's copy of the blob only */
        CHECK(strstr(after, "  dst/a") == NULL);
        CHECK(strstr(after, "Images: 1/2 done, 1 failed   4.0 KiB") != NULL);
    }
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    CHECK_INT(s.row, 6);
    CHECK_STR(s.rows[2], "FAILED dst/a: dst/a: authentication required");
    CHECK(strstr(s.rows[3], "dst/b") != NULL && strstr(s.rows[4], "dst/b") != NULL);
    cli_progress_finish(&p, 300);
    cap_close(&c);
}

TEST(unknown_and_odd_events)
{
    struct cli_progress p;
    struct screen s;
    struct cap c;
    struct ocisync_event ev;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 80);
    /* Progress for a blob never started: it is followed from there. */
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 3, digest(1), MIB, 100, 0);
    CHECK_INT(p.n_xfers, 1);
    /* Ends of blobs never started, a blob without a digest, a digest without an algorithm. */
    ev_blob(&p, OCISYNC_EV_BLOB_COPIED, 3, digest(2), 2048, 0, 200);
    ev_blob(&p, OCISYNC_EV_BLOB_MOUNTED, 3, digest(3), MIB, 0, 210);
    ev_blob(&p, OCISYNC_EV_BLOB_SKIPPED, 4, digest(1), MIB, 0, 220); /* other image: no match */
    ev_blob(&p, OCISYNC_EV_BLOB_START, 3, NULL, MIB, 0, 230);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 3, NULL, MIB, 5, 240);
    ev_blob(&p, OCISYNC_EV_BLOB_COPIED, 3, NULL, MIB, 0, 250);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 3, "weird\033digest", -5, 0, 260);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 3, "", 10, 20, 270);
    CHECK_INT(p.n_xfers, 3);
    /* Bytes going back (a restarted transfer) and a clock going back. */
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 3, digest(1), MIB, 50, 500);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 3, digest(1), MIB, 60, 400);
    ev_blob(&p, OCISYNC_EV_BLOB_START, 3, digest(1), MIB, 0, 600);
    CHECK_INT(p.n_xfers, 3);
    CHECK(!p.xfers[0].has_rate && p.xfers[0].bytes == 0);
    /* Events the display does not draw, and a kind it has never heard of. */
    memset(&ev, 0, sizeof(ev));
    ev.kind = OCISYNC_EV_MANIFEST_PUSHED;
    cli_progress_event(&p, &ev, 700);
    ev.kind = OCISYNC_EV_INDEX_FILTERED;
    cli_progress_event(&p, &ev, 800);
    ev.kind = (ocisync_event_kind)999;
    cli_progress_event(&p, &ev, 900);
    cli_progress_event(&p, NULL, 1000);
    /* An image that ends without having started, with no strings at all, and its blobs go. */
    ev_image_start(&p, 9, NULL, NULL, 1100);
    ev_image_start(&p, 9, NULL, NULL, 1100); /* announced twice: one image */
    ev_done(&p, 3, NULL, NULL, 0, NULL, NULL, 1, 0, 0, 5, 1200);
    ev_done(&p, 9, NULL, NULL, 0, NULL, NULL, 0, 0, 0, 0, 1300);
    CHECK_INT(p.n_xfers, 0);
    CHECK_INT(p.images_seen, 2);
    CHECK_INT(p.images_done, 2);
    CHECK(strstr(cap_text(&c), "Copied :  (1 blobs copied, 0 mounted, 0 skipped, 5 B)\n") != NULL);
    CHECK(strstr(cap_text(&c), "Up to date : \n") != NULL);
    CHECK(strstr(cap_text(&c), "weird?digest [") != NULL);
    screen_replay(&s, cap_text(&c));
    CHECK(!s.bad);
    cli_progress_finish(&p, 1400);
    cap_close(&c);
}

TEST(tracking_is_capped)
{
    struct cli_progress p;
    struct cap c;

    cap_open(&c);
    cli_progress_init(&p, c.f, true, 80);
    ev_image_start(&p, 0, "s", "d", 0);
    for (int i = 0; i < CLI_PROGRESS_MAX_XFERS + 100; i++)
        ev_blob(&p, OCISYNC_EV_BLOB_START, 0, digest(i), MIB, 0, 1);
    CHECK_INT(p.n_xfers, CLI_PROGRESS_MAX_XFERS);
    ev_blob(&p, OCISYNC_EV_BLOB_PROGRESS, 0, digest(5), MIB, 7, 1000);
    CHECK(strstr(cap_text(&c), "... and 4088 more") != NULL);
    /* The image's end lets go of them all. */
    ev_done(&p, 0, "s", "d", 0, NULL, digest(1), 1, 0, 0, 1, 1100);
    CHECK_INT(p.n_xfers, 0);
    cli_progress_finish(&p, 1200);
    cap_close(&c);
}

TEST_MAIN(T(human_units), T(not_a_tty_prints_only_image_lines), T(not_a_tty_cleans_hostile_strings),
          T(tty_draws_bars_and_rates), T(tty_throttles_redraws), T(tty_caps_transfer_lines),
          T(tty_finish_clears_the_live_area), T(tty_truncates_lines_to_width),
          T(tty_failed_image_drops_its_blobs), T(unknown_and_odd_events), T(tracking_is_capped))
