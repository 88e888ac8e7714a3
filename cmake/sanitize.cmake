# The "Sanitize" build type: AddressSanitizer + UndefinedBehaviorSanitizer, optimised enough to run
# the whole suite quickly. Any report aborts the test that caused it. scripts/build.sh makes it
# with clang, which also builds the libFuzzer targets in it (fuzz/, -DDITHER_FUZZ=ON): one
# instrumented build for both. With clang, UBSan's `function` check is left out: clang 14 cannot
# emit its prologue data for split C++20 coroutines with debug information ("Cannot represent a
# difference across sections" in src/http).
set(_san_flags "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all")
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  string(APPEND _san_flags " -fno-sanitize=function")
endif()
set(CMAKE_C_FLAGS_SANITIZE "${_san_flags}" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS_SANITIZE "${_san_flags}" CACHE STRING "" FORCE)
set(CMAKE_EXE_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined" CACHE STRING "" FORCE)
set(CMAKE_SHARED_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined" CACHE STRING "" FORCE)
