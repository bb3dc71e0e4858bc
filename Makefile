VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench bench-full bench-profile soak

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: lint
	$(PY) -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check durable agents tools prompts tests examples
	$(VENV)/bin/mypy durable agents tools prompts

clean:
	rm -rf $(VENV) .duragent

bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-full: $(STAMP)
	$(PY) -m benchmarks.run --full

bench-profile: $(STAMP)
	$(PY) -m benchmarks.profile_step

# Reliability soak (minutes, not part of `make test`): hundreds of SIGKILLs, four workers on one store.
soak: $(STAMP)
	DURAGENT_CRASH_TRIALS=300 $(PY) -m pytest -q tests/e2e/test_crash_safety.py
	DURAGENT_LEASE_WORKERS=4 DURAGENT_LEASE_EXECUTIONS=40 $(PY) -m pytest -q tests/e2e/test_leases.py
