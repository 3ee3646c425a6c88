#!/usr/bin/env bash
# verify-generate.sh fails when what controller-gen derives from pkg/apis
# (config/crd and zz_generated.deepcopy.go) or the chart's crds/ copy is
# stale. It leaves the work tree as it found it; `make generate` fixes it.
set -euo pipefail
CONTROLLER_GEN="${CONTROLLER_GEN:-sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tmp="$(mktemp -d)"
deepcopy=pkg/apis/v1alpha1/zz_generated.deepcopy.go
cp "$deepcopy" "$tmp/deepcopy.go"
trap 'cp "$tmp/deepcopy.go" "$deepcopy"; rm -rf "$tmp"' EXIT
status=0
go run "$CONTROLLER_GEN" object crd paths=./pkg/apis/... output:crd:dir="$tmp/crd"
if ! diff -r config/crd "$tmp/crd"; then
  echo "config/crd is stale: run make generate" >&2; status=1
fi
if ! cmp -s "$deepcopy" "$tmp/deepcopy.go"; then
  diff "$tmp/deepcopy.go" "$deepcopy" >&2 || true
  echo "$deepcopy is stale: run make generate" >&2; status=1
fi
if ! diff -r config/crd deploy/helm/kakehi/crds; then
  echo "deploy/helm/kakehi/crds differs from config/crd: run make chart-crds" >&2; status=1
fi
exit $status
