# CMake toolchain file: cross-compiles manifold on Debian for another architecture with
# Debian's cross compiler (g++-TRIPLET) and the target's -dev packages installed through
# multiarch (dpkg --add-architecture ARCH; apt-get install libfoo-dev:ARCH). There is no
# sysroot: the target's headers and libraries sit in /usr/include/TRIPLET and
# /usr/lib/TRIPLET, where the cross compiler and linker look. Programs that run during the
# build (capnp, capnpc-c++) are the build machine's.
#   cmake -DCMAKE_TOOLCHAIN_FILE=ops/cmake/debian-cross.cmake \
#         -DMANIFOLD_CROSS_TRIPLET=aarch64-linux-gnu ...
# ops/build.sh does this when MANIFOLD_TARGET_ARCH names a foreign architecture.

set(MANIFOLD_CROSS_TRIPLET "" CACHE STRING "GNU triplet of the target (aarch64-linux-gnu)")
# try_compile projects read this file again and need the triplet too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MANIFOLD_CROSS_TRIPLET)
if(NOT MANIFOLD_CROSS_TRIPLET MATCHES "^([a-z0-9_]+)-linux-gnu")
  message(FATAL_ERROR "debian-cross.cmake: set MANIFOLD_CROSS_TRIPLET to the target's GNU "
                      "triplet, such as aarch64-linux-gnu or x86_64-linux-gnu "
                      "(dpkg-architecture -a ARCH -qDEB_HOST_MULTIARCH)")
endif()

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${CMAKE_MATCH_1})
set(CMAKE_C_COMPILER ${MANIFOLD_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${MANIFOLD_CROSS_TRIPLET}-g++)
# find_library and find_package(CONFIG) then search /usr/lib/TRIPLET, the multiarch dir.
set(CMAKE_LIBRARY_ARCHITECTURE ${MANIFOLD_CROSS_TRIPLET})
# pkg-config must read the target's .pc files, not the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${MANIFOLD_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
