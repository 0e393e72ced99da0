#!/usr/bin/env bash
# Runs the demo: the whole pipeline in one process (embedded NATS JetStream, local storage, the
# KSeF emulator, the four workers), submitting invoices and following them to KSeF numbers,
# UPOs, PDFs and back through a query. Extra arguments go to `ksef-pipeline demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --no-minio
if [ -z "${KSEF_SCHEMA_DIR:-}" ] && [ -d ../shared/ksef/official/faktury/schemy/FA ]; then
  export KSEF_SCHEMA_DIR="$(cd ../shared/ksef/official/faktury/schemy/FA && pwd)"
fi
exec go run ./cmd/ksef-pipeline demo "$@"
