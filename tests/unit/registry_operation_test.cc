// The label values a RegistryRequestObserver's operations and statuses become: a small
// fixed set of distinct snake_case names, and the HTTP status or "error".
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "common/registry.h"

namespace manifold {
namespace {

TEST(RegistryOperationTest, NamesAreDistinctLabelValues) {
  const RegistryOperation all[] = {RegistryOperation::kPing,
                                   RegistryOperation::kToken,
                                   RegistryOperation::kBlobHead,
                                   RegistryOperation::kBlobGet,
                                   RegistryOperation::kBlobMount,
                                   RegistryOperation::kBlobUploadStart,
                                   RegistryOperation::kBlobUploadChunk,
                                   RegistryOperation::kBlobUploadStatus,
                                   RegistryOperation::kBlobUpload,
                                   RegistryOperation::kBlobUploadCancel,
                                   RegistryOperation::kManifestHead,
                                   RegistryOperation::kManifestGet,
                                   RegistryOperation::kManifestPut};
  std::set<std::string> names;
  for (RegistryOperation operation : all) {
    std::string name(RegistryOperationName(operation));
    EXPECT_TRUE(std::regex_match(name, std::regex("[a-z]+(_[a-z]+)*"))) << name;
    EXPECT_NE(name, "unknown");
    names.insert(name);
  }
  EXPECT_EQ(names.size(), std::size(all));
  EXPECT_EQ(RegistryOperationName(RegistryOperation::kBlobHead), "blob_head");
  EXPECT_EQ(RegistryOperationName(RegistryOperation::kManifestPut), "manifest_put");
}

TEST(RegistryOperationTest, StatusIsTheHttpCodeOrError) {
  EXPECT_EQ(RegistryStatusName(201), "201");
  EXPECT_EQ(RegistryStatusName(404), "404");
  EXPECT_EQ(RegistryStatusName(0), "error");
}

}  // namespace
}  // namespace manifold
