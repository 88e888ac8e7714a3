// Which instruction set the engine's hottest loops run with.
//
// The engine is built for DITHER_MARCH (x86-64-v2 by default: every x86-64 CPU since about
// 2009). Error diffusion's band loops (error_diffusion_impl.h), the inner loop of the most used
// algorithm, are compiled a second time for x86-64-v3 (AVX2, BMI2, FMA: most Intel Core and Xeon
// CPUs since 2013, AMD since 2015): its three-operand VEX encoding needs no register copies, and
// the loop is bound by how many instructions a core retires. That copy runs where the CPU has
// x86-64-v3, chosen once per process. Both give the same bytes (integer arithmetic only), and
// the tests run both. Only GCC builds for x86-64 below x86-64-v3 have the second copy (CMake's
// DITHER_ENGINE_X86_64_V3); elsewhere there is one. The JPEG decoder's AC scans have a copy of
// their own on the same switch (src/imaging/jpeg_ac.h), used where fast_bit_deposit() too.
//
//   if (engine::active_isa() == engine::Isa::kX86_64V3) ...
#pragma once

#include <string_view>

namespace dither::engine {

enum class Isa {
  kBuild,     // the instruction set the build targets (DITHER_MARCH)
  kX86_64V3,  // the second copy, for CPUs with x86-64-v3
};

// The best this build has and this CPU runs.
Isa best_isa();
// What the hot loops use now: best_isa(), unless detail::limit_isa() lowered it.
Isa active_isa();
// "build" or "x86-64-v3".
std::string_view isa_name(Isa isa);
// Whether this CPU's BMI2 pdep takes a few cycles: true on Intel CPUs with BMI2 and on AMD (and
// Hygon) from Zen 3 (family 19h); false before that, where it is microcoded (tens to hundreds of
// cycles), on other vendors, without BMI2, and always in a build without the x86-64-v3 copies.
// The JPEG decoder's x86-64-v3 copy relies on it (src/imaging/jpeg_ac.h).
bool fast_bit_deposit();

namespace detail {
// Runs the hot loops with at most `ceiling` from now on: for the tests and the benchmark, which
// run the build's copy on any CPU this way. A dither already running keeps the copy it chose.
void limit_isa(Isa ceiling);
}  // namespace detail

}  // namespace dither::engine
