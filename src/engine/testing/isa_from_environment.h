// For test programs that ctest runs twice where the build has x86-64-v3 copies (engine/isa.h):
// once as the CPU chooses, and once with DITHER_TEST_ISA=build, which the global test environment
// registered here turns into the engine's switch before any test runs. Include it in one source
// file of the test program (engine_test, imaging_test).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#include "engine/isa.h"

namespace dither::engine::testing {

// Whether this run is the one with the build's copy (DITHER_TEST_ISA=build).
inline bool testing_build_copy() {
  const char* isa = std::getenv("DITHER_TEST_ISA");
  return isa != nullptr && std::string_view(isa) == "build";
}

class IsaFromEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (testing_build_copy()) detail::limit_isa(Isa::kBuild);
  }
};

inline const ::testing::Environment* const kIsaEnvironment =
    ::testing::AddGlobalTestEnvironment(new IsaFromEnvironment);

}  // namespace dither::engine::testing
