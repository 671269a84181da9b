# make dev   - run the system locally (Kafka + FerretDB + web :8080 + api :8081); Ctrl-C stops it
# make test  - every test, against a real Kafka and a real FerretDB the test session starts itself
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: dev test fetch venv clean lag

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Kafka's jars (mvn), FerretDB, helm and tilt (go build), KEDA's schemas (npm), once, into
# ~/.cache/purchase-system (npm's into tests/deploy/keda/node_modules).
fetch: venv
	$(PY) -m scripts.stack fetch
	$(PY) -m scripts.tools fetch

dev: fetch
	$(PY) -m scripts.dev

test: fetch
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .dev .pytest_cache

# Consumer-group lag of `make dev`'s Kafka, per partition, every second.
lag: venv
	$(PY) -m scripts.lag --watch
