#!/usr/bin/env bash
# check_exports.sh LIBNABLA.so LIBNABLA.a VERSION_SCRIPT SOVERSION
# The shared library's dynamic symbol table is exactly the public API: every defined dynamic
# symbol is an nb_* name of the public headers (listed in the version script), and every such
# name the static library defines is exported. Also checks the SONAME.
set -euo pipefail
so=$1 a=$2 map=$3 soversion=$4
fail() { echo "check_exports: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | sort -u >"$work/exported"
nm -g --defined-only "$a" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$work/static"
sed -n 's/^ *\(nb_[A-Za-z0-9_]*\);$/\1/p' "$map" | sort -u >"$work/public"
[ -s "$work/exported" ] || fail "$so exports nothing"
[ -s "$work/public" ] || fail "no public names in $map"

# Nothing but public names leaves the library (no nb__ helpers, no op descriptors, no libc
# or OpenBLAS re-exports).
extra=$(comm -23 "$work/exported" "$work/public")
[ -z "$extra" ] || fail "exported but not public: $(echo $extra)"
# Every public function the library defines is reachable.
comm -12 "$work/public" "$work/static" >"$work/want"
missing=$(comm -23 "$work/want" "$work/exported")
[ -z "$missing" ] || fail "public but not exported: $(echo $missing)"
# The internal helpers exist in the static library, so the filter above is doing something.
grep -q '^nb__record$' "$work/static" || fail "nb__record not in $a (renamed? update this check)"
grep -q '^nb__record$' "$work/exported" && fail "nb__record is exported"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libnabla.so.$soversion" ] || fail "SONAME is '$soname', want libnabla.so.$soversion"
echo "check_exports: $(wc -l <"$work/exported") symbols exported, all public;" \
    "$(wc -l <"$work/static") global in the static library; SONAME $soname"
