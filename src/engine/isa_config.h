// Internal: whether this build compiles error diffusion's band loops a second time for
// x86-64-v3 (isa.h). GCC only: it inlines the loop's baseline helpers into a function with
// `target("arch=x86-64-v3")`, and its __builtin_cpu_supports knows the level by name (Clang 14,
// the fuzzing build's compiler, does neither). Not when the build itself targets AVX2 or more.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX2__)
#define DITHER_ENGINE_X86_64_V3 1
#else
#define DITHER_ENGINE_X86_64_V3 0
#endif
