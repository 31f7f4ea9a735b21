#!/usr/bin/env bash
# test_charlm_dist.sh CHARLM MPIEXEC: examples/charlm --distributed under mpirun on a small
# generated corpus (1 thread per rank).
#   - np 2 (4 + 4 windows of the global batch of 8) and np 3 (3 + 3 + 2, uneven) print the
#     per-epoch train and validation bits/char of one process, to the printed 3 decimals
#     (parameters are not compared: AdamW divides by sqrt(v), which turns rounding-level
#     differences of near-zero gradients into lr-sized steps); a control (--batch 7) differs;
#     rank 0 alone prints and samples;
#   - the same seeded np 2 run repeated writes the same checkpoint byte for byte;
#   - a checkpoint of np 2 (--stop-after 1) resumes on np 3 and in one process to the same
#     epoch-2 line; --dropout runs (per-rank masks);
#   - a rank that cannot read its corpus (MPMD launch) stops every rank; a model that differs
#     across ranks (--width) fails at the start naming the entry.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cli_lib.sh"
charlm=$1 mpiexec=$2
mkdir -p "$work/corpus"
for i in $(seq 1 300); do
    echo "Q: What is $i plus $i? A: the answer is $((i + i)), said the fortune cookie."
done >"$work/corpus/a"
plain=(--data "$work/corpus" --width 32 --heads 2 --layers 2 --context 16 --batch 8 --steps 30
    --sample 40 --quiet --epochs 2)
common=(--distributed "${plain[@]}")
export TMPDIR="$work" # Open MPI's session directory private to this test (see test_dist.sh)
mpi=("$mpiexec" --allow-run-as-root --oversubscribe)
lines() { grep -E '^epoch [0-9]/2  train' "$work/out" | sed 's/ bits\/char  [0-9]* tok\/s.*//'; }

expect_run 0 'epoch 2/2' "$charlm" "${plain[@]}"
one=$(lines)
[[ $(echo "$one" | wc -l) -eq 2 ]] || fail "one process: no epoch lines"
for np in 2 3; do
    expect_run 0 "distributed: $np ranks, gradient all-reduce" \
        "${mpi[@]}" -np "$np" "$charlm" "${common[@]}" --save "$work/np$np"
    [[ $(lines) == "$one" ]] || fail "np $np: $(lines) differs from one process: $one"
    [[ $(grep -c -- '--- sample' "$work/out") -eq 1 ]] || fail "np $np: not one sample printed"
done
expect_run 0 'epoch 2/2' "$charlm" "${plain[@]}" --batch 7
[[ $(lines) != "$one" ]] || fail "the control (--batch 7) prints the same lines: cannot fail"

expect_run 0 'distributed: 2 ranks' "${mpi[@]}" -np 2 "$charlm" "${common[@]}" --save "$work/again"
cmp -s "$work/np2" "$work/again" || fail "np 2 repeated: the checkpoints differ"

epoch2() { grep -E '^epoch 2/2  train' "$work/out" | sed 's/ bits\/char  [0-9]* tok\/s.*//'; }
expect_run 0 'stopping after epoch 1' \
    "${mpi[@]}" -np 2 "$charlm" "${common[@]}" --stop-after 1 --save "$work/ck"
expect_run 0 'resumed .* at epoch 1' "${mpi[@]}" -np 3 "$charlm" "${common[@]}" --resume "$work/ck"
on3=$(epoch2)
expect_run 0 'resumed .* at epoch 1' "$charlm" "${plain[@]}" --resume "$work/ck"
on1=$(epoch2)
[[ -n $on3 && $on3 == "$on1" ]] || fail "resume on np 3 ($on3) differs from one process ($on1)"
expect_run 0 'distributed: 2 ranks' "${mpi[@]}" -np 2 "$charlm" "${common[@]}" --dropout 0.1

# A global batch smaller than the rank count is a usage error, named by every rank
# (examples/common/dist_cli.c).
expect_run 2 "charlm: rank [0-2]: --batch 2 \\(the global batch\\) is smaller than the 3 ranks" \
    "${mpi[@]}" -np 3 "$charlm" "${common[@]}" --batch 2
# MPMD: rank 1 gets a corpus directory that does not exist.
expect_run 1 'loading the data failed on rank\(s\) 1' \
    "${mpi[@]}" -np 1 "$charlm" "${common[@]}" : -np 1 "$charlm" "${common[@]}" --data "$work/none"
grep -q "$work/none" "$work/err" || fail "rank 1 did not say why"
expect_run 1 "model on rank 1 differs from rank 0's: entry 0" \
    "${mpi[@]}" -np 1 "$charlm" "${common[@]}" : -np 1 "$charlm" "${common[@]}" --width 16

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "test_charlm_dist: all checks passed"
