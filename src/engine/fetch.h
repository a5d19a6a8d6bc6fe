/*
 * One URL downloaded to one file: what a Dockerfile's `ADD https://... /dest`
 * needs, done the way BuildKit's HTTP source does it (source/http/source.go,
 * frontend/dockerfile/dockerfile2llb/convert_copy.go):
 *
 * - the file is named after the last segment of the URL's path as given
 *   (percent-decoded, query and fragment left out), not after the redirect
 *   target: Dockerfile ADD passes that name to the source explicitly, so a
 *   Content-Disposition header is ignored (engine_fetch_filename);
 * - its mode is 0600 (ADD --chmod changes it afterwards, not here);
 * - its mtime comes from Last-Modified, which BuildKit sets to the Unix
 *   epoch (0) when the header is absent or unreadable;
 * - ADD --checksum takes "sha256:<hex>", the only algorithm BuildKit's HTTP
 *   source hashes with;
 * - redirects are followed as Go's net/http client follows them: at most 10
 *   requests in all, so the 10th redirect in a row is refused.
 */
#ifndef ENGINE_FETCH_H
#define ENGINE_FETCH_H

#include "ocisync.h"
#include "oci/digest.h"
#include "proto/http.h"

#include <stddef.h>
#include <stdint.h>

/* At most this many requests per download (Go's client: "stopped after 10 redirects"). */
#define ENGINE_FETCH_MAX_REQUESTS 10
/* Room for any URL the client accepts: an origin and a path of up to PROTO_MAX_URL. */
#define ENGINE_FETCH_URL_MAX (PROTO_MAX_URL + LOOP_HOST_MAX + 32)
/* A file name: NAME_MAX and its NUL. */
#define ENGINE_FETCH_NAME_MAX 256

struct engine_fetch_result {
    struct oci_digest digest; /* sha256 of what was written */
    uint64_t size;
    /* From Last-Modified (seconds since the epoch), or -1 when absent or unreadable. */
    int64_t mtime;
    char final_url[ENGINE_FETCH_URL_MAX]; /* after redirects, query included */
    /* engine_fetch_filename of the URL as given: the name when dest is a directory. */
    char filename[ENGINE_FETCH_NAME_MAX];
};

/*
 * The name BuildKit gives the file of a Dockerfile's ADD of url when the
 * destination is a directory: the last segment of the URL's path (trailing
 * slashes ignored), percent-decoded; "__unnamed__" when the path has none
 * ("http://host", "http://host/") or the URL does not parse; "download"
 * when the segment is "." or ".." or holds a control character. Leading and
 * trailing white space are trimmed. Returns 0, or OCISYNC_ETOOBIG (name
 * longer than ENGINE_FETCH_NAME_MAX - 1 bytes, which no file system takes).
 */
int engine_fetch_filename(const char *url, char name[ENGINE_FETCH_NAME_MAX]);

/*
 * Parses an HTTP date (Last-Modified) in the three forms HTTP/1.1 allows
 * and Go's http.ParseTime reads: "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday,
 * 06-Nov-94 08:49:37 GMT" and "Sun Nov  6 08:49:37 1994". Returns 0 with
 * *t in seconds since the epoch, or OCISYNC_EUSAGE.
 */
int engine_fetch_parse_date(const char *s, int64_t *t);

/*
 * GETs url (http or https) into the file at path, blocking: it runs a loop
 * of its own (engine_session) and returns when done.
 *
 * Transfers use opts (NULL: the defaults): the connect and idle timeouts,
 * the deadline and the low-speed limit of every request; the source side's
 * TLS settings (opts->src: tls_verify, cert_dir, and the certs.d entry of
 * each host, on top of the system CAs). No credentials are ever sent, and
 * the request asks for Accept-Encoding: identity: the file is the server's
 * bytes, never decoded.
 * With opts->handle_signals, SIGINT or SIGTERM ends it with
 * OCISYNC_EINTERRUPTED.
 *
 * Redirects (301, 302, 303, 307, 308) are followed up to
 * ENGINE_FETCH_MAX_REQUESTS requests (then OCISYNC_EREDIRECT); one from
 * https to http is refused (OCISYNC_EREDIRECT) unless opts->src.tls_verify
 * is OCISYNC_TLS_VERIFY_OFF. A final status other than 2xx fails with an
 * error naming the URL and the status (OCISYNC_ENOTFOUND for 404 and 410,
 * OCISYNC_EUNAUTHORIZED for 401, OCISYNC_EDENIED for 403, else
 * OCISYNC_EREGISTRY). Nothing is retried.
 *
 * The body streams to a temp file next to path (mode 0600), hashed as it
 * arrives, and is renamed to path once complete and verified: on any error
 * nothing is left behind, and an existing file at path is only ever
 * replaced whole. A body longer than max_bytes fails with OCISYNC_ETOOBIG.
 * checksum, if not NULL, must be a sha256 digest the content matches
 * (OCISYNC_EDIGESTMISMATCH otherwise; a sha512 one is OCISYNC_EUSAGE). When
 * Last-Modified is readable, the file's mtime is set from it.
 *
 * Returns 0 with res filled, or an error with a sentence in err naming the
 * URL and what failed.
 */
int engine_fetch_url(const char *url, const struct ocisync_copy_opts *opts, const char *path,
                     uint64_t max_bytes, const struct oci_digest *checksum,
                     struct engine_fetch_result *res, char *err, size_t errlen);

#endif
