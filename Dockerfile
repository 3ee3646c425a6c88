# Placeholder replaced by the image work (issue 6).
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /kakehi ./cmd/controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kakehi /kakehi
USER 65532:65532
ENTRYPOINT ["/kakehi"]
