VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
# Wheels for the packaging test's fresh virtualenvs (openai-agents and our dependencies), fetched
# here at setup so that the test itself installs offline.
WHEELHOUSE := $(VENV)/wheelhouse

.PHONY: demo test lint install clean bench bench-full bench-profile bench-peers soak

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The demo installs only what it runs: duragent and the provider SDKs it uses when a key is set.
$(DEMO_STAMP): pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[anthropic,openai]'
	touch $(DEMO_STAMP)

# The console's browser tests drive Debian's chromium through Playwright (never `playwright install`):
# installed here when missing (CI runs as root on a fresh machine).
$(DEV_STAMP): pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m pip download -q -d $(WHEELHOUSE) openai-agents 'pydantic>=2.7' 'tenacity>=8.2' 'boto3>=1.44' 'jsonschema>=4.18'
	touch $(DEMO_STAMP) $(DEV_STAMP)

install: $(DEV_STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py

test: lint
	$(PY) -m pytest -q -m "not slow" tests

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check duragent durable agents tools prompts tests examples benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(PEERS_VENV) .duragent

bench: $(DEV_STAMP)
	$(PY) -m benchmarks.run

bench-full: $(DEV_STAMP)
	$(PY) -m benchmarks.run --full

# The peers (DBOS, LangGraph with its SQLite checkpointer, AWS's testing runner) go into a virtualenv of
# their own, made here from PyPI, so that they never mix with duragent's dependencies.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
$(PEERS_STAMP):
	python3 -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q dbos==3.4.0 langgraph==1.2.24 langgraph-checkpoint-sqlite==3.1.2 \
		aws-durable-execution-sdk-python-testing==1.4.0
	touch $(PEERS_STAMP)

bench-peers: $(DEV_STAMP) $(PEERS_STAMP)
	$(PY) -m benchmarks.run --only peers

bench-profile: $(DEV_STAMP)
	$(PY) -m benchmarks.profile_step

# Reliability soak (minutes, not part of `make test`): hundreds of SIGKILLs, four workers on one store,
# workers in separate PID namespaces (needs root and util-linux's unshare), deploys caught half-written,
# thousands of concurrent callback answers, and the cost-truth proof of issue 14 (200 documents, 5
# SIGKILLs, interactive and batch mode). The README's Reliability section quotes these figures.
soak: $(DEV_STAMP)
	DURAGENT_CRASH_TRIALS=300 $(PY) -m pytest -q tests/e2e/test_crash_safety.py
	DURAGENT_LEASE_WORKERS=4 DURAGENT_LEASE_EXECUTIONS=40 $(PY) -m pytest -q tests/e2e/test_leases.py
	DURAGENT_PIDNS_TRIALS=10 $(PY) -m pytest -q -rs tests/e2e/test_pid_namespaces.py
	DURAGENT_DEPLOY_ROUNDS=60 DURAGENT_DEPLOY_EXECUTIONS=20 $(PY) -m pytest -q tests/e2e/test_deploys.py
	DURAGENT_ANSWER_CALLBACKS=2000 DURAGENT_ANSWER_PROCESSES=8 $(PY) -m pytest -q tests/e2e/test_concurrent_answers.py
	DURAGENT_COST_DOCS=200 DURAGENT_COST_KILLS=5 $(PY) -m pytest -q tests/integration/test_cost_truth.py
