#!/usr/bin/env bash
# Fails (exit 1) when a tracked C source (*.c, *.h, *.inc) differs from what .clang-format
# makes of it, and lists those files. Fix with: clang-format -i FILE...
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format not installed (scripts/setup-debian.sh)"; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' '*.inc' | grep -v '^fuzz/regressions/')
bad=()
for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -ne 0 ]; then
    printf 'check-format: not formatted: %s\n' "${bad[@]}"
    echo "check-format: run clang-format -i on the files above ($(clang-format --version))"
    exit 1
fi
echo "check-format: ${#files[@]} files ok"
