# The two commands of the README:
#   make demo   set up, train a small PTB language model (5-minute budget), print its test perplexity, use it
#   make test   set up, run the test suite (real-data tests read SEQ2TEXT_DATA)
#   make test-under-load   the same suite while another process keeps every core busy
PYTHON ?= python3
# this checkout's datasets, where the development layout has them (else the loaders use ./data or the Hub)
SEQ2TEXT_DATA ?= $(abspath $(wildcard ../shared/data))
export SEQ2TEXT_DATA
VENV ?= .venv
BIN := $(VENV)/bin
BUDGET ?= 5m
BUNDLE ?= artifacts/ptb_lstm_small

.PHONY: install demo test test-under-load lint results

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned so that this installs the CPU build (a bare `torch` pulls a multi-GB CUDA build)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/seq2text fit --config recipes/ptb_lstm_small.yaml --budget $(BUDGET) --bundle $(BUNDLE) \
		--trainer.enable_progress_bar false
	$(BIN)/seq2text evaluate --model $(BUNDLE) --input $(SEQ2TEXT_DATA)/ptb/ptb.test.txt
	$(BIN)/seq2text generate --model $(BUNDLE) --prompt "the company said" --max-tokens 20 --seed 1
	@echo "bundle: $(BUNDLE)  (python: import seq2text; lm = seq2text.load('$(BUNDLE)'); lm.perplexity([...]))"

test: install
	$(BIN)/python -m pytest -q -x -n 2 --dist worksteal --durations=10

test-under-load: install
	$(BIN)/python tests/under_load.py $(BIN)/python -m pytest -q -x -n 2 --dist worksteal --durations=10

lint: install
	$(BIN)/ruff check seq2text tests benchmarks

results: install
	$(BIN)/python benchmarks/report.py
