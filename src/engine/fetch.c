/*
 * One URL to one file (engine_fetch_url), for a Dockerfile's ADD of a URL.
 *
 * A download has two halves, as blob.c's transfers do:
 *   source: IDLE -> RUNNING (a request; a redirect starts the next one)
 *           RUNNING <-> PAUSED (the body waits for the sink) -> DONE (ok or failed)
 *   sink:   IDLE <-> WRITING (a buffer written and hashed on the thread pool)
 *           -> DONE (the source is done and every byte it gave is written)
 * The body lands in one of two buffers while the other is written, so the
 * network and the disk overlap; when the sink falls behind, the source
 * pauses (PROTO_PAUSE) until a buffer is free. Memory in flight is two
 * buffers, whatever the size of the file.
 *
 * Every event of either half ends in settle(), the one place that decides
 * what happens next. The file itself is committed (renamed into place) or
 * removed once the loop is over, on the caller's thread.
 */
#include "engine/fetch.h"

#include "common/log.h"
#include "common/sysio.h"
#include "engine/endpoint.h"
#include "engine/stop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each of the two body buffers; a body piece is at most one read of the connection. */
#define BUF_CAP (2 * LOOP_READ_BUF_SIZE)
/* Past this, the buffer might not take the next piece: the source pauses if the sink is busy. */
#define FILL_MAX (BUF_CAP - LOOP_READ_BUF_SIZE)
/* The sink writes once this much has gathered (or the body is complete). */
#define WRITE_MIN (128 * 1024)

enum fetch_src { SRC_IDLE = 0, SRC_RUNNING, SRC_PAUSED, SRC_DONE };
enum fetch_sink { SINK_IDLE = 0, SINK_WRITING, SINK_DONE };

static const char *const src_names[] = {
    [SRC_IDLE] = "idle", [SRC_RUNNING] = "running", [SRC_PAUSED] = "paused", [SRC_DONE] = "done"};
static const char *const sink_names[] = {
    [SINK_IDLE] = "idle", [SINK_WRITING] = "writing", [SINK_DONE] = "done"};

struct fetch {
    struct engine_session s;
    const struct ocisync_copy_opts *opts; /* borrowed */
    const char *url;                      /* borrowed: as given */
    char shown[512];                      /* the URL for messages: no query string */
    uint64_t max_bytes;

    /* The source half. */
    enum fetch_src src;
    struct proto_http_req http; /* the request in flight, or the last one */
    bool http_init;             /* http needs proto_http_req_dispose */
    unsigned requests;
    struct loop_tls_config *tls; /* owned: the configuration for tls_name */
    char tls_name[LOOP_HOST_MAX + 16];
    uint64_t received; /* body bytes taken */
    int64_t mtime;

    /* The sink half. The pool thread owns fd, hasher and buf[1 - fill] while WRITING. */
    enum fetch_sink sink;
    int fd;
    struct oci_hasher hasher;
    char *buf[2]; /* owned, BUF_CAP each */
    size_t len[2];
    int fill; /* the buffer the body goes to */
    int wbuf; /* the buffer being written */
    uv_work_t work;
    int work_err;

    /* The first failure, and what it was. */
    int err;
    char msg[1024];
};

static void settle(struct fetch *f);

static void set_src(struct fetch *f, enum fetch_src s)
{
    LOG_DEBUG("fetch %s: source %s -> %s", f->shown, src_names[f->src], src_names[s]);
    f->src = s;
}

static void set_sink(struct fetch *f, enum fetch_sink s)
{
    LOG_DEBUG("fetch %s: sink %s -> %s", f->shown, sink_names[f->sink], sink_names[s]);
    f->sink = s;
}

/* Records the first failure; later ones are consequences of it. Returns err. */
__attribute__((format(printf, 3, 4))) static int fail(struct fetch *f, int err, const char *fmt,
                                                      ...)
{
    va_list ap;
    if (f->err != 0)
        return err;
    f->err = err;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    LOG_DEBUG("fetch %s: %s", f->shown, f->msg);
    return err;
}

/* Ends the request in flight, if any, with f->err (its on_done settles). */
static void stop_source(struct fetch *f)
{
    if (f->src == SRC_RUNNING || f->src == SRC_PAUSED)
        proto_http_abort(&f->http, f->err);
}

/* ------------------------------------------------------------------------------------------ */
/* Names, dates and URLs */

/* "scheme://host[:port]/path", the port left out when it is the scheme's own. */
static void format_url(const struct proto_url *u, char *buf, size_t len)
{
    bool v6 = strchr(u->host, ':') != NULL;
    bool dflt = u->port == (strcmp(u->scheme, "https") == 0 ? 443 : 80);
    char port[16] = "";
    if (!dflt)
        snprintf(port, sizeof(port), ":%d", u->port);
    snprintf(buf, len, "%s://%s%s%s%s%s", u->scheme, v6 ? "[" : "", u->host, v6 ? "]" : "", port,
             u->path);
}

/* A URL for messages: query strings may carry tokens (signed URLs), so they are left out. */
static void shown_url(const char *url, char *buf, size_t len)
{
    size_t n = strcspn(url, "?#");
    snprintf(buf, len, "%.*s%s", (int)n, url, url[n] == '?' ? "?..." : "");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The next UTF-8 character of s[0..n) into *cp; returns its length (at
 * least 1), with *cp -1 for a byte that starts no valid character.
 */
static size_t utf8_next(const unsigned char *s, size_t n, long *cp)
{
    size_t len;
    long c;
    *cp = -1;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, c = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, c = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, c = s[0] & 0x07;
    else
        return 1;
    if (len > n)
        return 1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 1;
        c = (c << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are no characters. */
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 1;
    *cp = c;
    return len;
}

/* Go's unicode.IsSpace: what strings.TrimSpace trims. */
static bool is_space(long c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

/*
 * BuildKit's pathutil.SafeFileName on name[0..*n), in place: trimmed of
 * white space, and "download" when nothing usable is left or a control
 * character is in it.
 */
static void safe_file_name(char *name, size_t *n)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t start = 0, end = *n, i, last;
    long cp;
    while (start < end) {
        size_t k = utf8_next(s + start, end - start, &cp);
        if (!is_space(cp))
            break;
        start += k;
    }
    /* Trailing white space: UTF-8 is read forwards, so the end of the last other character. */
    for (i = start, last = start; i < end;) {
        size_t k = utf8_next(s + i, end - i, &cp);
        i += k;
        if (!is_space(cp))
            last = i;
    }
    end = last;
    memmove(name, name + start, end - start);
    *n = end - start;
    for (i = 0; i < *n;) {
        size_t k = utf8_next(s + i, *n - i, &cp);
        /* Go's unicode.IsControl: C0, DEL and C1. */
        if (cp >= 0 && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)))
            goto fallback;
        i += k;
    }
    if (*n == 0 || (*n == 1 && name[0] == '.') || (*n == 2 && name[0] == '.' && name[1] == '.'))
        goto fallback;
    return;
fallback:
    memcpy(name, "download", 8);
    *n = 8;
}

int engine_fetch_filename(const char *url, char name[ENGINE_FETCH_NAME_MAX])
{
    const char *p = url, *scheme_end = strstr(url, "://");
    size_t plen, n = 0, last = 0;
    char *dec;
    int rc = 0;

    /* Go's url.Parse: the fragment goes, then the query; the path follows the authority. */
    plen = strcspn(url, "#");
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
            goto unnamed;
    if (scheme_end != NULL && (size_t)(scheme_end - url) < plen) {
        p = scheme_end + 3;
        p += strcspn(p, "/?#");
    }
    plen = strcspn(p, "?#");
    /* Room for the path decoded, or for "download" (safe_file_name). */
    dec = malloc(plen + 16);
    if (dec == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] == '%') {
            int hi = i + 2 < plen ? hexval(p[i + 1]) : -1, lo = hi >= 0 ? hexval(p[i + 2]) : -1;
            if (lo < 0) {
                free(dec);
                goto unnamed;
            }
            dec[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dec[n++] = p[i];
        }
    }
    /* path.Base: trailing slashes do not count; what follows the last slash is the name. */
    while (n > 0 && dec[n - 1] == '/')
        n--;
    for (size_t i = 0; i < n; i++)
        if (dec[i] == '/')
            last = i + 1;
    if (n - last == 0 || (n - last == 1 && dec[last] == '.')) {
        free(dec);
        goto unnamed;
    }
    n -= last;
    memmove(dec, dec + last, n);
    safe_file_name(dec, &n);
    if (n >= ENGINE_FETCH_NAME_MAX) {
        rc = OCISYNC_ETOOBIG;
        n = 0;
    }
    memcpy(name, dec, n);
    name[n] = '\0';
    free(dec);
    return rc;
unnamed:
    snprintf(name, ENGINE_FETCH_NAME_MAX, "__unnamed__");
    return 0;
}

/* A cursor over a date, read as Go's time.Parse reads a layout. */
struct date_cursor {
    const char *p;
};

/* Literal text; a space in it matches a run of spaces (Go's skip). */
static bool date_lit(struct date_cursor *c, const char *lit)
{
    while (*lit != '\0') {
        if (*lit == ' ') {
            if (*c->p != '\0' && *c->p != ' ')
                return false;
            while (*lit == ' ')
                lit++;
            while (*c->p == ' ')
                c->p++;
            continue;
        }
        if (*c->p != *lit)
            return false;
        c->p++;
        lit++;
    }
    return true;
}

/* One of names (case-insensitive), as its index, or -1. */
static int date_name(struct date_cursor *c, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        size_t k = strlen(names[i]);
        if (strncasecmp(c->p, names[i], k) == 0) {
            c->p += k;
            return i;
        }
    }
    return -1;
}

/* min to max decimal digits. */
static bool date_num(struct date_cursor *c, int min, int max, int *out)
{
    int v = 0, k = 0;
    while (k < max && c->p[k] >= '0' && c->p[k] <= '9') {
        v = v * 10 + (c->p[k] - '0');
        k++;
    }
    if (k < min)
        return false;
    c->p += k;
    *out = v;
    return true;
}

/* Go reads a fraction after the seconds even when the layout has none: it is dropped. */
static bool date_frac(struct date_cursor *c)
{
    if ((c->p[0] == '.' || c->p[0] == ',') && c->p[1] >= '0' && c->p[1] <= '9') {
        c->p++;
        while (*c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int engine_fetch_parse_date(const char *s, int64_t *t)
{
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const wday_long[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                            "Thursday", "Friday", "Saturday"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int form = 0; form < 3; form++) {
        struct date_cursor c = {s};
        int y = 0, m = 0, d = 0, hh = 0, mm = 0, ss = 0;
        bool ok;
        switch (form) {
        case 0: /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            ok = date_name(&c, wday, 7) >= 0 && date_lit(&c, ", ") && date_num(&c, 2, 2, &d) &&
                 date_lit(&c, " ") && (m = date_name(&c, mon, 12) + 1) > 0 && date_lit(&c, " ") &&
                 date_num(&c, 4, 4, &y) && date_lit(&c, " ") && date_num(&c, 1, 2, &hh) &&
                 date_lit(&c, ":") && date_num(&c, 2, 2, &mm) && date_lit(&c, ":") &&
                 date_num(&c, 2, 2, &ss) && date_frac(&c) && date_lit(&c, " GMT");
            break;
        case 1: /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
            ok = date_name(&c, wday_long, 7) >= 0 && date_lit(&c, ", ") && date_num(&c, 2, 2, &d) &&
                 date_lit(&c, "-") && (m = date_name(&c, mon, 12) + 1) > 0 && date_lit(&c, "-") &&
                 date_num(&c, 2, 2, &y) && date_lit(&c, " ") && date_num(&c, 1, 2, &hh) &&
                 date_lit(&c, ":") && date_num(&c, 2, 2, &mm) && date_lit(&c, ":") &&
                 date_num(&c, 2, 2, &ss) && date_frac(&c) && date_lit(&c, " GMT");
            /* Go's two-digit years: 69-99 are 19xx, 00-68 are 20xx. */
            y += y >= 69 ? 1900 : 2000;
            break;
        default: /* asctime: Sun Nov  6 08:49:37 1994 */
            ok = date_name(&c, wday, 7) >= 0 && date_lit(&c, " ") &&
                 (m = date_name(&c, mon, 12) + 1) > 0 && date_lit(&c, " ") &&
                 date_num(&c, 1, 2, &d) && date_lit(&c, " ") && date_num(&c, 1, 2, &hh) &&
                 date_lit(&c, ":") && date_num(&c, 2, 2, &mm) && date_lit(&c, ":") &&
                 date_num(&c, 2, 2, &ss) && date_frac(&c) && date_lit(&c, " ") &&
                 date_num(&c, 4, 4, &y);
            break;
        }
        if (!ok || *c.p != '\0' || hh > 23 || mm > 59 || ss > 59 || d < 1 || d > days_in(y, m))
            continue;
        *t = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
        return 0;
    }
    return OCISYNC_EUSAGE;
}

/* ------------------------------------------------------------------------------------------ */
/* The sink: buffers written and hashed on the thread pool */

static void sink_work(uv_work_t *req)
{
    struct fetch *f = container_of(req, struct fetch, work);
    int w = f->wbuf;
    f->work_err = ocisync__write_full(f->fd, f->buf[w], f->len[w]);
    if (f->work_err == 0)
        oci_hasher_update(&f->hasher, f->buf[w], f->len[w]);
}

static void sink_after(uv_work_t *req, int status)
{
    struct fetch *f = container_of(req, struct fetch, work);
    int err = status != 0 ? status : f->work_err;
    f->len[f->wbuf] = 0;
    set_sink(f, SINK_IDLE);
    if (err != 0) {
        fail(f, err, "%s: cannot write the downloaded file: %s", f->shown, ocisync_strerror(err));
        stop_source(f);
    }
    settle(f);
}

/* Writes what the body buffer holds, once there is enough of it or the body is complete. */
static void kick_sink(struct fetch *f)
{
    size_t n = f->len[f->fill];
    int err;
    if (f->sink != SINK_IDLE || f->err != 0 || n == 0)
        return;
    if (n < WRITE_MIN && f->src != SRC_DONE)
        return;
    /* The other buffer was emptied by the last write: the body goes there now. */
    f->wbuf = f->fill;
    f->fill = 1 - f->fill;
    err = uv_queue_work(&f->s.uv, &f->work, sink_work, sink_after);
    if (err != 0) {
        fail(f, err, "%s: cannot queue a write: %s", f->shown, ocisync_strerror(err));
        stop_source(f);
        return;
    }
    set_sink(f, SINK_WRITING);
}

/* ------------------------------------------------------------------------------------------ */
/* The source: one request after another, through redirects */

static int start_request(struct fetch *f, const char *url);

static int on_headers(struct proto_http_req *r)
{
    struct fetch *f = r->data;
    int64_t announced = proto_h1_content_length(&r->h1);
    const char *lm = proto_http_header(r, "Last-Modified");
    if (announced >= 0 && (uint64_t)announced > f->max_bytes)
        return fail(f, OCISYNC_ETOOBIG,
                    "%s: the server announces %lld bytes, more than the limit of %llu", f->shown,
                    (long long)announced, (unsigned long long)f->max_bytes);
    if (lm == NULL || engine_fetch_parse_date(lm, &f->mtime) != 0)
        f->mtime = -1;
    return 0;
}

static int on_body(struct proto_http_req *r, const char *data, size_t len)
{
    struct fetch *f = r->data;
    size_t *fill = &f->len[f->fill];
    if (f->err != 0)
        return f->err;
    if (len > f->max_bytes - f->received)
        return fail(f, OCISYNC_ETOOBIG, "%s: the body is larger than the limit of %llu bytes",
                    f->shown, (unsigned long long)f->max_bytes);
    /* A piece is never larger than one read, and the source paused before less was left. */
    if (len > BUF_CAP - *fill)
        return fail(f, UV_ENOBUFS, "%s: a body piece of %zu bytes does not fit", f->shown, len);
    memcpy(f->buf[f->fill] + *fill, data, len);
    *fill += len;
    f->received += len;
    kick_sink(f);
    if (f->err != 0)
        return f->err;
    if (f->len[f->fill] > FILL_MAX) {
        set_src(f, SRC_PAUSED);
        return PROTO_PAUSE;
    }
    return 0;
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int status_error(int status)
{
    switch (status) {
    case 401:
        return OCISYNC_EUNAUTHORIZED;
    case 403:
        return OCISYNC_EDENIED;
    case 404:
    case 410:
        return OCISYNC_ENOTFOUND;
    default:
        return OCISYNC_EREGISTRY;
    }
}

/* Where the exchange that just ended was, for messages: "" when it was the URL given. */
static void where(struct fetch *f, char *buf, size_t len)
{
    char at[ENGINE_FETCH_URL_MAX], shown[512];
    buf[0] = '\0';
    if (f->requests <= 1)
        return;
    format_url(&f->http.url, at, sizeof(at));
    shown_url(at, shown, sizeof(shown));
    snprintf(buf, len, " (redirected to %s)", shown);
}

/*
 * What the client says failed, without its own "GET host:port: " prefix
 * (the message names the URL already).
 */
static const char *detail(const struct proto_http_req *r, int err)
{
    const char *d = r->error_detail;
    char prefix[LOOP_HOST_MAX + 32];
    if (d == NULL)
        return ocisync_strerror(err);
    snprintf(prefix, sizeof(prefix), "%s %s:%d: ", r->method, r->url.host, r->url.port);
    return strncmp(d, prefix, strlen(prefix)) == 0 ? d + strlen(prefix) : d;
}

/* The exchange answered a redirect: the next request goes where it says, if it may. */
static void follow(struct fetch *f, const char *loc)
{
    struct proto_url next;
    char url[ENGINE_FETCH_URL_MAX], at[600];
    bool insecure = f->opts->src.tls_verify == OCISYNC_TLS_VERIFY_OFF;
    int rc;
    where(f, at, sizeof(at));
    if (f->requests >= ENGINE_FETCH_MAX_REQUESTS) {
        fail(f, OCISYNC_EREDIRECT, "%s: stopped after %d redirects%s", f->shown,
             ENGINE_FETCH_MAX_REQUESTS, at);
        return;
    }
    rc = proto_url_resolve(&f->http.url, loc, &next);
    if (rc != 0) {
        fail(f, OCISYNC_EREDIRECT, "%s: HTTP %d%s to an unusable Location (only http and https)",
             f->shown, f->http.status, at);
        return;
    }
    if (strcmp(f->http.url.scheme, "https") == 0 && strcmp(next.scheme, "http") == 0 && !insecure) {
        proto_url_free(&next);
        fail(f, OCISYNC_EREDIRECT,
             "%s: refused a redirect from HTTPS to plain HTTP%s (allowed only without TLS "
             "verification)",
             f->shown, at);
        return;
    }
    format_url(&next, url, sizeof(url));
    proto_url_free(&next);
    LOG_DEBUG("fetch %s: HTTP %d, redirected", f->shown, f->http.status);
    rc = start_request(f, url);
    if (rc != 0)
        fail(f, rc, "%s: %s", f->shown, detail(&f->http, rc));
}

static void on_done(struct proto_http_req *r, int err)
{
    struct fetch *f = r->data;
    const char *loc = proto_http_header(r, "Location");
    char at[600];
    where(f, at, sizeof(at));
    if (err != 0) {
        fail(f, err, "%s%s: %s", f->shown, at, detail(r, err));
    } else if (is_redirect(r->status) && loc != NULL && *loc != '\0') {
        char *copy = strdup(loc);
        if (copy == NULL) {
            fail(f, UV_ENOMEM, "%s: out of memory", f->shown);
        } else {
            follow(f, copy);
            free(copy);
        }
        if (f->err == 0)
            return; /* the next request is on its way */
    } else if (r->status < 200 || r->status > 299) {
        fail(f, status_error(r->status), "%s%s: HTTP %d", f->shown, at, r->status);
    }
    set_src(f, SRC_DONE);
    settle(f);
}

/* The TLS configuration for u's host (its certs.d entry), made once per host in a row. */
static struct loop_tls_config *tls_for(struct fetch *f, const struct proto_url *u)
{
    char name[sizeof(f->tls_name)], why[512];
    bool v6 = strchr(u->host, ':') != NULL;
    if (strcmp(u->scheme, "https") != 0)
        return NULL;
    if (u->port == 443)
        snprintf(name, sizeof(name), "%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "");
    else
        snprintf(name, sizeof(name), "%s%s%s:%d", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
    if (f->tls != NULL && strcmp(f->tls_name, name) == 0)
        return f->tls;
    loop_tls_config_unref(f->tls);
    f->tls = NULL;
    if (engine_endpoint_tls(name, &f->opts->src, &f->tls, why, sizeof(why)) != 0) {
        fail(f, OCISYNC_ETLSCONFIG, "%s: %s", f->shown, why);
        return NULL;
    }
    snprintf(f->tls_name, sizeof(f->tls_name), "%s", name);
    return f->tls;
}

/* Sends a GET for url (absolute), replacing the request before it. */
static int start_request(struct fetch *f, const char *url)
{
    struct proto_http_req *r = &f->http;
    int rc;
    if (f->http_init)
        proto_http_req_dispose(r);
    f->http_init = true;
    rc = proto_http_req_init(r, &f->s.client, "GET", url);
    if (rc != 0)
        return rc;
    f->requests++;
    r->follow_redirects = false; /* followed here: the limit and the rules are BuildKit's */
    r->data = f;
    r->on_headers = on_headers;
    r->on_body = on_body;
    r->on_done = on_done;
    if (strcmp(r->url.scheme, "https") == 0 && (r->tls = tls_for(f, &r->url)) == NULL)
        return f->err;
    /* The bytes as the server has them: nothing is decoded on the way. */
    rc = proto_http_add_header(r, "Accept-Encoding", "identity");
    if (rc == 0)
        rc = proto_http_add_header(r, "Accept", "*/*");
    if (rc != 0)
        return rc;
    /* Before the start: a pooled connection may carry the exchange to its end at once. */
    set_src(f, SRC_RUNNING);
    return proto_http_start(r);
}

/* ------------------------------------------------------------------------------------------ */

static void settle(struct fetch *f)
{
    kick_sink(f);
    if (f->src == SRC_PAUSED && (f->err != 0 || f->len[f->fill] <= FILL_MAX)) {
        if (f->err != 0) {
            stop_source(f);
            return;
        }
        set_src(f, SRC_RUNNING);
        /* May run on_body and on_done, which settle again. */
        proto_http_resume(&f->http);
        return;
    }
    if (f->src == SRC_DONE && f->sink == SINK_IDLE && (f->err != 0 || f->len[f->fill] == 0))
        set_sink(f, SINK_DONE);
}

static void on_stop(struct engine_session *s)
{
    struct fetch *f = s->data;
    fail(f, OCISYNC_EINTERRUPTED, "%s: interrupted by %s", f->shown, engine_stop_name());
    stop_source(f);
}

/* The temp file next to path: "path.fetch-<16 hex>". */
static int open_temp(struct fetch *f, const char *path, char *tmp, size_t len)
{
    char hex[17];
    int rc = ocisync__random_hex16(hex);
    if (rc != 0)
        return fail(f, rc, "%s: no random name for a temp file: %s", f->shown,
                    ocisync_strerror(rc));
    if ((size_t)snprintf(tmp, len, "%s.fetch-%s", path, hex) >= len)
        return fail(f, UV_ENAMETOOLONG, "%s: the path %s is too long", f->shown, path);
    f->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        rc = ocisync__sys_error();
        return fail(f, rc, "%s: cannot create %s: %s", f->shown, tmp, ocisync_strerror(rc));
    }
    /* 0600 whatever the umask: BuildKit's mode for a downloaded file. */
    if (fchmod(f->fd, 0600) != 0) {
        rc = ocisync__sys_error();
        return fail(f, rc, "%s: cannot set the mode of %s: %s", f->shown, tmp,
                    ocisync_strerror(rc));
    }
    return 0;
}

/* Checks what arrived and moves it into place. */
static int commit(struct fetch *f, const char *tmp, const char *path,
                  const struct oci_digest *checksum, struct engine_fetch_result *res)
{
    int rc = oci_hasher_final(&f->hasher, &res->digest);
    if (rc != 0)
        return fail(f, rc, "%s: cannot hash the download: %s", f->shown, ocisync_strerror(rc));
    if (checksum != NULL && !oci_digest_equal(checksum, &res->digest))
        return fail(f, OCISYNC_EDIGESTMISMATCH, "%s: checksum mismatch: got %s, expected %s",
                    f->shown, res->digest.str, checksum->str);
    if (f->mtime != -1) {
        struct timespec ts[2] = {{.tv_sec = (time_t)f->mtime}, {.tv_sec = (time_t)f->mtime}};
        if (futimens(f->fd, ts) != 0) {
            rc = ocisync__sys_error();
            return fail(f, rc, "%s: cannot set the mtime of %s: %s", f->shown, tmp,
                        ocisync_strerror(rc));
        }
    }
    rc = close(f->fd) != 0 ? ocisync__sys_error() : 0;
    f->fd = -1;
    if (rc != 0)
        return fail(f, rc, "%s: cannot write %s: %s", f->shown, tmp, ocisync_strerror(rc));
    if (rename(tmp, path) != 0) {
        rc = ocisync__sys_error();
        return fail(f, rc, "%s: cannot rename %s to %s: %s", f->shown, tmp, path,
                    ocisync_strerror(rc));
    }
    res->size = f->received;
    res->mtime = f->mtime;
    if (f->requests > 1)
        format_url(&f->http.url, res->final_url, sizeof(res->final_url));
    else
        snprintf(res->final_url, sizeof(res->final_url), "%s", f->url);
    return 0;
}

int engine_fetch_url(const char *url, const struct ocisync_copy_opts *opts, const char *path,
                     uint64_t max_bytes, const struct oci_digest *checksum,
                     struct engine_fetch_result *res, char *err, size_t errlen)
{
    static const struct ocisync_copy_opts defaults;
    struct sigaction ign, old_pipe;
    struct fetch *f;
    char tmp[4200];
    size_t authority;
    int rc;

    memset(res, 0, sizeof(*res));
    res->mtime = -1;
    tmp[0] = '\0';
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "%s: out of memory", url);
        return UV_ENOMEM;
    }
    f->opts = opts != NULL ? opts : &defaults;
    f->url = url;
    f->max_bytes = max_bytes;
    f->fd = -1;
    f->mtime = -1;
    shown_url(url, f->shown, sizeof(f->shown));

    /* What can be told from the URL alone is told before anything is created. */
    authority = strncasecmp(url, "https://", 8) == 0  ? 8
                : strncasecmp(url, "http://", 7) == 0 ? 7
                                                      : 0;
    if (authority == 0) {
        rc = fail(f, OCISYNC_EUSAGE, "%s: not an http or https URL", f->shown);
        goto out;
    }
    if (memchr(url + authority, '@', strcspn(url + authority, "/?#")) != NULL) {
        rc = fail(f, OCISYNC_EUSAGE,
                  "%s: credentials in a URL are not supported (none are ever sent)", f->shown);
        goto out;
    }
    if (checksum != NULL && checksum->alg != OCI_DIGEST_SHA256) {
        rc = fail(f, OCISYNC_EUSAGE, "%s: the checksum %s is not sha256, the only one supported",
                  f->shown, checksum->str);
        goto out;
    }
    rc = engine_fetch_filename(url, res->filename);
    if (rc != 0) {
        fail(f, rc, "%s: the file name in the URL is longer than %d bytes", f->shown,
             ENGINE_FETCH_NAME_MAX - 1);
        goto out;
    }
    if (f->opts->handle_signals && engine_stop_requested() != 0) {
        rc = fail(f, OCISYNC_EINTERRUPTED, "%s: interrupted by %s", f->shown, engine_stop_name());
        goto out;
    }

    f->buf[0] = malloc(BUF_CAP);
    f->buf[1] = malloc(BUF_CAP);
    if (f->buf[0] == NULL || f->buf[1] == NULL) {
        rc = fail(f, UV_ENOMEM, "%s: out of memory", f->shown);
        goto out;
    }
    rc = oci_hasher_init(&f->hasher, OCI_DIGEST_SHA256);
    if (rc != 0) {
        fail(f, rc, "%s: cannot hash: %s", f->shown, ocisync_strerror(rc));
        goto out;
    }
    /* As copy_run: a server that hangs up while a request is written must not kill us. */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    rc = engine_session_init(&f->s, f->opts);
    if (rc != 0) {
        fail(f, rc, "%s: cannot start an event loop: %s", f->shown, ocisync_strerror(rc));
        sigaction(SIGPIPE, &old_pipe, NULL);
        goto fail_hasher;
    }
    f->s.on_stop = on_stop;
    f->s.data = f;
    rc = open_temp(f, path, tmp, sizeof(tmp));
    if (rc != 0)
        goto fail_session;

    rc = start_request(f, url);
    if (rc != 0) {
        fail(f, rc, "%s: %s", f->shown,
             rc == OCISYNC_EUSAGE   ? "not a valid URL"
             : f->http.error_detail ? f->http.error_detail
                                    : ocisync_strerror(rc));
        set_src(f, SRC_DONE);
        settle(f);
    }
    while (f->sink != SINK_DONE) {
        if (uv_run(&f->s.uv, UV_RUN_ONCE) == 0 && f->sink != SINK_DONE) {
            /* Nothing is left to wake the loop: a bug, not a hang. */
            fail(f, UV_EINVAL, "%s: the download stalled (source %s, sink %s)", f->shown,
                 src_names[f->src], sink_names[f->sink]);
            break;
        }
    }
    rc = f->err;
    if (rc == 0)
        rc = commit(f, tmp, path, checksum, res);

fail_session:
    if (f->http_init)
        proto_http_req_dispose(&f->http);
    loop_tls_config_unref(f->tls);
    engine_session_close(&f->s);
    sigaction(SIGPIPE, &old_pipe, NULL);
fail_hasher:
    oci_hasher_dispose(&f->hasher);
out:
    if (f->fd >= 0)
        close(f->fd);
    if (rc != 0 && tmp[0] != '\0' && unlink(tmp) != 0 && errno != ENOENT)
        LOG_DEBUG("fetch %s: cannot remove %s: %s", f->shown, tmp, strerror(errno));
    if (rc != 0)
        snprintf(err, errlen, "%s", f->msg[0] ? f->msg : ocisync_strerror(rc));
    else
        LOG_DEBUG("fetch %s: %llu bytes, %s, in %u request(s)", f->shown,
                  (unsigned long long)res->size, res->digest.str, f->requests);
    free(f->buf[0]);
    free(f->buf[1]);
    free(f);
    return rc;
}
