#!/usr/bin/env bash
# drum's benchmark harness (issue 5): drum in every server type against a Flask+gunicorn
# baseline, same model and worker count, in one run. `make bench` (a few minutes) or
# `make bench-quick` (about a minute); extra arguments go to the Go program
# (scripts/bench, `--help` lists them). Writes scripts/bench/results/<date>[-quick].md,
# .json and two PNG plots, and prints a summary.
#
# On a machine with few cores the servers and the load generator are pinned apart
# (BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS; default: the first half of the CPUs for the
# servers, the rest for the client; set both empty for no pinning).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/setup.sh >/dev/null
scripts/setup-bench.sh
go build -o bin/drum ./cmd/drum
go build -o bin/drum-bench ./scripts/bench

n=$(nproc)
if [ "$n" -ge 2 ]; then
  half=$((n / 2))
  def_server="0-$((half - 1))"
  def_client="$half-$((n - 1))"
else
  def_server="" def_client=""
fi
SERVER_CPUS=${BENCH_SERVER_CPUS-$def_server}
CLIENT_CPUS=${BENCH_CLIENT_CPUS-$def_client}

run=(bin/drum-bench --server-cpus "$SERVER_CPUS" --python "${DRUM_PYTHON:-/usr/bin/python3}" "$@")
if [ -n "$CLIENT_CPUS" ]; then
  run=(taskset -c "$CLIENT_CPUS" "${run[@]}")
fi
echo "bench: ${run[*]}" >&2
exec "${run[@]}"
