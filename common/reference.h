// Reference: an image reference such as "127.0.0.1:5000/team/app:1.2" or
// "ghcr.io/org/app@sha256:...", parsed by the Distribution reference grammar.
//
// Tags a user asks for are parsed here once, at the boundary; everything after works
// on the parsed parts. Plain values.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

struct Reference {
  std::string registry;    // "127.0.0.1:5000", "ghcr.io", "docker.io" when none is given
  std::string repository;  // "team/app"; "library/app" for a one-part name on docker.io
  std::string tag;         // "latest" when neither tag nor digest is given
  std::string digest;      // "" or "sha256:..."

  // "registry/repository" (the name without tag or digest).
  std::string Name() const;
  // The full reference: Name() + ":" + tag and/or "@" + digest.
  std::string ToString() const;
  bool operator==(const Reference&) const = default;
};

// Parses with docker's normalisation: the first component is a registry host when it
// contains '.' or ':' or is "localhost"; otherwise the registry is docker.io and a
// one-component repository gets "library/". Enforces the grammar: lowercase path
// components [a-z0-9]+ joined by '.', '_', '__' or '-'+; name at most 255 characters;
// tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digest "algorithm:hex" (sha256 with 64 hex).
// Errors quote the input and say which part is wrong.
Result<Reference> ParseReference(std::string_view text);

// A repository name alone ("team/app"), as the registry API takes it in its paths: the
// path components of ParseReference's grammar, at most 255 characters. The error quotes
// the name and says what is wrong with it.
Status ValidateRepositoryName(std::string_view repository);

// A tag alone: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool IsValidTag(std::string_view tag);

// Whether requests to this registry host use plain HTTP by default: like docker, hosts on
// the loopback network (localhost, 127.0.0.0/8, [::1]) are treated as insecure.
bool IsLoopbackRegistry(std::string_view registry);

}  // namespace manifold
