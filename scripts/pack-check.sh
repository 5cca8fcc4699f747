#!/usr/bin/env bash
# Packaging check (slow, not part of `npm test`): packs the repository with `npm pack`, installs the tarball as a
# dependency of a fresh project offline (from the npm cache only, onnxruntime-node's download skipped as the
# README says), and runs that install's `moeclip demo --quick`.
#
#   bash scripts/pack-check.sh [WORK_DIR]      # WORK_DIR (default: a new temp folder) is kept for inspection
#
# Exits non-zero at the first step that fails; every step prints what it did.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/moeclip-pack-check-XXXXXX")}"
mkdir -p "$work"
step() { printf '\n== %s\n' "$*"; }
secs() { echo $(( $(date +%s) - $1 )); }

step "npm pack ($repo)"
t0=$(date +%s)
tarball="$(cd "$repo" && npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "$work/$tarball: $(du -h "$work/$tarball" | cut -f1), $(tar -tzf "$work/$tarball" | wc -l) files, $(secs "$t0") s"
for f in package/assets/bpe_simple_vocab_16e6.txt.gz package/bin/moeclip.js package/models/moeclip-tiny/model.safetensors package/presets/demo-split-mnist.yaml; do
  tar -tzf "$work/$tarball" "$f" >/dev/null || { echo "missing from the tarball: $f"; exit 1; }
done
echo "tarball holds the bundled vocabulary, the CLI, the embedded model and the presets"
if tar -tzf "$work/$tarball" package/.npmrc >/dev/null 2>&1; then echo "the tarball ships an .npmrc"; exit 1; fi

# install_into DIR MODE: a fresh project in DIR with the tarball as its only dependency (MODE: --offline or
# --prefer-offline); the install log goes to DIR.log
install_into() {
  rm -rf "$1" && mkdir -p "$1"
  (cd "$1" && npm init -y >/dev/null && ONNXRUNTIME_NODE_INSTALL=skip npm install "$2" --no-audit --no-fund "$work/$tarball") >"$1.log" 2>&1
}
app="$work/app"
step "fresh project $app: ONNXRUNTIME_NODE_INSTALL=skip npm install --offline $tarball"
t0=$(date +%s)
if ! install_into "$app" --offline; then
  cat "$app.log"
  # a fresh project resolves version ranges, which needs the registry's package documents in the cache; a
  # repository checkout installed from its lockfile (`npm ci`) does not leave them there
  step "the npm cache lacks packages: one install with --prefer-offline (fills the cache from the registry), then --offline again"
  install_into "$work/warm" --prefer-offline || { cat "$work/warm.log"; exit 1; }
  tail -n 3 "$work/warm.log"
  t0=$(date +%s)
  install_into "$app" --offline || { cat "$app.log"; exit 1; }
fi
tail -n 3 "$app.log"
echo "installed offline in $(secs "$t0") s; node_modules: $(du -sh "$app/node_modules" | cut -f1)"
if grep -q 'Unknown project config' "$app.log"; then echo "npm printed an unknown-config warning"; exit 1; fi

step "npx moeclip --help (from the installed package)"
(cd "$app" && npx --offline moeclip --help 2>&1 | tee "$work/help.log" | head -n 20)
if grep -q 'npm warn' "$work/help.log"; then echo "npx printed an npm warning"; exit 1; fi

step "npx moeclip demo --quick (from the installed package)"
t0=$(date +%s)
(cd "$app" && npx --offline moeclip demo --quick --out "$work/demo" --threads 2)
echo "demo finished in $(secs "$t0") s; run folders: $(find "$work/demo" -name metrics.json | wc -l)"

step "pack check passed (work folder: $work)"
