#!/usr/bin/env bash
# generate.sh regenerates what controller-gen derives from pkg/apis: the
# deepcopy functions (zz_generated.deepcopy.go) and the CRD manifests in
# config/crd. It then copies the CRDs into the Helm chart (chart-crds.sh),
# so the two never drift.
set -euo pipefail
CONTROLLER_GEN="${CONTROLLER_GEN:-sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
go run "$CONTROLLER_GEN" object crd paths=./pkg/apis/... output:crd:dir=config/crd
"$root/hack/chart-crds.sh"
