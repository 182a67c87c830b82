# `cmake --install`: libtok1d (shared and static), the public headers, a pkg-config file and a
# CMake package (find_package(tok1d): tok1d::tok1d, tok1d::tok1d_static). examples/ builds
# against them (scripts/test-install).
include(GNUInstallDirs)

install(TARGETS tok1d_lib tok1d_shared
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES
          include/tok1d/image.h
          include/tok1d/status.h
          include/tok1d/tok1d.h
          include/tok1d/tok1d_c.h
          ${PROJECT_BINARY_DIR}/generated/tok1d/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tok1d)

# What a static link needs besides libtok1d.a (the shared library carries its own).
set(TOK1D_PC_REQUIRES_PRIVATE "libpng libjpeg libwebp libwebpdemux libxxhash libzstd openblas libcrypto")
if(TOK1D_HAVE_JXL)
  string(APPEND TOK1D_PC_REQUIRES_PRIVATE " libjxl")
endif()
# Relocatable: the prefix is found from the .pc file's own place (cmake --install --prefix).
file(RELATIVE_PATH TOK1D_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(cmake/tok1d.pc.in ${PROJECT_BINARY_DIR}/tok1d.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tok1d.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/tok1dConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tok1dConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tok1d
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tok1dConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tok1dConfig.cmake ${PROJECT_BINARY_DIR}/tok1dConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tok1d)
