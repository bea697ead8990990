# Finds llhttp, in this order:
#   1. an installed llhttp CMake package (llhttp::llhttp_static/_shared),
#   2. pkg-config "libllhttp",
#   3. Debian's node-llhttp sources (/usr/share/include/llhttp/llhttp.h and
#      /usr/share/llhttp/{api,http,llhttp}.c), compiled here into objects that
#      go inside libeventstore itself (hidden, so they never clash with a
#      caller's own llhttp).
# Sets:
#   ES_LLHTTP_TARGET          target carrying llhttp's include directory
#   ES_LLHTTP_LINK            what libeventstore links (empty for sources)
#   ES_LLHTTP_OBJECTS         objects to add to libeventstore (sources only)
#   ES_LLHTTP_INCLUDE_TARGET  what users of llhttp.h inside the tree link
#   ES_LLHTTP_PC_LIBS         Libs.private for eventstore.pc
set(ES_LLHTTP_SOURCE_DIR "/usr/share/llhttp" CACHE PATH "llhttp C sources")
set(ES_LLHTTP_INCLUDE_DIR "/usr/share/include/llhttp" CACHE PATH "llhttp.h directory")
set(ES_LLHTTP_PC_LIBS "")
set(ES_CONFIG_EXTRA "")

find_package(llhttp CONFIG QUIET)
if(llhttp_FOUND AND (TARGET llhttp::llhttp_static OR TARGET llhttp::llhttp_shared OR TARGET llhttp::llhttp))
  if(TARGET llhttp::llhttp_static)
    set(ES_LLHTTP_TARGET llhttp::llhttp_static)
  elseif(TARGET llhttp::llhttp_shared)
    set(ES_LLHTTP_TARGET llhttp::llhttp_shared)
  else()
    set(ES_LLHTTP_TARGET llhttp::llhttp)
  endif()
  set(ES_LLHTTP_LINK ${ES_LLHTTP_TARGET})
  set(ES_LLHTTP_OBJECTS "")
  set(ES_LLHTTP_PC_LIBS "-lllhttp")
  set(ES_CONFIG_EXTRA "find_dependency(llhttp CONFIG)")
  message(STATUS "llhttp: CMake package (${ES_LLHTTP_TARGET})")
else()
  pkg_check_modules(LLHTTP QUIET IMPORTED_TARGET libllhttp)
  if(LLHTTP_FOUND)
    set(ES_LLHTTP_TARGET PkgConfig::LLHTTP)
    set(ES_LLHTTP_LINK PkgConfig::LLHTTP)
    set(ES_LLHTTP_OBJECTS "")
    set(ES_LLHTTP_PC_LIBS "-lllhttp")
    set(ES_CONFIG_EXTRA "pkg_check_modules(LLHTTP REQUIRED IMPORTED_TARGET libllhttp)")
    message(STATUS "llhttp: pkg-config libllhttp ${LLHTTP_VERSION}")
  elseif(EXISTS ${ES_LLHTTP_INCLUDE_DIR}/llhttp.h
         AND EXISTS ${ES_LLHTTP_SOURCE_DIR}/api.c
         AND EXISTS ${ES_LLHTTP_SOURCE_DIR}/http.c
         AND EXISTS ${ES_LLHTTP_SOURCE_DIR}/llhttp.c)
    add_library(es_llhttp OBJECT
      ${ES_LLHTTP_SOURCE_DIR}/api.c
      ${ES_LLHTTP_SOURCE_DIR}/http.c
      ${ES_LLHTTP_SOURCE_DIR}/llhttp.c)
    target_include_directories(es_llhttp SYSTEM PUBLIC ${ES_LLHTTP_INCLUDE_DIR})
    set_target_properties(es_llhttp PROPERTIES
      POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
    # Third-party code: build it quietly, whatever our own warning flags are.
    target_compile_options(es_llhttp PRIVATE -w)
    add_library(es_llhttp_include INTERFACE)
    target_include_directories(es_llhttp_include SYSTEM INTERFACE ${ES_LLHTTP_INCLUDE_DIR})
    set(ES_LLHTTP_TARGET es_llhttp_include)
    set(ES_LLHTTP_LINK "")
    set(ES_LLHTTP_OBJECTS $<TARGET_OBJECTS:es_llhttp>)
    message(STATUS "llhttp: compiling Debian's sources from ${ES_LLHTTP_SOURCE_DIR}")
  else()
    message(FATAL_ERROR
      "llhttp not found: no llhttp CMake package, no pkg-config 'libllhttp', "
      "and no sources at ${ES_LLHTTP_SOURCE_DIR}. On Debian install the "
      "package 'node-llhttp' (scripts/install-deps does it), or set "
      "ES_LLHTTP_SOURCE_DIR and ES_LLHTTP_INCLUDE_DIR.")
  endif()
endif()
set(ES_LLHTTP_INCLUDE_TARGET ${ES_LLHTTP_TARGET})
