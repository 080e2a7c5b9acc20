#include "tests/support/push_image.h"

namespace manifold::test {

Status PushTestImage(const RegistryClient& client, const std::string& repository,
                     const std::string& reference, const TestImage& image) {
  Status s = client.PushBlob(repository, image.config.digest, image.config_bytes);
  for (size_t i = 0; s.ok() && i < image.layers.size(); ++i) {
    s = client.PushBlob(repository, image.layers[i].digest, image.layer_bytes[i]);
  }
  if (!s.ok()) return s;
  Result<std::string> digest =
      client.PutManifest(repository, reference, image.manifest.media_type, image.manifest_bytes);
  return digest.ok() ? Status::Ok() : digest.status();
}

}  // namespace manifold::test
