#!/usr/bin/env bash
# Fails (exit 1) when a file under src/ includes a header across a forbidden direction of the
# layering (DESIGN: dependencies point one way):
#   base <- tensor <- graph <- ops <- nn;   optim, data, io, dist -> tensor, base.
# dist also reads nabla/nn.h: its all-reduce and broadcast take the named parameter set
# (nb_params), the one list of a model's tensors; nn never includes dist, so no cycle.
# Each module may include its own headers, the public nabla/base.h, and what ALLOW lists:
#   "m"         m's internal headers (src/m/...) and its public header nabla/m.h
#   "m:public"  only nabla/m.h
# Headers listed in PRIVATE may be included only from their own directory.
# To add a module: add its line to ALLOW (and to the umbrella rule if it gets a public header).
# Usage: scripts/check-layers.sh [repo root]   (default: this script's repo)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}

declare -A ALLOW=(
    [base]=""
    [tensor]="base"
    [graph]="tensor base"
    [ops]="graph tensor base"
    [optim]="tensor base"
    [data]="tensor base"
    [io]="tensor base"
    [nn]="ops graph:public optim:public io:public tensor base"
    [dist]="tensor:public optim:public nn:public base"
)
PRIVATE="graph/graph_priv.h graph/arena.h io/safetensors_impl.h"
# Public headers that belong to a module of another name (nabla/version.h is generated).
declare -A HEADER_MODULE=([version]=base)

allowed() { # allowed <from module> <to module> <public: 1/0>
    local from=$1 to=$2 pub=$3 a
    [ "$from" = "$to" ] && return 0
    [ "$to" = base ] && [ "$pub" = 1 ] && return 0
    for a in ${ALLOW[$from]}; do
        [ "$a" = "$to" ] && return 0
        [ "$a" = "$to:public" ] && [ "$pub" = 1 ] && return 0
    done
    return 1
}

bad=0
while IFS= read -r file; do
    rel=${file#"$root"/src/}
    from=${rel%%/*}
    if [ -z "${ALLOW[$from]+x}" ]; then
        echo "check-layers: src/$rel: module '$from' has no rule in scripts/check-layers.sh (add it to ALLOW)"
        bad=1
        continue
    fi
    while IFS=: read -r line inc; do
        inc=${inc#*\"}
        inc=${inc%%\"*}
        case $inc in
        nabla.h) to=all pub=1 ;;
        nabla/*.h)
            to=${inc#nabla/} to=${to%.h} pub=1
            to=${HEADER_MODULE[$to]:-$to}
            ;;
        */*) to=${inc%%/*} pub=0 ;;
        *) continue ;; # a header next to the file (same module)
        esac
        why=""
        if [ "$to" = all ]; then
            why="the umbrella nabla.h pulls in every module"
        elif ! allowed "$from" "$to" "$pub"; then
            why="$from may not depend on $to (allowed: $from ${ALLOW[$from]:-(nothing else)})"
        elif [ "$pub" = 0 ] && [[ " $PRIVATE " == *" $inc "* ]] && [ "$to" != "$from" ]; then
            why="$inc is private to src/$to"
        fi
        if [ -n "$why" ]; then
            echo "check-layers: src/$rel:$line: includes \"$inc\": $why"
            bad=1
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find "$root/src" -type f \( -name '*.c' -o -name '*.h' -o -name '*.inc' -o -name '*.def' \) | sort)

if [ $bad != 0 ]; then
    echo "check-layers: forbidden includes found (the layering is described in scripts/check-layers.sh)"
    exit 1
fi
echo "check-layers: ok"
