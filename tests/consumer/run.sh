#!/usr/bin/env bash
# tests/consumer/run.sh MODE ...: use nabla from outside, the three ways the README shows.
#   prefix BUILD_DIR  cmake --install BUILD_DIR into a scratch prefix, then build main.c with
#                     find_package (shared and static) and with pkg-config (shared, and
#                     static from Libs.private); run each; check the installed tree.
#   source SRC_DIR    FetchContent / add_subdirectory of the source tree: no warnings, no
#                     tests or examples in the user's build.
#   deb BUILD_DIR     cpack -G DEB, apt install ./nabla_*.deb (root, Debian), build and run
#                     the consumer against /usr with find_package and pkg-config, then
#                     apt-get purge the package again.
# Prints each command (+ ...) and exits non-zero on the first failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
arg=$(cd "${2:?usage: run.sh prefix|source|deb DIR}" && pwd)
work=$(mktemp -d /tmp/nabla-consumer.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "consumer($mode): FAIL: $*" >&2; exit 1; }
run() { echo "+ $*"; "$@"; }
expect_ok() { # program [env...]: runs it, requires "consumer: ok"
    local out
    out=$("$@" 2>&1) || fail "$* exited $?: $out"
    echo "$out"
    grep -q '^consumer: ok' <<<"$out" || fail "$* did not print consumer: ok"
}
cc=${CC:-cc}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 # a 2x3 problem needs no threads

cmake_consumer() { # build dir, extra cmake args...
    local b=$1
    shift
    echo "+ cmake -S tests/consumer -B $b -DCMAKE_BUILD_TYPE=Release $*"
    cmake -S "$here" -B "$b" -DCMAKE_BUILD_TYPE=Release "$@" >"$b.log" 2>&1 ||
        { cat "$b.log"; fail "configure"; }
    echo "+ cmake --build $b"
    cmake --build "$b" -j2 >>"$b.log" 2>&1 || { cat "$b.log"; fail "build"; }
    if grep -i 'warning' "$b.log"; then fail "warnings in the consumer build (log: above)"; fi
}

pkgconfig_consumer() { # label: builds and runs with pkg-config from the current PKG_CONFIG_PATH
    echo "+ $cc -std=c11 main.c \$(pkg-config --cflags --libs nabla) -lm"
    # shellcheck disable=SC2046
    $cc -std=c11 -Wall -Wextra -Werror "$here/main.c" $(pkg-config --cflags --libs nabla) -lm \
        -o "$work/app_pc_$1"
    expect_ok "$work/app_pc_$1"
}

case $mode in
prefix)
    prefix=$work/prefix
    run cmake --install "$arg" --prefix "$prefix" >"$work/install.log" || fail "install"
    n=$(wc -l <"$arg/install_manifest.txt")
    [ "$n" -gt 10 ] || fail "install manifest has only $n files"
    echo "installed $n files"
    # Public headers only: nothing from src/ (internal headers) may be installed.
    internal=$(find "$here/../../src" -name '*.h')
    [ -n "$internal" ] || fail "no internal headers found to check against"
    for h in $internal; do
        [ -z "$(find "$prefix" -name "$(basename "$h")")" ] || fail "internal header $h installed"
    done
    [ -f "$prefix/include/nabla/version.h" ] || fail "nabla/version.h not installed"
    pc=$(find "$prefix" -name nabla.pc)
    [ -n "$pc" ] || fail "nabla.pc not installed"
    libdir=$(dirname "$(dirname "$pc")")

    # find_package: shared (nabla::nabla) and static (nabla::nabla_static).
    cmake_consumer "$work/cm" -DCMAKE_PREFIX_PATH="$prefix"
    expect_ok "$work/cm/consumer"          # runs through the RPATH CMake set
    expect_ok "$work/cm/consumer_static"
    # (ldd's output is captured first: grep -q closing the pipe early fails it under pipefail.)
    deps=$(ldd "$work/cm/consumer")
    grep -q "$libdir/libnabla.so" <<<"$deps" || fail "consumer not on libnabla.so: $deps"
    deps=$(ldd "$work/cm/consumer_static")
    if grep -q libnabla <<<"$deps"; then fail "static consumer loads libnabla.so"; fi
    # A version the package does not claim to be compatible with is refused.
    mkdir -p "$work/v03"
    printf 'cmake_minimum_required(VERSION 3.18)\nproject(v NONE)\nfind_package(nabla 0.3 QUIET)\nif(nabla_FOUND)\n  message(FATAL_ERROR "0.3 accepted")\nendif()\n' \
        >"$work/v03/CMakeLists.txt"
    cmake -S "$work/v03" -B "$work/v03/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null ||
        fail "find_package(nabla 0.3) accepted a $(basename "$prefix") nabla 0.2"

    # pkg-config: shared, then static with Libs.private + Requires.private.
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    run pkg-config --modversion nabla
    pkg-config --exists 'nabla >= 0.2' || fail "pkg-config: nabla >= 0.2 not satisfied"
    LD_LIBRARY_PATH=$libdir pkgconfig_consumer shared
    echo "+ $cc -std=c11 main.c \$(pkg-config --cflags --static --libs nabla), -lnabla as libnabla.a"
    # shellcheck disable=SC2046
    $cc -std=c11 "$here/main.c" $(pkg-config --cflags --static --libs nabla | sed 's/-lnabla\b/-l:libnabla.a/') \
        -lm -o "$work/app_pc_static" || fail "static link with pkg-config --static"
    expect_ok "$work/app_pc_static"
    ;;
source)
    cmake_consumer "$work/src" -DNABLA_FROM=source -DNABLA_SOURCE_DIR="$arg"
    grep -q 'NABLA_BUILD_TESTS:BOOL=OFF' "$work/src/CMakeCache.txt" || fail "nabla's tests are on"
    expect_ok "$work/src/consumer"
    ;;
deb)
    [ "$(id -u)" = 0 ] || fail "needs root (apt install)"
    (cd "$arg" && run cpack -G DEB >"$work/cpack.log") || { cat "$work/cpack.log"; fail "cpack"; }
    deb=$(ls "$arg"/nabla_*.deb)
    run dpkg-deb -f "$deb" Package Version Architecture Depends
    run apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt install"; }
    trap 'apt-get purge -y -qq nabla >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
    [ -f /usr/include/nabla.h ] || fail "the package did not install /usr/include/nabla.h"
    cmake_consumer "$work/cm"
    expect_ok "$work/cm/consumer"
    expect_ok "$work/cm/consumer_static"
    unset PKG_CONFIG_PATH
    pkgconfig_consumer deb
    run apt-get purge -y -qq nabla >/dev/null
    [ ! -e /usr/include/nabla.h ] || fail "/usr/include/nabla.h left after apt-get purge"
    ;;
*)
    echo "usage: run.sh prefix|source|deb DIR" >&2
    exit 2
    ;;
esac
echo "consumer($mode): all passed"
