// `manifold imagetools inspect REF`: shows what a registry holds under a reference, in
// the layout of `docker buildx imagetools inspect`, so a build's result can be checked
// with the same eyes (and scripts) as a buildx one. `manifold imagetools create -t REF
// SRC...` merges pushed images into one index, like `docker buildx imagetools create`.
//
// Thread-safety: plain functions that touch only their arguments.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

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
                         std::ostream* err, const RegistryOptions& options = {});

struct ImagetoolsCreateOptions {
  std::vector<std::string> tags;         // -t: where the index is pushed (at least one)
  std::vector<std::string> sources;      // images or indexes to merge (at least one)
  std::vector<std::string> annotations;  // --annotation "index:KEY=VALUE" (or "KEY=VALUE")
  // --append: start from what the first tag holds now (an index's children, or one image);
  // a source for a platform it already lists replaces that child.
  bool append = false;
  bool dry_run = false;  // --dry-run: print the index instead of pushing anything
  RegistryOptions registry_options;
};

// Parses --annotation values: "index:KEY=VALUE" or "KEY=VALUE" (index is the default, as
// buildx imagetools create). Other targets (manifest:, manifest-descriptor:) are refused:
// this command writes only the index.
Result<std::map<std::string, std::string>> ParseIndexAnnotations(
    const std::vector<std::string>& annotations);

// Reads every source, all at once (a single-platform image, whose platform comes from its
// config, or an index, whose children are taken as they are), builds one index (OCI for
// OCI children, Docker manifest list for Docker ones, never mixed), makes sure each child
// exists in each target repository (a HEAD finds it, or it is copied from its source
// repository on the same registry with its blobs mounted), and only then PUTs the index
// under every tag. Prints the index digest on *out (with dry_run the index's exact bytes,
// and nothing is copied or pushed); returns the exit code (1 with a one-line error on
// *err, nothing tagged).
int RunImagetoolsCreate(const ImagetoolsCreateOptions& options, std::ostream* out,
                        std::ostream* err);

}  // namespace manifold
