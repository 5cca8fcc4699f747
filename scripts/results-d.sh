#!/usr/bin/env bash
# Issue D's rows (every method on the benchmark presets, 3 seeds) through scripts/results.ts:
#   bash scripts/results-d.sh [bench ...]   (default: split-tinyimagenet-heldout mtil-mini si-blurry-tinyimagenet-heldout)
# Finished rows are skipped and interrupted ones resumed; docs/results.md is rebuilt at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHES=("$@")
[ ${#BENCHES[@]} -eq 0 ] && BENCHES=(split-tinyimagenet-heldout mtil-mini si-blurry-tinyimagenet-heldout)
args=()
for b in "${BENCHES[@]}"; do args+=(--bench "$b"); done
exec node --import tsx scripts/results.ts "${args[@]}"
