// Manifest annotations a job asked for, set on the image it pushes. A builder's layer cache
// may hand back an image built for another request, whose manifest carries that request's
// annotations and not this one's; the agent makes the manifest carry this one's before the
// push, whatever the cache served (a local cache image or one pulled from a registry).
//
// The manifest is re-serialised only when it lacks one of them, so an image that has them
// already keeps its bytes and digest. Plain functions; thread-safe as long as nobody else
// writes the layout meanwhile.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/layout.h"
#include "common/status.h"

namespace manifold {

// The bytes of a single-platform manifest whose top-level annotations hold `annotations`
// (each replacing a value under the same key; its other annotations stay): the same bytes
// when it holds them all already, else new ones. Refuses what ParseManifest refuses, and a
// Docker schema2 manifest that lacks any of them (its format has no annotations).
Result<std::string> AnnotateManifest(std::string_view bytes,
                                     const std::map<std::string, std::string>& annotations);

// Makes the manifest `image` pushes carry `annotations`: when it lacks any, writes the
// annotated manifest into the layout's blobs and points `image` at it (its descriptor's
// digest and size, its bytes, its parsed manifest); index.json keeps naming the builder's.
Status AnnotateLayoutImage(const std::map<std::string, std::string>& annotations,
                           OciLayoutImage* image);

}  // namespace manifold
