/*
 * The oci module's interface: references, digests, manifests and the copy
 * engine. Nothing here knows HTTP framing; the engine uses src/proto.
 */
#ifndef OCI_OCI_H
#define OCI_OCI_H

#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/ref.h"

#endif
