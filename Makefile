# Two commands do all set-up on a fresh machine:
#   make demo   - train and evaluate unmasked vs causal SmolLM2 taggers (+ baselines) on CoNLL-2003
#   make test   - the test suite, on transformers 4.53.x and on the newest 5.x
#                 (SLOW=1 adds the slow tests on 4.53.x, as CI runs it)
#   make test-long - the real trainings of ten minutes or more (tests marked long), on 4.53.x
#   make lint   - ruff (lint and format check) on the package and tests, mypy on the package
VENV ?= .venv
VENV5 ?= .venv-tf5
PYTEST_ARGS ?=
# SLOW=1: also the tests marked slow (real weights and data, the projects' workflows), on 4.53.x
SLOW ?=
# pytest-xdist workers; each test file stays on one worker (module fixtures are built once)
TEST_WORKERS ?= 2
PYTEST = -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: setup setup5 test test-long demo lint

setup:
	bash scripts/setup_env.sh $(VENV) 4

setup5:
	bash scripts/setup_env.sh $(VENV5) 5

lint: setup
	$(VENV)/bin/python -m ruff check spacy_llm_tagger tests projects
	$(VENV)/bin/python -m ruff format --check spacy_llm_tagger tests
	$(VENV)/bin/python -m mypy

test: setup setup5
	$(VENV)/bin/python $(PYTEST) tests projects -q -m "not long" $(if $(SLOW),--slow) $(PYTEST_ARGS)
	$(VENV5)/bin/python $(PYTEST) tests -q -m "not trf and not long" $(PYTEST_ARGS)

# the real trainings of ten minutes or more; not part of CI (measured 2026-12-02 on 2 workers:
# test_default_path 19 minutes, test_real_smollm2 10 minutes, side by side)
test-long: setup
	$(VENV)/bin/python $(PYTEST) tests -q -m long --slow $(PYTEST_ARGS)

# demo: the set-up with pip's progress shown (setup_env.sh installs with -q; PIP_VERBOSE=1 cancels
# it), then the demo workflow of projects/conll03 (25 minutes on 2 CPU cores in all, measured)
demo:
	@echo "make demo: set-up, then weasel run demo in projects/conll03 (25 minutes on 2 CPU cores); started $$(date +%T)"
	PIP_VERBOSE=1 $(MAKE) --no-print-directory setup
	cd projects/conll03 && ../../$(VENV)/bin/python -m weasel run demo
	@echo "make demo: finished $$(date +%T); the table is projects/conll03/metrics/comparison.md"
