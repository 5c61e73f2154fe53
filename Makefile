# Two commands for a fresh machine:  make app   and   make test
VENV := .venv
PYTHON ?= python3

.PHONY: app test system-deps venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,cluster,onnxruntime,openvino]'
	touch $@

venv: $(VENV)/.installed

system-deps:
	bash scripts/install-system-deps.sh

app: $(VENV)/.installed
	$(VENV)/bin/tdn app $(APP_ARGS)

# The cluster tests make the test process a Ray driver (native threads and signal handlers that stay
# after ray.shutdown()); they run in a pytest process of their own, after the rest. (A CI run of
# 2026-12-02 died of SIGSEGV in a later RTSP test of the same process; not reproduced since.)
CLUSTER_TESTS := tests/integration/test_cluster.py

test: $(VENV)/.installed system-deps
	$(VENV)/bin/python -m pytest -ra --ignore=$(CLUSTER_TESTS) $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest -ra $(CLUSTER_TESTS) $(PYTEST_ARGS)
