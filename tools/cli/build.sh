#!/usr/bin/env bash
# Builds the Dapr CLI v1.14.1 (Apache-2.0, github.com/dapr/cli at commit
# e08443b9b3e69fcead2c02340af7c4201aaf159a; its source, unmodified, is the
# archive beside this script, LICENSE inside) into the path given as $1.
# The Go module proxy refuses github.com/dapr/cli, hence the archive. Its
# go.mod requires github.com/dapr/dapr v1.13.0-rc.6, which the proxy serves.
# About 5 minutes on 2 cores the first time; later builds reuse Go's cache.
# The integration test of `dapr run -f .` uses it (tools/toolchain.sh dapr);
# users install the CLI the usual way
# (https://docs.dapr.io/getting-started/install-dapr-cli/).
#
#   tools/cli/build.sh .bin/dapr
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_PATH}
here=$(cd "$(dirname "$0")" && pwd)
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$here/dapr-cli-1.14.1.tar.gz" -C "$work"
cd "$work/dapr-cli-1.14.1"
mkdir -p "$(dirname "$out")"
GOWORK=off GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-s -w -X main.version=1.14.1 -X main.apiVersion=1.0 -X github.com/dapr/cli/pkg/standalone.gitversion=v1.14.1 -X github.com/dapr/cli/pkg/standalone.gitcommit=e08443b9b3e69fcead2c02340af7c4201aaf159a" \
  -o "$out.new" .
mv "$out.new" "$out"
"$out" version --output json >/dev/null
