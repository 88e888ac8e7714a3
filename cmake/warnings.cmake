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
