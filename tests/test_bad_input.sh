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
    if compgen -G "$1/*tmp*" >/dev/null || compgen -G "$1/.*tmp*" >/dev/null; then
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
# Wait until the run (after its one-time re-exec) has installed its SIGINT handler, read from
# /proc (bit 1 of SigCgt), so a loaded machine cannot turn this into a default-action kill.
for _ in $(seq 200); do
    cgt=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $cgt ]] && (((16#$cgt >> 1) & 1)) && break
    sleep 0.05
done
kill -INT "$pid"
t0=$(date +%s%N)
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $rc -eq 130 ]] || fail "SIGINT while loading: exit $rc; stderr: $(tail -c 300 "$work/err")"
((ms < 1000)) || fail "SIGINT while loading: took $ms ms to stop (the limit is 1 s)"
grep -q "interrupted while loading" "$work/err" || fail "SIGINT while loading: no message: $(tail -c 300 "$work/err")"
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

# unchanged FILE: FILE is byte-identical to the good checkpoint saved above.
unchanged() { cmp -s "$1" "$work/ck.orig" || fail "$1 changed ($2)"; }

# Unwritable output paths fail before training (before loading data), leaving nothing behind.
expect 1 "--save: .*no-such-dir.*No such file" "$mnist" "${tiny[@]}" --save "$work/no-such-dir/ck.safetensors"
expect 1 "--csv: .*no-such-dir" "$mnist" "${tiny[@]}" --csv "$work/no-such-dir/m.csv"
expect 1 "no-such-dir" "$overfit" --out "$work/no-such-dir"
no_leftovers "$work"

# Finding 1: a run never replaces an existing checkpoint with an untrained or diverged model.
# A new run onto an existing file needs --overwrite (or --load of that file, to continue it).
expect 1 "already exists.*--overwrite" "$mnist" "${tiny[@]}" --save "$ck"
unchanged "$ck" "new run without --overwrite"
# Diverging runs (--lr 1e6: the loss reaches ~1e12 in the second batch) stop with exit 1 and a
# message, and save nothing: continuing the checkpoint, and with --overwrite.
expect 1 "diverged.*no epoch finished, so .*ck.safetensors was left as it was" \
    "$mnist" "${tiny[@]}" --lr 1e6 --load "$ck" --save "$ck"
unchanged "$ck" "diverging resumed run"
expect 1 "diverged.*try a smaller --lr" "$mnist" "${tiny[@]}" --lr 1e6 --save "$ck" --overwrite
unchanged "$ck" "diverging run with --overwrite"
# A finite loss far above its start is divergence too (--lr 50 with momentum: loss ~1e2-1e4).
expect 1 "diverged" "$mnist" "${tiny[@]}" --lr 50 --save "$work/div.safetensors"
[[ -e $work/div.safetensors ]] && fail "a diverged run wrote a checkpoint"

# SIGINT before the first epoch finishes (sent once the run printed its "sgd:" line, i.e. data
# and model are ready): exit 130, the message says nothing was written, the file is unchanged.
# wait_for REGEX: until stdout of the background run matches (at most 60 s).
wait_for() {
    for _ in $(seq 600); do
        grep -Eq "$1" "$work/out" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "timed out waiting for /$1/"
    return 1
}
slow=(--limit 20000 --val 500 --hidden 256 --batch 32 --threads 1 --epochs 50)
"$mnist" "${slow[@]}" --save "$ck" --overwrite >"$work/out" 2>"$work/err" &
pid=$!
wait_for '^sgd:' && kill -INT "$pid"
wait "$pid"
rc=$?
[[ $rc -eq 130 ]] || fail "SIGINT in epoch 1: exit $rc"
grep -Eq "interrupted in epoch 1; no epoch finished, so .*ck.safetensors was left as it was" "$work/err" ||
    fail "SIGINT in epoch 1: message: $(tail -c 300 "$work/err")"
unchanged "$ck" "SIGINT before the first epoch finished"
# ... and after an epoch finished: the message names the epoch the file holds, which loads.
"$mnist" "${slow[@]}" --save "$ck" --overwrite >"$work/out" 2>"$work/err" &
pid=$!
wait_for '^epoch +1/' && kill -INT "$pid"
wait "$pid"
rc=$?
[[ $rc -eq 130 ]] || fail "SIGINT after epoch 1: exit $rc"
grep -Eq "interrupted (in|after) epoch [0-9]+; .*ck.safetensors holds epoch [1-9]" "$work/err" ||
    fail "SIGINT after epoch 1: message: $(tail -c 300 "$work/err")"
expect 0 "test accuracy" "$mnist" --hidden 256 --load "$ck" --eval-only
cp "$work/ck.orig" "$ck"

# Finding 2: outputs that are inputs, special files, links or directories are refused before
# any work, and nothing is replaced. A copy of the dataset stands in for the real one.
mkdir "$work/data"
cp "$data"/*.gz "$work/data/"
labels="$work/data/t10k-labels-idx1-ubyte.gz"
cp "$labels" "$work/labels.orig"
expect 1 "--save .*t10k-labels-idx1-ubyte.gz is the dataset file" \
    "$mnist" "${tiny[@]}" --data "$work/data" --save "$labels" --overwrite
expect 1 "--csv .*t10k-labels-idx1-ubyte.gz is the dataset file" \
    "$mnist" "${tiny[@]}" --data "$work/data" --csv "$labels" --overwrite
ln "$labels" "$work/hardlink.gz" # another name for the same data
expect 1 "is the dataset file" "$mnist" "${tiny[@]}" --data "$work/data" --save "$work/hardlink.gz" --overwrite
cmp -s "$labels" "$work/labels.orig" || fail "a dataset file was modified"
expect 1 "--csv .* is the --load checkpoint" "$mnist" "${tiny[@]}" --load "$ck" --csv "$ck" --overwrite
expect 1 "--csv .* is also the --save checkpoint" "$mnist" "${tiny[@]}" --save "$work/x.st" --csv "$work/./x.st"
mkfifo "$work/pipe"
expect 1 "--save: .*pipe is a FIFO \(named pipe\), not a regular file" timeout 20 "$mnist" "${tiny[@]}" --save "$work/pipe"
expect 1 "--csv: .*pipe is a FIFO" timeout 20 "$mnist" "${tiny[@]}" --csv "$work/pipe"
expect 1 "pipe: not a regular file \(a FIFO\)" timeout 20 "$mnist" "${tiny[@]}" --load "$work/pipe" --eval-only
[[ -p $work/pipe ]] || fail "the FIFO was replaced"
ln -s "$ck" "$work/link.safetensors"
expect 1 "--save: .*link.safetensors is a symbolic link.*refused" "$mnist" "${tiny[@]}" --save "$work/link.safetensors" --overwrite
[[ -L $work/link.safetensors ]] || fail "the symbolic link was replaced"
unchanged "$ck" "save onto a link to it"
expect 1 "--save: .* is a directory" "$mnist" "${tiny[@]}" --save "$work/data" --overwrite
expect 1 "--csv: .* (is|names) a directory" "$mnist" "${tiny[@]}" --csv "$work/data/" --overwrite
if [[ $(id -u) -eq 0 ]]; then # a device node of our own, never the real /dev/null
    mknod "$work/null" c 1 3
    expect 1 "--save: .*null is a character device" "$mnist" "${tiny[@]}" --save "$work/null" --overwrite
    [[ -c $work/null ]] || fail "the character device was replaced"
fi
no_leftovers "$work"

# Finding 3: corruption is caught by the checksums; non-finite weights are refused; a file from
# another tool (no checksums) still loads, with a note.
# flip FILE OFFSET BIT: flips one bit in place.
flip() {
    python3 - "$@" <<'PY'
import sys
path, off, bit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(off); b = f.read(1)[0]; f.seek(off); f.write(bytes([b ^ (1 << bit)]))
PY
}
# offset FILE NAME K: file offset of byte K of tensor NAME.
offset() {
    python3 - "$@" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
print(8 + n + h[sys.argv[2]]["data_offsets"][0] + int(sys.argv[3]))
PY
}
cp "$work/ck.orig" "$work/flip.safetensors"
flip "$work/flip.safetensors" "$(offset "$work/flip.safetensors" fc2.bias 3)" 6 # an exponent bit
expect 1 "'fc2.bias' fails its checksum" "$mnist" "${tiny[@]}" --load "$work/flip.safetensors" --eval-only
cp "$work/ck.orig" "$work/flip.safetensors"
flip "$work/flip.safetensors" "$(offset "$work/flip.safetensors" fc1.weight 4000)" 0 # a mantissa bit
expect 1 "'fc1.weight' fails its checksum" "$mnist" "${tiny[@]}" --load "$work/flip.safetensors" --eval-only
cp "$work/ck.orig" "$work/flip.safetensors"
flip "$work/flip.safetensors" 40 1 # a header byte
expect 1 "flip.safetensors" "$mnist" "${tiny[@]}" --load "$work/flip.safetensors" --eval-only
# rewrite SRC DST NAN: DST is SRC as another tool would write it (no nabla metadata), with
# fc1.bias[0] set to NaN when NAN is 1.
rewrite() {
    python3 - "$@" <<'PY'
import json, struct, sys
src, dst, nan = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
h.pop("__metadata__", None)
if nan:
    b = h["fc1.bias"]["data_offsets"][0]
    data[b:b + 4] = struct.pack("<f", float("nan"))
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(dst, "wb").write(struct.pack("<Q", len(j)) + j + bytes(data))
PY
}
rewrite "$ck" "$work/foreign.safetensors" 0
expect 0 "note: .*foreign.safetensors has no nabla checksums" "$mnist" "${tiny[@]}" --load "$work/foreign.safetensors" --eval-only
rewrite "$ck" "$work/nan.safetensors" 1
expect 1 "'fc1.bias' holds nan at element 0" "$mnist" "${tiny[@]}" --load "$work/nan.safetensors" --eval-only

# Finding 8: a 250-byte file name (the old "<name>.tmp.<pid>" exceeded NAME_MAX) saves and loads.
long="$work/$(printf 'c%.0s' {1..238}).safetensors"
expect 0 "test accuracy" "$mnist" "${tiny[@]}" --save "$long" --csv "$long.csv"
expect 0 "test accuracy" "$mnist" "${tiny[@]}" --load "$long" --eval-only
no_leftovers "$work"

# Finding 10: messages state the real limit or cause.
expect 2 "'10000' for --threads: need an integer in \[0, 4096\]" "$mnist" --threads 10000
expect 2 "for --batch: need an integer in \[1, 2147483647\]" "$mnist" --batch 99999999999
expect 2 "for --seed: need an integer in \[0, 18446744073709551615\]" "$mnist" --seed 18446744073709551616

# A full disk, simulated by a 64 KiB file-size limit: the save fails with a message, the old
# checkpoint (written without the limit) stays byte-identical, no temporary file remains.
(ulimit -f 64 && "$mnist" "${tiny[@]}" --hidden 128 --save "$ck" --overwrite >"$work/out" 2>"$work/err")
rc=$?
if [[ $rc -ne 1 ]] || ! grep -Eq "cannot save checkpoint.*File too large" "$work/err"; then
    fail "save under a file-size limit exited $rc; stderr: $(tail -c 300 "$work/err")"
fi
unchanged "$ck" "failed save under a file-size limit"
no_leftovers "$work"

# SIGINT and kill -9 at varied moments of a run that saves every epoch: SIGINT gives exit 130;
# after either, whatever is on disk is a complete checkpoint that evaluates, and at most the
# one fixed-name temp file of a kill -9 remains, removed by the next save.
expect 0 "test accuracy" "$mnist" --limit 3000 --val 300 --hidden 64 --epochs 1 --save "$ck" --overwrite
for delay in 0.3 0.8 1.3 1.9 2.6; do
    for sig in INT KILL; do
        "$mnist" --limit 3000 --val 300 --hidden 64 --epochs 200 --save "$ck" --overwrite >"$work/out" 2>"$work/err" &
        pid=$!
        sleep "$delay"
        kill -$sig "$pid"
        { wait "$pid"; } 2>/dev/null
        rc=$?
        if [[ $sig == INT ]]; then
            [[ $rc -eq 130 || $rc -eq 0 ]] || fail "SIGINT after ${delay}s: exit $rc; stderr: $(tail -c 300 "$work/err")"
            no_leftovers "$work"
        else
            n=$(find "$work" -mindepth 1 -maxdepth 1 -name '*tmp*' | wc -l) # not $work (/tmp/tmp.*)
            ((n <= 1)) || fail "kill -9 after ${delay}s left $n temp files: $(ls -a "$work")"
        fi
        expect 0 "test accuracy" "$mnist" --limit 3000 --val 300 --hidden 64 --load "$ck" --eval-only
    done
done
expect 0 "test accuracy" "$mnist" --limit 3000 --val 300 --hidden 64 --epochs 1 --save "$ck" --overwrite
no_leftovers "$work"

if ((failures > 0)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all bad-input checks passed"
