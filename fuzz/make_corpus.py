#!/usr/bin/env python3
"""Writes the fuzz seed corpus: small valid and near-valid inputs for each harness.

Usage: fuzz/make_corpus.py OUTDIR

Creates OUTDIR/fuzz_idx/, OUTDIR/fuzz_safetensors/ and OUTDIR/fuzz_text/ (files are
overwritten, nothing else is touched). IDX seeds use the harness's input layout (see fuzz/fuzz_idx.c): a control byte
(bit 0/1: the harness gzips the image/label part), the image part's length as a little-endian
u16, then the image file and the label file. Every seed is deterministic and under 4 KiB
(libFuzzer's default input size limit); a few gzip ones expand to megabytes.
Standard library only.
"""
import gzip
import json
import os
import struct
import sys


def idx_images(n, rows, cols, magic=0x803, pixels=None):
    if pixels is None:
        pixels = bytes((i * 37 + 11) % 256 for i in range(n * rows * cols))
    return struct.pack(">IIII", magic, n, rows, cols) + pixels


def idx_labels(n, magic=0x801, labels=None):
    if labels is None:
        labels = bytes(i % 10 for i in range(n))
    return struct.pack(">II", magic, n) + labels


def gz(b):
    return gzip.compress(b, compresslevel=9, mtime=0)


def idx_seed(images, labels, ctl=0):
    return bytes([ctl]) + struct.pack("<H", len(images)) + images + labels


def corrupt_late():
    """A gzip member with the header and 640 KiB of a 1 MiB image, then a member whose first
    deflate block has the reserved type 3. zlib decodes up to 256 KiB ahead while the header is
    read, so only an error this far in surfaces while the payload is read."""
    head = idx_images(1, 1024, 1024, pixels=bytes(640 << 10))
    return gz(head) + b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x07\x00"


def idx_seeds():
    img, lab = idx_images(3, 4, 5), idx_labels(3)
    zimg, zlab = gz(img), gz(lab)
    bad_crc = bytearray(zimg)
    bad_crc[-8] ^= 0xFF
    yield "valid_raw", idx_seed(img, lab)
    yield "valid_1x1", idx_seed(idx_images(1, 1, 1), idx_labels(1))
    yield "valid_28x28", idx_seed(idx_images(1, 28, 28), idx_labels(1, labels=b"\x07"))
    for ctl in (1, 2, 3, 3 | 4, 3 | 12):  # the harness gzips parts, at several levels
        yield "valid_hgz_%d" % ctl, idx_seed(img, lab, ctl)
    yield "valid_pregz", idx_seed(zimg, zlab)
    yield "valid_pregz_mixed", idx_seed(zimg, lab)
    yield "valid_two_members", idx_seed(gz(img[:10]) + gz(img[10:]), lab)
    yield "gz_truncated", idx_seed(zimg[: len(zimg) - 5], zlab)
    yield "gz_bad_crc", idx_seed(bytes(bad_crc), zlab)
    yield "gz_trailing_junk", idx_seed(zimg + b"junk", zlab)
    big = idx_images(2, 14, 14, pixels=bytes((i * i) % 251 for i in range(392)))
    zbig = gz(big)
    for k, at in enumerate((len(zbig) // 3, len(zbig) // 2)):
        bad = bytearray(zbig)
        bad[at] ^= 0x55  # corrupt deflate data: zlib fails mid-payload
        yield "gz_corrupt_mid_%d" % k, idx_seed(bytes(bad), idx_labels(2))
    yield "gz_corrupt_late", idx_seed(corrupt_late(), idx_labels(1))
    # Payloads over the reader's first 1 MiB buffer, so that it has to grow it.
    yield "gz_large_valid", idx_seed(gz(idx_images(3, 768, 768, pixels=bytes(3 * 768 * 768))),
                                     idx_labels(3))
    yield "gz_large_truncated", idx_seed(gz(idx_images(3, 1024, 1024, pixels=bytes(2 << 20))),
                                         idx_labels(3))
    yield "gz_trailing_data", idx_seed(gz(img + b"\x00"), zlab)
    yield "truncated_payload", idx_seed(img[:-1], lab)
    yield "trailing_byte", idx_seed(img + b"\x00", lab)
    yield "truncated_header", idx_seed(img[:10], lab)
    yield "bad_label", idx_seed(img, idx_labels(3, labels=b"\x01\x0a\x02"))
    yield "count_mismatch", idx_seed(img, idx_labels(2))
    yield "swapped_magic", idx_seed(lab, img)
    yield "float_type", idx_seed(idx_images(3, 4, 5, magic=0x0D03), lab)
    yield "zero_count", idx_seed(idx_images(0, 4, 5), idx_labels(0))
    yield "zero_side", idx_seed(idx_images(3, 0, 5, pixels=b""), lab)
    yield "huge_side", idx_seed(idx_images(3, 16385, 1, pixels=b""), lab)
    yield "huge_count", idx_seed(idx_images(0xFFFFFFFF, 1, 1, pixels=b""), lab)
    yield "empty_labels", idx_seed(img, b"")
    yield "empty_both", idx_seed(b"", b"")


def safetensors(tensors, metadata=None, pad=True, raw_header=None, tail=b""):
    """tensors: list of (name, dtype, shape, data bytes); offsets follow in order."""
    header, buf = {}, b""
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(buf), len(buf) + len(blob)]}
        buf += blob
    if metadata is not None:
        header["__metadata__"] = metadata
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    if pad:
        text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + buf + tail


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def checked(tensors, user=None):
    """nabla's checksummed layout: a CRC-32C per tensor and one over the user metadata."""
    user = user or {}
    meta = dict(user)
    for name, _, _, blob in tensors:
        meta["nabla.crc32c." + name] = "%08x" % crc32c(blob)
    pairs = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in sorted(user.items()))
    meta["nabla.crc32c.__metadata__"] = "%08x" % crc32c(pairs)
    return safetensors(tensors, meta)


def st_seeds():
    w = ("w", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6))
    b = ("b", "F64", [3], struct.pack("<3d", 0.5, -1, 2))
    step = ("step", "I32", [], struct.pack("<i", 42))
    none = ("none", "F32", [0, 4], b"")
    model = [w, b, step, none]
    yield "valid_model", safetensors(model, {"format": "pt"})
    yield "valid_wb", safetensors([w, b])
    yield "valid_unpadded", safetensors(model, pad=False)
    yield "valid_extras", safetensors(model + [
        ("h", "F16", [2], b"\x00\x3c\x00\x40"), ("e", "BF16", [0, 5], b""),
        ("big", "I64", [1], struct.pack("<q", -1)), ("flag", "BOOL", [3], b"\x01\x00\x01")])
    yield "empty_header", safetensors([])
    yield "only_metadata", safetensors([], {"k": "v"})
    yield "wrong_dtype", safetensors([("w", "F64", [2, 3], bytes(48)), b, step])
    yield "wrong_shape", safetensors([("w", "F32", [3, 2], w[3]), b, step])
    yield "wrong_rank", safetensors([("w", "F32", [6], w[3]), b, step])
    yield "long_shape", safetensors([("w", "F32", [2] + [1] * 60 + [3], w[3]), b, step])
    yield "long_shape_offsets", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[' + b"1," * 60 + b'7],"data_offsets":[0,24]}}'),
        tail=w[3])
    yield "missing_b", safetensors([w, step])
    yield "unknown_dtype", safetensors([("w", "F33", [2, 3], w[3]), b, step])
    yield "truncated_data", safetensors(model)[:-3]
    yield "trailing_data", safetensors(model, tail=b"\x00" * 8)
    full = safetensors(model)
    yield "hlen_too_big", struct.pack("<Q", len(full)) + full[8:]
    yield "hlen_huge", struct.pack("<Q", 1 << 63) + full[8:]
    yield "short_file", b"\x02\x00\x00\x00"
    yield "json_array", safetensors([], raw_header=b"[]")
    yield "json_bad", safetensors([], raw_header=b'{"w": {"dtype": "F32",')
    yield "json_nul", safetensors([], raw_header=b'{}\x00{"a":1}')
    yield "json_junk", safetensors([], raw_header=b'{} x')
    yield "dup_key", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
        b'"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'), tail=w[3])
    yield "overlap", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
        b'"b":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},'
        b'"step":{"dtype":"I32","shape":[],"data_offsets":[20,24]}}'), tail=w[3])
    yield "offsets_reversed", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}'), tail=w[3])
    yield "offsets_float", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24.5]}}'), tail=w[3])
    yield "shape_negative", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[-2,-3],"data_offsets":[0,24]}}'), tail=w[3])
    yield "shape_overflow", safetensors([], raw_header=(
        b'{"w":{"dtype":"F32","shape":[4294967296,4294967296,8],"data_offsets":[0,24]}}'),
        tail=w[3])
    yield "metadata_nonstring", safetensors([w], {"epochs": 3})
    yield "entry_not_object", safetensors([], raw_header=b'{"w": [1, 2]}')
    yield "unicode_name", safetensors([("\u00e9t\u00e9", "F32", [1], b"\x00" * 4), b])
    yield "checked_model", checked(model, {"epoch": "3"})
    yield "checked_nan", checked([("w", "F32", [2, 3], struct.pack("<6f", 1, float("nan"), 3, 4, 5, 6)), b])
    yield "escapes", safetensors([], raw_header=(
        b'{"\\u0077":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"x":[{"y":null}]}}'),
        tail=w[3])


def text_seeds():
    """fuzz_text: a control byte (bit 0 bytes, bits 1-2 max_vocab, bit 3 fixed vocabulary), then
    the file."""
    fortune = (b"A day for firm decisions!!!!!  Or is it?\n%\n"
               b"Q:\tWhat's yellow and e\x08equivalent to the axiom of choice?\n%\n")
    utf8 = "na\u00efve caf\u00e9 \u2014 \u00fcber \U0001F600\n".encode()
    yield "fortune", b"\x00" + fortune
    yield "fortune_fixed", b"\x08" + fortune
    yield "fortune_bytes", b"\x01" + fortune
    yield "utf8", b"\x00" + utf8
    yield "utf8_bytes_fixed", b"\x09" + utf8
    yield "utf8_cap3", b"\x04" + utf8
    yield "abc_cap3", b"\x04abcabcabc"
    yield "one_char", b"\x00x"
    yield "empty", b"\x00"
    yield "nul", b"\x00ab\x00cd"
    yield "overlong", b"\x00\xc0\xaf"
    yield "surrogate", b"\x00\xed\xa0\x80"
    yield "truncated", b"\x00ok\xe2\x82"
    yield "above_max", b"\x00\xf4\x90\x80\x80"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for harness, seeds in (("fuzz_idx", idx_seeds()), ("fuzz_safetensors", st_seeds()),
                           ("fuzz_text", text_seeds())):
        d = os.path.join(sys.argv[1], harness)
        os.makedirs(d, exist_ok=True)
        for name, blob in seeds:
            assert len(blob) <= 4096, name
            with open(os.path.join(d, name), "wb") as f:
                f.write(blob)


if __name__ == "__main__":
    main()
