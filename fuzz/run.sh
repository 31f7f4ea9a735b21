#!/usr/bin/env bash
# fuzz/run.sh [SECONDS]: build the libFuzzer harnesses (clang, ASan + UBSan, leak checks on):
# the IDX and safetensors readers and the op API (fuzz_api: random op programs),
# replay every saved regression input, then fuzz each harness for SECONDS (default 60) from
# the generated seed corpus. Exits non-zero if any input crashes, leaks, hangs (> 10 s) or
# goes over 2 GiB; the offending input is left in build-fuzz/artifacts/.
#
# Environment: NB_FUZZ_JOBS=N fuzzes N harnesses at once (default: one after the other);
# NB_FUZZ_FLAGS adds libFuzzer flags; NB_FUZZ_BUILD moves the build directory;
# NB_FUZZ_ALLOC_CAP_MB=N makes library allocations over N MiB fail (NB_ERR_NOMEM) instead of
# tripping libFuzzer's malloc limit: for exploring past a known over-allocation, never for CI.
# The working corpus fuzz/corpus-run/ (gitignored) keeps what a run discovered for the next.
set -euo pipefail

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NB_FUZZ_BUILD:-$root/build-fuzz}
corpus=$root/fuzz/corpus-run
harnesses=(fuzz_idx fuzz_safetensors fuzz_api fuzz_text)
dicts=(idx.dict safetensors.dict "" "")

# ---- toolchain: Debian 12's clang 14 with its libFuzzer and sanitizer runtimes -----------------
sanflags=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
pick_cc() {
    for c in "${CC:-}" clang clang-14; do
        [ -n "$c" ] && command -v "$c" >/dev/null || continue
        echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);
              int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)
              { (void)d; (void)n; return 0; }' |
            "$c" -x c "${sanflags[@]}" - -o "$build/.cc-probe" 2>/dev/null || continue
        echo "$c"
        return 0
    done
    return 1
}
mkdir -p "$build"
if ! cc=$(pick_cc); then
    echo "fuzz: installing clang-14 and libclang-rt-14-dev"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        clang-14 libclang-rt-14-dev >/dev/null
    cc=$(pick_cc) || { echo "fuzz: no clang with libFuzzer after installing" >&2; exit 1; }
fi
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3

# ---- build ------------------------------------------------------------------------------------
# The library's sources are compiled into each harness directly (OpenMP off: its pragmas
# vanish), with the project's warning set.
warn=(-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith
      -Wcast-qual -Wdouble-promotion -Werror)
cd "$root"
# Generated headers (nabla/version.h) come from a configure-only CMake run, so the version
# lives in one place (project(VERSION) in CMakeLists.txt).
cmake -S "$root" -B "$build/cmake" -DNABLA_BUILD_TESTS=OFF -DNABLA_BUILD_EXAMPLES=OFF >/dev/null
t0=$(date +%s)
for h in "${harnesses[@]}"; do
    extra=()
    case $h in
    fuzz_api) # the op stack; clang (unlike the project's gcc) flags `double m = -INFINITY`
        lib_src=(src/base/*.c src/tensor/*.c src/graph/*.c src/ops/*.c)
        extra=(-Wno-double-promotion) ;;
    *) lib_src=(src/base/*.c src/tensor/*.c src/data/*.c src/io/*.c) ;;
    esac
    "$cc" -std=c11 -g -O1 "${warn[@]}" "${extra[@]}" "${sanflags[@]}" -Iinclude \
        -I"$build/cmake/include" -Isrc \
        -I/usr/include/x86_64-linux-gnu "${lib_src[@]}" "fuzz/$h.c" -o "$build/$h" \
        -lz -lcjson -lopenblas -lm
done
echo "fuzz: built ${harnesses[*]} with $cc in $(( $(date +%s) - t0 )) s"

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
asan=detect_leaks=1:check_initialization_order=1:strict_string_checks=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-$asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-timeout=10 -rss_limit_mb=2048 -detect_leaks=1)

# ---- regressions: every saved input must now pass ------------------------------------------
failed=0
for h in "${harnesses[@]}"; do
    mapfile -t inputs < <(find "fuzz/regressions/$h" -type f ! -name '.*' 2>/dev/null | sort)
    [ ${#inputs[@]} -gt 0 ] || continue
    if "$build/$h" "${common[@]}" "${inputs[@]}" >"$build/$h.regressions.log" 2>&1; then
        echo "fuzz: $h: ${#inputs[@]} regression input(s) pass"
    else
        echo "fuzz: $h: a regression input fails; log: $build/$h.regressions.log"
        grep -E "ERROR|SUMMARY|Running:|oracle" "$build/$h.regressions.log" | tail -20 || true
        failed=1
    fi
done

# ---- fuzz ---------------------------------------------------------------------------------------
rm -rf "$build/seeds" "$build/artifacts"
"$python" fuzz/make_corpus.py "$build/seeds"
mkdir -p "$build/artifacts"
run_one() { # harness dict
    local h=$1
    mkdir -p "$corpus/$h"
    # New inputs go to the first directory (the working corpus); the seeds are only read.
    local dict=()
    [ -z "$2" ] || dict=(-dict="fuzz/$2")
    mkdir -p "$build/seeds/$h" # fuzz_api has no generated seeds: any bytes are a program
    local extra=()             # the regression inputs seed the search too
    [ ! -d "fuzz/regressions/$h" ] || extra=("fuzz/regressions/$h")
    "$build/$h" "$corpus/$h" "$build/seeds/$h" "${extra[@]}" "${common[@]}" "${dict[@]}" \
        -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$build/artifacts/$h-" \
        ${NB_FUZZ_FLAGS:-} >"$build/$h.log" 2>&1
}
report() { # harness status
    local h=$1 log=$build/$1.log
    local execs cov
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
    if [ "$2" = 0 ]; then
        echo "fuzz: $h: ok: ${execs:-?} executions in $secs s, $cov"
    else
        echo "fuzz: $h: FAILED (status $2); log: $log"
        grep -E "ERROR|SUMMARY|oracle|Test unit written|#[0-9]+ 0x.* in .*\.[ch]:[0-9]+" "$log" | head -40 || true
        echo "fuzz: minimise with: $build/$h -minimize_crash=1 -runs=100000 -timeout=10" \
             "-exact_artifact_path=fuzz/regressions/$h/NAME ARTIFACT"
        failed=1
    fi
}
if [ "${NB_FUZZ_JOBS:-1}" -ge 2 ]; then
    pids=()
    for i in "${!harnesses[@]}"; do
        run_one "${harnesses[$i]}" "${dicts[$i]}" &
        pids+=($!)
    done
    for i in "${!harnesses[@]}"; do
        st=0
        wait "${pids[$i]}" || st=$?
        report "${harnesses[$i]}" "$st"
    done
else
    for i in "${!harnesses[@]}"; do
        st=0
        run_one "${harnesses[$i]}" "${dicts[$i]}" || st=$?
        report "${harnesses[$i]}" "$st"
    done
fi
if [ -n "$(ls -A "$build/artifacts")" ]; then
    echo "fuzz: findings in $build/artifacts:"
    ls -l "$build/artifacts"
    failed=1
fi
exit $failed
