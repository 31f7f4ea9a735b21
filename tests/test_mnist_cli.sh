#!/usr/bin/env bash
# The mnist example's command line, end to end: usage errors exit 2 with the usage text,
# runtime errors exit 1 with one message, a tiny real run trains and evaluates, a checkpoint
# reloads to exactly the same test accuracy (and is refused by a different architecture), and
# two seeded runs write identical metrics. Usage: test_mnist_cli.sh path/to/mnist
set -u

bin=${1:?usage: test_mnist_cli.sh path/to/mnist}
data=/usr/share/datasets/fashion-mnist
source "$(dirname "$0")/cli_lib.sh"

# expect CODE REGEX ARGS...: run the mnist binary with ARGS (see expect_run).
expect() {
    local code=$1 pattern=$2
    shift 2
    expect_run "$code" "$pattern" "$bin" "$@"
}

# ---- usage -------------------------------------------------------------------------------------
expect 0 '^usage: mnist' --help
[[ -s $work/err ]] && fail "--help wrote to stderr"
expect 2 'usage: mnist' --batch 0
expect 2 'usage: mnist' --batch -3
expect 2 'usage: mnist' --lr abc
expect 2 'usage: mnist' --lr 0
expect 2 'usage: mnist' --hidden 10,x
expect 2 'usage: mnist' --hidden 10,
expect 2 'usage: mnist' --activation nope
expect 2 'usage: mnist' --momentum 1
expect 2 'usage: mnist' --epochs 2x
expect 2 'usage: mnist' --dtype f16
expect 2 'usage: mnist' --no-such-flag
expect 2 'usage: mnist' --epochs
expect 2 'usage: mnist' --eval-only
expect 2 'usage: mnist' --limit 100 --val 100
expect 2 'unknown option' stray-argument
expect 2 "'nope' for --optim" --optim nope
expect 2 "'lion' for --optim" --optim lion
expect 2 'usage: mnist' --clip -1
expect 2 'usage: mnist' --warmup -5
expect 2 'usage: mnist' --schedule linear
expect 2 'usage: mnist' --stop-after 0
expect 2 'applies to sgd and rmsprop' --optim adam --momentum 0.5
expect 2 'cannot be combined' --resume x --load y
# A usage error names the offending flag.
expect 2 "'-3' for --batch" --batch -3

# ---- runtime errors ----------------------------------------------------------------------------
expect 1 "$work/no-such-dir" --data "$work/no-such-dir" --epochs 1

if [[ ! -d $data ]]; then
    echo "SKIP: $data is absent (apt-get install dataset-fashion-mnist); real-data checks skipped"
    exit $((failures > 0))
fi

# ---- a tiny real run, its checkpoint and its metrics -------------------------------------------
tiny=(--data "$data" --limit 2000 --epochs 1 --val 500 --hidden 32)
expect 0 'test accuracy: [0-9.]+% \([0-9]+/10000\)' "${tiny[@]}" --save "$work/m.safetensors"
trained=$(grep -E '^test accuracy' "$work/out")
grep -Eq '^epoch 1/1 .*train loss .*val acc' "$work/out" || fail "no per-epoch line on stdout"
grep -q 'T-shirt/top' "$work/out" || fail "no Fashion-MNIST confusion matrix"
[[ -s $work/m.safetensors ]] || fail "--save wrote no checkpoint"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind"

expect 0 'test accuracy' --data "$data" --hidden 32 --load "$work/m.safetensors" --eval-only
reloaded=$(grep -E '^test accuracy' "$work/out")
[[ -n $trained && $trained == "$reloaded" ]] ||
    fail "reloaded checkpoint gives '$reloaded', training run gave '$trained'"

# Continuing a checkpoint (--load X --save X) replaces it after the epoch; a new run onto an
# existing file needs --overwrite (the checkpoint is never replaced by an untrained model).
cp "$work/m.safetensors" "$work/m.orig"
expect 0 'checkpoint: .*m.safetensors \(after epoch 1\)' "${tiny[@]}" --load "$work/m.safetensors" --save "$work/m.safetensors"
cmp -s "$work/m.safetensors" "$work/m.orig" && fail "continuing training did not update the checkpoint"
expect 1 'already exists' "${tiny[@]}" --save "$work/m.safetensors"
expect 0 'test accuracy' "${tiny[@]}" --save "$work/m.safetensors" --overwrite
cmp -s "$work/m.safetensors" "$work/m.orig" || fail "--overwrite: a fresh seeded run should rewrite the same checkpoint"
grep -q -- '--overwrite' <("$bin" --help) || fail "--help does not document --overwrite"

# Another architecture refuses the checkpoint with a shape message, never a crash.
expect 1 'shape' --data "$data" --hidden 64 --load "$work/m.safetensors" --eval-only
expect 1 'shape' --data "$data" --hidden 32,16 --load "$work/m.safetensors" --eval-only
expect 1 'shape' --data "$data" --hidden none --load "$work/m.safetensors" --eval-only
expect 1 'dtype' --data "$data" --hidden 32 --dtype f64 --load "$work/m.safetensors" --eval-only
# A deeper checkpoint whose first layers fit the shallower model is refused too.
expect 0 'test accuracy' "${tiny[@]}" --hidden 32,10 --save "$work/deep.safetensors"
expect 1 'fc3.weight' --data "$data" --hidden 32 --load "$work/deep.safetensors" --eval-only
# Missing and corrupt checkpoints.
expect 1 'no-such.safetensors' --data "$data" --load "$work/no-such.safetensors" --eval-only
head -c 100 /dev/urandom >"$work/junk.safetensors"
expect 1 'junk.safetensors' --data "$data" --load "$work/junk.safetensors" --eval-only

# ---- determinism: same seed and threads -> identical metrics (seconds aside) and checkpoints ----
short=(--data "$data" --limit 3000 --epochs 2 --val 500 --hidden 32 --batch 50 --seed 7)
expect 0 'test accuracy' "${short[@]}" --csv "$work/a.csv" --save "$work/a.safetensors"
expect 0 'test accuracy' "${short[@]}" --csv "$work/b.csv" --save "$work/b.safetensors"
cmp -s "$work/a.safetensors" "$work/b.safetensors" ||
    fail "two identical runs wrote different checkpoints"
if [[ $(head -1 "$work/a.csv" 2>/dev/null) != "epoch,train_loss,train_acc,val_acc,seconds" ||
      $(wc -l <"$work/a.csv") -ne 3 ]]; then
    fail "a.csv is not a header plus 2 rows: $(cat "$work/a.csv" 2>/dev/null)"
fi
cmp -s <(cut -d, -f1-4 "$work/a.csv") <(cut -d, -f1-4 "$work/b.csv") ||
    fail "two identical runs wrote different metrics: $(paste "$work/a.csv" "$work/b.csv")"
expect 0 'test accuracy' "${short[@]}" --seed 8 --csv "$work/c.csv"
cmp -s <(cut -d, -f1-4 "$work/a.csv") <(cut -d, -f1-4 "$work/c.csv") &&
    fail "--seed 7 and --seed 8 wrote the same metrics"

# ---- exact resume: 3 epochs straight == 1 epoch, stop, --resume in a new process, 2 epochs ----
# The whole checkpoint (parameters, AdamW moments and step counts, schedule position, augment
# stream, epoch) must come out byte for byte the same.
run=(--data "$data" --limit 1500 --epochs 3 --val 500 --hidden 32 --batch 50 --seed 7
    --optim adamw --lr 0.003 --warmup 20 --clip 1 --augment 1)
expect 0 'test accuracy' "${run[@]}" --save "$work/straight.safetensors"
expect 0 'stopped after epoch 1 of 3' "${run[@]}" --stop-after 1 --save "$work/part.safetensors"
cp "$work/part.safetensors" "$work/part1.safetensors"
expect 0 'resumed from .* after epoch 1 \(step 20\)' "${run[@]}" --resume "$work/part.safetensors" \
    --save "$work/part.safetensors"
cmp -s "$work/straight.safetensors" "$work/part.safetensors" ||
    fail "resumed run's checkpoint differs from the straight run's"
# Without the optimizer state the same flags cannot reproduce it (the check can fail).
expect 0 'test accuracy' "${run[@]}" --epochs 3 --load "$work/part1.safetensors" --save "$work/naive.safetensors"
cmp -s "$work/straight.safetensors" "$work/naive.safetensors" && fail "--load reproduced --resume"
# A checkpoint from another optimizer, model or run is refused with exit 1, never half-used.
expect 1 'holds adamw optimizer state, this optimizer is sgd' "${run[@]}" --optim sgd \
    --resume "$work/part1.safetensors"
expect 1 'amsgrad|holds adamw optimizer state, this optimizer is adam' "${run[@]}" --optim adam \
    --resume "$work/part1.safetensors"
expect 1 "shape \(32, 784\), model expects \(64, 784\)" "${run[@]}" --hidden 64 \
    --resume "$work/part1.safetensors"
expect 1 'resume with the flags of that run' "${run[@]}" --batch 25 --resume "$work/part1.safetensors"
expect 1 'written by a run of 24 steps' "${run[@]}" --resume "$work/m.safetensors"
expect 1 'no-such' "${run[@]}" --resume "$work/no-such.safetensors"
# The other optimizers and schedules train.
expect 0 'rmsprop: .*step' "${tiny[@]}" --optim rmsprop --schedule step --warmup 5
expect 0 'adam: .*onecycle' "${tiny[@]}" --optim adam --schedule onecycle --lr 0.01

# Softmax regression (no hidden layer) and another activation train too.
expect 0 'test accuracy' "${tiny[@]}" --hidden none --activation tanh --val 0

exit $((failures > 0))
