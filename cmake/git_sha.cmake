# Writes OUT with the source tree's commit, as `#define ORCHLAB_GIT_SHA "..."`,
# at every build (not only at configure time), touching OUT only when the
# value changed. A tree with uncommitted changes gets a "-dirty" suffix.
# Usage: cmake -DSRC=<source dir> -DOUT=<header> -P git_sha.cmake
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY "${SRC}"
                OUTPUT_VARIABLE sha OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(sha)
  execute_process(COMMAND git diff --quiet HEAD --
                  WORKING_DIRECTORY "${SRC}"
                  RESULT_VARIABLE dirty OUTPUT_QUIET ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    string(APPEND sha "-dirty")
  endif()
else()
  set(sha "unknown")
endif()
set(content "#define ORCHLAB_GIT_SHA \"${sha}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
