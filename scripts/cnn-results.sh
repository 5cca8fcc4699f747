#!/usr/bin/env bash
# CNN track results (issue F): runs the four CNN methods on a CNN preset (default presets/cnn/omtp-reduced.yaml)
# single-threaded, then copies each run's metrics.json, cost.json and online.csv to docs/results/cnn/<name>/<method>/
# and rebuilds docs/results.md.  Usage: bash scripts/cnn-results.sh [PRESET] [--copy-only]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-presets/cnn/omtp-reduced.yaml}
name=$(basename "$preset" .yaml)
for m in cnn-subnets cnn-prune cnn-replay cnn-finetune; do
  out=runs/cnn/$name/$m
  if [ "${2:-}" != "--copy-only" ]; then
    mkdir -p runs/cnn
    npx moeclip run "$preset" --set method.name=$m --out "$out" --overwrite --threads 1 > "runs/cnn/$name-$m.log" 2>&1
  fi
  [ -f "$out/metrics.json" ] || { echo "no run for $m in $out" >&2; continue; }
  dest=docs/results/cnn/$name/$m
  mkdir -p "$dest"
  cp "$out/metrics.json" "$out/cost.json" "$out/online.csv" "$dest/"
  printf '{"command":"moeclip run %s --set method.name=%s --out %s --threads 1"}\n' "$preset" "$m" "$out" > "$dest/command.json"
done
npm run -s results -- --doc-only
