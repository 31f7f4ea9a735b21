#!/usr/bin/env bash
# test_cnn_dist.sh CNN MPIEXEC: examples/cnn --distributed under mpirun (small runs, 1 thread).
#   - np 2 with the defaults (batch norm, dropout, flips) trains and reports the all-reduce and
#     a test accuracy; the same seeded run repeated writes the same checkpoint byte for byte,
#     which resumes on np 3;
#   - equivalence (no batch norm, no dropout: the global batch's step is then independent of
#     its split; flips drawn for the whole batch on every rank): after 2 epochs of momentum SGD,
#     np 2 (32 + 32) and np 3 (22 + 21 + 21, uneven) hold the parameters of one process with
#     batch 64 to within 1e-4 of each tensor's largest magnitude (float32 sums taken in another
#     order, 20 steps: measured 8e-8 and 1.6e-7); one process with batch 63 (a control) is far
#     outside (0.09). Adam is left out here: it divides by sqrt(v), which turns rounding-level
#     differences of near-zero gradients into lr-sized steps;
#   - a checkpoint of np 2 (--stop-after 1) resumes on np 3 and in one process to the same
#     epoch-2 line;
#   - a rank that cannot read its data (MPMD launch) stops every rank; a model that differs
#     across ranks (--c1) fails at the start naming the entry.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cli_lib.sh"
cnn=$1 mpiexec=$2
plain=(--threads 1 --limit 640 --test-limit 200 --c1 4 --c2 8 --hidden 16)
common=(--distributed "${plain[@]}")
export TMPDIR="$work" # Open MPI's session directory private to this test (see test_dist.sh)
mpi=("$mpiexec" --allow-run-as-root --oversubscribe)
diff_of() { python3 "$here/max_rel_diff.py" "$@"; }
within() { awk -v d="$1" -v t="$2" 'BEGIN { exit !(d < t) }'; }

expect_run 0 'distributed: 2 ranks, gradient all-reduce' \
    "${mpi[@]}" -np 2 "$cnn" "${common[@]}" --epochs 2 --stop-after 1 --save "$work/d1"
loss1=$(sed -n 's/^epoch  1\/2  train loss \([0-9.]*\) .*/\1/p' "$work/out")
within "${loss1:-9}" 2.25 || fail "np 2: epoch 1's train loss '$loss1' is not below 2.25 (chance: ln 10 = 2.30)"
expect_run 0 'distributed: 2 ranks' \
    "${mpi[@]}" -np 2 "$cnn" "${common[@]}" --epochs 2 --stop-after 1 --save "$work/d2"
cmp -s "$work/d1" "$work/d2" || fail "np 2 repeated: the checkpoints differ"
expect_run 0 'epoch  2/2  train' "${mpi[@]}" -np 3 "$cnn" "${common[@]}" --epochs 2 --resume "$work/d1"
grep -q 'test accuracy' "$work/out" || fail "np 3 resumed: no test accuracy"

eq=(--no-bn --dropout 0 --optim sgd --epochs 2)
expect_run 0 'test accuracy' "$cnn" "${plain[@]}" "${eq[@]}" --save "$work/one"
expect_run 0 'test accuracy' "$cnn" "${plain[@]}" "${eq[@]}" --batch 63 --save "$work/ctl"
for np in 2 3; do
    expect_run 0 "distributed: $np ranks" \
        "${mpi[@]}" -np "$np" "$cnn" "${common[@]}" "${eq[@]}" --save "$work/np$np"
    d=$(diff_of "$work/one" "$work/np$np")
    echo "np $np vs one process: max relative difference $d (tolerance 1e-4)"
    within "$d" 1e-4 || fail "np $np differs from one process by $d (tolerance 1e-4)"
done
d=$(diff_of "$work/one" "$work/ctl")
echo "control, batch 63 vs 64: $d"
within "$d" 1e-2 && fail "the control (batch 63) is within 1e-2 ($d): the check cannot fail"

epoch2() { grep -E '^epoch  2/2  train' "$work/out" | sed 's/  [0-9.]* s  (.*//'; }
expect_run 0 'stopped after epoch 1 of 2' \
    "${mpi[@]}" -np 2 "$cnn" "${common[@]}" "${eq[@]}" --stop-after 1 --save "$work/ck"
expect_run 0 'resumed from .* after epoch 1' \
    "${mpi[@]}" -np 3 "$cnn" "${common[@]}" "${eq[@]}" --resume "$work/ck"
on3=$(epoch2)
expect_run 0 'resumed from .* after epoch 1' "$cnn" "${plain[@]}" "${eq[@]}" --resume "$work/ck"
on1=$(epoch2)
[[ -n $on3 && $on3 == "$on1" ]] || fail "resume on np 3 ($on3) differs from one process ($on1)"

# A global batch smaller than the rank count is a usage error, named by every rank
# (examples/common/dist_cli.c).
expect_run 2 "cnn: rank [0-2]: --batch 2 \\(the global batch\\) is smaller than the 3 ranks" \
    "${mpi[@]}" -np 3 "$cnn" "${common[@]}" --batch 2
# MPMD: rank 1 gets a data directory that does not exist.
expect_run 1 'loading the data failed on rank\(s\) 1' \
    "${mpi[@]}" -np 1 "$cnn" "${common[@]}" : -np 1 "$cnn" "${common[@]}" --data "$work/none"
grep -q "cnn: rank 1: .*$work/none" "$work/err" || fail "rank 1 did not say why"
expect_run 1 "model on rank 1 differs from rank 0's: entry 0, parameter '0.weight'" \
    "${mpi[@]}" -np 1 "$cnn" "${common[@]}" : -np 1 "$cnn" "${common[@]}" --c1 9

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "test_cnn_dist: all checks passed"
