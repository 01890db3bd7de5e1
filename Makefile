# Crypto Quant Agent: `make run` and `make test` work on a fresh clone with nothing else installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest security bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False $(BIN)/crypto-agent serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy core agent tools trading models knowledge

# pytest exits 5 when it collected no test: treat that as a failure, a run that tests nothing must not pass.
pytest: $(STAMP)
	HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False $(BIN)/pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# bandit must be clean (skips are explained in pyproject.toml). pip-audit fails on any known vulnerability; where
# its vulnerability service cannot be reached it reports the packages it could not audit and does not fail.
security: $(STAMP)
	$(BIN)/bandit -q -c pyproject.toml -r core agent tools trading models knowledge
	@out=$$($(BIN)/pip-audit -l --skip-editable --progress-spinner off 2>&1); rc=$$?; \
	  echo "$$out" | grep -v "could not be audited" | tail -n 20; \
	  echo "pip-audit: $$(echo "$$out" | grep -c 'could not be audited') package(s) could not be audited (vulnerability service unreachable)"; \
	  exit $$rc

test: lint typecheck security pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b | tail -1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
