#!/usr/bin/env bash
# Build porcupine-check (main.go over the porcupine version go.mod pins) once per version and
# source, into ${PETCD_TOOLS_DIR:-~/.cache/petcd-tools}/porcupine-<version>-<source hash>/bin.
# Prints that bin directory.
set -euo pipefail
cd "$(dirname "$0")"

version=$(go list -m -f '{{.Version}}' github.com/anishathalye/porcupine)
source_hash=$(cat go.mod go.sum main.go | sha256sum | cut -c1-12)
dest="${PETCD_TOOLS_DIR:-$HOME/.cache/petcd-tools}/porcupine-${version#v}-${source_hash}/bin"

if [ ! -x "$dest/porcupine-check" ]; then
    mkdir -p "$dest"
    go build -trimpath -o "$dest/.porcupine-check.tmp" .
    mv "$dest/.porcupine-check.tmp" "$dest/porcupine-check"
fi
echo "$dest"
