#!/usr/bin/env bash
# Issue E's rows on long-shift (cm-moe, its unbounded and task-free forms, moe-adapters, zero-shot; 3 seeds)
# through scripts/results.ts. Finished rows are skipped and interrupted ones resumed.
#   bash scripts/results-e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx scripts/results.ts --bench long-shift "$@"
