#!/usr/bin/env bash
# Build etcd 3.5's server, etcdctl and benchmark tool at the version go.mod pins, once per version,
# into ${PETCD_TOOLS_DIR:-~/.cache/petcd-tools}/etcd-<version>/bin. Prints that bin directory.
set -euo pipefail
cd "$(dirname "$0")"

version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
dest="${PETCD_TOOLS_DIR:-$HOME/.cache/petcd-tools}/etcd-${version#v}/bin"

if [ ! -x "$dest/etcd" ] || [ ! -x "$dest/etcdctl" ] || [ ! -x "$dest/benchmark" ]; then
    mkdir -p "$dest"
    tmp=$(mktemp -d "$dest/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # etcd's own release builds set the git SHA this way; "-s -w" only drops debug symbols.
    ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=petcd-tools"
    go build -trimpath -ldflags "$ldflags" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
    go build -trimpath -ldflags "$ldflags" -o "$tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3
    go build -trimpath -ldflags "$ldflags" -o "$tmp/benchmark" go.etcd.io/etcd/v3/tools/benchmark
    mv "$tmp/etcd" "$tmp/etcdctl" "$tmp/benchmark" "$dest/"
fi
echo "$dest"
