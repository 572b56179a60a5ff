# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create or update .venv in the repository root first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

JSDOM := tests/js/node_modules/jsdom/package.json

.PHONY: venv demo test lint build-demo js

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of PyTorch (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# jsdom, for the dashboard page test (skipped, with the reason, where npm is missing)
$(JSDOM): tests/js/package.json
	@if command -v npm >/dev/null; then \
		npm install --prefix tests/js --no-audit --no-fund --silent && touch $(JSDOM); \
	else echo "npm not found: the dashboard page test will be skipped"; fi

js: $(JSDOM)

demo: venv
	$(PY) run_stream.py demo

test: venv js
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# rebuild the demo detector and demo clips (training/demo/) from media/*.mp4
build-demo: venv
	$(PY) run_stream.py build-demo
