#include "engine/isa.h"

#include <algorithm>
#include <atomic>

#include "engine/isa_config.h"

namespace dither::engine {
namespace {

Isa detect() {
#if DITHER_ENGINE_X86_64_V3
  // libgcc's check includes the operating system's support for the AVX registers (XCR0).
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v3")) return Isa::kX86_64V3;
#endif
  return Isa::kBuild;
}

constinit std::atomic<Isa> ceiling{Isa::kX86_64V3};

}  // namespace

Isa best_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() { return std::min(best_isa(), ceiling.load(std::memory_order_relaxed)); }

std::string_view isa_name(Isa isa) { return isa == Isa::kX86_64V3 ? "x86-64-v3" : "build"; }

void detail::limit_isa(Isa c) { ceiling.store(c, std::memory_order_relaxed); }

}  // namespace dither::engine
