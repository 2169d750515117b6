# Installation and packaging of weir (included from the top-level
# CMakeLists.txt after the library subdirectories). Installed under the prefix:
#   include/weir/{schema,runtime,transport,queue,node,pipeline,config}/
#                                                      public and generated headers
#   <libdir>/libweir_{schema,runtime,transport,queue,node,pipeline,config}.a
#                                (weir::actors is an interface target: no file)
#   bin/weir                                           the CLI (cli/CMakeLists.txt)
#   <libdir>/cmake/weir/   weirConfig.cmake, weirConfigVersion.cmake,
#                          weirTargets*.cmake, FindCAF.cmake
#   <libdir>/pkgconfig/weir.pc
# Tests, test support, examples and benchmarks install nothing. See docs/install.md.
include(CMakePackageConfigHelpers)

# weir::weir: everything. (The target `weir` is the CLI, hence the other name.)
add_library(weir_all INTERFACE)
add_library(weir::weir ALIAS weir_all)
target_link_libraries(weir_all INTERFACE weir_actors weir_transport weir_runtime weir_schema)
set_target_properties(weir_all PROPERTIES EXPORT_NAME weir)
# The public headers need C++20 (<span>, ...); outside projects get it from the targets.
target_compile_features(weir_runtime PUBLIC cxx_std_20)
if(WEIR_SANITIZE)
  # Instrumented static libraries: whatever links them needs the sanitizer runtimes.
  target_link_options(weir_schema INTERFACE -fsanitize=address,undefined)
endif()
install(TARGETS weir_all EXPORT weir-targets)

set(WEIR_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/weir")

install(EXPORT weir-targets
  NAMESPACE weir::
  FILE weirTargets.cmake
  DESTINATION "${WEIR_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/weirConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/weirConfig.cmake"
  INSTALL_DESTINATION "${WEIR_INSTALL_CMAKEDIR}")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/weirConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/weirConfig.cmake"
  "${PROJECT_BINARY_DIR}/weirConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake"
  DESTINATION "${WEIR_INSTALL_CMAKEDIR}")

# pkg-config: paths relative to the .pc file, so that `cmake --install --prefix`
# anywhere gives a working file.
set(WEIR_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${WEIR_PC_DIR}")
  set(WEIR_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH WEIR_PC_TO_PREFIX "/root/${WEIR_PC_DIR}" "/root")
  string(REGEX REPLACE "/$" "" WEIR_PC_TO_PREFIX "${WEIR_PC_TO_PREFIX}")
  set(WEIR_PC_PREFIX "\${pcfiledir}/${WEIR_PC_TO_PREFIX}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(WEIR_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(WEIR_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(WEIR_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(WEIR_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(WEIR_PC_REQUIRES "capnp kj spdlog fmt cppzmq libzmq tomlplusplus")
set(WEIR_PC_EXTRA_LIBS "")
if(WEIR_SANITIZE)
  # The installed libraries are instrumented: programs must link the runtimes.
  set(WEIR_PC_EXTRA_LIBS " -fsanitize=address,undefined")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/weir.pc.in" "${PROJECT_BINARY_DIR}/weir.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/weir.pc" DESTINATION "${WEIR_PC_DIR}")
