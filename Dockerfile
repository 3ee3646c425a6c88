# syntax=docker/dockerfile:1
#
# Kakehi's container image: a static controller binary on a distroless,
# non-root base with no shell and no package manager.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t kakehi .
#
# There is no Docker engine on the development machines: `make image-check`
# runs this file's `go build` line locally and checks the file's structure
# (hack/image-check.sh, hack/imagecheck). Keep the build on one RUN line.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kakehi ./cmd/controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kakehi /kakehi
# 65532 is distroless's "nonroot" user; numeric so that the kubelet can
# verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
# proxy HTTP, proxy HTTPS, health (/healthz, /readyz), metrics
EXPOSE 8080 8443 8081 9090
ENTRYPOINT ["/kakehi"]
