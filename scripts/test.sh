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

# Fuzz the parsers briefly on every run (the seeds already ran above); FUZZTIME (e.g. 30s or
# 50000x) sets how long, 0 skips.
fuzztime=${FUZZTIME:-100000x}  # a count, not a duration: a timed run can end on the engine's own deadline
if [ "$fuzztime" != 0 ]; then
  for target in config:FuzzRuntimeParam worker:FuzzExtractInput worker:FuzzFormatFloat batch:FuzzRecordReader worker/table:FuzzFastCSV worker:FuzzFindBoundary; do
    pkg=${target%%:*} name=${target#*:}
    echo "fuzz $name ($fuzztime)"
    log=$(mktemp)
    if ! go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "./$pkg" >"$log" 2>&1; then
      cat "$log"   # the failing input is saved under $pkg/testdata/fuzz/$name
      exit 1
    fi
    tail -n 1 "$log"
    rm -f "$log"
  done
fi
