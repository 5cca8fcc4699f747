#!/usr/bin/env bash
# Issue E runs on the long-shift benchmark with the shipped model; keeps metrics.json + cost.json (+ the command)
# under docs/results/long-shift/<label>/. Resumable: finished labels are skipped.
#   bash scripts/results-e.sh
set -uo pipefail
cd "$(dirname "$0")/.."
B=presets/bench/long-shift.yaml
run() {
  local label=$1; shift
  local out="docs/results/long-shift/$label"
  [ -f "$out/metrics.json" ] && return
  local dir="runs/results/long-shift/$label"
  echo "== long-shift / $label: moeclip run $B $*" >&2
  local start=$(date +%s)
  if node --import tsx src/cli/main.ts run "$B" --out "$dir" --overwrite "$@" > "runs/results-long-shift-$label.log" 2>&1; then
    mkdir -p "$out"; cp "$dir/metrics.json" "$dir/cost.json" "$out/"
    printf '{"command":"moeclip run %s %s","wallSeconds":%d}\n' "$B" "$*" $(( $(date +%s) - start )) > "$out/command.json"
  else echo "   failed: runs/results-long-shift-$label.log" >&2; fi
}
run cm-moe --set method.name=cm-moe
run cm-moe-unbounded --set method.name=cm-moe --set method.merge=false --set method.maxSubnets=100 --set method.numClusters=1
run moe-adapters --set method.name=moe-adapters
run zeroshot-clip --set method.name=zeroshot-clip
run cm-moe-taskfree --set method.name=cm-moe --set run.taskBoundaries=false
