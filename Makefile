# make dev   - run the system locally (Kafka + FerretDB + web :8080 + api :8081); Ctrl-C stops it
# make test  - every test, against the real servers, control plane and node the test session starts itself
# make check - seconds, no server, no build: the linter, the layering contracts, the unit tests of pure code
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: dev test check fetch fetch-tools fetch-controlplane venv clean lag bench soak cluster autoscale-demo images load-burst

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Kafka's jars (mvn) and FerretDB (go build), once, into ~/.cache/purchase-system.
fetch: venv
	$(PY) -m scripts.stack fetch

# For the chart and Tiltfile tests: helm and tilt (go build) into the same cache, KEDA's CRD schemas (npm)
# into tests/deploy/keda/node_modules.
fetch-tools: venv
	$(PY) -m scripts.tools fetch

# The control plane's binaries (etcd, Kubernetes, kwok, KEDA), built with go from scripts/controlplane/go/ into
# the same cache: about 25 minutes the first time on 2 cores, nothing afterwards.
fetch-controlplane: venv
	$(PY) -m scripts.controlplane.build

dev: fetch
	$(PY) -m scripts.dev

# The unit tests of pure code: no server, no build.
UNIT_TESTS := tests/core tests/api/test_offsets.py tests/common/test_openapi_documents.py \
              tests/common/test_log_extra_keys.py tests/web/test_delivery.py tests/web/test_partitioner.py \
              tests/scripts/test_module_copy.py tests/web/auth/test_tokens.py

check: venv
	$(VENV)/bin/ruff check services scripts tests bench
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider $(UNIT_TESTS)

test: fetch fetch-tools fetch-controlplane
	$(PY) -m pytest $(PYTEST_ARGS)

# web and api images from their Dockerfiles (podman; a Debian stand-in base where Docker Hub is unreachable).
images: venv
	$(PY) -m scripts.images

# A real Kubernetes control plane, KEDA and a real node (containerd, kubelet, kube-proxy; root), the chart installed
# from images built here; Ctrl-C stops it.
cluster: fetch fetch-tools fetch-controlplane
	$(PY) -m scripts.controlplane

# The chart on that control plane, a burst of 20,000 purchases, and KEDA scaling the api: a timeline and autoscale.png.
autoscale-demo: fetch fetch-tools fetch-controlplane
	$(PY) -m scripts.controlplane.demo

# Figures beside their ceilings, measured in one run; writes bench/results/latest.json. Not part of `make test`.
bench: fetch
	$(PY) -m bench.run

# The whole system at a steady rate for 30 minutes (MINUTES=...): drift of memory, descriptors, lag and latency,
# a verify and a plot (bench/results/soak.png). A benchmark, not part of `make test`.
MINUTES ?= 30
soak: fetch
	$(PY) -m bench.soak --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .dev .cluster .pytest_cache

# A burst of purchases (the Tiltfile's load-burst button): scripts/load.py in the project's venv, whatever python3 is.
# TOKEN_COMMAND: with web's sign-in on, a command printing a bearer token (load.py --token-command).
URL   ?= http://localhost:8080
BURST ?= 20000
TOKEN_COMMAND ?=
export TOKEN_COMMAND
load-burst: venv
	$(PY) scripts/load.py --url $(URL) --burst $(BURST) --concurrency 64 --users 500 \
	  $(if $(TOKEN_COMMAND),--token-command "$$TOKEN_COMMAND")

# Consumer-group lag of `make dev`'s Kafka, per partition, every second.
lag: venv
	$(PY) -m scripts.lag --watch
