#!/usr/bin/env bash
# scripts/check-layers.sh passes on the tree, and fails naming file, line and direction on a
# copy of src/ with one forbidden include planted per rule of the layering.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/cli_lib.sh"
check="$root/scripts/check-layers.sh"

expect_run 0 'check-layers: ok' "$check" "$root"

# plant FILE INCLUDE REGEX: a fresh copy of src/ with INCLUDE added to FILE must fail with REGEX.
plant() {
    local file=$1 inc=$2 pattern=$3
    rm -rf "$work/tree" && mkdir -p "$work/tree" && cp -r "$root/src" "$work/tree/"
    printf '#include "%s"\n' "$inc" >>"$work/tree/src/$file"
    expect_run 1 "$pattern" "$check" "$work/tree"
}
plant tensor/tensor.c graph/graph_impl.h 'src/tensor/tensor.c:[0-9]+: includes "graph/graph_impl.h": tensor may not depend on graph'
plant tensor/rng.c nabla/ops.h 'tensor may not depend on ops'
plant graph/anomaly.c nabla/ops.h 'src/graph/anomaly.c:[0-9]+: includes "nabla/ops.h": graph may not depend on ops'
plant graph/graph.c nabla/optim.h 'graph may not depend on optim'
plant ops/matmul.c nabla/data.h 'ops may not depend on data'
plant ops/matmul.c io/safetensors_impl.h 'ops may not depend on io'
plant ops/matmul.c graph/graph_priv.h 'graph/graph_priv.h is private to src/graph'
plant optim/sgd.c graph/graph_impl.h 'optim may not depend on graph'
plant data/idx.c nabla/graph.h 'data may not depend on graph'
plant io/safetensors.c ops/ops_impl.h 'io may not depend on ops'
plant base/base.c tensor/tensor_impl.h 'base may not depend on tensor'
plant data/batch.c nabla.h 'umbrella nabla.h'
plant dist/dist.c ops/ops_impl.h 'dist may not depend on ops'
plant dist/dist_reduce.c nabla/graph.h 'dist may not depend on graph'
plant nn/params.c nabla/dist.h 'nn may not depend on dist'
# A new directory without a rule is reported, not silently allowed.
rm -rf "$work/tree" && mkdir -p "$work/tree" && cp -r "$root/src" "$work/tree/"
mkdir -p "$work/tree/src/newmod" && echo '#include "ops/ops_impl.h"' >"$work/tree/src/newmod/a.c"
expect_run 1 "module 'newmod' has no rule" "$check" "$work/tree"

[[ $failures -eq 0 ]] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "check-layers: all checks passed"
