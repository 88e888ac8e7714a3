// Internal: whether this build compiles error diffusion's band loops a second time for
// x86-64-v3 (isa.h). CMake decides (src/engine/CMakeLists.txt: GCC, x86-64, DITHER_MARCH below
// x86-64-v3) and defines DITHER_ENGINE_X86_64_V3=1 for the engine: the tests that run the
// build's copy as well, and the check of the copy's objects, are registered on the same
// condition. GCC only: Clang 14 (the fuzzing build's compiler) knows no level names in
// __builtin_cpu_supports, and the copy has been measured and checked with GCC alone.
#pragma once

// clang-tidy, which is Clang, reads the GCC build's commands: it sees one copy too.
#if !defined(DITHER_ENGINE_X86_64_V3) || defined(__clang__)
#undef DITHER_ENGINE_X86_64_V3
#define DITHER_ENGINE_X86_64_V3 0
#endif

// CMake judges by DITHER_MARCH; flags of another origin could make the whole build AVX2, and
// then the copy's objects would share AVX2 code (engine_v3_objects would fail, less clearly).
#if DITHER_ENGINE_X86_64_V3 && defined(__AVX2__)
#error "the build already targets AVX2: set DITHER_MARCH to the level the compiler is given"
#endif
