#include "common/sysio.h"

#include "ocisync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
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

int ocisync__read_small(const char *path, size_t max, bool nofollow, char **out, size_t *len)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0)), err = 0;

    if (fd < 0)
        return uv_translate_sys_error(errno);
    if (fstat(fd, &st) != 0)
        err = ocisync__sys_error();
    else if (!S_ISREG(st.st_mode))
        err = UV_EINVAL;
    else if ((uint64_t)st.st_size > max)
        err = OCISYNC_ETOOBIG;
    if (err != 0) {
        close(fd);
        return err;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n == 0 ? UV_EIO : uv_translate_sys_error(errno);
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (err != 0) {
        free(buf);
        return err;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ocisync__dir_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int ocisync__dir_names(const char *path, size_t max, char ***out, size_t *out_n)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    DIR *d = opendir(path);

    *out = NULL;
    *out_n = 0;
    if (d == NULL)
        return ocisync__sys_error();
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == max) {
            rc = OCISYNC_ETOOBIG;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **v = realloc(names, ncap * sizeof(*v));
            if (v == NULL) {
                rc = UV_ENOMEM;
                break;
            }
            names = v;
            cap = ncap;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) {
            rc = UV_ENOMEM;
            break;
        }
        n++;
    }
    if (rc == 0 && errno != 0)
        rc = ocisync__sys_error();
    closedir(d);
    if (rc != 0) {
        ocisync__dir_names_free(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    *out = names;
    *out_n = n;
    return 0;
}
