#include "common/log.h"
#include "ocisync.h"

#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

int ocisync__debug;

void ocisync_set_debug(int on)
{
    ocisync__debug = on;
}

void ocisync__log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line so concurrent writers never interleave mid-line. */
    fprintf(stderr, "[%.3f] %s\n", (double)uv_hrtime() / 1e9, line);
}
