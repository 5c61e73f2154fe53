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

# Two pytest processes: tests/integration/test_cluster.py makes the test process a Ray driver, so
# it runs in a process of its own after the rest.
CLUSTER_TESTS := tests/integration/test_cluster.py

test: $(VENV)/.installed system-deps
	$(VENV)/bin/python -m pytest -ra --ignore=$(CLUSTER_TESTS) $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest -ra $(CLUSTER_TESTS) $(PYTEST_ARGS)
