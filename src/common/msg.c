#include "common/msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ocisync__errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* Clipping may also have cut a UTF-8 sequence in two: plain ASCII avoids both problems. */
    for (char *p = err; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f)
            *p = '?';
    }
}

const char *ocisync__clip(const char *s, size_t max, struct ocisync__clipped *c)
{
    if (max > OCISYNC__CLIP_MAX)
        max = OCISYNC__CLIP_MAX;
    if (strlen(s) <= max)
        return s;
    memcpy(c->s, s, max);
    memcpy(c->s + max, "...", 4);
    return c->s;
}
