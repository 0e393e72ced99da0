#!/usr/bin/env bash
# Installs what building and testing ksef-pipeline needs and this machine lacks: libxml2 headers
# (cgo: FA(3) XSD validation), pkg-config, poppler-utils (PDF text in tests) and xmllint, and a
# MinIO server built from source with `go install`, cached outside the repository.
# Idempotent: a second run installs nothing.
set -euo pipefail

MINIO_VERSION="${KSEF_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE_BIN="${KSEF_CACHE_BIN:-$HOME/.cache/ksef-pipeline/bin}"

need_apt=()
pkg-config --exists libxml-2.0 2>/dev/null || need_apt+=(libxml2-dev pkg-config)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" != "--no-minio" ] && [ ! -x "$CACHE_BIN/minio" ]; then
  echo "deps: building the MinIO server ($MINIO_VERSION) into $CACHE_BIN (a few minutes, once)" >&2
  mkdir -p "$CACHE_BIN"
  GOBIN="$CACHE_BIN" go install "github.com/minio/minio@$MINIO_VERSION"
fi
