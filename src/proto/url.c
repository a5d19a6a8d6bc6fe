/* Absolute http(s) URLs and the resolution of Location headers against them. */
#include "proto/http.h"

#include "ocisync.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void proto_url_free(struct proto_url *u)
{
    free(u->path);
    u->path = NULL;
}

static int default_port(const char *scheme)
{
    return strcmp(scheme, "https") == 0 ? 443 : 80;
}

/* Parses "host[:port]" or "[v6]:port" from s[0..len) into u. */
static int parse_authority(const char *s, size_t len, struct proto_url *u)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (len == 0)
        return OCISYNC_EUSAGE;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return OCISYNC_EUSAGE;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':')
                return OCISYNC_EUSAGE;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        hlen = colon != NULL ? (size_t)(colon - s) : len;
        if (colon != NULL)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(u->host))
        return OCISYNC_EUSAGE;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        /* Hosts are names or IP literals: nothing that could split a request line. */
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '?' || ch == '#' || ch == '@')
            return OCISYNC_EUSAGE;
    }
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    u->port = default_port(u->scheme);
    if (port != NULL) {
        long n = 0;
        const char *end = s + len;
        if (port == end)
            return OCISYNC_EUSAGE;
        for (const char *q = port; q < end; q++) {
            if (*q < '0' || *q > '9')
                return OCISYNC_EUSAGE;
            n = n * 10 + (*q - '0');
            if (n > 65535)
                return OCISYNC_EUSAGE;
        }
        if (n == 0)
            return OCISYNC_EUSAGE;
        u->port = (int)n;
    }
    return 0;
}

static int check_path(const char *p)
{
    if (strlen(p) >= PROTO_MAX_URL)
        return OCISYNC_ETOOBIG;
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        /* Control characters and spaces would let a server smuggle headers into our request. */
        if (ch <= ' ' || ch == 0x7f)
            return OCISYNC_EUSAGE;
    }
    return 0;
}

int proto_url_parse(const char *s, struct proto_url *u)
{
    const char *rest, *slash;
    int err;
    memset(u, 0, sizeof(*u));
    if (strncasecmp(s, "http://", 7) == 0) {
        strcpy(u->scheme, "http");
        rest = s + 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        strcpy(u->scheme, "https");
        rest = s + 8;
    } else {
        return OCISYNC_EUSAGE;
    }
    slash = rest + strcspn(rest, "/?#");
    err = parse_authority(rest, (size_t)(slash - rest), u);
    if (err != 0)
        return err;
    if (*slash == '/') {
        u->path = strndup(slash, strcspn(slash, "#"));
    } else if (*slash == '?') {
        size_t n = strcspn(slash, "#");
        u->path = malloc(n + 2);
        if (u->path != NULL) {
            u->path[0] = '/';
            memcpy(u->path + 1, slash, n);
            u->path[n + 1] = '\0';
        }
    } else {
        u->path = strdup("/");
    }
    if (u->path == NULL)
        return UV_ENOMEM;
    err = check_path(u->path);
    if (err != 0)
        proto_url_free(u);
    return err;
}

int proto_url_resolve(const struct proto_url *base, const char *ref, struct proto_url *out)
{
    char *buf = NULL;
    int err;
    size_t n = strlen(ref);
    if (n >= PROTO_MAX_URL)
        return OCISYNC_ETOOBIG;
    if (strncasecmp(ref, "http://", 7) == 0 || strncasecmp(ref, "https://", 8) == 0)
        return proto_url_parse(ref, out);
    {
        /* Any other scheme ("ftp:", "file:") is refused, not taken as a relative path. */
        size_t k = 0;
        if ((ref[0] >= 'a' && ref[0] <= 'z') || (ref[0] >= 'A' && ref[0] <= 'Z')) {
            while (ref[k] != '\0' && (isalnum((unsigned char)ref[k]) || ref[k] == '+' ||
                                      ref[k] == '-' || ref[k] == '.'))
                k++;
            if (ref[k] == ':')
                return OCISYNC_EUSAGE;
        }
    }
    buf = malloc(n + LOOP_HOST_MAX + 64 + (base->path ? strlen(base->path) : 0));
    if (buf == NULL)
        return UV_ENOMEM;
    if (ref[0] == '/' && ref[1] == '/') {
        sprintf(buf, "%s:%s", base->scheme, ref);
    } else {
        char origin[LOOP_HOST_MAX + 32];
        proto_url_origin(base, origin, sizeof(origin));
        if (ref[0] == '/') {
            sprintf(buf, "%s%s", origin, ref);
        } else {
            /* Relative to the base path's directory. */
            const char *bp = base->path != NULL ? base->path : "/";
            size_t dir = strcspn(bp, "?");
            while (dir > 0 && bp[dir - 1] != '/')
                dir--;
            sprintf(buf, "%s%.*s%s", origin, (int)dir, bp, ref);
        }
    }
    err = proto_url_parse(buf, out);
    free(buf);
    return err;
}

int proto_url_origin(const struct proto_url *u, char *buf, size_t len)
{
    bool v6 = strchr(u->host, ':') != NULL;
    return snprintf(buf, len, "%s://%s%s%s:%d", u->scheme, v6 ? "[" : "", u->host, v6 ? "]" : "",
                    u->port);
}

char *proto_url_string(const struct proto_url *u)
{
    char origin[LOOP_HOST_MAX + 32];
    size_t n;
    char *s;
    proto_url_origin(u, origin, sizeof(origin));
    n = strlen(origin) + strlen(u->path) + 1;
    s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s", origin, u->path);
    return s;
}

bool proto_url_same_origin(const struct proto_url *a, const struct proto_url *b)
{
    return a->port == b->port && strcmp(a->scheme, b->scheme) == 0 &&
           strcasecmp(a->host, b->host) == 0;
}
