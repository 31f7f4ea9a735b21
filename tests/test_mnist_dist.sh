#!/usr/bin/env bash
# test_mnist_dist.sh MNIST MPIEXEC: examples/mnist --distributed under mpirun (small runs).
#   - np 2 trains, reports the all-reduce and a test accuracy;
#   - its checkpoint (--stop-after 1) resumes on np 3 and in one process to the same epoch-2
#     loss and accuracy, printed to 6 digits;
#   - a rank that cannot read its data (MPMD launch, one rank with a bad --data) stops every
#     rank: rank 0 names the failing rank, the failing rank says why; non-zero exit;
#   - mismatched models across ranks (--hidden differs) fail at the start, naming the entry.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cli_lib.sh"
mnist=$1 mpiexec=$2
plain=(--threads 1 --limit 3000 --val 500 --hidden 64)
common=(--distributed "${plain[@]}")
# TMPDIR: Open MPI's session directory private to this test (see test_dist.sh).
export TMPDIR="$work"
mpi=("$mpiexec" --allow-run-as-root --oversubscribe)

expect_run 0 'distributed: 2 ranks, gradient all-reduce' \
    "${mpi[@]}" -np 2 "$mnist" "${common[@]}" --epochs 1
grep -Eq 'test accuracy: [6-9][0-9]\.' "$work/out" || fail "np 2: no test accuracy >= 60 %"

expect_run 0 'stopped after epoch 1 of 2' \
    "${mpi[@]}" -np 2 "$mnist" "${common[@]}" --epochs 2 --stop-after 1 --save "$work/ck"
epoch2() { grep -E '^epoch 2/2  train' "$work/out" | sed 's/  [0-9.]* s  (.*//'; }
expect_run 0 'resumed from .* after epoch 1' \
    "${mpi[@]}" -np 3 "$mnist" "${common[@]}" --epochs 2 --resume "$work/ck"
on3=$(epoch2)
expect_run 0 'resumed from .* after epoch 1' "$mnist" "${plain[@]}" --epochs 2 --resume "$work/ck"
on1=$(epoch2)
[[ -n $on3 && $on3 == "$on1" ]] || fail "resume on np 3 ($on3) differs from one process ($on1)"

# A global batch smaller than the rank count is a usage error, named by every rank
# (examples/common/dist_cli.c).
expect_run 2 "mnist: rank [0-2]: --batch 2 \\(the global batch\\) is smaller than the 3 ranks" \
    "${mpi[@]}" -np 3 "$mnist" "${common[@]}" --batch 2
# MPMD: rank 1 gets a data directory that does not exist.
expect_run 1 'loading the data failed on rank\(s\) 1' \
    "${mpi[@]}" -np 1 "$mnist" "${common[@]}" : -np 1 "$mnist" "${common[@]}" --data "$work/none"
grep -q "mnist: rank 1: cannot open $work/none" "$work/err" || fail "rank 1 did not say why"

expect_run 1 "model on rank 1 differs from rank 0's: entry 0, parameter 'fc1.weight'" \
    "${mpi[@]}" -np 1 "$mnist" "${common[@]}" : -np 1 "$mnist" "${common[@]}" --hidden 65

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "test_mnist_dist: all checks passed"
