#!/usr/bin/env bash
# Tests follow the sources (docs/adding-an-op.md): the tests of src/ops/<name>.c live in
# tests/test_ops_<name>.c and its gradient-check and bad-input cases in tests/cases_<name>.c
# (one FAMILY(<name>) line in tests/cases.def). Fails naming the file and the rule when
#   - a source file that defines ops has no FAMILY line or no cases file,
#   - a FAMILY, cases_<name>.c or test_ops_<name>.c names no src/ops/<name>.c,
#   - a case written {"<op>", ...} sits in the cases file of another source than its op's
#     (composites and aliases belong with the op whose descriptor they record).
#   Given the test_ops_registry binary, its --list-cases also places the cases the tables build
#   through macros (CASES(...), BIN2(...)), which the source text does not show as {"<op>", ...}.
# Usage: tests/check_case_files.sh [repo root] [test_ops_registry binary]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
lister=${2:-}
ops_dir=$root/src/ops
tests=$root/tests
bad=0
say() {
    echo "check-case-files: error: $*"
    bad=1
}
families=$(sed -n 's/^FAMILY(\([a-z0-9_]*\))$/\1/p' "$tests/cases.def")

# The source file of each op: where its descriptor nb_op_<op> is defined.
declare -A home
for f in "$ops_dir"/*.c; do
    name=$(basename "$f" .c)
    for op in $(sed -n 's/^const nb_op nb_op_\([a-z0-9_]*\) = .*/\1/p' "$f"); do
        home[$op]=$name
    done
done
# Unary pointwise ops are one NB_POINTWISE* line each in pointwise.c, or a PW_OP(<op>) line
# after kernels of their own (elu, relu).
for op in $(sed -n 's/^\(NB_POINTWISE[A-Z0-9_]*\|PW_OP\)(\([a-z0-9_]*\)[,)].*/\2/p' "$ops_dir/pointwise.c"); do
    home[$op]=pointwise
done
# Composites and aliases live with the op they record.
while read -r name op; do
    [ -n "${home[$op]:-}" ] && home[$name]=${home[$op]}
done < <(sed -n 's/^\(COMPOSITE\|ALIAS\)(\([a-z0-9_]*\), \([a-z0-9_]*\)).*/\2 \3/p' "$ops_dir/ops.def")

for name in $(printf '%s\n' "${home[@]}" | sort -u); do
    grep -qx "$name" <<<"$families" ||
        say "src/ops/$name.c defines ops but tests/cases.def has no FAMILY($name) line"
    [ -f "$tests/cases_$name.c" ] ||
        say "src/ops/$name.c defines ops but there is no tests/cases_$name.c"
done
for name in $families; do
    [ -f "$ops_dir/$name.c" ] || say "FAMILY($name) in tests/cases.def names no src/ops/$name.c"
done
for f in "$tests"/cases_*.c "$tests"/test_ops_*.c; do
    name=$(basename "$f" .c)
    name=${name#cases_}
    name=${name#test_ops_}
    [ -f "$ops_dir/$name.c" ] || say "tests/$(basename "$f") is named after no src/ops/$name.c"
done
for name in $families; do
    f=$tests/cases_$name.c
    [ -f "$f" ] || continue
    while IFS=: read -r line op; do
        want=${home[$op]:-}
        [ -z "$want" ] || [ "$want" = "$name" ] ||
            say "tests/cases_$name.c:$line: a case of op '$op' belongs in tests/cases_$want.c" \
                "(its op is defined in src/ops/$want.c)"
    done < <(grep -no '^ *{"[a-z0-9_]*",' "$f" | sed 's/: *{"\([a-z0-9_]*\)",$/:\1/')
done
if [ -n "$lister" ]; then
    cases=$("$lister" --list-cases) || { say "$lister --list-cases failed"; cases=""; }
    while read -r name op; do
        want=${home[$op]:-}
        [ -z "$want" ] || [ "$want" = "$name" ] ||
            say "tests/cases_$name.c: a case of op '$op' (test_ops_registry --list-cases) belongs" \
                "in tests/cases_$want.c (its op is defined in src/ops/$want.c)"
    done < <(sort -u <<<"$cases")
fi

[ $bad = 0 ] || exit 1
echo "check-case-files: ok ($(wc -w <<<"$families") families, ${#home[@]} ops, each with its source)"
