#!/usr/bin/env bash
# The cnn example's command line, end to end on a small --limit: usage errors exit 2 with the
# usage text naming the flag, runtime errors exit 1 with one message, a short run trains,
# prints the per-epoch line and the confusion matrix and saves a checkpoint that reloads to
# the same test accuracy, an existing file is replaced only with --overwrite, a run stopped
# after epoch 1 and resumed in a new process writes the straight run's checkpoint byte for
# byte, a mismatched checkpoint is refused, a diverging run stops with a message, and
# --detect-anomaly names the op that first makes an inf or NaN.
# Usage: test_cnn_cli.sh path/to/cnn
set -u

bin=${1:?usage: test_cnn_cli.sh path/to/cnn}
data=/usr/share/datasets/fashion-mnist
source "$(dirname "$0")/cli_lib.sh"
export OMP_NUM_THREADS=2

expect() {
    local code=$1 pattern=$2
    shift 2
    expect_run "$code" "$pattern" "$bin" "$@"
}

# ---- usage -------------------------------------------------------------------------------------
expect 0 '^usage: cnn' --help
[[ -s $work/err ]] && fail "--help wrote to stderr"
expect 2 "'0' for --batch" --batch 0
expect 2 "'-3' for --epochs" --epochs -3
expect 2 "'abc' for --lr" --lr abc
expect 2 "'1.5' for --dropout" --dropout 1.5
expect 2 "'lion' for --optim" --optim lion
expect 2 "'linear' for --schedule" --schedule linear
expect 2 "'2x' for --c1" --c1 2x
expect 2 'unknown option .--no-such-flag' --no-such-flag
expect 2 'unexpected argument .stray' stray
expect 2 '--epochs needs a value' --epochs
expect 2 'needs --load' --eval-only
expect 2 'exclude each other' --resume x --load y
expect 2 'needs --save' --stop-after 1
expect 2 'usage: cnn' --threads 0

# ---- runtime errors ----------------------------------------------------------------------------
expect 1 "$work/no-such-dir" --data "$work/no-such-dir" --epochs 1
expect 1 'is a directory|not a regular file' --save "$work"
if [[ ! -d $data ]]; then
    echo "SKIP: $data is absent (apt-get install dataset-fashion-mnist); real-data checks skipped"
    exit $((failures > 0))
fi

# ---- a short run, its checkpoint --------------------------------------------------------------
small=(--data "$data" --limit 640 --test-limit 1000 --batch 64 --c1 4 --c2 8 --hidden 16 --seed 3)
expect 0 'test accuracy: [0-9.]+% \(1000 images\)' "${small[@]}" --epochs 1 --save "$work/m.st"
trained=$(grep -E '^test accuracy' "$work/out")
grep -Eq '^epoch  1/1  train loss [0-9.]+  train acc +[0-9.]+%  test acc +[0-9.]+%' "$work/out" ||
    fail "no per-epoch line on stdout"
grep -q 'Ankle boot' "$work/out" || fail "no Fashion-MNIST confusion matrix"
grep -Eq 'epoch 1/1 .*samples/s' "$work/err" || fail "no progress on stderr"
[[ -s $work/m.st ]] || fail "--save wrote no checkpoint"
ls "$work" | grep -q '\.tmp' && fail "a temporary file was left behind"

expect 0 'test accuracy' "${small[@]}" --load "$work/m.st" --eval-only
[[ $(grep -E '^test accuracy' "$work/out") == "$trained" ]] ||
    fail "the reloaded checkpoint gives another test accuracy than the run that saved it"

# An existing checkpoint is replaced only with --overwrite; refused before any work.
cp "$work/m.st" "$work/m.orig"
expect 1 'already exists.*--overwrite' "${small[@]}" --epochs 1 --save "$work/m.st"
cmp -s "$work/m.st" "$work/m.orig" || fail "a refused run changed the checkpoint"
expect 0 'test accuracy' "${small[@]}" --epochs 1 --save "$work/m.st" --overwrite
cmp -s "$work/m.st" "$work/m.orig" || fail "the same seeded run wrote another checkpoint"

# Another architecture refuses the checkpoint naming the tensor, never a crash.
expect 1 'cannot load .*0.weight' --data "$data" --test-limit 100 --c1 5 --c2 8 --hidden 16 \
    --load "$work/m.st" --eval-only
expect 1 'cannot load' --data "$data" --test-limit 100 --c1 4 --c2 8 --hidden 16 --no-bn \
    --load "$work/m.st" --eval-only

# ---- exact resume: 2 epochs straight == 1 epoch, stop, --resume in a new process ----------------
run=("${small[@]}" --epochs 2 --dropout 0.3)
expect 0 'test accuracy' "${run[@]}" --save "$work/straight.st"
expect 0 'stopped after epoch 1 of 2' "${run[@]}" --stop-after 1 --save "$work/part.st"
expect 0 'resumed from .* after epoch 1 \(step 10\)' "${run[@]}" --resume "$work/part.st" \
    --save "$work/part.st"
cmp -s "$work/straight.st" "$work/part.st" ||
    fail "the resumed run's checkpoint differs from the straight run's"
expect 1 'resume with the flags of that run' "${small[@]}" --epochs 3 --resume "$work/straight.st"
expect 1 'nothing left' "${run[@]}" --resume "$work/straight.st"
expect 1 'no-such' "${run[@]}" --resume "$work/no-such.st"

# ---- divergence and anomaly mode ----------------------------------------------------------------
expect 1 'training diverged in epoch 1 .*smaller --lr' "${small[@]}" --epochs 1 --optim sgd \
    --lr 100 --no-bn
expect 0 'test accuracy' "${small[@]}" --epochs 1 --detect-anomaly
# Weights of ~1e30 after the first step overflow the next forward: anomaly mode names the op.
expect 1 'epoch 1: [a-z_0-9]+: non-finite value in (forward|backward)' "${small[@]}" --epochs 1 --optim sgd --lr 1e30 \
    --no-bn --detect-anomaly

exit $((failures > 0))
