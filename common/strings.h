// Small text helpers that several layers share, so that each idea has one name.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace manifold {

// The items with `separator` between each two of them: Join({"a", "b"}, ", ") is "a, b".
std::string Join(const std::vector<std::string>& items, std::string_view separator);

}  // namespace manifold
