#!/usr/bin/env bash
# Regenerates docs/results.md from docs/results/*/*/ (summary.json of several seeds, or metrics/cost.json of one
# run; tables by scripts/results-table.ts) around the fixed text in docs/results.head.md, without running anything.
# `npm run results` runs the benchmarks (3 seeds) and then does the same.
set -euo pipefail
cd "$(dirname "$0")/.."
node --import tsx scripts/results.ts --doc-only
