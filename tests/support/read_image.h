// Readers of what a build pushed, through skopeo (an independent client) from a registry
// on 127.0.0.1 without TLS: the raw manifest or index, the image config, and one file of
// the image's filesystem. A failed read is a test failure (gtest expectation) and yields
// an empty or discarded value, so callers just compare. Plain functions; thread-safe
// (each file read uses its own temporary directory).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace manifold::test {

// `reference` is "HOST:PORT/REPO:TAG" or "HOST:PORT/REPO@DIGEST".
nlohmann::json RawManifest(const std::string& reference);
nlohmann::json ImageConfig(const std::string& reference);

// An image index's children by architecture: {"amd64": "sha256:..."}.
std::map<std::string, std::string> ChildrenByArch(const nlohmann::json& index);

// Copies the image at `reference` into an OCI image layout at `layout` and returns the
// paths of its layer blobs (gzipped tars), bottom layer first; empty on failure.
std::vector<std::string> PullLayers(const std::string& reference, const std::string& layout);

// The file at `path` (no leading slash) as the image has it: the layers searched from the
// top; "" when no layer holds it.
std::string FileInImage(const std::string& reference, const std::string& path);

}  // namespace manifold::test
