# Project-wide compiler flags: strict warnings (errors in every build, CI included), no
# floating-point contraction (the fast paths and the reference oracle must agree bit for bit).
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-qual
                    -Wmissing-declarations -Wimplicit-fallthrough -ffp-contract=off)
# GCC 12 at -O3 reports false -Wrestrict errors inside std::string concatenation (GCC bug 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  add_compile_options(-Wno-restrict)
endif()
if(DITHER_WERROR)
  add_compile_options(-Werror)
endif()

# Instruction set. x86-64-v2 (SSE4.1/4.2, every x86-64 CPU since about 2009) lets the engine's
# 4-lane integer vectors use single instructions for min/max and 32-bit multiplies: +40% on
# error diffusion here. Set DITHER_MARCH to "" to build for the plain x86-64 baseline, or to
# "native" for the build machine only.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(DITHER_MARCH "x86-64-v2" CACHE STRING "Value for -march (empty: compiler default)")
  if(DITHER_MARCH)
    add_compile_options(-march=${DITHER_MARCH})
  endif()
endif()
