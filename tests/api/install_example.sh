#!/bin/sh
# Installs the build into a scratch prefix, builds examples/parse_page.c
# against the installed header and library with pkg-config alone, and
# parses a page of the tiny model from memory with it.
# usage: install_example.sh BUILD_DIR SOURCE_DIR MODEL IMAGE SCRATCH [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 model=$3 image=$4 tmp=$5 extra=${6:-}
rm -rf "$tmp"
mkdir -p "$tmp"
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n 1)
export PKG_CONFIG_PATH="$libdir"
flags=$(pkg-config --cflags --libs dotsocr)
case "$flags" in *"$tmp/prefix"*) ;; *) echo "pkg-config does not point at the install: $flags"; exit 1 ;; esac
# shellcheck disable=SC2086
cc -std=c17 -Wall -Wextra -Werror $extra "$src/examples/parse_page.c" $flags -o "$tmp/parse_page"
LD_LIBRARY_PATH="$(dirname "$libdir")" "$tmp/parse_page" "$model" "$image" > "$tmp/page.md" 2> "$tmp/err.txt" || {
  cat "$tmp/err.txt"; exit 1; }
grep -q "cells" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
# the installed library really is the one the example ran on
LD_LIBRARY_PATH="$(dirname "$libdir")" ldd "$tmp/parse_page" | grep -q "$tmp/prefix" || { echo "not linked to the install"; exit 1; }
cat "$tmp/err.txt"
rm -rf "$tmp"
echo "example built with pkg-config and run: ok"
