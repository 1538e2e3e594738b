#!/usr/bin/env bash
# Installs what the benchmark harness (scripts/bench.sh, `make bench`) needs on top of
# scripts/setup.sh, and nothing that is already there: Flask and gunicorn from Debian for
# the Python baseline (there is no PyPI here). The load generator and the plots are Go
# (scripts/bench), so nothing else is needed. Kept apart from setup.sh so that
# `make test` and `make demo` never pay for it.
set -euo pipefail

PY=${DRUM_PYTHON:-/usr/bin/python3}
pkgs=()
"$PY" -c 'import flask' 2>/dev/null || pkgs+=(python3-flask)
"$PY" -c 'import gunicorn' 2>/dev/null || pkgs+=(gunicorn)
command -v taskset >/dev/null 2>&1 || pkgs+=(util-linux)

if ((${#pkgs[@]})); then
  echo "setup-bench: installing ${pkgs[*]} (apt)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
"$PY" -c 'import flask, gunicorn; print("setup-bench: flask", flask.__version__, "gunicorn", gunicorn.__version__)' 2>/dev/null ||
  "$PY" -c 'import gunicorn; print("setup-bench: gunicorn", gunicorn.__version__)'
