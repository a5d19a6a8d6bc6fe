/*
 * The progress display of `ocisync copy` and `ocisync sync`, fed with the
 * library's events.
 *
 * On a terminal it keeps a live area at the bottom of the output: one line
 * per blob transfer in flight (short digest, bar, bytes done / total, rate,
 * destination), at most CLI_PROGRESS_MAX_LINES of them and then "... and N
 * more", and a total line (images done / seen, bytes, overall rate). The area
 * is redrawn in place with ANSI escapes at most every CLI_PROGRESS_THROTTLE_MS.
 * Lines saying that an image started or ended scroll above it as soon as they
 * happen.
 *
 * Elsewhere (a pipe, a CI log) only the image start and end lines are written,
 * without escapes.
 *
 * Every string that comes from the events (references, registry error
 * messages) is written as printable ASCII: control characters and other bytes
 * become '?' (tabs and line breaks a space), so a hostile registry message can
 * neither move the cursor nor forge a log line.
 */
#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H

#include "ocisync.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The most transfer lines in the live area; more transfers are summed up as "... and N more". */
#define CLI_PROGRESS_MAX_LINES 8
/* The shortest interval between two redraws of the live area, in ms. */
#define CLI_PROGRESS_THROTTLE_MS 100
/* Live lines are cut at this many bytes whatever the terminal's width. */
#define CLI_PROGRESS_LINE_MAX 512
/* The longest digest and destination name kept per transfer and image (longer ones are cut). */
#define CLI_PROGRESS_DIGEST_MAX 144
#define CLI_PROGRESS_NAME_MAX 200
/*
 * The most transfers and images followed at once. The library runs a few
 * dozen at most; past these caps new ones are left out of the live area
 * (their start and end lines are still printed).
 */
#define CLI_PROGRESS_MAX_XFERS 4096
#define CLI_PROGRESS_MAX_IMAGES 100000

/* One blob transfer in flight, of fixed size whatever the blob's. */
struct cli_progress_xfer {
    size_t image;
    char digest[CLI_PROGRESS_DIGEST_MAX]; /* as the events give it, cut if longer */
    uint64_t size;                        /* 0 when unknown */
    uint64_t bytes;                       /* received so far */
    uint64_t last_ms, last_bytes;         /* the previous sample, for the rate */
    double rate;                          /* bytes per second, smoothed */
    bool has_rate;
};

/* One image in flight: what labels its transfers. */
struct cli_progress_image {
    size_t image;
    char dst[CLI_PROGRESS_NAME_MAX];
};

/* The display's whole state; the caller owns the struct, init and finish manage the rest. */
struct cli_progress {
    FILE *out; /* not owned */
    bool tty;
    unsigned width;
    /* Transfers in flight, oldest first (the order of the live area); the array is owned. */
    struct cli_progress_xfer *xfers;
    size_t n_xfers, cap_xfers;
    /* Images started and not yet done; the array is owned. */
    struct cli_progress_image *images;
    size_t n_images, cap_images;
    size_t untracked_images; /* started past CLI_PROGRESS_MAX_IMAGES (or without memory) */
    size_t images_seen, images_done, images_failed;
    uint64_t bytes_ended; /* bytes of the transfers that have ended */
    bool started;
    uint64_t start_ms; /* the first event's time: the overall rate counts from it */
    bool drawn;
    uint64_t last_draw_ms;
    unsigned live_lines; /* lines of the live area on screen now, the cursor just below them */
};

/*
 * Prepares p to draw on out. tty: whether out is a terminal (the caller asks
 * isatty), which selects the live display; width: the terminal's columns (0
 * means 80). Live lines are cut to width - 1 columns so that none wraps.
 */
void cli_progress_init(struct cli_progress *p, FILE *out, bool tty, unsigned width);

/*
 * Takes one library event; now_ms is a monotonic clock in milliseconds. Prints
 * the start and end lines of images at once and redraws the live area when the
 * last redraw is CLI_PROGRESS_THROTTLE_MS old. Events for blobs or images it
 * never saw start are accepted (a progress event starts following its blob).
 * Running out of memory only leaves transfers out of the live area.
 */
void cli_progress_event(struct cli_progress *p, const struct ocisync_event *ev, uint64_t now_ms);

/*
 * Clears the live area from the terminal, leaving the cursor where it began, so
 * the caller can print its summary, and frees everything p holds. p may be
 * initialised again afterwards; finishing twice is harmless.
 */
void cli_progress_finish(struct cli_progress *p, uint64_t now_ms);

/*
 * Writes n bytes in binary units into buf: "512 B", "1.5 KiB", "20.0 MiB",
 * "3.2 GiB" (one decimal, never "1024.0" of a unit). buf gets at least 16 bytes.
 */
void cli_progress_human(uint64_t n, char *buf, size_t len);

#endif
