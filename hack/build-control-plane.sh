#!/usr/bin/env bash
# build-control-plane.sh builds kube-apiserver and etcd from the Go module
# proxy into a versioned cache folder and prints that folder. Binaries
# already present are reused. The folder is outside the work tree
# (${XDG_CACHE_HOME:-~/.cache}/kakehi/control-plane/<versions>) so that every
# clone on a machine, CI's included, shares one build; CONTROL_PLANE_DIR
# overrides it.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.8}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kakehi/control-plane"
out="${CONTROL_PLANE_DIR:-$cache/k8s-$K8S_VERSION-etcd-$ETCD_VERSION}"
mkdir -p "$out"

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client cri-streaming csi-translation-lib
  dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin
  sample-controller streaming)

build_apiserver() {
  local work="$out/src-apiserver"
  mkdir -p "$work"
  {
    echo "module kakehi.local/controlplane"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m v0.${K8S_VERSION#1.}"; done
    echo ")"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
   cd "$work" && GOFLAGS=-mod=mod go build -trimpath -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
}

build_etcd() {
  local work="$out/src-etcd"
  mkdir -p "$work"
  cat >"$work/go.mod" <<GOMOD
module kakehi.local/etcd

go 1.26

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
  cat >"$work/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >/dev/null && GOFLAGS=-mod=mod go build -trimpath -o "$out/etcd.tmp" .)
  mv "$out/etcd.tmp" "$out/etcd"
}

[ -x "$out/etcd" ] || build_etcd >&2
[ -x "$out/kube-apiserver" ] || build_apiserver >&2
echo "$out"
