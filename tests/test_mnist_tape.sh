#!/usr/bin/env bash
# The mnist example's --dot, --summary and --wait-policy: the picture of the first training step
# names every layer's parameters and ops, renders with Graphviz when it is installed, replaces
# its file atomically and fails cleanly on an unwritable path; the summary's parameter total is
# the model's; the OpenMP wait policy defaults to passive, follows OMP_WAIT_POLICY and the flag.
# Usage: test_mnist_tape.sh path/to/mnist
set -u
bin=${1:?usage: test_mnist_tape.sh path/to/mnist}
data=/usr/share/datasets/fashion-mnist
source "$(dirname "$0")/cli_lib.sh"
expect() {
    local code=$1 pattern=$2
    shift 2
    expect_run "$code" "$pattern" "$bin" "$@"
}

expect 2 "'spin' for --wait-policy" --wait-policy spin
expect 2 'missing value' --dot
if [[ ! -d $data ]]; then
    echo "SKIP: $data is absent (apt-get install dataset-fashion-mnist); real-data checks skipped"
    exit $((failures > 0))
fi
tiny=(--data "$data" --limit 1000 --epochs 1 --val 200 --hidden 16,8 --threads 2)

# ---- --dot and --summary -------------------------------------------------------------------------
echo "old picture" >"$work/tape.dot"
# An existing file is only replaced when asked (as --save and --csv), and checked before training.
expect 1 'tape.dot already exists.*--overwrite' "${tiny[@]}" --dot "$work/tape.dot"
grep -qx 'old picture' "$work/tape.dot" || fail "--dot without --overwrite changed the file"
expect 1 'is the dataset file' "${tiny[@]}" --dot "$data/t10k-labels-idx1-ubyte.gz" --overwrite
expect 0 'test accuracy' "${tiny[@]}" --dot "$work/tape.dot" --summary --overwrite
dot_file=$work/tape.dot
grep -q '^digraph nabla {' "$dot_file" || fail "--dot did not replace the file with a digraph"
for want in 'fc1.weight (p0)' 'fc3.bias (p5)' 'images (x0)' 'labels (x1)' \
    'sparse_cross_entropy_logits -> loss' '(64, 16) float32' 'at model.c:' 'grad \[' \
    'fillcolor="#f6c85f"' 'batch 64'; do
    grep -qF -- "${want//\\/}" "$dot_file" || fail "--dot picture lacks '$want'"
done
[[ $(grep -c -- ' -> n' "$dot_file") -eq 13 ]] || fail "--dot: expected 13 edges (3 linear x 3, 2 relu x 1, loss x 2)"
# The model line's parameter count equals the summary's total.
params=$(sed -n 's/^model: .*, \([0-9]*\) parameters,.*/\1/p' "$work/out")
grep -q "parameters: 6 tensors, $params elements" "$work/out" ||
    fail "--summary total differs from the model's $params parameters"
grep -Eq '^ +0  linear +\(64, 16\)' "$work/out" || fail "--summary lacks the first linear row"
if command -v dot >/dev/null; then
    dot -Tsvg "$dot_file" -o "$work/tape.svg" 2>"$work/dot.err" || fail "dot rejects the picture: $(cat "$work/dot.err")"
    grep -q '<svg' "$work/tape.svg" || fail "dot produced no SVG"
else
    echo "note: graphviz not installed, the picture was not rendered"
fi
expect 1 'dot: .*no-such-dir/tape.dot: cannot create files in' "${tiny[@]}" --dot "$work/no-such-dir/tape.dot"
ls -a "$work" | grep -q 'nabla-tmp' && fail "--dot left a temporary file"

# ---- wait policy ------------------------------------------------------------------------------
expect 0 'wait passive\)' "${tiny[@]}"
OMP_WAIT_POLICY=active expect 0 'wait active\)' "${tiny[@]}"
OMP_WAIT_POLICY=active expect 0 'wait passive\)' "${tiny[@]}" --wait-policy passive
OMP_WAIT_POLICY=passive expect 0 'wait default\)' "${tiny[@]}" --wait-policy unset
exit $((failures > 0))
