# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create or update .venv in the repository root first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# the Triton server of tests/test_triton.py (see tests/triton_server/setup_server.sh)
TRITON_STAMP := .venv-triton/.installed

.PHONY: venv demo test lint build-demo triton-server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of PyTorch (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

$(TRITON_STAMP): tests/triton_server/setup_server.sh
	tests/triton_server/setup_server.sh .venv-triton

triton-server: $(TRITON_STAMP)

demo: venv
	$(PY) run_stream.py demo

test: venv triton-server
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# rebuild the demo detector and demo clips (training/demo/) from media/*.mp4
build-demo: venv
	$(PY) run_stream.py build-demo
