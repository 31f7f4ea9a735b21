#!/usr/bin/env bash
# tests/check_case_files.sh passes on the tree, and fails naming the file and the rule on a copy
# of src/ and tests/ with one misplacement planted per rule.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/cli_lib.sh"
check="$here/check_case_files.sh"

lister=${1:-}
expect_run 0 'check-case-files: ok' "$check" "$root"
# The cases as the registry builds them (macros included) are in place too.
[ -z "$lister" ] || expect_run 0 'check-case-files: ok' "$check" "$root" "$lister"

fresh() {
    rm -rf "$work/tree" && mkdir -p "$work/tree" && cp -r "$root/src" "$root/tests" "$work/tree/"
}
# A relu case in the sum_to table.
fresh
sed -i 's|^const oc_case oc_cases_sum_to\[\] = {|&\n    {"relu", "planted", sum_to_one, 1, {V1(1)}},|' \
    "$work/tree/tests/cases_sum_to.c"
expect_run 1 "cases_sum_to.c:[0-9]+: a case of op 'relu' belongs in tests/cases_pointwise.c" \
    "$check" "$work/tree"
# A source file with ops but no family.
fresh
sed -i '/^FAMILY(sum_to)$/d' "$work/tree/tests/cases.def"
expect_run 1 'src/ops/sum_to.c defines ops but tests/cases.def has no FAMILY\(sum_to\) line' \
    "$check" "$work/tree"
# A family, cases file or test file named after no source (the old grouped names).
fresh
echo 'FAMILY(reduce_shape)' >>"$work/tree/tests/cases.def"
touch "$work/tree/tests/test_ops_softmax_loss.c"
expect_run 1 'FAMILY\(reduce_shape\) in tests/cases.def names no src/ops/reduce_shape.c' \
    "$check" "$work/tree"
expect_run 1 'tests/test_ops_softmax_loss.c is named after no src/ops/softmax_loss.c' \
    "$check" "$work/tree"
# A case built by a macro in another source's table: only the registry's list shows it (a
# stand-in lister reports a relu case in the sum_to family).
printf '#!/bin/sh\necho "sum_to relu"\n' >"$work/lister" && chmod +x "$work/lister"
expect_run 1 "tests/cases_sum_to.c: a case of op 'relu' \(test_ops_registry --list-cases\) belongs in tests/cases_pointwise.c" \
    "$check" "$root" "$work/lister"

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "check-case-files: all checks passed"
