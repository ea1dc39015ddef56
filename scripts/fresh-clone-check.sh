#!/bin/sh
# What a newcomer does: clone, install, build, run `npx largo --help`.
# Usage: scripts/fresh-clone-check.sh [REPO (default: this checkout)] [COMMIT (default: its HEAD)]
# npm install uses the network unless the npm cache already holds every package
# (NPM_FLAGS=--offline to forbid the network).
set -eu
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
commit=${2:-$(git -C "$repo" rev-parse HEAD)}
dir=$(mktemp -d "${TMPDIR:-/tmp}/largo-fresh-XXXXXX")
trap 'rm -rf "$dir"' EXIT
git clone -q "$repo" "$dir/repo"
cd "$dir/repo"
git checkout -q "$commit"
npm install --no-audit --no-fund ${NPM_FLAGS:-} >/dev/null 2>&1 || { echo "fresh-clone-check: npm install failed" >&2; exit 1; }
npm run build >/dev/null
npx largo --help | head -1
npx largo inspect --help >/dev/null
echo "fresh-clone-check: ok ($commit)"
