#!/usr/bin/env bash
# Bad input, end to end: the command-line tools given broken data, broken checkpoints, paths
# they cannot write, a full disk (a file-size limit) and SIGINT during checkpoint writes must
# each print a clear message and exit non-zero, with no crash (exit >= 128 from a signal other
# than the one we sent), no partial output file, and an old checkpoint left intact.
# Usage: test_bad_input.sh path/to/mnist path/to/overfit
set -u

mnist=${1:?usage: test_bad_input.sh path/to/mnist path/to/overfit}
overfit=${2:?usage: test_bad_input.sh path/to/mnist path/to/overfit}
data=/usr/share/datasets/fashion-mnist
source "$(dirname "$0")/cli_lib.sh"
tiny=(--limit 1500 --val 300 --hidden 16 --epochs 1)
expect() { expect_run "$@"; }

# no_leftovers DIR: no temporary or partial files remain.
no_leftovers() {
    if compgen -G "$1/*.tmp*" >/dev/null; then
        fail "temporary files left in $1: $(ls "$1")"
    fi
}

if [[ ! -d $data ]]; then
    echo "SKIP: $data is absent (apt-get install dataset-fashion-mnist)"
    exit 0
fi

# ---- broken data directories -------------------------------------------------------------------
expect 1 "no-such-dir" "$mnist" --data "$work/no-such-dir" "${tiny[@]}"

mkdir "$work/wrong-names"
cp "$data/train-images-idx3-ubyte.gz" "$work/wrong-names/train-images.gz"
expect 1 "cannot open .*train-images-idx3-ubyte" "$mnist" --data "$work/wrong-names" "${tiny[@]}"

mkdir "$work/truncated"
cp "$data"/*.gz "$work/truncated/"
size=$(stat -c %s "$data/train-images-idx3-ubyte.gz")
truncate -s $((size / 2)) "$work/truncated/train-images-idx3-ubyte.gz"
# No --limit here: with it only the first samples are read, and the cut comes after them.
expect 1 "train-images-idx3-ubyte.gz.*(truncated|corrupt)" "$mnist" --data "$work/truncated" --val 300 --hidden 16 --epochs 1

mkdir "$work/mismatch"
cp "$data"/*.gz "$work/mismatch/"
cp "$data/t10k-labels-idx1-ubyte.gz" "$work/mismatch/train-labels-idx1-ubyte.gz"
expect 1 "count mismatch" "$mnist" --data "$work/mismatch" "${tiny[@]}"

mkdir "$work/garbage"
cp "$data"/*.gz "$work/garbage/"
head -c 5000 /dev/urandom >"$work/garbage/t10k-images-idx3-ubyte.gz"
expect 1 "t10k-images" "$mnist" --data "$work/garbage" "${tiny[@]}"

# ---- issue 15: memory amplification, special files, SIGINT while loading ------------------------
# IDX headers written by hand: idx3 (n, rows, cols) and idx1 (n), big-endian.
idx3() { printf '\x00\x00\x08\x03'; printf '%08x%08x%08x' "$1" "$2" "$3" | xxd -r -p; }
idx1() { printf '\x00\x00\x08\x01'; printf '%08x' "$1" | xxd -r -p; }
# set_split DIR SPLIT N ROWS COLS PIXEL_BYTES: gzip files whose header claims N images but
# whose payload holds PIXEL_BYTES zero bytes (and N zero labels).
set_split() {
    (idx3 "$3" "$4" "$5"; head -c "$6" /dev/zero) | gzip -1 >"$1/$2-images-idx3-ubyte.gz"
    (idx1 "$3"; head -c "$3" /dev/zero) | gzip -1 >"$1/$2-labels-idx1-ubyte.gz"
}

# A 4 GiB claim (65536 images of 256x256) in a tiny file is refused before any allocation.
mkdir "$work/claim4g"
set_split "$work/claim4g" train 65536 256 256 131072
set_split "$work/claim4g" t10k 2 256 256 131072
expect 1 "4096 MiB, over the 1024 MiB limit" "$mnist" --data "$work/claim4g" --val 0 --hidden 16 --epochs 1

# --limit is applied while reading: 1500 samples fit a 2 MiB cap that the full 60000 do not.
expect 1 "60000 images of 28x28 are 44 MiB, over the 2 MiB" "$mnist" --data "$data" --max-data-mb 2 --limit 60000 --val 300 --hidden 16 --epochs 1
expect 0 "test accuracy" "$mnist" --data "$data" --max-data-mb 8 "${tiny[@]}"

# A 20 KB dataset of 1024x1024 images: the default 256,128 MLP would need 3 GB; refused first.
mkdir "$work/wide"
set_split "$work/wide" train 2 1024 1024 $((2 * 1024 * 1024))
set_split "$work/wide" t10k 2 1024 1024 $((2 * 1024 * 1024))
expect 1 "needs 3072 MiB .*over the --max-model-mb 1024 budget" "$mnist" --data "$work/wide" --val 0 --epochs 1
expect 2 "max-model-mb" "$mnist" --max-model-mb 0

# A FIFO (or directory) named like a data file is refused at once instead of blocking.
mkdir "$work/fifo"
cp "$data"/*labels* "$data"/t10k-images* "$work/fifo/"
mkfifo "$work/fifo/train-images-idx3-ubyte.gz"
expect 1 "FIFO" timeout 10 "$mnist" --data "$work/fifo" "${tiny[@]}"
rm "$work/fifo/train-images-idx3-ubyte.gz"
mkdir "$work/fifo/train-images-idx3-ubyte.gz"
expect 1 "directory" timeout 10 "$mnist" --data "$work/fifo" "${tiny[@]}"

# SIGINT while a large (700 MiB of zeros, 3 MB gzip) training set loads: exit 130 at once,
# not after the load (the unfixed loader took 1.2 s more here, then stopped at the first step).
mkdir "$work/slow"
set_split "$work/slow" train 700 1024 1024 $((700 * 1024 * 1024))
set_split "$work/slow" t10k 2 1024 1024 $((2 * 1024 * 1024))
"$mnist" --data "$work/slow" --max-data-mb 800 --val 0 --hidden 1 --epochs 1 >"$work/out" 2>"$work/err" &
pid=$!
sleep 0.3
kill -INT "$pid"
t0=$(date +%s%N)
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $rc -eq 130 ]] || fail "SIGINT while loading: exit $rc; stderr: $(tail -c 300 "$work/err")"
((ms < 500)) || fail "SIGINT while loading: took $ms ms to stop"
grep -q "interrupted" "$work/err" || fail "SIGINT while loading: no message: $(tail -c 300 "$work/err")"
rm -rf "$work/slow" "$work/wide" "$work/claim4g"

# ---- bad flag values ----------------------------------------------------------------------------
expect 2 "usage" "$mnist" --batch 0
expect 2 "usage" "$mnist" --batch -5
expect 2 "usage" "$mnist" --epochs ten
expect 2 "usage" "$overfit" --steps -1
expect 2 "usage" "$overfit" --lr x

# ---- checkpoints --------------------------------------------------------------------------------
ck="$work/ck.safetensors"
expect 0 "test accuracy" "$mnist" "${tiny[@]}" --save "$ck"
cp "$ck" "$work/ck.orig"
expect 1 "fc1.weight.*shape|shape.*fc1.weight" "$mnist" "${tiny[@]}" --hidden 24 --load "$ck" --eval-only
head -c 100 "$work/ck.orig" >"$work/cut.safetensors"
expect 1 "cut.safetensors" "$mnist" "${tiny[@]}" --load "$work/cut.safetensors" --eval-only

# Unwritable output paths fail before training, leaving nothing behind.
expect 1 "cannot save checkpoint.*no-such-dir" "$mnist" "${tiny[@]}" --save "$work/no-such-dir/ck.safetensors"
expect 1 "no-such-dir" "$mnist" "${tiny[@]}" --csv "$work/no-such-dir/m.csv"
expect 1 "no-such-dir" "$overfit" --out "$work/no-such-dir"
no_leftovers "$work"

# A full disk, simulated by a 64 KiB file-size limit: the save fails with a message, the old
# checkpoint (written without the limit) stays byte-identical, no temporary file remains.
(ulimit -f 64 && "$mnist" "${tiny[@]}" --hidden 128 --save "$ck" >"$work/out" 2>"$work/err")
rc=$?
if [[ $rc -ne 1 ]] || ! grep -Eq "cannot save checkpoint" "$work/err"; then
    fail "save under a file-size limit exited $rc; stderr: $(tail -c 300 "$work/err")"
fi
cmp -s "$ck" "$work/ck.orig" || fail "the old checkpoint changed after a failed save"
no_leftovers "$work"

# SIGINT at varied moments of a run that saves every epoch: exit 130, and whatever is on disk
# is a complete checkpoint that evaluates. (A SIGINT while the data loads now stops the run
# before anything is saved, so the file may not exist.)
rm -f "$ck"
for delay in 0.3 0.8 1.3 1.9 2.6; do
    "$mnist" --limit 3000 --val 300 --hidden 64 --epochs 200 --save "$ck" >"$work/out" 2>"$work/err" &
    pid=$!
    sleep "$delay"
    kill -INT "$pid"
    wait "$pid"
    rc=$?
    [[ $rc -eq 130 || $rc -eq 0 ]] || fail "SIGINT after ${delay}s: exit $rc; stderr: $(tail -c 300 "$work/err")"
    no_leftovers "$work"
    [[ ! -e $ck ]] || expect 0 "test accuracy" "$mnist" --limit 3000 --val 300 --hidden 64 --load "$ck" --eval-only
done

if ((failures > 0)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all bad-input checks passed"
