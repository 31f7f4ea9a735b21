#!/usr/bin/env bash
# Adding an op cannot go half-done (docs/adding-an-op.md). Run by every build before the
# library compiles (CMake target nabla_check_ops); fails (exit 1) naming the op and the
# missing step:
#   step 1  the X(<op>) line in src/ops/ops.def
#   step 2  the declaration  nb_tensor *nb_<op>(nb_graph *g, ...);  in include/nabla/ops.h
#   step 3  the call-site macro  #define nb_<op>(...) NB__SITE(nb_<op>, __VA_ARGS__)  in ops.h
#   step 6  every src/**/*.c in the nabla source list of CMakeLists.txt
# Steps 4 and 5 (a gradient-check case and a bad-input case per op) are checked when the tests
# run, by tests/test_ops_registry.c, which knows the case tables.
# Usage: scripts/check-ops.sh [repo root]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
def=$root/src/ops/ops.def
hdr=$root/include/nabla/ops.h
doc="docs/adding-an-op.md"
bad=0
say() {
    echo "check-ops: error: $*"
    bad=1
}

# Public function names: X(op) is nb_<op> unless an ALIAS(name, op) renames it; COMPOSITE(name,
# op) and ALIAS(name, op) are nb_<name>.
ops=$(sed -n 's/^X(\([a-z0-9_]*\))$/\1/p' "$def" | sort)
renamed=$(sed -n 's/^ALIAS([a-z0-9_]*, \([a-z0-9_]*\)).*/\1/p' "$def" | sort)
listed=$( (comm -23 <(echo "$ops") <(echo "$renamed")
    sed -n 's/^\(COMPOSITE\|ALIAS\)(\([a-z0-9_]*\), [a-z0-9_]*).*/\2/p' "$def") | sort)
declared=$(sed -n 's/^nb_tensor \*nb_\([a-z0-9_]*\)(nb_graph \*g[,)].*/\1/p' "$hdr" | sort)
macros=$(sed -n 's/^#define nb_\([a-z0-9_]*\)(\.\.\.) NB__SITE(nb_\1, __VA_ARGS__)$/\1/p' "$hdr" | sort)
in_list() { grep -qx -- "$1" <<<"$2"; }
for op in $renamed; do
    grep -qx -- "$op" <<<"$ops" || say "ALIAS names op '$op', which has no X($op) line in src/ops/ops.def"
done

for op in $(printf '%s\n%s\n' "$declared" "$macros" | sort -u); do # each op once
    in_list "$op" "$listed" && continue
    say "op '$op' is in include/nabla/ops.h but has no X($op) line in src/ops/ops.def" \
        "(step 1 of $doc: without it the op is missing from nb_op_count and the gradient-check coverage)"
done
for op in $listed; do
    in_list "$op" "$declared" ||
        say "op '$op' (src/ops/ops.def) has no declaration 'nb_tensor *nb_$op(nb_graph *g, ...);'" \
            "in include/nabla/ops.h (step 2 of $doc)"
    in_list "$op" "$macros" ||
        say "op '$op' has no call-site macro '#define nb_$op(...) NB__SITE(nb_$op, __VA_ARGS__)'" \
            "in include/nabla/ops.h (step 3 of $doc: without it anomaly reports lose the caller's file:line)"
done
dups=$(uniq -d <<<"$ops")
[ -z "$dups" ] || say "ops listed twice in src/ops/ops.def: $dups"

# Step 6: a source file missing from the library is otherwise only an "undefined reference".
while IFS= read -r f; do
    rel=${f#"$root"/}
    grep -q "^[[:space:]]*$rel[[:space:]]*\$" "$root/CMakeLists.txt" ||
        say "$rel is not in the nabla source list of CMakeLists.txt (step 6 of $doc: its ops" \
            "would not be built: 'undefined reference to nb_op_...')"
done < <(find "$root/src" -name '*.c' | sort)

[ $bad = 0 ] || exit 1
echo "check-ops: $(wc -l <<<"$listed") op functions listed, declared, wrapped; every source file built"
