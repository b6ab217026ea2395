# Cross-compiling for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu,
# against a sysroot of arm64 Debian packages (scripts/test-arm64 makes it
# from the archive with apt-get download + dpkg -x, so nothing arm64 is
# installed on the host). Tests run under qemu-user with that sysroot.
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DDOTS_ARM_SYSROOT=/path/to/sysroot ...
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
if(NOT DOTS_ARM_SYSROOT)
  set(DOTS_ARM_SYSROOT $ENV{DOTS_ARM_SYSROOT})
endif()
if(NOT DOTS_ARM_SYSROOT)
  message(FATAL_ERROR "set DOTS_ARM_SYSROOT to the arm64 sysroot (scripts/test-arm64 makes one)")
endif()
# try_compile projects see these too
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DOTS_ARM_SYSROOT)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${DOTS_ARM_SYSROOT})
set(ENV{PKG_CONFIG_LIBDIR} "${DOTS_ARM_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${DOTS_ARM_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(_dots_arm_libs "${DOTS_ARM_SYSROOT}/usr/lib/aarch64-linux-gnu:${DOTS_ARM_SYSROOT}/lib/aarch64-linux-gnu:${DOTS_ARM_SYSROOT}/usr/lib")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-L${DOTS_ARM_SYSROOT}/usr/lib/aarch64-linux-gnu -L${DOTS_ARM_SYSROOT}/usr/lib -Wl,-rpath-link,${_dots_arm_libs}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${CMAKE_EXE_LINKER_FLAGS_INIT}")
set(CMAKE_FIND_ROOT_PATH ${DOTS_ARM_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# -cpu max: every extension (DotProd, I8MM, BF16), so every kernel runs.
# qemu translates every absolute path through the sysroot first: the
# dynamic loader, libc and the libraries all come from it
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-cpu;max;-L;${DOTS_ARM_SYSROOT})
