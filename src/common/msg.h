/*
 * Error messages written into caller-provided buffers. They quote what came
 * from outside (documents, file names, helper output) and end up on
 * terminals and in logs, so they are kept to one line of plain ASCII, and
 * quotes are clipped.
 */
#ifndef COMMON_MSG_H
#define COMMON_MSG_H

#include <stddef.h>

/* printf into err (when err is non-NULL), then any control or non-ASCII byte becomes '?'. */
void ocisync__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define OCISYNC__CLIP_MAX 200

struct ocisync__clipped {
    char s[OCISYNC__CLIP_MAX + 4];
};

/* s itself if at most max (<= OCISYNC__CLIP_MAX) bytes, else its first max bytes and "...". */
const char *ocisync__clip(const char *s, size_t max, struct ocisync__clipped *c);

#endif
