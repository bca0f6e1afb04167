#!/usr/bin/env bash
# A separate venv, .venv-litert, for benchmarks/litert_torch_convert.py: litert-torch is a
# peer the unseen suite compares against, never a dependency of mobilize, and it pulls its
# own LiteRT, jax and torchao releases, which must not move the main .venv's.
#
#     bash benchmarks/litert_torch_env.sh [PYTHON]      (default python3)
#
# Idempotent: a venv that already has these pins is left as it is. torch is pinned exactly
# (any other spec resolves to a multi-GB CUDA download here); torchvision is never installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${1:-python3}
VENV=.venv-litert
TORCH=torch==2.13.0
LITERT_TORCH=litert-torch==0.10.0
STAMP="$VENV/.installed-${TORCH/==/-}_${LITERT_TORCH/==/-}"  # new pins, new install

pip_install() {
    # pip warns once per package about index folders this machine does not have: noise
    "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "is neither a file nor a directory" >&2)
}

if [ ! -f "$STAMP" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    pip_install --upgrade pip
    # torch first and alone, so litert-torch's own torch requirement finds it satisfied
    pip_install "$TORCH"
    pip_install "$TORCH" "$LITERT_TORCH" numpy
    touch "$STAMP"
fi
"$VENV/bin/python" -m pip list 2>/dev/null \
    | grep -iE '^(torch|torchao|litert-torch|ai-edge-litert|ai-edge-quantizer|numpy) '
