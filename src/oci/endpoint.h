/*
 * From what the user said about a registry (ocisync_registry_opts) to a
 * ready proto_registry: the scheme, the TLS configuration (cert dirs,
 * certs.d, verification), and the credentials.
 */
#ifndef OCI_ENDPOINT_H
#define OCI_ENDPOINT_H

#include "ocisync.h"
#include "proto/registry.h"

/*
 * Sets up reg for the registry named registry ("docker.io", "host:port").
 * env_side is "OCISYNC_PULL" or "OCISYNC_PUSH" (credential variables), or
 * NULL. On error err names the registry and the reason.
 */
int oci_endpoint_open(struct proto_registry *reg, struct proto_client *cl, const char *registry,
                      const struct ocisync_registry_opts *o, const char *authfile,
                      const char *env_side, char *err, size_t errlen);

/* The host to connect to for a registry name: "registry-1.docker.io" for docker.io. */
const char *oci_endpoint_api_host(const char *registry);

#endif
