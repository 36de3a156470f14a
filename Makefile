# The treatment-room controller. `make run` and `make test` work on a fresh Debian/Ubuntu or
# Raspberry Pi OS machine: they install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := mosquitto mosquitto-clients libvlc5 vlc-plugin-base socat sox python3-venv \
	systemd udev util-linux shellcheck chromium chromium-driver nodejs openssl fiu-utils libfiu0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run demo test lint bench deps venv clean help install uninstall docs mutants

help:
	@echo "make run    - the simulated room against a local dev broker"
	@echo "make demo   - a whole scripted session at --time-scale 60"
	@echo "make test   - the whole test suite (real broker, real libVLC)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - the benchmarks (bench/results.json)"
	@echo "make mutants - mutation testing of the core's safety modules (slow; see README)"
	@echo "make install / uninstall - the room on this machine (systemd/install.sh; see docs/deploy.md)"

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

run: deps venv
	mqtt_bridge/broker/run-dev.sh

demo: deps venv
	$(BIN)/python -m mqtt_bridge.demo

test: deps venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m mqtt_bridge.asyncapi --check

docs: venv
	$(BIN)/python -m mqtt_bridge.asyncapi --out docs/asyncapi.yaml

bench: deps venv
	$(BIN)/python -m bench

# Mutation testing ([tool.mutmut] in pyproject.toml). One module: make mutants
# MUTANTS='controller.gates.*'. Workers: MUTANTS_JOBS (one by default: it is CPU-bound).
MUTANTS ?=
MUTANTS_JOBS ?= 1
mutants: venv
	set -f; $(BIN)/mutmut run --max-children $(MUTANTS_JOBS) $(MUTANTS)
	$(BIN)/mutmut results

# On a Pi: make install INSTALL_FLAGS=--with-watchdog; uninstall keeps data unless
# UNINSTALL_FLAGS=--purge. Without make: sudo systemd/install.sh [uninstall].
install:
	$(SUDO) DESTDIR="$(DESTDIR)" systemd/install.sh $(INSTALL_FLAGS)

uninstall:
	$(SUDO) DESTDIR="$(DESTDIR)" systemd/install.sh uninstall $(UNINSTALL_FLAGS)

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
