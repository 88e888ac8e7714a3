#include "engine/isa.h"

#include <algorithm>
#include <atomic>

#include "engine/isa_config.h"

#if DITHER_ENGINE_X86_64_V3
#include <cpuid.h>

#include <cstring>
#endif

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

bool detect_fast_bit_deposit() {
#if DITHER_ENGINE_X86_64_V3
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("bmi2")) return false;
  // The vendor from cpuid itself: libgcc names Intel and AMD only, and Hygon's Dhyana (a Zen 1,
  // pdep microcoded) is neither to it.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  const std::string_view name(vendor, 12);
  if (name == "GenuineIntel") return true;  // every Intel CPU with BMI2: 3 cycles
  if (name != "AuthenticAMD" && name != "HygonGenuine") return false;  // unknown: assume slow
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const unsigned base = (eax >> 8) & 0xF;
  const unsigned family = base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
  return family >= 0x19;  // Zen 3 and later
#else
  return false;
#endif
}

constinit std::atomic<Isa> ceiling{Isa::kX86_64V3};

}  // namespace

Isa best_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() { return std::min(best_isa(), ceiling.load(std::memory_order_relaxed)); }

std::string_view isa_name(Isa isa) { return isa == Isa::kX86_64V3 ? "x86-64-v3" : "build"; }

bool fast_bit_deposit() {
  static const bool fast = detect_fast_bit_deposit();
  return fast;
}

void detail::limit_isa(Isa c) { ceiling.store(c, std::memory_order_relaxed); }

}  // namespace dither::engine
