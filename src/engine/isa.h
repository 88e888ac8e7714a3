// Which instruction set the engine's hottest loops run with.
//
// The engine is built for DITHER_MARCH (x86-64-v2 by default: every x86-64 CPU since about
// 2009). Error diffusion's band loops (error_diffusion_impl.h), the inner loop of the most used
// algorithm, are compiled a second time for x86-64-v3 (AVX2, BMI2, FMA: Intel since 2013, AMD
// since 2015): its three-operand VEX encoding needs no register copies, and the loop is bound by
// how many instructions the core retires. That copy runs where the CPU has x86-64-v3, chosen once
// per process. Both give the same bytes (integer arithmetic only), and the tests run both.
// Only GCC builds for x86-64 below x86-64-v3 have the second copy; elsewhere there is one.
// DITHER_ENGINE_ISA=build in the environment makes a process start with the build's own loops.
//
//   if (engine::active_isa() == engine::Isa::kX86_64V3) ...
//   engine::limit_isa(engine::Isa::kBuild);  // tests: the build's own loops on any CPU
#pragma once

#include <string_view>

namespace dither::engine {

enum class Isa {
  kBuild,     // the instruction set the build targets (DITHER_MARCH)
  kX86_64V3,  // the second copy, for CPUs with x86-64-v3
};

// The best this build has and this CPU runs.
Isa best_isa();
// What the hot loops use now: best_isa(), or less after limit_isa().
Isa active_isa();
// Runs the hot loops with at most `ceiling` from now on (for tests and benchmarks; not meant to
// be changed while a dither runs).
void limit_isa(Isa ceiling);
// "build" or "x86-64-v3".
std::string_view isa_name(Isa isa);

}  // namespace dither::engine
