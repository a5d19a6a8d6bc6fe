/*
 * libFuzzer target for the tar reader (oci_tar_reader_feed / _finish).
 *
 * The first input byte picks where the rest is split in two; the archive is
 * parsed once in those two pieces, once in one piece and, when small, once
 * a byte at a time. Beyond "no crash", it checks the contracts callers rely
 * on: each entry's data adds up to exactly its size (never more), strings
 * stay within OCI_TAR_PATH_MAX, header-only entries carry no data, errors
 * are negative with a message, and the split never changes the result.
 * Seeds in corpus/tar/ therefore start with one selector byte.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_tar.c src/oci/tar.c \
 *       src/common/error.c src/common/msg.c -luv
 *   ./a.out -dict=fuzz/tar.dict fuzz/corpus/tar
 */
#include "oci/tar.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct track {
    uint64_t hash; /* FNV-1a over every event, to compare runs */
    uint64_t n_entries;
    uint64_t want, got; /* the current entry's size and the data seen so far */
    int in_entry;
};

static void mix(struct track *t, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        t->hash ^= p[i];
        t->hash *= UINT64_C(1099511628211);
    }
}

static int on_entry(void *arg, const struct oci_tar_entry *e)
{
    struct track *t = arg;
    size_t plen = strlen(e->path), llen = strlen(e->linkname);
    static const char header_only[] = "123456";

    if (t->in_entry && t->got != t->want)
        __builtin_trap();
    if (plen == 0 || plen > OCI_TAR_PATH_MAX || llen > OCI_TAR_PATH_MAX)
        __builtin_trap();
    if (e->path[0] == '.' && e->path[1] == '/')
        __builtin_trap();
    if (e->type != '\0' && strchr(header_only, e->type) != NULL && e->size != 0)
        __builtin_trap();
    if (e->mode > 07777)
        __builtin_trap();
    t->in_entry = 1;
    t->want = e->size;
    t->got = 0;
    t->n_entries++;
    mix(t, &e->type, 1);
    mix(t, e->path, plen + 1);
    mix(t, e->linkname, llen + 1);
    mix(t, &e->size, sizeof(e->size));
    mix(t, &e->mode, sizeof(e->mode));
    mix(t, &e->uid, sizeof(e->uid));
    mix(t, &e->gid, sizeof(e->gid));
    mix(t, &e->mtime, sizeof(e->mtime));
    return 0;
}

static int on_data(void *arg, const void *data, size_t len)
{
    struct track *t = arg;

    if (!t->in_entry || len == 0 || len > t->want - t->got)
        __builtin_trap();
    t->got += len;
    mix(t, data, len);
    return 0;
}

struct result {
    int rc;
    struct track t;
    char err[256];
};

/* Parses data in pieces of step bytes, or (step 0) in two pieces cut at split. */
static void run(const uint8_t *data, size_t size, size_t step, size_t split, struct result *res)
{
    struct oci_tar_reader r;
    size_t off = 0;

    memset(res, 0, sizeof(*res));
    memset(res->err, 'x', sizeof(res->err));
    res->t.hash = UINT64_C(14695981039346656037);
    if (oci_tar_reader_init(&r, on_entry, on_data, &res->t) != 0)
        __builtin_trap();
    while (off < size && res->rc == 0) {
        size_t n = size - off;

        if (step > 0 && n > step)
            n = step;
        if (step == 0 && off < split && off + n > split)
            n = split - off;
        res->rc = oci_tar_reader_feed(&r, data + off, n, res->err, sizeof(res->err));
        off += n;
    }
    if (res->rc == 0)
        res->rc = oci_tar_reader_finish(&r, res->err, sizeof(res->err));
    oci_tar_reader_dispose(&r);
    if (res->rc != 0) {
        if (res->rc > 0 || memchr(res->err, '\0', sizeof(res->err)) == NULL || res->err[0] == '\0')
            __builtin_trap();
    } else if (res->t.in_entry && res->t.got != res->t.want) {
        /* A clean finish means the last entry got all of its data. */
        __builtin_trap();
    }
}

static void same(const struct result *a, const struct result *b)
{
    if (a->rc != b->rc || a->t.hash != b->t.hash || a->t.n_entries != b->t.n_entries)
        __builtin_trap();
    if (a->rc != 0 && strcmp(a->err, b->err) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct result whole, halves, bytes;
    size_t split;

    if (size == 0)
        return 0;
    split = size > 1 ? (size_t)data[0] * 131 % size : 0;
    run(data + 1, size - 1, 0, size - 1, &whole);
    run(data + 1, size - 1, 0, split, &halves);
    same(&whole, &halves);
    if (size <= 8192) {
        run(data + 1, size - 1, 1, 0, &bytes);
        same(&whole, &bytes);
    }
    return 0;
}
