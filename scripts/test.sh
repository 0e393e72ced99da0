#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/deps.sh), then vets and tests every
# package against a real NATS server (in-process), a real MinIO server (127.0.0.1, started by the
# tests from $KSEF_MINIO_BIN) and the KSeF emulator over real sockets. The Ministry's schemas and
# samples are read from ../shared beside the repository. Then it fuzzes the invoice renderer for
# KSEF_FUZZ_TIME (20s).
#
# Besides the main module, the nested modules (each with its own go.mod and a replace of the main
# module to the repository: deploy/deploytest, cmd/ksef-bench/chart) hold the test-, deploy- and
# bench-only dependencies; `go vet ./...` and `go test ./...` in the root do not enter them, so each
# is vetted and tested here in turn, into the same log and summary.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
export KSEF_MINIO_BIN="${KSEF_MINIO_BIN:-$HOME/.cache/ksef-pipeline/bin/minio}"
export CGO_ENABLED=1

if [ ! -d ../shared/ksef ]; then
  echo "test: ../shared/ksef (the Ministry's schemas and samples) must be beside the repository" >&2
  exit 1
fi

# The main module first, then every nested module (a directory below it with a go.mod).
modules=(.)
while IFS= read -r m; do modules+=("$m"); done < <(find . -mindepth 2 -name go.mod -not -path './.git/*' -not -path '*/testdata/*' -printf '%h\n' | sort)

echo "== go vet"
for m in "${modules[@]}"; do
  (cd "$m" && go vet ./...)
done
echo "== go test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
set +e
for m in "${modules[@]}"; do
  (cd "$m" && go test -count=1 -timeout 60m "$@" ./...) 2>&1 | tee -a "$log"
  s=${PIPESTATUS[0]}
  if [ "$s" -ne 0 ]; then status=$s; fi
done
set -e

# The renderer takes third-party XML, so the suite also fuzzes it for a fixed time on top
# of its seeds (KSEF_FUZZ_TIME, 20s by default; 0 skips), with two workers to stay light. A
# crasher it finds is a real bug and fails the run; it is saved under pkg/visualize/testdata/fuzz.
# Minimizing is capped at 100 runs: by default each new interesting input is minimized for up to
# a minute, which took the whole budget (8 runs in 20 s instead of about 50,000).
fuzztime="${KSEF_FUZZ_TIME:-20s}"
if [ "$fuzztime" != "0" ]; then
  echo "== go test -fuzz FuzzRender (${fuzztime})"
  set +e
  go test -count=1 -run '^$' -fuzz '^FuzzRender$' -fuzztime "$fuzztime" -fuzzminimizetime 100x -parallel 2 ./pkg/visualize
  fstatus=$?
  set -e
fi

echo "== summary"
grep -E '^(FAIL|--- FAIL|panic:)' "$log" || true
if [ "$status" -ne 0 ]; then echo "go test exit status $status"; fi
if [ "${fstatus:-0}" -ne 0 ]; then echo "FAIL fuzzing FuzzRender (exit status $fstatus)"; status=$fstatus; fi
# Packages: passed, failed, and without test files (skipped).
echo "packages: $(grep -cE '^ok[[:space:]]' "$log" || true) passed, $(grep -cE '^FAIL[[:space:]]' "$log" || true) failed, $(grep -cE '^\?[[:space:]]' "$log" || true) skipped"
exit "$status"
