# make dev   - run the system locally (Kafka + FerretDB + web :8080 + api :8081); Ctrl-C stops it
# make test  - every test, against the real servers, control plane and node the test session starts itself
# make check - seconds, no server, no build: the linter, the layering contracts, the unit tests of pure code
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: dev test check fetch fetch-all venv clean lag bench profile soak cluster autoscale-demo observability images load-burst

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# What make dev runs, once, into ~/.cache/purchase-system: Kafka's jars (mvn) and FerretDB (go build).
fetch: venv
	$(PY) -m scripts.fetch dev

# All that make test needs, once, two builds at a time (scripts/fetch.py): also Keycloak, helm, tilt, the control
# plane's and the node's binaries (scripts/controlplane/go/), the CRD schemas (npm) and the images.
fetch-all: venv
	$(PY) -m scripts.fetch test

# AUTH=oidc: Keycloak beside the stack, and web's sign-in on against it (fetched on first use).
AUTH ?= off
dev: fetch
	AUTH=$(AUTH) $(PY) -m scripts.dev

# The unit tests of pure code and the in-process handler tests: marked `unit` (no server, no build).
check: venv
	$(VENV)/bin/ruff check services scripts tests bench
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider -m unit

# The fast tier first (make check), then everything against the real servers; the slowest tests are listed. What
# the cluster's tests need alone (the control plane's Go programs) the session builds in the background, niced,
# while the other tests run; the cluster's tests come last (tests/conftest.py).
PYTEST_ARGS ?= --durations=25
test: check
	$(PY) -m scripts.fetch servers
	$(PY) -m pytest $(PYTEST_ARGS)

# web and api images from their Dockerfiles (podman; a Debian stand-in base where Docker Hub is unreachable).
images: venv
	$(PY) -m scripts.images

# A real Kubernetes control plane, KEDA and a real node (containerd, kubelet, kube-proxy; root), the chart installed
# from images built here; Ctrl-C stops it.
cluster: fetch-all
	$(PY) -m scripts.controlplane

# The chart on that control plane, a burst of 20,000 purchases, and KEDA scaling the api: a timeline and
# docs/autoscale-demo.png.
autoscale-demo: fetch-all
	$(PY) -m scripts.controlplane.demo

# The same burst watched by a real Prometheus set up from the chart's ServiceMonitors and rules: the lag alert
# pending, firing, resolving; docs/observability.png drawn from its data with the dashboard's queries.
observability: fetch-all
	$(PY) -m scripts.controlplane.observability

# Figures beside their ceilings, measured in one run; writes bench/results/latest.json. Not part of `make test`.
bench: fetch
	$(PY) -m bench.run

# Where web's CPU goes at its peak, by part (py-spy on web under the bench's client): a table, bench/results/
# profile.json and docs/profile-web.svg.
profile: fetch
	$(PY) -m bench.profile

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
