#!/usr/bin/env bash
# chart-crds.sh copies the generated CRDs from config/crd into the Helm
# chart's crds/ folder, removing any chart CRD that config/crd no longer
# has. test/chart fails when the two folders differ.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/config/crd"
dst="$root/deploy/helm/kakehi/crds"
mkdir -p "$dst"
find "$dst" -maxdepth 1 -name '*.yaml' -delete
cp "$src"/*.yaml "$dst"/
