#!/usr/bin/env bash
# All of drum's checks: formatting, vet, and every test (unit, golden, end-to-end with
# the real binary and real Python predictors). scripts/setup.sh runs first (make test).
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 15m ./... "$@"
