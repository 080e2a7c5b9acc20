// WaitFor: poll a condition until it holds or a deadline passes.
//
// Every wait in a test is bounded, so a service that never comes up fails the test
// instead of hanging it. Thread-safe (it only calls the condition).
#pragma once

#include <chrono>
#include <functional>

namespace manifold::test {

// Calls `condition` every `interval` until it returns true (then true) or `timeout` has
// passed (then false, after one last call at the deadline).
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(20));

}  // namespace manifold::test
