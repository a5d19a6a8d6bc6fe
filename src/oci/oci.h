/*
 * The image formats' interface: references, digests, manifests and
 * platforms. (The rest of src/oci, layouts, archives, tar, layers and
 * image configs, has headers of its own; the copy engine that also lives
 * here for now is the one part that uses src/proto.)
 */
#ifndef OCI_OCI_H
#define OCI_OCI_H

#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/ref.h"

#endif
