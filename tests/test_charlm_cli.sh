#!/usr/bin/env bash
# The charlm example's command line on a small generated corpus: usage errors exit 2; an empty,
# binary or too-short corpus and a bad --save path exit 1 with a message before training; a tiny
# run trains (val bits/char printed, loss falling), checkpoints, resumes at the next epoch and
# samples text; a checkpoint of another vocabulary is refused and left unchanged. The same for
# --model lstm, whose checkpoints the transformer refuses and the reverse.
set -u
bin=$1
source "$(dirname "$0")/cli_lib.sh"

mkdir -p "$work/corpus" "$work/other" "$work/empty" "$work/bin" "$work/short"
for i in $(seq 1 300); do
    echo "Q: What is $i plus $i? A: the answer is $((i + i)), said the fortune cookie."
done >"$work/corpus/a"
echo "%" >>"$work/corpus/a"
for i in $(seq 1 300); do echo "ZZZ xyz $i !!! ###"; done >"$work/other/b"
printf 'abc\0def' >"$work/bin/x"
echo "too short" >"$work/short/s"
small=(--width 32 --heads 2 --layers 2 --context 16 --batch 8 --steps 30 --sample 40)

expect_run 2 "unknown option --bogus" "$bin" --bogus
expect_run 2 "does not divide" "$bin" --heads 3
expect_run 2 "bad value 'x' for --epochs" "$bin" --epochs x
expect_run 2 "unknown --model 'gpt5'" "$bin" --model gpt5
expect_run 1 "empty" "$bin" --data "$work/empty" "${small[@]}"
expect_run 1 "NUL|binary" "$bin" --data "$work/bin" "${small[@]}"
expect_run 1 "short|fewer than one batch" "$bin" --data "$work/short" "${small[@]}"
expect_run 1 "save" "$bin" --data "$work/corpus" --save "$work/corpus" "${small[@]}"

# Three epochs straight; the same run stopped after two and resumed: the same checkpoint, bitwise.
expect_run 0 "epoch 3/3 .*val [0-9.]+ bits/char" "$bin" --data "$work/corpus" --epochs 3 \
    --save "$work/full.st" --quiet "${small[@]}"
grep -q -- "--- sample" "$work/out" || fail "no sample printed"
first=$(grep -oE "epoch 1/3  train [0-9.]+" "$work/out" | grep -oE "[0-9.]+$")
third=$(grep -oE "epoch 3/3  train [0-9.]+" "$work/out" | grep -oE "[0-9.]+$")
awk -v a="$first" -v b="$third" 'BEGIN { exit !(b < a) }' ||
    fail "training loss did not fall: epoch 1 $first, epoch 3 $third"
expect_run 0 "stopping after epoch 2" "$bin" --data "$work/corpus" --epochs 3 --stop-after 2 \
    --save "$work/ck.st" --quiet "${small[@]}"
expect_run 0 "resumed .* at epoch 2" "$bin" --data "$work/corpus" --epochs 3 --resume "$work/ck.st" \
    --save "$work/ck.st" --quiet "${small[@]}"
cmp -s "$work/ck.st" "$work/full.st" || fail "stop + resume differs from the straight run"
# Resuming needs the same run length (the learning-rate schedule spans the whole run).
cp "$work/ck.st" "$work/ck2.st"
expect_run 1 "other flags" "$bin" --data "$work/corpus" --epochs 4 --resume "$work/ck.st" \
    --quiet "${small[@]}"
# Another corpus: another vocabulary, refused; the checkpoint is untouched.
expect_run 1 "vocabulary" "$bin" --data "$work/other" --epochs 2 --resume "$work/ck.st" \
    --save "$work/ck.st" --quiet "${small[@]}"
cmp -s "$work/ck.st" "$work/ck2.st" || fail "a refused resume changed the checkpoint"
# Longer windows than the checkpoint's position table (T longer than the table): refused naming
# the table, its size and the window's; nothing written; the checkpoint unchanged.
expect_run 1 "pos_emb.weight is \\(16, 32\\), a table of 16 positions, but --context 32 windows are 32 characters \\(T longer than the position table\\)" \
    "$bin" --data "$work/corpus" --epochs 3 --resume "$work/ck.st" --save "$work/ctx.st" \
    --quiet "${small[@]}" --context 32
[[ ! -e "$work/ctx.st" ]] || fail "a refused resume (context 32 > table 16) wrote $work/ctx.st"
cmp -s "$work/ck.st" "$work/ck2.st" || fail "a refused resume (context 32) changed the checkpoint"

# --model lstm: the same machinery around the recurrent model. A flag it has no use for is a
# usage error; it trains (loss falling), samples, resumes bitwise; a checkpoint of the other
# model is refused naming both, and left unchanged.
lstm=(--model lstm --width 16 --hidden 32 --layers 2 --context 16 --batch 8 --steps 30 --sample 40)
expect_run 2 "transformer only" "$bin" --model lstm --dropout 0.1
expect_run 0 "epoch 3/3 .*val [0-9.]+ bits/char" "$bin" --data "$work/corpus" --epochs 3 \
    --save "$work/lf.st" --quiet "${lstm[@]}"
grep -q "charlm (lstm)" "$work/out" || fail "lstm: the run does not say which model it trains"
grep -q -- "--- sample" "$work/out" || fail "lstm: no sample printed"
first=$(grep -oE "epoch 1/3  train [0-9.]+" "$work/out" | grep -oE "[0-9.]+$")
third=$(grep -oE "epoch 3/3  train [0-9.]+" "$work/out" | grep -oE "[0-9.]+$")
awk -v a="$first" -v b="$third" 'BEGIN { exit !(b < a) }' ||
    fail "lstm: training loss did not fall: epoch 1 $first, epoch 3 $third"
expect_run 0 "stopping after epoch 2" "$bin" --data "$work/corpus" --epochs 3 --stop-after 2 \
    --save "$work/lk.st" --quiet "${lstm[@]}"
expect_run 0 "resumed .* at epoch 2" "$bin" --data "$work/corpus" --epochs 3 --resume "$work/lk.st" \
    --save "$work/lk.st" --quiet "${lstm[@]}"
cmp -s "$work/lk.st" "$work/lf.st" || fail "lstm: stop + resume differs from the straight run"
expect_run 1 "written by --model transformer, not --model lstm" "$bin" --data "$work/corpus" \
    --epochs 3 --resume "$work/ck2.st" --save "$work/ck2.st" --quiet "${lstm[@]}"
cmp -s "$work/ck.st" "$work/ck2.st" || fail "a refused lstm resume changed the checkpoint"
expect_run 1 "written by --model lstm, not --model transformer" "$bin" --data "$work/corpus" \
    --epochs 3 --resume "$work/lk.st" --quiet "${small[@]}"

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "charlm CLI: all checks passed"
