# syntax=docker/dockerfile:1
#
# One image per binary of ksef-pipeline, chosen with --build-arg SERVICE:
#   sender, poller, downloader, visualizer    (services/<name>)
#   ksef-emulator, ksef-pipeline, ksefctl      (cmd/<name>)
#
#   docker build --build-arg SERVICE=sender -t ksef-pipeline/sender .
#
# The binaries use cgo (libxml2 validates FA(3) invoices against the XSD set),
# so the runtime image is distroless/base (glibc, CA certificates, tzdata, no
# shell, no package manager) plus the shared libraries the binary links
# besides glibc (libxml2 and its dependencies), copied from the build stage.
# Both stages are Debian 12, so those libraries match the runtime's glibc.
# See deploy/README.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxml2-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG SERVICE
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    case "${SERVICE}" in \
      sender|poller|downloader|visualizer) pkg="./services/${SERVICE}" ;; \
      ksef-emulator|ksef-pipeline|ksefctl) pkg="./cmd/${SERVICE}" ;; \
      *) echo "unknown SERVICE '${SERVICE}'" >&2; exit 1 ;; \
    esac; \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/app "${pkg}"; \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthprobe ./deploy/docker/healthprobe; \
    sh deploy/docker/collect-libs.sh /out/app /out/lib

FROM gcr.io/distroless/base-debian12:nonroot
ARG SERVICE
# HEALTHCHECK_URL overrides the probe's target; empty means
# http://127.0.0.1<KSEF_HTTP_ADDR>/healthz (the workers' health port).
ARG HEALTHCHECK_URL=""
LABEL org.opencontainers.image.title="ksef-pipeline ${SERVICE}" \
      org.opencontainers.image.source="https://github.com/ksef-pipeline/ksef-pipeline"
COPY --from=build /out/lib/ /usr/local/lib/ksef/
COPY --from=build /out/app /usr/local/bin/app
COPY --from=build /out/healthprobe /usr/local/bin/healthprobe
ENV LD_LIBRARY_PATH=/usr/local/lib/ksef \
    KSEF_HTTP_ADDR=:9090 \
    KSEF_HEALTHCHECK_URL=${HEALTHCHECK_URL} \
    TMPDIR=/tmp
USER 65532:65532
EXPOSE 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/healthprobe"]
ENTRYPOINT ["/usr/local/bin/app"]
