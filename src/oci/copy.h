/* The copy engine's context: one event loop, one HTTP client, two registries. */
#ifndef OCI_COPY_H
#define OCI_COPY_H

#include "ocisync.h"
#include "oci/oci.h"
#include "proto/registry.h"

struct copy_ctx {
    uv_loop_t uv;
    struct loop_ctx loop;
    struct proto_client client;
    struct oci_ref src, dst;
    struct proto_registry src_reg, dst_reg;
    bool done;
    struct copy_job *job; /* the job running on this context */
    uv_signal_t sigint, sigterm;
    bool signals;
};

#endif
