#!/usr/bin/env bash
# Create the virtual environment that runs the gammapy side of the benchmarks:
# gammapy 2.1 + regions 0.10 + psutil, kept apart from gcxr's own environment.
#
#   benchmarks/setup_gammapy_env.sh            # -> <repo>/.venv-gammapy
#   GAMMAPY_VENV=/some/dir benchmarks/setup_gammapy_env.sh
#   PYTHON=python3.11 benchmarks/setup_gammapy_env.sh   # interpreter used to create the venv
#
# Idempotent: does nothing if the venv already imports gammapy 2.1, regions 0.10 and psutil.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${GAMMAPY_VENV:-$repo/.venv-gammapy}"
python="${PYTHON:-python3}"

check='import sys, gammapy, regions, psutil
ok = gammapy.__version__ == "2.1" and regions.__version__.startswith("0.10")
print(f"gammapy {gammapy.__version__}, regions {regions.__version__}, psutil {psutil.__version__}")
sys.exit(0 if ok else 1)'

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "$venv: already set up, nothing to do"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "gammapy==2.1" "regions==0.10" psutil
"$venv/bin/python" -c "$check"
echo "$venv: ready (use --gammapy-python $venv/bin/python)"
