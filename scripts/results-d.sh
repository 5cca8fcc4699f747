#!/usr/bin/env bash
# Runs every method of issue D on the benchmark presets with the shipped model and keeps each run's
# metrics.json + cost.json under docs/results/<benchmark>/<method>/ (the full run folders stay in runs/results/).
#   bash scripts/results-d.sh [bench ...]        (default: split-tinyimagenet-heldout mtil-mini si-blurry-tinyimagenet-heldout)
# A finished (benchmark, method) pair is skipped, so the script resumes after a stop.
set -uo pipefail
cd "$(dirname "$0")/.."
BENCHES=("$@")
[ ${#BENCHES[@]} -eq 0 ] && BENCHES=(split-tinyimagenet-heldout mtil-mini si-blurry-tinyimagenet-heldout)
METHODS=(zeroshot-clip moe-adapters adapter-clip finetune lwf er ewc lora-clip)
for b in "${BENCHES[@]}"; do
  for m in "${METHODS[@]}"; do
    out="docs/results/$b/$m"
    [ -f "$out/metrics.json" ] && continue
    run="runs/results/$b/$m"
    args=(run "presets/bench/$b.yaml" --out "$run" --overwrite)
    if [ -f "presets/methods/$m.yaml" ]; then args+=(--method "presets/methods/$m.yaml"); else args+=(--set "method.name=$m"); fi
    echo "== $b / $m: moeclip ${args[*]}" >&2
    start=$(date +%s)
    if node --import tsx src/cli/main.ts "${args[@]}" > "runs/results-$b-$m.log" 2>&1; then
      mkdir -p "$out"
      cp "$run/metrics.json" "$run/cost.json" "$out/"
      printf '{"command":"moeclip %s","wallSeconds":%d}\n' "${args[*]}" $(( $(date +%s) - start )) > "$out/command.json"
    else
      echo "   failed: see runs/results-$b-$m.log" >&2
    fi
  done
done
