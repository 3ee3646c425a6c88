# Kakehi's build, test, demo and benchmark entry points. Every target
# installs or builds what it needs on a fresh machine and caches it.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
export CGO_ENABLED ?= 1

.PHONY: all build test unit e2e h2spec check fmt vet lint control-plane demo bench clean

all: build

build:
	$(GO) build -o bin/kakehi ./cmd/controller

## control-plane: build kube-apiserver and etcd from the Go module proxy (cached in .cache/)
control-plane:
	@./hack/build-control-plane.sh >/dev/null

## test: formatting, vet, staticcheck, unit tests (race), e2e tests against a real API server
test: check verify-generate image-check control-plane unit h2spec e2e

unit:
	$(GO) test -race -count=1 ./pkg/... ./cmd/... ./bench/...
	$(GO) test -count=1 -run 'DoesNotAllocate' ./pkg/...

e2e: control-plane
	$(GO) test -count=1 -timeout 20m ./test/...

## h2spec: HTTP/2 conformance (github.com/summerwind/h2spec) against the h2c port and an HTTP/2-only port
h2spec:
	@mkdir -p .cache; KAKEHI_H2SPEC=1 $(GO) test -count=1 -run TestH2Spec -v ./pkg/proxy/ > .cache/h2spec.log 2>&1; \
	rc=$$?; grep -E '^(---|ok|FAIL|PASS)|h2spec' .cache/h2spec.log; exit $$rc

check: fmt vet lint

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

## demo: control plane, demo pods, controller and example Ingresses; prints curl commands; Ctrl-C cleans up
demo: control-plane
	$(GO) build -o bin/demo ./hack/demo
	./bin/demo

## bench: Kakehi side by side with nginx and HAProxy (see bench/README.md)
bench:
	./bench/run.sh

clean:
	rm -rf bin

# --- install artefacts: image, CRDs, chart (issue 6) ---
.PHONY: image-check generate verify-generate chart-crds chart-test

## image-check: the Dockerfile's structure, then its own go build line run locally (no Docker engine needed)
image-check:
	$(GO) test -count=1 ./hack/imagecheck
	./hack/image-check.sh

## generate: deepcopy and CRD YAML from pkg/apis with controller-gen, then the chart's crds/ copy
generate:
	./hack/generate.sh

## verify-generate: fail when config/crd, deepcopy or the chart's crds/ are stale
verify-generate:
	./hack/verify-generate.sh

## chart-crds: copy config/crd into deploy/helm/kakehi/crds
chart-crds:
	./hack/chart-crds.sh

## chart-test: CRD validation, chart render + server-side dry-run, Pod Security and RBAC, on a real API server
chart-test: control-plane
	$(GO) test -count=1 -timeout 10m ./test/chart/...
