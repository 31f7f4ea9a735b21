#!/bin/sh
# The one command of issues 4 and 17: installs what the suite needs (Debian 12), builds nabla in
# Release with the benchmarks into its own build dir, runs the whole suite side by side with
# PyTorch and libtorch (its C++ frontend) and writes one report from that one run:
#   bench/results/<UTC date-time>/report.md   the tables (markdown, ready for bench/README.md)
#   bench/results/<UTC date-time>/*.png        the scaling plots (gnuplot), *.dat their data
#   bench/results/<UTC date-time>/raw.jsonl    every single measurement
# The tables also go to stdout; the total time is printed at the end.
#   bench/run.sh [suite.py options]       e.g. --reps 5, --only mlp,cnn, --full-epoch
# Families for --only: eltwise overhead mlp cnn matmul conv layernorm attention charlm lstm adam
# scaling (default: all). Environment: BUILD_DIR (default <repo>/build-bench), OUT_DIR (default
# bench/results/<UTC date-time>), NO_INSTALL=1 skips apt-get.
set -eu
T0=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT_DIR=${OUT_DIR:-$ROOT/bench/results/$STAMP}
PY=/usr/bin/python3 # the system python, which has python3-torch; not a pyenv one on PATH

if [ "${NO_INSTALL:-0}" != 1 ]; then
    need=""
    for p in build-essential cmake pkg-config libopenblas-dev libcjson-dev zlib1g-dev \
             python3-torch python3-numpy libtorch-dev linux-perf gnuplot-nox \
             dataset-fashion-mnist; do
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
if grep -q '^Torch_DIR:PATH=/' "$BUILD_DIR/CMakeCache.txt"; then LIBTORCH="libtorch_bench libtorch_ops"; fi
cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_mlp bench_overhead bench_eltwise \
      bench_matmul bench_cnn bench_conv bench_layernorm bench_attention bench_charlm bench_lstm \
      bench_adam $LIBTORCH >&2
T1=$(date +%s)

NB_SUITE_CMD="bench/run.sh $*" "$PY" "$ROOT/bench/suite.py" --build "$BUILD_DIR" \
    --outdir "$OUT_DIR" --out "$BUILD_DIR/bench-results.md" "$@"
T2=$(date +%s)
echo "run.sh: build $((T1 - T0)) s, suite $((T2 - T1)) s, total $(((T2 - T0) / 60)) min $(((T2 - T0) % 60)) s; report: $OUT_DIR/report.md" >&2
