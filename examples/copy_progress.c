/*
 * copy_progress: copies one image with libocisync and reports its progress.
 *
 *   copy_progress SRC DST
 *
 * SRC and DST are what `ocisync copy` takes (docker://REF or a bare
 * reference, oci:DIR[:NAME], ...). Each event ocisync reports is printed as a
 * line on standard error (blobs started, copied, mounted or skipped,
 * manifests pushed, images done); the digest the destination now holds goes
 * to standard output. Build it against an installed ocisync:
 *
 *   cc -o copy_progress copy_progress.c $(pkg-config --cflags --libs ocisync)
 */
#include <ocisync.h>

#include <inttypes.h>
#include <stdio.h>

struct progress {
    uint64_t blobs, bytes;
};

static const char *short_digest(const char *d)
{
    /* "sha256:" and the first 12 hex digits are enough to tell blobs apart. */
    static char buf[20];
    snprintf(buf, sizeof(buf), "%.19s", d != NULL ? d : "");
    return buf;
}

static void on_event(const struct ocisync_event *ev, void *arg)
{
    struct progress *p = arg;
    const char *platform = ev->platform != NULL ? ev->platform : "-";

    switch (ev->kind) {
    case OCISYNC_EV_BLOB_START:
        fprintf(stderr, "start    %s %" PRId64 " bytes\n", short_digest(ev->digest), ev->size);
        break;
    case OCISYNC_EV_BLOB_COPIED:
        p->blobs++;
        p->bytes += (uint64_t)ev->size;
        fprintf(stderr, "copied   %s %" PRId64 " bytes\n", short_digest(ev->digest), ev->size);
        break;
    case OCISYNC_EV_BLOB_MOUNTED:
        fprintf(stderr, "mounted  %s\n", short_digest(ev->digest));
        break;
    case OCISYNC_EV_BLOB_SKIPPED:
        fprintf(stderr, "skipped  %s\n", short_digest(ev->digest));
        break;
    case OCISYNC_EV_MANIFEST_PUSHED:
        fprintf(stderr, "manifest %s %s\n", short_digest(ev->digest), platform);
        break;
    case OCISYNC_EV_IMAGE_DONE:
        fprintf(stderr,
                "image    %s %s: %" PRIu64 " copied, %" PRIu64 " mounted, %" PRIu64 " skipped\n",
                short_digest(ev->digest), platform, ev->blobs_copied, ev->blobs_mounted,
                ev->blobs_skipped);
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    struct ocisync_copy_opts opts = {0};
    struct ocisync_copy_result res;
    struct progress p = {0};
    const struct ocisync_version_info *v = ocisync_version_info();
    int err;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SRC DST\n", argv[0]);
        return 2;
    }
    /* The headers this was built with, and the library it runs with. */
    fprintf(stderr, "libocisync %s (headers %s)\n", v->version, OCISYNC_VERSION_STRING);

    opts.jobs = 4;
    opts.on_event = on_event;
    opts.event_arg = &p;
    opts.handle_signals = 1;
    err = ocisync_copy(argv[1], argv[2], &opts, &res);
    if (err != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], res.error[0] ? res.error : ocisync_strerror(err),
                ocisync_err_name(err));
        return 1;
    }
    fprintf(stderr, "done: %" PRIu64 " blobs, %" PRIu64 " bytes relayed\n", p.blobs, p.bytes);
    printf("%s\n", res.digest);
    return 0;
}
