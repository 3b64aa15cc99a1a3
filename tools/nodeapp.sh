#!/usr/bin/env bash
# nodeapp.sh: build a Node.js service of the suite (services/shipping) the way
# `go build -o` builds a Go one, so that make build, make run, `dapr run -f .`
# and the integration tests start every service alike: one executable.
#
#   nodeapp.sh build DIR OUT   npm ci (when the lockfile changed), npm run build
#                              in DIR, copy the build to OUT.d, then write OUT:
#                              a script that execs node on package.json's
#                              "main" there, so that node is the runner's own
#                              child and gets its signals
#   nodeapp.sh check           say whether Node.js 20+ and npm are here
#
# Needs Node.js 20 or later and npm; says how to get them when they are missing.
set -euo pipefail

need_node() {
  local how="install Node.js 20 or later with npm: https://nodejs.org/en/download (Debian and Ubuntu's own nodejs package is 18, too old: use NodeSource's, https://github.com/nodesource/distributions), or brew install node@20 (macOS)"
  command -v node >/dev/null || { echo "Node.js is not installed: services/shipping is TypeScript on Node.js; $how" >&2; exit 1; }
  command -v npm >/dev/null || { echo "npm is not installed (Node.js is): $how" >&2; exit 1; }
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || { echo "Node.js $(node --version) is too old for services/shipping; $how" >&2; exit 1; }
}

case "${1:-}" in
check)
  need_node
  ;;
build)
  [ $# -eq 3 ] || { echo "usage: nodeapp.sh build DIR OUT" >&2; exit 2; }
  need_node
  dir=$(cd "$2" && pwd)
  mkdir -p "$(dirname "$3")"
  out="$(cd "$(dirname "$3")" && pwd)/$(basename "$3")"
  cd "$dir"
  # The app's own heap bound (dapr.yaml's NODE_OPTIONS) is not the
  # compiler's: tsc under it would run out of heap.
  unset NODE_OPTIONS
  # npm ci wipes node_modules: only when the lockfile is newer than what it
  # installed (npm writes node_modules/.package-lock.json).
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "==> $(basename "$dir"): npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  npm run --silent build
  main=$(node -p 'require("./package.json").main || ""')
  [ -n "$main" ] && [ -f "$main" ] || { echo "$dir/package.json: \"main\" ($main) is not a built file" >&2; exit 1; }
  # The built JavaScript is copied beside OUT (OUT.d), as go build writes a
  # binary of its own: the next build (which empties dist/) then leaves a
  # running service, and its restarts, alone until OUT is built again. Its
  # packages stay in DIR/node_modules (NODE_PATH), which only npm ci replaces.
  top=${main%%/*}
  snap="$out.d"
  rm -rf "$snap.new" "$snap.old"
  cp -R "$top" "$snap.new"
  [ ! -d "$snap" ] || mv "$snap" "$snap.old"
  mv "$snap.new" "$snap"
  rm -rf "$snap.old"
  tmp="$out.tmp.$$"
  printf '#!/bin/sh\n# Built by tools/nodeapp.sh from %s.\nNODE_PATH="%s"; export NODE_PATH\nexec node "%s" "$@"\n' \
    "$dir" "$dir/node_modules" "$snap/${main#*/}" > "$tmp"
  chmod +x "$tmp"
  mv "$tmp" "$out"
  ;;
*)
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
