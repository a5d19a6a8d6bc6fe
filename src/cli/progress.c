#include "cli/progress.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The width of the bar between its brackets. */
#define BAR_WIDTH 20
/* How fast a transfer's rate follows its samples: the weight of a sample dt ms long is dt/(dt+TAU).
 */
#define RATE_TAU_MS 1000.0

/* ---------------------------------------------------------------------------------------------
 * Text
 */

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

void cli_progress_human(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    size_t u = 0;

    if (n < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", n);
        return;
    }
    v /= 1024.0;
    /* Move up a unit whenever one decimal would round to 1024.0. */
    while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

/*
 * One live line being built: columns beyond cols are dropped, so a line never
 * wraps and the cursor movements of the redraw stay exact. Everything put in
 * is printable ASCII, so a byte is a column.
 */
struct line {
    char b[CLI_PROGRESS_LINE_MAX];
    size_t len, cols;
};

static void line_init(struct line *l, unsigned width)
{
    size_t cols = width > 1 ? width - 1 : 1;
    l->len = 0;
    l->cols = cols < sizeof(l->b) - 1 ? cols : sizeof(l->b) - 1;
    l->b[0] = '\0';
}

static void line_put(struct line *l, const char *s)
{
    for (s = str_or_empty(s); *s != '\0' && l->len < l->cols; s++)
        l->b[l->len++] = cli_clean_char((unsigned char)*s);
    l->b[l->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void line_printf(struct line *l, const char *fmt, ...)
{
    char tmp[CLI_PROGRESS_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    line_put(l, tmp);
}

/* ---------------------------------------------------------------------------------------------
 * State
 */

static struct cli_progress_xfer *find_xfer(struct cli_progress *p, size_t image, const char *digest)
{
    for (size_t i = 0; i < p->n_xfers; i++) {
        struct cli_progress_xfer *x = &p->xfers[i];
        if (x->image == image && strncmp(x->digest, digest, sizeof(x->digest) - 1) == 0)
            return x;
    }
    return NULL;
}

static struct cli_progress_image *find_image(struct cli_progress *p, size_t image)
{
    for (size_t i = 0; i < p->n_images; i++) {
        if (p->images[i].image == image)
            return &p->images[i];
    }
    return NULL;
}

/*
 * Makes room for one more element of size sz in *arr (n used of *cap),
 * doubling up to max. Returns 0, or -1 at the cap or without memory.
 */
static int grow(void **arr, size_t *cap, size_t n, size_t sz, size_t max)
{
    size_t ncap;
    void *na;

    if (n < *cap)
        return 0;
    if (n >= max)
        return -1;
    ncap = *cap == 0 ? 8 : *cap * 2;
    if (ncap > max)
        ncap = max;
    na = realloc(*arr, ncap * sz);
    if (na == NULL)
        return -1;
    *arr = na;
    *cap = ncap;
    return 0;
}

/* Starts following a transfer; NULL at the cap or without memory. */
static struct cli_progress_xfer *add_xfer(struct cli_progress *p, size_t image, const char *digest,
                                          uint64_t now_ms)
{
    struct cli_progress_xfer *x;
    void *arr = p->xfers;
    int err = grow(&arr, &p->cap_xfers, p->n_xfers, sizeof(*x), CLI_PROGRESS_MAX_XFERS);

    p->xfers = arr;
    if (err != 0)
        return NULL;
    x = &p->xfers[p->n_xfers++];
    memset(x, 0, sizeof(*x));
    x->image = image;
    snprintf(x->digest, sizeof(x->digest), "%s", digest);
    x->last_ms = now_ms;
    return x;
}

/* Ends transfer x: its bytes join the total and the later ones move up, keeping their order. */
static void remove_xfer(struct cli_progress *p, struct cli_progress_xfer *x)
{
    size_t i = (size_t)(x - p->xfers);

    p->bytes_ended += x->bytes;
    memmove(x, x + 1, (p->n_xfers - i - 1) * sizeof(*x));
    p->n_xfers--;
}

static int64_t clamp_size(int64_t size)
{
    return size > 0 ? size : 0;
}

static void on_blob_start(struct cli_progress *p, const struct ocisync_event *ev, uint64_t now_ms)
{
    struct cli_progress_xfer *x = find_xfer(p, ev->image, ev->digest);

    /* A second start (a retry from scratch) begins the count again. */
    if (x != NULL) {
        x->bytes = x->last_bytes = 0;
        x->last_ms = now_ms;
        x->has_rate = false;
    } else {
        x = add_xfer(p, ev->image, ev->digest, now_ms);
    }
    if (x != NULL)
        x->size = (uint64_t)clamp_size(ev->size);
}

static void on_blob_progress(struct cli_progress *p, const struct ocisync_event *ev,
                             uint64_t now_ms)
{
    struct cli_progress_xfer *x = find_xfer(p, ev->image, ev->digest);

    if (x == NULL)
        x = add_xfer(p, ev->image, ev->digest, now_ms);
    if (x == NULL)
        return;
    if (ev->size > 0)
        x->size = (uint64_t)ev->size;
    x->bytes = ev->bytes;
    if (ev->bytes < x->last_bytes || now_ms < x->last_ms) {
        /* A transfer resumed from an earlier offset, or a clock that went back: start over. */
        x->last_bytes = ev->bytes;
        x->last_ms = now_ms;
        return;
    }
    if (now_ms == x->last_ms)
        return;
    {
        double dt = (double)(now_ms - x->last_ms);
        double inst = (double)(ev->bytes - x->last_bytes) * 1000.0 / dt;
        if (x->has_rate)
            x->rate += (inst - x->rate) * dt / (dt + RATE_TAU_MS);
        else
            x->rate = inst;
        x->has_rate = true;
        x->last_bytes = ev->bytes;
        x->last_ms = now_ms;
    }
}

static void on_blob_end(struct cli_progress *p, const struct ocisync_event *ev)
{
    struct cli_progress_xfer *x = find_xfer(p, ev->image, ev->digest);
    uint64_t size = (uint64_t)clamp_size(ev->size);

    if (x == NULL) {
        /* Copied without a start we followed: its bytes moved all the same. */
        if (ev->kind == OCISYNC_EV_BLOB_COPIED)
            p->bytes_ended += size;
        return;
    }
    if (ev->kind == OCISYNC_EV_BLOB_COPIED && x->bytes < size)
        x->bytes = size;
    remove_xfer(p, x);
}

static void on_image_start(struct cli_progress *p, const struct ocisync_event *ev)
{
    struct cli_progress_image *im = find_image(p, ev->image);
    const char *dst = str_or_empty(ev->dst);
    void *arr;
    int err;

    if (im != NULL)
        return; /* the same image announced twice is still one image */
    p->images_seen++;
    arr = p->images;
    err = grow(&arr, &p->cap_images, p->n_images, sizeof(*im), CLI_PROGRESS_MAX_IMAGES);
    p->images = arr;
    if (err != 0) {
        p->untracked_images++;
        return;
    }
    im = &p->images[p->n_images++];
    im->image = ev->image;
    /* The label needs no scheme: every transfer line is about a registry or a layout. */
    if (strncmp(dst, "docker://", 9) == 0)
        dst += 9;
    snprintf(im->dst, sizeof(im->dst), "%s", dst);
}

static void on_image_done(struct cli_progress *p, const struct ocisync_event *ev)
{
    struct cli_progress_image *im = find_image(p, ev->image);
    size_t i = 0;

    if (im != NULL) {
        memmove(im, im + 1, (p->n_images - (size_t)(im - p->images) - 1) * sizeof(*im));
        p->n_images--;
    } else if (p->untracked_images > 0) {
        p->untracked_images--;
    } else {
        p->images_seen++; /* done without a start: it still counts as one seen */
    }
    p->images_done++;
    if (ev->err != 0)
        p->images_failed++;
    /* Blobs of a failed image may end without an event of their own. */
    while (i < p->n_xfers) {
        if (p->xfers[i].image == ev->image)
            remove_xfer(p, &p->xfers[i]);
        else
            i++;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Drawing
 */

/* Bytes moved so far: the ended transfers' and those in flight. */
static uint64_t total_bytes(const struct cli_progress *p)
{
    uint64_t n = p->bytes_ended;
    for (size_t i = 0; i < p->n_xfers; i++)
        n += p->xfers[i].bytes;
    return n;
}

static void human_rate(double rate, char *buf, size_t len)
{
    char h[32];
    cli_progress_human(rate > 0 ? (uint64_t)rate : 0, h, sizeof(h));
    snprintf(buf, len, "%s/s", h);
}

static void xfer_line(const struct cli_progress *p, const struct cli_progress_xfer *x,
                      struct line *l)
{
    const char *colon = strchr(x->digest, ':');
    const char *hex = colon != NULL ? colon + 1 : x->digest;
    const struct cli_progress_image *im = NULL;
    char bar[BAR_WIDTH + 1], done[32], total[32], rate[40];
    size_t fill = 0;

    for (size_t i = 0; i < p->n_images; i++) {
        if (p->images[i].image == x->image)
            im = &p->images[i];
    }
    if (x->size > 0) {
        double f = (double)x->bytes / (double)x->size;
        fill = f >= 1.0 ? BAR_WIDTH : (size_t)(f * BAR_WIDTH);
    }
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '=' : ' ';
    if (fill > 0 && fill < BAR_WIDTH)
        bar[fill - 1] = '>';
    bar[BAR_WIDTH] = '\0';
    cli_progress_human(x->bytes, done, sizeof(done));
    if (x->size > 0)
        cli_progress_human(x->size, total, sizeof(total));
    else
        snprintf(total, sizeof(total), "?");
    if (x->has_rate)
        human_rate(x->rate, rate, sizeof(rate));
    else
        rate[0] = '\0';
    line_printf(l, "%.12s [%s] %10s / %-10s %12s", hex, bar, done, total, rate);
    if (im == NULL || im->dst[0] == '\0' || l->len + 2 + 4 > l->cols)
        return;
    /*
     * The end of a reference (repository and tag) tells images apart better
     * than its registry, so a name too long for the line loses its beginning.
     */
    {
        size_t avail = l->cols - l->len - 2, n = strlen(im->dst);
        line_put(l, "  ");
        if (n <= avail) {
            line_put(l, im->dst);
        } else {
            line_put(l, "...");
            line_put(l, im->dst + n - (avail - 3));
        }
    }
}

static void total_line(const struct cli_progress *p, uint64_t now_ms, struct line *l)
{
    uint64_t bytes = total_bytes(p);
    char h[32], rate[40];

    cli_progress_human(bytes, h, sizeof(h));
    line_printf(l, "Images: %zu/%zu done", p->images_done, p->images_seen);
    if (p->images_failed > 0)
        line_printf(l, ", %zu failed", p->images_failed);
    line_printf(l, "   %s", h);
    if (now_ms > p->start_ms) {
        human_rate((double)bytes * 1000.0 / (double)(now_ms - p->start_ms), rate, sizeof(rate));
        line_printf(l, "   %s", rate);
    }
}

/* Moves the cursor to the top of the live area. */
static void cursor_to_top(struct cli_progress *p)
{
    /* "\033[0A" moves one line up on many terminals: never send it. */
    if (p->live_lines > 0)
        fprintf(p->out, "\033[%uA", p->live_lines);
}

static void put_line(struct cli_progress *p, const struct line *l)
{
    fputs("\r\033[K", p->out);
    fputs(l->b, p->out);
    fputc('\n', p->out);
}

/* Draws the live area over the one on screen, leaving the cursor just below it. */
static void draw(struct cli_progress *p, uint64_t now_ms)
{
    unsigned old = p->live_lines;
    size_t shown = p->n_xfers < CLI_PROGRESS_MAX_LINES ? p->n_xfers : CLI_PROGRESS_MAX_LINES;
    struct line l;

    cursor_to_top(p);
    p->live_lines = 0;
    for (size_t i = 0; i < shown; i++) {
        line_init(&l, p->width);
        xfer_line(p, &p->xfers[i], &l);
        put_line(p, &l);
        p->live_lines++;
    }
    if (p->n_xfers > shown) {
        line_init(&l, p->width);
        line_printf(&l, "... and %zu more", p->n_xfers - shown);
        put_line(p, &l);
        p->live_lines++;
    }
    line_init(&l, p->width);
    total_line(p, now_ms, &l);
    put_line(p, &l);
    p->live_lines++;
    /* What is left of a taller area below the new one. */
    if (p->live_lines < old)
        fputs("\033[J", p->out);
    p->drawn = true;
    p->last_draw_ms = now_ms;
}

/* Erases the live area, leaving the cursor where its first line was. */
static void clear_live(struct cli_progress *p)
{
    if (p->live_lines == 0)
        return;
    cursor_to_top(p);
    fputs("\r\033[J", p->out);
    p->live_lines = 0;
}

/* Prints the line that says an image started or ended (without its newline). */
static void image_line(struct cli_progress *p, const struct ocisync_event *ev)
{
    char size[32];

    if (ev->kind == OCISYNC_EV_IMAGE_START) {
        fputs("Copying ", p->out);
        cli_put_clean(p->out, ev->src);
        fputs(" -> ", p->out);
        cli_put_clean(p->out, ev->dst);
    } else if (ev->err == OCISYNC_EINTERRUPTED) {
        /* Why (SIGINT, SIGTERM) is said once, at the end, not per image. */
        fputs("Stopped ", p->out);
        cli_put_clean(p->out, ev->dst);
    } else if (ev->err != 0) {
        fputs("FAILED ", p->out);
        cli_put_clean(p->out, ev->dst);
        fputs(": ", p->out);
        cli_put_clean(p->out, ev->message != NULL ? ev->message : ocisync_strerror(ev->err));
    } else if (ev->blobs_copied + ev->blobs_mounted + ev->blobs_skipped == 0) {
        fputs("Up to date ", p->out);
        cli_put_clean(p->out, ev->dst);
        fputs(": ", p->out);
        cli_put_clean(p->out, ev->digest);
    } else {
        cli_progress_human(ev->bytes, size, sizeof(size));
        fputs("Copied ", p->out);
        cli_put_clean(p->out, ev->dst);
        fputs(": ", p->out);
        cli_put_clean(p->out, ev->digest);
        fprintf(p->out, " (%" PRIu64 " blobs copied, %" PRIu64 " mounted, %" PRIu64 " skipped, %s)",
                ev->blobs_copied, ev->blobs_mounted, ev->blobs_skipped, size);
    }
    fputc('\n', p->out);
}

/* ---------------------------------------------------------------------------------------------
 * Interface
 */

void cli_progress_init(struct cli_progress *p, FILE *out, bool tty, unsigned width)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->tty = tty;
    p->width = width > 0 ? width : 80;
}

void cli_progress_event(struct cli_progress *p, const struct ocisync_event *ev, uint64_t now_ms)
{
    bool scroll = false;

    if (ev == NULL || p->out == NULL)
        return;
    if (ev->kind == OCISYNC_EV_IMAGE_START || ev->kind == OCISYNC_EV_DONE) {
        scroll = true;
    } else if (!p->tty) {
        return; /* a log gets the image lines only */
    }
    if (!p->started) {
        p->started = true;
        p->start_ms = now_ms;
    }
    switch (ev->kind) {
    case OCISYNC_EV_IMAGE_START:
        on_image_start(p, ev);
        break;
    case OCISYNC_EV_DONE:
        on_image_done(p, ev);
        break;
    case OCISYNC_EV_BLOB_START:
        if (ev->digest != NULL)
            on_blob_start(p, ev, now_ms);
        break;
    case OCISYNC_EV_BLOB_PROGRESS:
        if (ev->digest != NULL)
            on_blob_progress(p, ev, now_ms);
        break;
    case OCISYNC_EV_BLOB_COPIED:
    case OCISYNC_EV_BLOB_MOUNTED:
    case OCISYNC_EV_BLOB_SKIPPED:
        if (ev->digest != NULL)
            on_blob_end(p, ev);
        break;
    default:
        return; /* manifests and platforms are not drawn */
    }
    if (!p->tty) {
        image_line(p, ev);
        fflush(p->out);
        return;
    }
    if (scroll) {
        clear_live(p);
        image_line(p, ev);
    } else if (p->drawn && now_ms >= p->last_draw_ms &&
               now_ms - p->last_draw_ms < CLI_PROGRESS_THROTTLE_MS) {
        return;
    }
    draw(p, now_ms);
    fflush(p->out);
}

void cli_progress_finish(struct cli_progress *p, uint64_t now_ms)
{
    (void)now_ms;
    if (p->out != NULL && p->tty && p->live_lines > 0) {
        clear_live(p);
        fflush(p->out);
    }
    free(p->xfers);
    free(p->images);
    p->xfers = NULL;
    p->images = NULL;
    p->n_xfers = p->cap_xfers = 0;
    p->n_images = p->cap_images = 0;
    p->live_lines = 0;
    p->drawn = false;
}
