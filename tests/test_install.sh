#!/bin/sh
# Installs the build into a temporary prefix, then builds and runs a small
# consumer against it twice: with CMake's find_package(eventstore) and with
# pkg-config.  Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1; src=$2
prefix=$(mktemp -d /tmp/es-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT INT TERM
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libeventstore.so' | head -n 1)")
echo "installed into $prefix (libdir $libdir)"
test -f "$prefix/include/eventstore.h"
test -f "$libdir/pkgconfig/eventstore.pc"
test -f "$libdir/cmake/eventstore/eventstoreConfig.cmake"

echo "== find_package(eventstore)"
cmake -S "$src/tests/consumer" -B "$prefix/consumer-build" \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
LD_LIBRARY_PATH="$libdir" "$prefix/consumer-build/consumer"

echo "== pkg-config"
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -o "$prefix/consumer-pc" \
  "$src/tests/consumer/consumer.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs eventstore libuv)
LD_LIBRARY_PATH="$libdir" "$prefix/consumer-pc"
echo "2 passed, 0 failed"
