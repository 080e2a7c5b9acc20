// SyntheticBuilder: a Builder backend for benchmarks and scale tests, selected only by
// `manifold-agent --backend synthetic`. It never reads the Dockerfile or the context: after
// a configurable build time (0 allowed) it writes a small but real OCI image layout for
// the requested platform: one layer (a tar holding a file of random bytes, gzip-compressed
// or not), a config naming the platform's os, architecture and variant, and a manifest.
// The agent pushes it like any other backend's output, so the registry, the coordinator's
// merge and the index are all real; only the build itself is simulated.
//
// Thread-safety: Build may run concurrently for different requests; the options are
// immutable after construction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "agent/builder.h"
#include "common/status.h"

namespace manifold {

struct SyntheticBuildOptions {
  // Size of the random file in the layer (the tar around it adds about 1.5 KiB).
  uint64_t layer_bytes = 64 * 1024;
  bool gzip = true;  // tar+gzip layer; false writes an uncompressed tar layer
  std::chrono::milliseconds build_time{0};
};

class SyntheticBuilder : public Builder {
 public:
  // Largest layer it writes; the layer is held in memory while it is written.
  static constexpr uint64_t kMaxLayerBytes = uint64_t{1} << 30;

  explicit SyntheticBuilder(SyntheticBuildOptions options) : options_(options) {}

  std::string Name() const override;

  // Waits build_time (Canceled if *cancel turns true meanwhile), then writes the layout.
  // An I/O failure is Internal naming the path.
  Status Build(const BuildRequest& request,
               const std::function<void(std::string_view output)>& on_output,
               const std::atomic<bool>* cancel) override;

  // InvalidArgument with a message for the agent's flags when options are out of range.
  static Status Validate(const SyntheticBuildOptions& options);

 private:
  const SyntheticBuildOptions options_;
};

}  // namespace manifold
