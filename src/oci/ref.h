/*
 * Image references, parsed and normalised the way docker and skopeo do:
 *   alpine                      -> docker.io/library/alpine:latest
 *   user/app                    -> docker.io/user/app:latest
 *   localhost:5000/app          -> localhost:5000/app:latest
 *   ghcr.io/o/app@sha256:...    -> digest reference (no tag)
 *   reg:5000/a/b:v1@sha256:...  -> tag and digest (digest wins for pulls)
 */
#ifndef OCI_REF_H
#define OCI_REF_H

#include "oci/digest.h"

#include <stdbool.h>

#define OCI_REF_REGISTRY_MAX 256
#define OCI_REF_REPO_MAX 256
#define OCI_REF_TAG_MAX 129

struct oci_ref {
    /*
     * "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000". The host is kept
     * as given: the grammar allows uppercase letters in it and docker does not
     * fold them, so "Example.com" and "example.com" are different registries.
     */
    char registry[OCI_REF_REGISTRY_MAX];
    /* "library/alpine" */
    char repository[OCI_REF_REPO_MAX];
    /* "" when the reference has only a digest; "latest" when it had neither. */
    char tag[OCI_REF_TAG_MAX];
    bool has_digest;
    struct oci_digest digest;
};

/*
 * Parses s. An optional "docker://" transport prefix is accepted, as skopeo
 * spells it; a bare "docker:" is not a prefix, because "docker:alpine" is
 * itself a reference (the image docker, tag alpine). Rules follow the
 * distribution reference grammar and docker's normalisation:
 * the first path component is a registry if it contains '.' or ':', is
 * "localhost" or has an uppercase letter; otherwise the registry is docker.io.
 * Registries are host names, IPv4 or bracketed IPv6 addresses with an
 * optional :port. Repository components are [a-z0-9]+ separated by '.', '_',
 * '__' or '-'+ (uppercase is an error of its own); tags are
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a digest after '@' must pass
 * oci_digest_parse. "index.docker.io" becomes "docker.io"; single-component
 * Docker Hub names get "library/"; registry + '/' + repository is at most 255
 * characters; the tag is "latest" only when there is neither tag nor digest.
 * A bare 64-hex image ID is refused, as docker does.
 * On error returns OCISYNC_EREF (or OCISYNC_EDIGEST for a bad digest part),
 * leaves out zeroed and, if err is non-NULL, writes a sentence naming the input
 * and what is wrong into err (`invalid reference "Foo/Bar": repository name
 * must be lowercase`); on success err is set to "".
 */
int oci_ref_parse(const char *s, struct oci_ref *out, char *err, size_t errlen);

/* Whether s is a tag by the grammar above (names a registry lists are checked with it). */
bool oci_ref_tag_valid(const char *s);
/* Whether s is a repository path ("team/app") by the grammar above, at most 255 bytes. */
bool oci_ref_path_valid(const char *s);
/*
 * s for a message, in at most cap bytes (cap >= 400 holds any): its first 96
 * bytes with quotes, backslashes and anything unprintable escaped ("\x1b").
 */
void oci_ref_quote(const char *s, char *buf, size_t cap);

/* "registry/repository:tag", "registry/repository@digest" or both; returns snprintf's result. */
int oci_ref_format(const struct oci_ref *r, char *buf, size_t len);

/*
 * The host[:port] to talk to for r's registry: "registry-1.docker.io" for
 * docker.io, otherwise the registry itself.
 */
const char *oci_ref_api_host(const struct oci_ref *r);

/*
 * True if the registry's host (port ignored) is localhost (any case), a
 * dotted-decimal address in 127.0.0.0/8 or the IPv6 loopback in any spelling
 * ("[::1]"), where docker allows plain HTTP by default. Ambiguous IPv4
 * spellings ("127.1", leading zeros) are not loopback.
 */
bool oci_ref_is_loopback(const struct oci_ref *r);

/* The reference to fetch: the digest if present, otherwise the tag. */
const char *oci_ref_target(const struct oci_ref *r);

#endif
