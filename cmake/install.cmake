# The installed form of nabla (included from CMakeLists.txt when NABLA_INSTALL is on):
#   lib/libnabla.a             the static library (CMake target nabla::nabla_static)
#   lib/libnabla.so.0.2.0      the shared library, SONAME libnabla.so.0.2, exporting only the
#                              nb_* names of the public headers (nabla::nabla_shared)
#   include/nabla.h, nabla/    the public headers (never src/: internal headers stay private)
#   lib/cmake/nabla/           find_package(nabla 0.2) -> nabla::nabla (shared if installed)
#   lib/pkgconfig/nabla.pc     pkg-config --cflags --libs nabla
# and `cpack -G DEB` packages all of it as nabla_<version>_<arch>.deb.
include(CMakePackageConfigHelpers)

# Sanitized builds are for the test suite; a shared library built with them is of no use.
set(nb_shared_default ON)
if(NABLA_SANITIZE)
  set(nb_shared_default OFF)
endif()
option(NABLA_SHARED "Also build and install the shared library libnabla.so" ${nb_shared_default})

set(NABLA_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/nabla)
# 0.x releases may break the ABI in every minor version, so the SONAME carries major.minor.
set(NABLA_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})

set_target_properties(nabla PROPERTIES EXPORT_NAME nabla_static)
set(nb_install_targets nabla)

get_target_property(nb_pic nabla POSITION_INDEPENDENT_CODE)
if(NABLA_SHARED AND NOT nb_pic)
  message(FATAL_ERROR "nabla: the shared library needs position-independent objects: "
                      "-DCMAKE_POSITION_INDEPENDENT_CODE=OFF goes with -DNABLA_SHARED=OFF")
endif()
if(NABLA_SHARED)
  # The linker version script lists the public names; it is regenerated when a public header
  # changes, so a function declared in include/ is exported without further annotation.
  file(GLOB nb_api_headers CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/include/*.h ${PROJECT_SOURCE_DIR}/include/nabla/*.h)
  list(APPEND nb_api_headers ${PROJECT_BINARY_DIR}/include/nabla/version.h)
  set(nb_map ${PROJECT_BINARY_DIR}/nabla.map)
  add_custom_command(OUTPUT ${nb_map}
    COMMAND ${CMAKE_COMMAND} -DOUT=${nb_map} "-DHEADERS=${nb_api_headers}"
            -P ${PROJECT_SOURCE_DIR}/cmake/exports.cmake
    DEPENDS ${nb_api_headers} ${PROJECT_SOURCE_DIR}/cmake/exports.cmake
    COMMENT "nabla.map: public names of the shared library"
    VERBATIM)
  # Same objects as the static library (whole archive), nothing compiled twice.
  add_library(nabla_shared SHARED ${nb_map})
  target_link_libraries(nabla_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,nabla>")
  target_link_options(nabla_shared PRIVATE "LINKER:--version-script=${nb_map}"
    "LINKER:--no-undefined")
  target_include_directories(nabla_shared INTERFACE
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  set_target_properties(nabla_shared PROPERTIES
    OUTPUT_NAME nabla
    EXPORT_NAME nabla_shared
    VERSION ${PROJECT_VERSION}
    SOVERSION ${NABLA_SOVERSION}
    LINKER_LANGUAGE C
    LINK_DEPENDS ${nb_map}
    # libopenblas.so.0 is found through the ld.so cache, which Debian points at the pthread
    # build by default (two thread pools, 2-3x slower at 2 threads): look in the OpenMP
    # build's directory first, as the build tree does.
    INSTALL_RPATH "${NABLA_OPENBLAS_OPENMP_DIR}")
  list(APPEND nb_install_targets nabla_shared)
endif()

install(TARGETS ${nb_install_targets} EXPORT nablaTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
          NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/nabla/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nabla COMPONENT dev)

# ---- CMake package ---------------------------------------------------------------------------
set(NABLA_CONFIG_OPENMP ${OpenMP_C_FOUND})
set(NABLA_CONFIG_MPI ${NABLA_HAVE_MPI})
install(EXPORT nablaTargets NAMESPACE nabla:: DESTINATION ${NABLA_CMAKEDIR} COMPONENT dev)
configure_package_config_file(cmake/nablaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nablaConfig.cmake INSTALL_DESTINATION ${NABLA_CMAKEDIR})
# 0.x: find_package(nabla 0.2) accepts 0.2.y only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nablaConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nablaConfig.cmake ${PROJECT_BINARY_DIR}/nablaConfigVersion.cmake
  DESTINATION ${NABLA_CMAKEDIR} COMPONENT dev)

# ---- pkg-config --------------------------------------------------------------------------------
# Libs.private is what a static link needs on top of -lnabla. The OpenMP OpenBLAS has no .pc
# and no libopenblas.so link name, so it is named by path; otherwise Debian's openblas.pc.
set(NB_PC_REQUIRES_PRIVATE "zlib, libcjson")
set(NB_PC_LIBS_PRIVATE "")
if(OpenMP_C_FOUND)
  string(APPEND NB_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}")
endif()
if(NABLA_OPENBLAS_OPENMP)
  string(APPEND NB_PC_LIBS_PRIVATE " ${NABLA_OPENBLAS_OPENMP}")
else()
  string(APPEND NB_PC_REQUIRES_PRIVATE ", openblas")
endif()
if(NABLA_HAVE_MPI)
  string(APPEND NB_PC_REQUIRES_PRIVATE ", mpi-c") # Debian's pkg-config name of the MPI in use
endif()
string(APPEND NB_PC_LIBS_PRIVATE " -lm")
string(STRIP "${NB_PC_LIBS_PRIVATE}" NB_PC_LIBS_PRIVATE)
# The prefix is only known at install time (cmake --install --prefix, cpack's /usr).
set(NB_PC_PREFIX "@NB_PC_PREFIX@") # kept for install_pc.cmake
configure_file(cmake/nabla.pc.in ${PROJECT_BINARY_DIR}/nabla.pc.in @ONLY)
install(CODE "set(NB_PC_TEMPLATE \"${PROJECT_BINARY_DIR}/nabla.pc.in\")
set(NB_PC_OUT \"${PROJECT_BINARY_DIR}/pkgconfig/nabla.pc\")
set(NB_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")"
  COMPONENT dev)
install(SCRIPT cmake/install_pc.cmake COMPONENT dev)

# ---- Debian package: cpack -G DEB --------------------------------------------------------------
set(CPACK_PACKAGE_NAME nabla)
set(CPACK_PACKAGE_VENDOR "nabla")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "reverse-mode automatic differentiation in C")
set(CPACK_PACKAGE_DESCRIPTION "nabla builds neural networks from tensor ops recorded on a tape and
computes exact gradients by reverse-mode automatic differentiation, with OpenBLAS, OpenMP and
SGD. This package holds the shared and static libraries, the headers, the CMake package and
the pkg-config file.")
set(CPACK_PACKAGE_CONTACT "nabla maintainers <nabla@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# Runtime libraries found by dpkg-shlibdeps from the shared library's NEEDED entries...
# (dpkg-shlibdeps, and CPack's use of `file`: both installed by scripts/setup-debian.sh).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file for packages built against this one, and the ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# ... plus what a consumer's build needs: the static library's and the CMake package's
# dependencies, and the OpenMP OpenBLAS the library was built to use.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libopenblas-dev, zlib1g-dev, libcjson-dev")
if(NABLA_OPENBLAS_OPENMP)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libopenblas0-openmp")
endif()
if(NABLA_HAVE_MPI)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libopenmpi-dev")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "pkg-config, cmake")
include(CPack)
