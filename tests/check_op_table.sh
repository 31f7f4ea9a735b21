#!/usr/bin/env bash
# README's op table (between the op-table markers of its "## Ops" section) lists every public
# op once and nothing else, and says which are first-order only. Fails naming the op when
#   - an op of src/ops/ops.def (nb_<name>: X lines not renamed by an ALIAS, COMPOSITE and ALIAS
#     names) has no row, or is in two rows,
#   - a name in the table's first column is no op,
#   - given the op list of test_ops_registry --list-ops: a row's gradient cell says "1st order
#     only" for an op with a vjp or not for one without (composites and aliases follow the op
#     they record), or the "N of the M ops" sentence of README's higher-order section is stale.
# Usage: tests/check_op_table.sh [repo root] [test_ops_registry binary]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
lister=${2:-}
def=$root/src/ops/ops.def
readme=$root/README.md
bad=0
say() {
    echo "check-op-table: error: $*"
    bad=1
}

# Public name -> the op whose descriptor it records.
declare -A op_of
for op in $(sed -n 's/^X(\([a-z0-9_]*\))$/\1/p' "$def"); do
    op_of[$op]=$op
done
while read -r name op; do
    op_of[$name]=$op
done < <(sed -n 's/^COMPOSITE(\([a-z0-9_]*\), \([a-z0-9_]*\)).*/\1 \2/p' "$def")
while read -r name op; do
    unset "op_of[$op]" # the op's public function is nb_<name>
    op_of[$name]=$op
done < <(sed -n 's/^ALIAS(\([a-z0-9_]*\), \([a-z0-9_]*\)).*/\1 \2/p' "$def")
[ ${#op_of[@]} -gt 0 ] || { echo "check-op-table: error: no ops read from $def"; exit 1; }

table=$(sed -n '/^<!-- op-table: begin -->$/,/^<!-- op-table: end -->$/p' "$readme" | grep '^| `' || true)
[ -n "$table" ] || { echo "check-op-table: error: README.md has no op table between the markers"; exit 1; }

# The op list with orders, when the test binary is given.
declare -A order
if [ -n "$lister" ]; then
    while read -r op o; do
        order[$op]=$o
    done < <("$lister" --list-ops)
    [ ${#order[@]} -gt 0 ] || { echo "check-op-table: error: $lister --list-ops printed nothing"; exit 1; }
fi

declare -A row_of
n=0
while IFS= read -r line; do
    n=$((n + 1))
    first=$(cut -d'|' -f2 <<<"$line")
    grad=$(awk -F'|' '{ print $(NF - 1) }' <<<"$line" | sed 's/^ *//; s/ *$//')
    for name in $(grep -o '`[a-z0-9_]*`' <<<"$first" | tr -d '`'); do
        if [ -z "${op_of[$name]:-}" ]; then
            say "README.md op table row $n names '$name', which is no op in src/ops/ops.def"
            continue
        fi
        [ -z "${row_of[$name]:-}" ] ||
            say "README.md op table lists '$name' twice (rows ${row_of[$name]} and $n)"
        row_of[$name]=$n
        o=${order[${op_of[$name]}]:-}
        if [ "$o" = 1st ] && [ "$grad" != "1st order only" ]; then
            say "README.md op table row $n: '$name' is first-order only" \
                "(nb_op_first_order_reason) but its gradient cell says '$grad'"
        elif [ "$o" = 2nd ] && [ "$grad" = "1st order only" ]; then
            say "README.md op table row $n: '$name' has a vjp (higher order) but is marked '$grad'"
        fi
    done
done <<<"$table"
for name in $(printf '%s\n' "${!op_of[@]}" | sort); do
    [ -n "${row_of[$name]:-}" ] ||
        say "op '$name' (src/ops/ops.def) has no row in README.md's op table (## Ops)"
done

if [ -n "$lister" ]; then
    total=${#order[@]}
    higher=$(printf '%s\n' "${order[@]}" | grep -c '^2nd$' || true)
    want="$higher of the $total ops"
    grep -q "$want" "$readme" ||
        say "README.md should say '$want' have higher-order support; it says" \
            "'$(grep -o '[0-9]* of the [0-9]* ops' "$readme" | head -1)'"
fi

[ $bad -eq 0 ] || exit 1
echo "check-op-table: ok (${#op_of[@]} public ops, each in one row)"
