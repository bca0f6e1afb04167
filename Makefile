# Two commands for a fresh machine: `make demo` (the main job end to end on the emulated
# device) and `make test` (the whole suite). Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-deps test demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	bash scripts/install_system_deps.sh

setup: $(STAMP) system-deps

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/mobilize demo --out out/demo

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/export_quality.py

clean:
	rm -rf out .pytest_cache
