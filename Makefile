# Foresail. `make test` is the one test command; `make cluster-up` gives you a local cluster.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help venv tools images image generate lint unit e2e chaos test demo bench-scale cluster-up cluster-down cluster-status clean

help:
	@echo "make test           install what is missing, lint, unit tests, then e2e on a local cluster"
	@echo "make chaos          the chaos suite (e2e/chaos) with its long variants on a local cluster"
	@echo "make demo           Foresail end to end on a local cluster; report in out/demo/"
	@echo "make bench-scale    the scale benchmark on a local cluster (BENCH_SCALE_ARGS); report in out/bench/scale-<n>.*"
	@echo "make cluster-up     start the local cluster (prints the KUBECONFIG export line)"
	@echo "make cluster-down   stop it and remove its data"
	@echo "make tools          build/install the pinned tools into ~/.cache/foresail/tools"
	@echo "make image          build the images (cached), write OCI archives and SBOMs to out/images/, pin the chart's digest"
	@echo "make generate       regenerate crds/ and the chart's CRDs from operator/foresail/api, copy the admission policy"

# hack/constraints-testbed.txt: what the testbed's host-mode Triton needs of this virtualenv (numpy 1.x for the
# Python backend stub), not asked of the package's users
$(VENV)/.installed: pyproject.toml hack/constraints-testbed.txt
	@echo "[make] creating $(VENV) and installing foresail[dev]"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -c hack/constraints-testbed.txt -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

# the virtualenv's python once it is installed (rich: live progress on a terminal; make test and make demo make
# the virtualenv first), the system python before it exists (hack/tools.py needs only the standard library)
tools:
	@if [ -f $(VENV)/.installed ]; then $(PY) hack/tools.py ensure; else $(PYTHON) hack/tools.py ensure; fi

# the operator image and the testbed's Triton stand-in, built without a Docker engine (needs root), each step
# cached by the hash of its inputs under ~/.cache/foresail/images (images/README.md)
images: venv tools
	@$(PY) -m hack.images build

image: venv tools
	@$(PY) -m hack.images build --export

# CRDs come from the pydantic models; the chart installs a copy of the admission policy (unit tests
# fail when these files drift)
generate: venv
	$(PY) -m foresail.api.crd crds
	$(PY) -m foresail.api.crd charts/foresail/crds
	rm -f charts/foresail/files/*.yaml && cp policies/admission/*.yaml charts/foresail/files/

lint: venv
	$(VENV)/bin/ruff check operator hack tests e2e
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# pytest exits 5 when a selection holds no test; that is not a failure of the suite. PYTEST_ARGS naming files
# of the suite (make e2e PYTEST_ARGS="-x e2e/test_operator.py") runs only those, not the whole directory too.
define pytest
	@set +e; $(PY) -m pytest $(if $(filter $(1) $(1)/%,$(PYTEST_ARGS)),,$(1)) $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "[make] no tests selected in $(1)"; rc=0; fi; exit $$rc
endef

unit: venv
	$(call pytest,tests)

e2e: venv tools images
	$(call pytest,e2e)

# the chaos suite with its long variants (make test runs e2e/chaos's quick ones): longer outages, repeated
# kills, FORESAIL_CHAOS_EXAMPLES generated specs
CHAOS_EXAMPLES ?= 500
chaos: venv tools images
	FORESAIL_CHAOS_LONG=1 FORESAIL_CHAOS_EXAMPLES=$(CHAOS_EXAMPLES) $(PY) -m pytest e2e/chaos $(PYTEST_ARGS)

test: venv tools lint unit e2e

# the whole loop on a local cluster: chart, InferenceService, trace replay through the load generator,
# live table, report in out/demo/, clean shutdown
demo: venv tools images
	$(PY) -m hack.demo

# issue 14's scale benchmark (not part of make test): kwok replicas, Triton-format series, real Prometheus; it holds
# the shared cluster lock for the whole run (--budget-seconds, 570 by default)
BENCH_SCALE_ARGS ?= --services 200 --namespaces 10 --tenants 4 --replicas-per-service 5 --minutes 5 --seed 1
bench-scale: venv tools images
	flock /tmp/foresail-cluster.lock $(PY) -m hack.bench_scale $(BENCH_SCALE_ARGS)

cluster-up: venv tools images
	@hack/cluster up

cluster-down:
	@hack/cluster down

cluster-status:
	@hack/cluster status

clean: cluster-down
	rm -rf $(VENV) .run out
