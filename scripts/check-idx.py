#!/usr/bin/env python3
"""Sanity-checks an MNIST-style directory of IDX files (gzipped or not).

Usage: scripts/check-idx.py DIR [INDEX]

For the train and t10k splits it parses the big-endian headers, checks magic
numbers, dimensions and payload sizes, prints the label histogram, and draws
image INDEX (default 0) of each split as ASCII art so that orientation can be
checked by eye (28 rows of 28 columns, row-major). Exits non-zero on any problem.
Uses only the Python standard library.
"""
import gzip
import os
import struct
import sys


def read(dir_, base):
    for name in (base + ".gz", base):
        path = os.path.join(dir_, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                return name, f.read()
    sys.exit("check-idx: missing %s[.gz] in %s" % (base, dir_))


def check_split(dir_, prefix, index):
    iname, img = read(dir_, prefix + "-images-idx3-ubyte")
    lname, lab = read(dir_, prefix + "-labels-idx1-ubyte")
    magic, n, rows, cols = struct.unpack(">IIII", img[:16])
    if magic != 0x803:
        sys.exit("check-idx: %s: magic 0x%08x, expected 0x00000803" % (iname, magic))
    if len(img) != 16 + n * rows * cols:
        sys.exit("check-idx: %s: %d bytes, header implies %d" % (iname, len(img), 16 + n * rows * cols))
    lmagic, ln = struct.unpack(">II", lab[:8])
    if lmagic != 0x801:
        sys.exit("check-idx: %s: magic 0x%08x, expected 0x00000801" % (lname, lmagic))
    if len(lab) != 8 + ln:
        sys.exit("check-idx: %s: %d bytes, header implies %d" % (lname, len(lab), 8 + ln))
    if ln != n:
        sys.exit("check-idx: %s has %d images but %s has %d labels" % (iname, n, lname, ln))
    labels = lab[8:]
    if any(x > 9 for x in labels):
        sys.exit("check-idx: %s: label outside 0..9" % lname)
    hist = [labels.count(d) for d in range(10)]
    pix = img[16:]
    print("%s: %d images of %dx%d, pixel min %d max %d, mean %.1f"
          % (prefix, n, rows, cols, min(pix), max(pix), sum(pix) / len(pix)))
    print("  labels 0..9: %s" % " ".join(str(h) for h in hist))
    if 0 <= index < n:
        start = index * rows * cols
        print("  image %d, label %d:" % (index, labels[index]))
        shades = " .:-=+*#%@"
        for r in range(rows):
            row = pix[start + r * cols:start + (r + 1) * cols]
            print("  |" + "".join(shades[v * (len(shades) - 1) // 255] for v in row) + "|")
    return n


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    index = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    total = sum(check_split(sys.argv[1], p, index) for p in ("train", "t10k"))
    print("ok: %d images in total" % total)


if __name__ == "__main__":
    main()
