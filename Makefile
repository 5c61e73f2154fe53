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

test: $(VENV)/.installed system-deps
	$(VENV)/bin/python -m pytest -ra $(PYTEST_ARGS)
