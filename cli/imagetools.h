// `manifold imagetools inspect REF`: shows what a registry holds under a reference, in
// the layout of `docker buildx imagetools inspect`, so a build's result can be checked
// with the same eyes (and scripts) as a buildx one.
//
// Thread-safety: plain functions that touch only their arguments.
#pragma once

#include <ostream>
#include <string>

#include "common/reference.h"
#include "common/registry.h"
#include "common/status.h"

namespace manifold {

// Name, MediaType and Digest of the manifest; for an index or manifest list also each
// child's Name (REF@digest), MediaType and Platform, separated by blank lines. Fails only
// when bytes that claim to be an index do not parse as one.
Result<std::string> FormatInspect(const Reference& reference, const FetchedManifest& manifest);

// Fetches `reference` from its registry and prints FormatInspect, or with `raw` the
// manifest's exact bytes. Returns the exit code (1 with a one-line error on *err).
int RunImagetoolsInspect(const std::string& reference, bool raw, std::ostream* out,
                         std::ostream* err);

}  // namespace manifold
