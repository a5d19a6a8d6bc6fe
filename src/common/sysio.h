/*
 * Small system-call helpers shared by the modules that write files (layouts,
 * layer blobs, archives): errors as libuv codes, whole writes, random names.
 */
#ifndef COMMON_SYSIO_H
#define COMMON_SYSIO_H

#include <stdbool.h>
#include <stddef.h>

/* errno as a libuv error; UV_EIO when errno is 0, so that a failure never reads as success. */
int ocisync__sys_error(void);

/* Writes all len bytes of data to fd, through short writes and EINTR. 0 or a UV_E* error. */
int ocisync__write_full(int fd, const void *data, size_t len);

/*
 * "$TMPDIR/name" ("/tmp/name" when TMPDIR is unset or empty) into out, for
 * mkstemp and mkdtemp (name ends in XXXXXX); *dir is the directory, for
 * messages. 0, or OCISYNC_EUSAGE with err saying TMPDIR is too long.
 */
int ocisync__tmp_template(char *out, size_t len, const char *name, const char **dir, char *err,
                          size_t errlen);

/*
 * Reads the regular file at path whole into *out (malloc'ed, NUL-terminated,
 * *len bytes), through short reads and EINTR; with nofollow a symlink at
 * path is refused (UV_ELOOP). 0; UV_EINVAL when it is not a regular file;
 * OCISYNC_ETOOBIG when it is over max bytes; UV_EIO when it shrank; UV_E*.
 */
int ocisync__read_small(const char *path, size_t max, bool nofollow, char **out, size_t *len);

/*
 * The names in the directory at path (not "." and ".."), sorted bytewise,
 * into *names (each and the array malloc'ed; free with
 * ocisync__dir_names_free). At most max of them: OCISYNC_ETOOBIG beyond.
 * 0; UV_E* opening or reading it (nothing is returned then).
 */
int ocisync__dir_names(const char *path, size_t max, char ***names, size_t *n);
void ocisync__dir_names_free(char **names, size_t n);

/* 16 random hex digits and a NUL (getrandom), so that concurrent temp files never share a name. */
int ocisync__random_hex16(char out[17]);

#endif
