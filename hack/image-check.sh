#!/usr/bin/env bash
# image-check.sh checks the container build without a Docker engine: the
# Dockerfile's structure (distroless non-root base, numeric USER, no ADD, no
# RUN in the final stage, exec-form entrypoint), then its own go build line
# run locally in a copy of the build context (.dockerignore applied), then
# the binary (static: no PT_INTERP; stripped; version-stamped; -trimpath).
# Pass -lint-only to check the structure alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ "${1:-}" = "-lint-only" ]; then
  exec go run ./hack/imagecheck -root "$root" -lint-only
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go run ./hack/imagecheck -root "$root" -o "$tmp/kakehi"
if command -v file >/dev/null; then file "$tmp/kakehi"; fi
