/*
 * The image formats' interface: references, digests, manifests and
 * platforms. src/oci knows images without the network; its storage parts
 * (layouts, archives, tar, layers, image configs) have headers of their
 * own. Nothing in src/oci includes src/proto: moving images is
 * src/engine's.
 */
#ifndef OCI_OCI_H
#define OCI_OCI_H

#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/ref.h"

#endif
