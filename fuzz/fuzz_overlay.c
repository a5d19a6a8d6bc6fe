/*
 * libFuzzer target for the overlay extractor (oci_overlay_extract_begin /
 * _feed / _end): the input is a plain tar, extracted (in userxattr mode,
 * owners left alone, content capped at 1 MiB) into a fresh directory next
 * to an empty sentinel directory. Beyond "no crash", it checks what callers
 * rely on: an error is negative with a message and leaves neither dest nor
 * a temporary directory behind; success leaves dest and nothing else; and
 * either way nothing appears outside (the sentinel stays empty, the base
 * directory holds nothing else).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_overlay.c \
 *       src/oci/overlay.c src/oci/tar.c src/oci/unpack.c src/oci/digest.c src/common/error.c \
 *       src/common/log.c src/common/msg.c src/common/sysio.c -luv -lcrypto -lz -lzstd -ljansson
 *   ./a.out -dict=fuzz/tar.dict fuzz/corpus/overlay
 *
 * (scripts/fuzz.sh runs it once its table lists
 * [overlay]="src/oci/overlay.c src/oci/tar.c src/oci/unpack.c src/oci/digest.c".)
 */
#define _GNU_SOURCE
#include "oci/overlay.h"
#include "ocisync.h"

#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[64], dest[128], sentinel[128];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP || flag == FTW_D)
        chmod(p, 0700), rmdir(p);
    else
        unlink(p);
    return 0;
}

/* The names in dir other than "." and ".."; -1 if it cannot be read. */
static int count(const char *dir, const char *except)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            (except == NULL || strcmp(de->d_name, except) != 0))
            n++;
    }
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_overlay_opts o = {
        .mode = OCI_OVERLAY_USERXATTR, .no_chown = true, .max_bytes = 1 << 20};
    struct oci_overlay_extractor *x = NULL;
    struct oci_digest d;
    char err[512];
    int rc;

    if (base[0] == '\0') {
        snprintf(base, sizeof(base), "/tmp/fuzz-overlay-XXXXXX");
        if (mkdtemp(base) == NULL)
            abort();
        snprintf(dest, sizeof(dest), "%s/out", base);
        snprintf(sentinel, sizeof(sentinel), "%s/outside", base);
        if (mkdir(sentinel, 0755) != 0)
            abort();
    }
    memset(err, 'x', sizeof(err));
    rc = oci_overlay_extract_begin(&x, dest, &o, err, sizeof(err));
    if (rc != 0)
        abort();
    /* In two pieces, so that entries meet a split. */
    rc = oci_overlay_extract_feed(x, data, size / 2, err, sizeof(err));
    if (rc == 0)
        rc = oci_overlay_extract_feed(x, data + size / 2, size - size / 2, err, sizeof(err));
    if (rc == 0)
        rc = oci_overlay_extract_end(x, NULL, &d, err, sizeof(err));
    else
        oci_overlay_extract_abort(x);
    if (rc > 0 || (rc != 0 && (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')))
        __builtin_trap();
    if (count(sentinel, NULL) != 0)
        __builtin_trap();
    if (count(base, "outside") != (rc == 0 ? 1 : 0))
        __builtin_trap();
    if (rc == 0 && count(base, NULL) != 2)
        __builtin_trap();
    nftw(dest, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return 0;
}
