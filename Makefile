# The two commands a user types on a fresh clone: `make smoke` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
PIP_ARGS ?=
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Smoke mode and the tests never touch a model or dataset hub.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: venv smoke test test-all lint fmt dry-run clean-smoke

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned in pyproject.toml (2.13.0); pass PIP_ARGS to point pip at a CPU wheel index if needed.
	$(PY) -m pip install -q $(PIP_ARGS) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

smoke: venv
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES) --configfile config/smoke.yaml --rerun-incomplete --printshellcmds
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES) --configfile config/smoke.yaml --report smoke/report.html
	@echo "smoke run finished: tables in smoke/results/, HTML report smoke/report.html (logs in smoke/logs/, per-sample outputs in smoke/scores/)"

test: venv
	$(OFFLINE) $(PY) -m pytest -q --durations=15

test-all: venv
	$(OFFLINE) $(PY) -m pytest -q -m ""

lint: venv
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check .

fmt: venv
	$(VENV)/bin/snakefmt .

dry-run: venv
	$(VENV)/bin/snakemake -n --cores all

clean-smoke:
	rm -rf smoke
