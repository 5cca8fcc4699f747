#!/usr/bin/env bash
# Regenerates docs/results.md from docs/results/*/*/{metrics,cost,command}.json (tables by scripts/results-table.ts)
# around the fixed text in docs/results.head.md.
set -euo pipefail
cd "$(dirname "$0")/.."
{ cat docs/results.head.md; echo; npx tsx scripts/results-table.ts; } > docs/results.md.tmp
mv docs/results.md.tmp docs/results.md
