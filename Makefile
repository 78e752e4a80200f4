# Two commands do all set-up on a fresh machine:
#   make demo   - train and evaluate unmasked vs causal SmolLM2 taggers (+ baselines) on CoNLL-2003
#   make test   - the test suite, on transformers 4.53.x and on the newest 5.x
#   make lint   - ruff (lint and format check) on the package and tests, mypy on the package
VENV ?= .venv
VENV5 ?= .venv-tf5
PYTEST_ARGS ?=

.PHONY: setup setup5 test test-core5 demo lint

setup:
	bash scripts/setup_env.sh $(VENV) 4

setup5:
	bash scripts/setup_env.sh $(VENV5) 5

lint: setup
	$(VENV)/bin/python -m ruff check spacy_llm_tagger tests
	$(VENV)/bin/python -m ruff format --check spacy_llm_tagger tests
	$(VENV)/bin/python -m mypy

test: setup setup5
	$(VENV)/bin/python -m pytest tests projects -q $(PYTEST_ARGS)
	$(VENV5)/bin/python -m pytest tests -q -m "not trf" $(PYTEST_ARGS)

demo: setup
	cd projects/conll03 && ../../$(VENV)/bin/python -m weasel run demo
