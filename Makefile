# genart: `make help` lists the targets.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
TORCH   := torch==2.13.0

.PHONY: help setup test slow demo lint format bench gpu-check clean cluster-up cluster-down cluster-env

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# the CPU wheel first: a looser torch requirement would pull a multi-GB CUDA build
	$(PIP) install -q $(TORCH)
	# torch pinned again: while pip backtracks through datasets' versions it would otherwise pick torch 2.14 (CUDA, +3 GB)
	$(PIP) install -q -e '.[dev]' $(TORCH)
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install genart (editable) with its dev tools

test: $(STAMP)  ## run the test suite (what CI runs; about 19 minutes on 2 cores, measured by CI on ce50fce)
	$(PY) -m pytest -q --durations=25

slow: $(STAMP)  ## run the slow tests too (multi-node, long fault injection)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)  ## train a small digits model on a local Ray, then generate a collection under ./out/demo
	.venv/bin/genart demo --out out/demo

bench: $(STAMP)  ## benchmarks: training, data loading, generation, warm latency, memory, dedupe index, curation page; ART=FOLDER adds bench art (prints tables)
	.venv/bin/genart bench train
	.venv/bin/genart bench generate
	.venv/bin/genart bench warm
	.venv/bin/genart bench train-data
	.venv/bin/genart bench memory
	.venv/bin/genart bench dedupe
	.venv/bin/genart bench gallery
	$(if $(ART),.venv/bin/genart bench art "$(ART)")

gpu-check: $(STAMP)  ## on a GPU machine (<= 5 min): bf16 64x64 training, 200k images with 1 and 2 replicas; exit 3 without a GPU
	$(PY) -m genart.bench.gpu_check

lint: $(STAMP)  ## ruff lint and format check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:  ## remove outputs (keeps .venv)
	rm -rf out .pytest_cache

cluster-up: $(STAMP)  ## start a local token-auth Ray head on 127.0.0.1 (WORKERS=N for extra nodes)
	cluster/local.sh start --workers $(or $(WORKERS),0)

cluster-down:  ## stop exactly the Ray processes cluster-up started
	cluster/local.sh stop

cluster-env:  ## print the exports (token path, dashboard URL) for genart submit / ray job submit
	cluster/local.sh env
