#!/usr/bin/env bash
# Build the Triton server the Triton tests start: DEST (default .venv-triton) becomes a venv of
# Debian's own Python with nvidia-pytriton (its bundled tritonserver has only the python
# backend), ONNX Runtime and numpy<2 (pytriton's pin, hence not the project's .venv), plus
# DEST/backends/python: the python backend and the stub for this Python, side by side, for
# `tritonserver --backend-directory`. `make test` runs it; tests/triton_support.py uses it.
set -euo pipefail
DEST="${1:-.venv-triton}"
SYSTEM_PYTHON=/usr/bin/python3  # the stub embeds Debian's libpython: a pyenv Python fails
if [ ! -x "$SYSTEM_PYTHON" ]; then
    echo "no $SYSTEM_PYTHON: the Triton tests will be skipped" >&2
    exit 0
fi
[ -x "$DEST/bin/python" ] || "$SYSTEM_PYTHON" -m venv "$DEST"
"$DEST/bin/python" -m pip install --quiet 'nvidia-pytriton==0.7.0' 'onnxruntime>=1.18' 'numpy<2'
VERSION=$("$DEST/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SERVER="$DEST/lib/python$VERSION/site-packages/pytriton/tritonserver"
mkdir -p "$DEST/backends/python"
cp "$SERVER/backends/python/libtriton_python.so" "$SERVER/backends/python/triton_python_backend_utils.py" \
    "$SERVER/python_backend_stubs/$VERSION/triton_python_backend_stub" "$DEST/backends/python/"
ln -sfn "$(cd "$SERVER" && pwd)" "$DEST/tritonserver"
touch "$DEST/.installed"
