# The test programs' own sources are compiled at -O1 in a Release build. They were 40 % of the
# Release build's compile time at -O3 (-O1 takes a third less), and their time goes into the code
# they test, which the libraries hold and which keeps the build's -O3 (so do the engine's slow
# reference implementations, dither_engine_reference). The Sanitize build is at -O1 throughout.
# A test program is an executable target whose name ends in "_test".
function(dither_test_programs_at_o1 dir)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE" AND target MATCHES "_test$")
      # After the build type's -O3 on the command line: the last -O wins.
      target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-O1>)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(subdir IN LISTS subdirs)
    dither_test_programs_at_o1("${subdir}")
  endforeach()
endfunction()
