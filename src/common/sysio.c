#include "common/sysio.h"

#include "ocisync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

int ocisync__sys_error(void)
{
    return errno != 0 ? uv_translate_sys_error(errno) : UV_EIO;
}

int ocisync__write_full(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ocisync__sys_error();
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ocisync__tmp_template(char *out, size_t len, const char *name, const char **dir, char *err,
                          size_t errlen)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    *dir = base;
    if ((size_t)snprintf(out, len, "%s/%s", base, name) >= len) {
        snprintf(err, errlen, "TMPDIR is too long");
        return OCISYNC_EUSAGE;
    }
    return 0;
}

int ocisync__random_hex16(char out[17])
{
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char r[8];
    ssize_t n;

    do {
        n = getrandom(r, sizeof(r), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(r))
        return n < 0 ? ocisync__sys_error() : UV_EIO;
    for (size_t i = 0; i < sizeof(r); i++) {
        out[2 * i] = hexdigits[r[i] >> 4];
        out[2 * i + 1] = hexdigits[r[i] & 0x0f];
    }
    out[16] = '\0';
    return 0;
}
