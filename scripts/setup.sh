#!/usr/bin/env bash
# Installs what drum's demo and tests need on a fresh Debian 12 machine, and nothing
# that is already there: Debian's Python with pandas, scikit-learn and scipy (models run
# under it; there is no PyPI here), and curl for the demo. Go must already be installed.
set -euo pipefail

PY=${DRUM_PYTHON:-/usr/bin/python3}
pkgs=()
if ! [ -x "$PY" ] || ! "$PY" -c 'import pandas, numpy, sklearn, scipy' 2>/dev/null; then
  pkgs+=(python3 python3-pandas python3-numpy python3-sklearn python3-scipy)
fi
command -v curl >/dev/null 2>&1 || pkgs+=(curl)
command -v ps >/dev/null 2>&1 || pkgs+=(procps)

if ((${#pkgs[@]})); then
  echo "setup: installing ${pkgs[*]} (apt)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  echo "setup: the Go toolchain (1.26) is not on PATH; install it (e.g. /usr/local/go) and retry" >&2
  exit 1
fi
"$PY" -c 'import sys, pandas, sklearn; print("setup:", sys.executable, "pandas", pandas.__version__, "scikit-learn", sklearn.__version__)'
