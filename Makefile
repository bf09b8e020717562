# The two commands a user types on a fresh clone: `make smoke` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
PIP_ARGS ?=
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Smoke mode and the tests never touch a model or dataset hub.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

VERL_VENV ?= .venv-verl
VERL_VERSION := 0.6.1

.PHONY: venv verl-venv venvs smoke test test-all mutation lint fmt dry-run clean-smoke results sif

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned in pyproject.toml (2.13.0); pass PIP_ARGS to point pip at a CPU wheel index if needed.
	$(PY) -m pip install -q $(PIP_ARGS) -e '.[dev,workflow]'
	touch $@

venv: $(VENV)/.installed

# verl (the paper's GRLO engine) in its own venv, as it runs in its own image in paper mode: its Hydra/OmegaConf need
# antlr4 4.9, lm-eval[math] in the main venv needs 4.11. The tests in tests/verl_env/ run here, and smoke mode's
# train_grlo runs verl's main_ppo with it on CPU (grlo.train.verl.launch.verl_python finds it; grlo.train.verl.cpu).
$(VERL_VENV)/.installed: tests/verl_env/requirements.txt pyproject.toml
	test -x $(VERL_VENV)/bin/python || python3 -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/python -m pip install -q --upgrade pip
	$(VERL_VENV)/bin/python -m pip install -q $(PIP_ARGS) -r tests/verl_env/requirements.txt
	$(VERL_VENV)/bin/python -m pip install -q --no-deps verl==$(VERL_VERSION)
	$(VERL_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

verl-venv: $(VERL_VENV)/.installed

# Both venvs side by side: pip spends most of an install unpacking wheels on one core (3 min 39 s one after the other
# on 2 idle cores, both from pip's cache). A venv already built is not touched.
venvs:
	@$(MAKE) --no-print-directory -j2 venv verl-venv

smoke: venvs $(BWRAP)
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES) --configfile config/smoke.yaml --rerun-incomplete --printshellcmds
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES) --configfile config/smoke.yaml --report smoke/report.html
	@echo "smoke run finished: tables in smoke/results/, HTML report smoke/report.html (logs in smoke/logs/, per-sample outputs in smoke/scores/)"

# The committed results/ files for the paper config (forecast, protocol card, not-run claims): no GPU, seconds.
# tests/test_results_committed.py fails until they are rewritten after a config or code change that moves them.
results: venv
	$(OFFLINE) $(VENV)/bin/snakemake --cores 1 --forceall committed_results

# Headless Chromium (Debian package) for the report tests that open report.html as a reviewer would. Installed only
# when make runs as root (CI); anyone else gets the command to run, and those tests are skipped with that reason.
# apt-get runs one at a time (a second one fails on dpkg's lock): each install holds $(APT_LOCK) under `make -j`.
APT_LOCK := flock /tmp/grlo-apt.lock
CHROMIUM := /usr/bin/chromium
CHROMIUM_APT := apt-get install -y --no-install-recommends chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive $(APT_LOCK) $(CHROMIUM_APT) || ($(APT_LOCK) apt-get update && DEBIAN_FRONTEND=noninteractive $(APT_LOCK) $(CHROMIUM_APT)); \
	else \
	  echo "Chromium is missing: the report tests that open the page in a browser will be skipped."; \
	  echo "To run them: sudo $(CHROMIUM_APT)"; \
	fi

# The two GPU images as Apptainer SIFs, built on the cluster without Docker or root (apptainer build --fakeroot).
# containers/*.def are generated from the Dockerfiles (containers/def_from_dockerfile.py; tests check they agree).
APPTAINER ?= apptainer
SIF_DIR ?= .
sif: $(SIF_DIR)/grlo.sif $(SIF_DIR)/grlo-verl.sif
	@echo "images: $(SIF_DIR)/grlo.sif (container.image) and $(SIF_DIR)/grlo-verl.sif (container.verl_image)"
$(SIF_DIR)/%.sif: containers/%.def pyproject.toml
	$(APPTAINER) build --fakeroot $@ $<

# bubblewrap (Debian package): the code sandbox's container (grlo/eval/sandbox.py); without it code scoring stops, so
# `make smoke` needs it as much as `make test`.
BWRAP := /usr/bin/bwrap
BWRAP_APT := apt-get install -y --no-install-recommends bubblewrap
$(BWRAP):
	@if [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive $(APT_LOCK) $(BWRAP_APT) || ($(APT_LOCK) apt-get update && DEBIAN_FRONTEND=noninteractive $(APT_LOCK) $(BWRAP_APT)); \
	else \
	  echo "bubblewrap is missing: code scoring and its tests need it. Run: sudo $(BWRAP_APT)"; exit 1; \
	fi

# The suite in three streams on the 2 cores CI has: verl's venv's tests (tests/verl_env, log in logs/) beside the main
# suite, which runs in TEST_WORKERS pytest-xdist workers (work stealing: the smoke DAG, the longest single piece, starts
# first in one worker while the other takes the rest; tests/conftest.py). TEST_WORKERS=0 runs it in one process.
# tests/verl_env gets a temp directory of its own (a --basetemp in PYTEST_ADDOPTS is the main suite's, and pytest empties
# it when it starts). Several torch processes share the cores: OMP_WAIT_POLICY=PASSIVE stops a thread pool spinning
# while its other thread waits for a core (measured: two 2-thread processes on 2 cores ran 4x slower each, spinning).
TEST_WORKERS ?= 2
TEST_ENV := $(OFFLINE) OMP_WAIT_POLICY=PASSIVE
test: venvs $(CHROMIUM) $(BWRAP)
	$(VENV)/bin/lint-imports
	@mkdir -p logs
	@echo "tests/verl_env runs in $(VERL_VENV) beside the main suite; its report comes after the main suite's"
	@vtmp=$$(mktemp -d -t grlo-verl-env.XXXXXX); \
	$(TEST_ENV) $(VERL_VENV)/bin/python -m pytest -q -p no:cacheprovider --basetemp=$$vtmp tests/verl_env \
	  > logs/test-verl-env.log 2>&1 & verl=$$!; \
	$(TEST_ENV) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15; main=$$?; \
	wait $$verl; venv_rc=$$?; echo "== tests/verl_env ($(VERL_VENV)) =="; \
	if [ $$venv_rc -eq 0 ]; then tail -n 3 logs/test-verl-env.log; rm -rf $$vtmp; \
	else cat logs/test-verl-env.log; echo "(its temp files: $$vtmp)"; fi; \
	echo "main suite: exit $$main; tests/verl_env: exit $$venv_rc"; [ $$main -eq 0 ] && [ $$venv_rc -eq 0 ]

test-all: venvs $(CHROMIUM) $(BWRAP)
	$(OFFLINE) $(VERL_VENV)/bin/python -m pytest -q -m "" tests/verl_env
	$(OFFLINE) $(PY) -m pytest -q -m ""

# Mutation testing of the core rules, a benchmark and not a gate: how many small deliberate bugs the tests catch,
# per module, written to benchmarks/results/mutation.json with the surviving mutants (benchmarks/mutation.py).
mutation: venv
	$(OFFLINE) nice -n 19 $(PY) benchmarks/mutation.py

lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check .

fmt: venv
	$(VENV)/bin/snakefmt .

dry-run: venv
	$(VENV)/bin/snakemake -n --cores all

clean-smoke:
	rm -rf smoke
