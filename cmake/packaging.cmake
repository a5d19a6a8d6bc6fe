# `cpack -G DEB`: one package, ocisync, with the tool, libocisync.so.0 and what a C program
# needs to build against it, from a build configured for /usr
# (-DCMAKE_INSTALL_PREFIX=/usr: Debian's multiarch library directory, no RUNPATH; see README,
# "Install"). Its dependencies are read from the binaries by dpkg-shlibdeps.

set(OCISYNC_DEB_MAINTAINER "ocisync maintainers <maintainers@users.noreply.b-seed-7c39b24d.example>"
    CACHE STRING "The .deb's Maintainer field")

# Debian wants a copyright file and a changelog in /usr/share/doc/PACKAGE, gzip -9n'ed.
set(OCISYNC_DEB_DOC ${CMAKE_INSTALL_DATADIR}/doc/ocisync)
string(TIMESTAMP OCISYNC_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${CMAKE_BINARY_DIR}/debian/changelog
  "ocisync (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
  "  * Built from ocisync's CMake build with cpack -G DEB.\n\n"
  " -- ${OCISYNC_DEB_MAINTAINER}  ${OCISYNC_DEB_DATE}\n")
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/debian/changelog.gz
  COMMAND gzip -9nf ${CMAKE_BINARY_DIR}/debian/changelog -c > ${CMAKE_BINARY_DIR}/debian/changelog.gz
  DEPENDS ${CMAKE_BINARY_DIR}/debian/changelog)
add_custom_target(ocisync_deb_doc ALL DEPENDS ${CMAKE_BINARY_DIR}/debian/changelog.gz)
install(FILES ${CMAKE_SOURCE_DIR}/cmake/debian/copyright ${CMAKE_BINARY_DIR}/debian/changelog.gz
        DESTINATION ${OCISYNC_DEB_DOC} COMPONENT deb EXCLUDE_FROM_ALL)

set(CPACK_PACKAGE_NAME ocisync)
set(CPACK_PACKAGE_VENDOR "ocisync")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${OCISYNC_DEB_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "copy, mirror and build container images against OCI registries")
# The first line of Description is the summary above; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "ocisync copies container images between OCI and Docker registries, OCI
layouts and archives by talking the distribution API directly, with no
Docker daemon; mirrors repositories and registries from skopeo sync's
YAML; builds multi-platform images from directories or Dockerfiles and
pushes them; and reads and edits registries.
.
This package holds the ocisync tool, its man pages and shell completions,
and libocisync (shared and static) with its header, pkg-config file and
CMake package, for C programs that embed it.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libocisync.so.0: a shlibs file (what a package linking it depends on) and the ldconfig
# trigger, written here: CPack's own (GENERATE_SHLIBS) calls ldconfig from postinst/postrm,
# which lintian refuses.
file(WRITE ${CMAKE_BINARY_DIR}/debian/shlibs
  "libocisync ${PROJECT_VERSION_MAJOR} ocisync (>= ${PROJECT_VERSION})\n")
file(WRITE ${CMAKE_BINARY_DIR}/debian/triggers "activate-noawait ldconfig\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/shlibs ${CMAKE_BINARY_DIR}/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
# Everything a plain install has, plus the Debian documents (component deb, which a plain
# `cmake --install` leaves out), in one package.
set(CPACK_COMPONENTS_ALL Unspecified deb)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
include(CPack)
