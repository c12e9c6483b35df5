# aioir: the two commands a fresh machine needs are `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_SILENT := true
# models and options of `make bench` (python -m src.bench --help), e.g. make bench BENCH_ARGS="--models promptir"
BENCH_ARGS ?= --models restormer_tiny promptir_tiny

.PHONY: help install train eval test test-slow test-all lint format sweep bench clean

help:  ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	@# NIQE's pristine model is read from inside this wheel (src/metrics/niqe.py); nothing of it is installed
	$(PY) -m pip download -q --no-deps --only-binary=:all: mmagic==1.2.0 -d .cache/wheels \
		|| echo "warning: mmagic wheel not downloaded: NIQE needs AIOIR_NIQE_PARAMS (its tests skip)"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

train: $(STAMP)  ## install, then run the main job (the quickstart experiment, CPU, ~5 min on 2 idle cores)
	$(PY) -m src.train experiment=quickstart

eval: $(STAMP)  ## evaluate a checkpoint: make eval CKPT=logs/.../checkpoints/best*.ckpt
	$(PY) -m src.eval ckpt_path=$(CKPT)

test: $(STAMP)  ## install, then run the fast tests (one pytest-xdist worker per core)
	$(PY) -m pytest -n auto -m "not slow and not gpu" -q

test-slow: $(STAMP)  ## the slow tests (DDP with two CPU processes, sweeps, resume after kill)
	$(PY) -m pytest -m "slow and not gpu" -q

test-all: $(STAMP)  ## every test that needs no GPU
	$(PY) -m pytest -m "not gpu" -q

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .

sweep: $(STAMP)  ## Optuna search over the quickstart (hparams_search=optuna)
	$(PY) -m src.train -m experiment=quickstart hparams_search=optuna

bench: $(STAMP)  ## speed beside the official way: make bench [BENCH_ARGS="--models promptir"] -> outputs/bench
	$(PY) -m src.bench $(BENCH_ARGS)

clean:  ## remove run folders and caches (not the venv)
	rm -rf logs outputs multirun .pytest_cache .ruff_cache
