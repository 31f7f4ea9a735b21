#!/usr/bin/env bash
# tests/check_op_table.sh passes on the tree, and fails naming the op on a copy of README.md
# and src/ops/ops.def with one drift planted per rule.
# Usage: tests/test_check_op_table.sh <test_ops_registry binary>
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/cli_lib.sh"
check="$here/check_op_table.sh"
lister=$1

expect_run 0 'check-op-table: ok \([0-9]+ public ops' "$check" "$root" "$lister"

fresh() {
    rm -rf "$work/tree" && mkdir -p "$work/tree/src/ops" &&
        cp "$root/README.md" "$work/tree/" && cp "$root/src/ops/ops.def" "$work/tree/src/ops/"
}
# An op added to ops.def without a row; a composite's row removed.
fresh
sed -i 's/^X(matmul)$/&\nX(frobnicate)/' "$work/tree/src/ops/ops.def"
sed -i '/^| `conv1d` |/d' "$work/tree/README.md"
expect_run 1 "op 'frobnicate' \(src/ops/ops.def\) has no row" "$check" "$work/tree"
expect_run 1 "op 'conv1d' \(src/ops/ops.def\) has no row" "$check" "$work/tree"
# A row naming no op, and an op in two rows.
fresh
sed -i 's/^| `sum` `mean` |/| `sum` `mean` `total` |/; s/^| `max` `min` |/| `max` `min` `clamp` |/' \
    "$work/tree/README.md"
expect_run 1 "names 'total', which is no op" "$check" "$work/tree"
expect_run 1 "lists 'clamp' twice" "$check" "$work/tree"
# The public name of an aliased op is its alias, not the op.
fresh
sed -i 's/^| `one_hot_tensor` |/| `one_hot` |/' "$work/tree/README.md"
expect_run 1 "names 'one_hot', which is no op" "$check" "$work/tree"
# Orders: a first-order-only op marked 2nd order (a composite follows its op), a higher-order
# op marked first-order only, and a stale count.
fresh
sed -i 's/^\(| `embedding` |.*\)| 1st order only |$/\1| 2nd order |/' "$work/tree/README.md"
sed -i 's/^\(| `cast` |.*\)| 2nd order |$/\1| 1st order only |/' "$work/tree/README.md"
sed -i 's/\([0-9]*\) of the \([0-9]*\) ops/1 of the \2 ops/' "$work/tree/README.md"
expect_run 0 'check-op-table: ok' "$check" "$work/tree" # without the op list: names only
expect_run 1 "'embedding' is first-order only \(nb_op_first_order_reason\) but its gradient cell says '2nd order'" \
    "$check" "$work/tree" "$lister"
expect_run 1 "'cast' has a vjp \(higher order\) but is marked '1st order only'" \
    "$check" "$work/tree" "$lister"
expect_run 1 "README.md should say '[0-9]+ of the [0-9]+ ops' .* it says '1 of the" \
    "$check" "$work/tree" "$lister"
# No table at all.
fresh
sed -i '/^<!-- op-table: begin -->$/d' "$work/tree/README.md"
expect_run 1 'README.md has no op table between the markers' "$check" "$work/tree"

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "check-op-table: all checks passed"
