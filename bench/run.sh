#!/bin/sh
# The one command of issue #4: installs what the suite needs (Debian 12), builds nabla in
# Release with the benchmarks into its own build dir, runs the whole suite side by side with
# PyTorch and libtorch (its C++ frontend) and prints the tables (also written to $BUILD_DIR/bench-results.md, every raw
# measurement to $BUILD_DIR/bench-raw.jsonl).
#   bench/run.sh [suite.py options, e.g. --reps 5 --full-epoch]
# Environment: BUILD_DIR (default <repo>/build-bench), NO_INSTALL=1 skips apt-get.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
PY=/usr/bin/python3 # the system python, which has python3-torch; not a pyenv one on PATH

if [ "${NO_INSTALL:-0}" != 1 ]; then
    need=""
    for p in build-essential cmake pkg-config libopenblas-dev libcjson-dev zlib1g-dev \
             python3-torch python3-numpy libtorch-dev linux-perf; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
    done
    if [ -n "$need" ]; then
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update
        $SUDO apt-get install -y $need
    fi
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DNABLA_BUILD_BENCH=ON \
      -DNABLA_BUILD_TESTS=OFF -DNABLA_BUILD_EXAMPLES=OFF >/dev/null
# The libtorch programs exist only when CMake found Torch (libtorch-dev): then build them too.
LIBTORCH=""
if grep -q '^Torch_DIR:PATH=/' "$BUILD_DIR/CMakeCache.txt"; then LIBTORCH="libtorch_bench"; fi
cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_mlp bench_overhead bench_eltwise bench_matmul bench_cnn \
      $LIBTORCH >&2

exec "$PY" "$ROOT/bench/suite.py" --build "$BUILD_DIR" --out "$BUILD_DIR/bench-results.md" \
     --raw "$BUILD_DIR/bench-raw.jsonl" "$@"
