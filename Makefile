# Holdnote developer entry points. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test

.PHONY: test bench demo demo-sysdeps venv sysdeps lint clean

## make test: install what the suite needs (apt, venv) and run every test.
test: sysdeps venv
	$(BIN)/python -m pytest

sysdeps:
	bash .ci/sysdeps.sh test

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

## make bench: speed and memory figures, as ratios against baselines run alongside.
bench: sysdeps venv
	$(BIN)/python -m tests.bench

## make demo: the whole appliance on this machine with mock GPIO and demo audio.
## System packages first: the venv builds PyAudio and systemd-python against them.
demo: demo-sysdeps venv
	$(BIN)/holdnote demo

demo-sysdeps:
	bash .ci/sysdeps.sh demo

lint:
	shellcheck install.sh .ci/run .ci/sysdeps.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
