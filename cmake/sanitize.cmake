# The "Sanitize" build type: AddressSanitizer + UndefinedBehaviorSanitizer, optimised enough to run
# the whole suite quickly. Any report aborts the test that caused it.
set(_san_flags "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all")
set(CMAKE_C_FLAGS_SANITIZE "${_san_flags}" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS_SANITIZE "${_san_flags}" CACHE STRING "" FORCE)
set(CMAKE_EXE_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined" CACHE STRING "" FORCE)
set(CMAKE_SHARED_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined" CACHE STRING "" FORCE)
