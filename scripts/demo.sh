#!/usr/bin/env bash
# The demo: build drum, train the example model, serve it with 2 workers, show the
# process tree and two predictions (raw CSV and multipart), then stop the server with
# SIGTERM. DEMO_KEEP=1 keeps it serving until Ctrl+C. DEMO_PORT picks the port (8080).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${DRUM_PYTHON:-/usr/bin/python3}
PORT=${DEMO_PORT:-8080}
ADDR=127.0.0.1:$PORT
LOG=$(mktemp -t drum-demo.XXXXXX.log)

"$PY" examples/diabetes/train.py

if curl -s -o /dev/null "http://$ADDR/" 2>/dev/null; then
  echo "demo: something already listens on $ADDR; set DEMO_PORT to a free port" >&2
  exit 1
fi

echo "demo: bin/drum server --code-dir examples/diabetes --target-type regression --address $ADDR --max-workers 2"
DRUM_LOG_FORMAT=${DRUM_LOG_FORMAT:-text} bin/drum server --code-dir examples/diabetes --target-type regression --address "$ADDR" --max-workers 2 >"$LOG" 2>&1 &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" && echo "demo: server stopped cleanly (exit 0)" || echo "demo: server exited with $?"
  fi
}
trap stop EXIT

for _ in $(seq 1 120); do
  grep -q "drum ready" "$LOG" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: the server exited during start-up:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.5
done
grep "drum ready" "$LOG" || { echo "demo: not ready after 60 s" >&2; cat "$LOG" >&2; exit 1; }

echo; echo "demo: process tree (master -> workers, and the zygote -> the Python predictors it forked)"
tree() { echo "$1"; for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done; }
ps -o pid,ppid,args --forest -p "$(tree "$pid" | paste -sd, -)" | cut -c1-150

echo; echo "demo: curl -X POST -H 'Content-Type: text/csv' --data-binary @examples/diabetes/sample.csv http://$ADDR/predict/"
curl -sS -X POST -H 'Content-Type: text/csv' --data-binary @examples/diabetes/sample.csv "http://$ADDR/predict/"
echo; echo; echo "demo: curl -F X=@examples/diabetes/sample.csv http://$ADDR/predictions/"
curl -sS -F X=@examples/diabetes/sample.csv "http://$ADDR/predictions/"
echo; echo

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "demo: serving on http://$ADDR until Ctrl+C (log: $LOG)"
  wait "$pid"
fi
