#!/usr/bin/env bash
# test_dist.sh DIST_TRAIN [MPIEXEC]: data-parallel training (tests/dist_train.c).
# With MPIEXEC (nabla built with MPI):
#   np 2 (batch 32 per rank) and np 3 (22/21/21, and 20/19/19 on the short last batch) equal one
#   process with batch 64 to float rounding, float64 and float32; a deliberately wrong sharding
#   is caught; seeded runs are bitwise reproducible for a fixed np; a checkpoint written by np 2
#   resumes on np 3 and np 1 and still equals the single run; a rank that is killed, errors or
#   hangs stops the job within seconds with a message; mismatched models and an unreadable
#   checkpoint fail on every rank with a message; the all-reduce overlapped with backward
#   (grad-ready hook, small buckets) gives bitwise the parameters of the one after backward.
# Without: the one-rank fallback trains, and a launch as one of several MPI ranks is refused.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cli_lib.sh"
bin=$1 mpiexec=${2:-}

if [[ -z $mpiexec ]]; then
    expect_run 0 'max_rel_diff .* np 1 ' "$bin"
    expect_run 0 'handed over during backward ([1-9][0-9]*) of \1' "$bin" --overlap --bucket 256
    OMPI_COMM_WORLD_SIZE=2 expect_run 2 'built without MPI' "$bin"
    PMI_SIZE=4 expect_run 2 'one of 4 ranks .*built without MPI' "$bin"
    [[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
    echo "test_dist: no MPI: fallback checks passed"
    exit 0
fi

# Root in CI containers; --oversubscribe: more ranks than this machine's 2 cores. TMPDIR: Open
# MPI's session directory private to this test (ctest -j runs the other mpirun test at the same
# time; sharing /tmp/ompi.<host>.<uid> failed once with "orte_session_dir failed").
run() { # run NP ARGS...: dist_train on NP ranks
    local np=$1
    shift
    TMPDIR="$work" "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" "$bin" "$@"
}
hash_of() { sed -n 's/^params //p' "$work/out"; }

declare -A hash
for dt in f64 f32; do
    for np in 2 3; do
        expect_run 0 "max_rel_diff .* np $np " run "$np" --dtype "$dt" --steps 8
        sed -n 's/^max_rel_diff/  np '"$np"' '"$dt"': max_rel_diff/p' "$work/out"
        hash[$np$dt]=$(hash_of)
    done
done
# Overlapped with backward (grad-ready hook, communication thread; 256-byte buckets: 3 or 4):
# bitwise the parameters of the all-reduce after backward, every bucket handed over while
# backward was still running.
for dt in f64 f32; do
    for np in 2 3; do
        expect_run 0 "max_rel_diff .* np $np " run "$np" --dtype "$dt" --steps 8 --bucket 256
        after=$(hash_of)
        expect_run 0 'handed over during backward ([1-9][0-9]*) of \1' \
            run "$np" --dtype "$dt" --steps 8 --bucket 256 --overlap
        [[ -n $after && $(hash_of) == "$after" ]] ||
            fail "np $np $dt: overlapped ($(hash_of)) differs from after backward ($after)"
    done
done
echo "  overlapped all-reduce: bitwise equal to the all-reduce after backward (np 2, 3; f64, f32)"

# The check can fail: every rank on rank 0's slice is a different training run.
expect_run 0 'control: detected' run 2 --control

# Bitwise reproducible for a fixed np (and thread count).
for np in 2 3; do
    expect_run 0 'params ' run "$np" --dtype f64 --steps 8
    first=${hash[${np}f64]}
    [[ -n $first && $(hash_of) == "$first" ]] || fail "np $np: two seeded runs differ ($first, $(hash_of))"
done

# Resume a distributed run's checkpoint on other rank counts: still the single-process run.
expect_run 0 'max_rel_diff' run 2 --steps 4 --save "$work/ck"
[[ -f $work/ck.params && -f $work/ck.optim ]] || fail "np 2 wrote no checkpoint"
expect_run 0 'max_rel_diff .* np 3 ' run 3 --resume "$work/ck" --start 4 --steps 4
expect_run 0 'max_rel_diff .* np 1 ' run 1 --resume "$work/ck" --start 4 --steps 4
expect_run 2 'reading the checkpoint failed on rank\(s\) 0' run 2 --resume "$work/missing" --start 4

# Mismatched models: every rank refuses, the differing one names the entry.
expect_run 2 "model on rank 1 differs from rank 0's: entry 0, parameter 'fc1.weight' float64 \(17, 12\)" \
    run 2 --mismatch
grep -q "differs from rank 0's on another rank" "$work/err" || fail "rank 0 said nothing on a mismatch"

# Failures stop the whole job within seconds, with a message (timeout 3 s for the hang).
timed() { # timed LIMIT CODE_RE REGEX ARGS...: non-zero exit matching the regex within LIMIT s
    local limit=$1 pattern=$2
    shift 2
    local t0=$SECONDS
    NABLA_DIST_TIMEOUT=3 run 2 --steps 8 "$@" >"$work/out" 2>"$work/err"
    local rc=$? took=$((SECONDS - t0))
    [[ $rc -ne 0 ]] || fail "$* exited 0"
    ((took <= limit)) || fail "$*: took $took s (limit $limit)"
    grep -Eq -- "$pattern" "$work/out" "$work/err" || fail "$*: no /$pattern/ in: $(tail -c 600 "$work/err")"
    echo "  $*: stopped in ${took} s"
}
timed 20 'rank 1 .*(signal 9|Killed)' --fail-rank 1 --fail-at 3 --fail-how kill
timed 20 'nabla dist: rank 1 of 2: cannot read batch 3 \(simulated error\); stopping all ranks' \
    --fail-rank 1 --fail-at 3 --fail-how error
timed 30 'nabla dist: rank 0 of 2: no progress in the gradient all-reduce for [0-9]+ s' \
    --fail-rank 1 --fail-at 3 --fail-how hang

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "test_dist: all checks passed"
