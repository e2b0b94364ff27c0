# bootstrap.mk version 2: the offline-bootstrap convention, for `include bootstrap.mk` in a project's Makefile.
# It expects beside it: bootstrap.py, virtualenv.py, virtualenv_support/, requirements.txt, requirements/.
# Override the variables below on the command line (`make ve PYTHON=python3.12`) or before the include.

BOOTSTRAP_MK_VERSION := 2

# The variables that steer a build take effect from the make command line or the Makefile, never from the
# environment: shells and CI images export PYTHON (node tooling does), VE or FORCE for reasons of their own.
BOOTSTRAP_STEERING := PYTHON VE FORCE TARGET_PYTHONS INDEX_URL ACCEPT_CHANGED_HASHES
$(foreach name,$(BOOTSTRAP_STEERING),$(if $(filter environment,$(origin $(name))),\
  $(info bootstrap.mk: ignoring $(name)=$($(name)) from the environment; to use it: make <target> $(name)=...)\
  $(eval undefine $(name))))
# The interpreter the ve is built for, and where the ve lives (a symlink to .ve-a or .ve-b beside it).
PYTHON ?= python3
VE ?= ve
# FORCE=1 rebuilds the ve even when nothing it is built from has changed.
FORCE ?=
FLAKE8_ARGS ?=
PYTEST_ARGS ?=
# The Python versions (X.Y) the lock must fit; `make ve` refuses any other.
TARGET_PYTHONS ?= 3.10 3.11 3.12 3.13
# The package index for `make freeze*` (empty: pip's own default). Never written into a committed file.
INDEX_URL ?=
# ACCEPT_CHANGED_HASHES=1: `make freeze*` accepts other bytes for a version already in the lock (the report lists them).
ACCEPT_CHANGED_HASHES ?=

# Maintainer tools run inside the ve, with -E -s so ambient PYTHON* variables and user site stay out.
VE_PYTHON = "$(VE)/bin/python" -E -s
FREEZE_ARGS = --targets "$(TARGET_PYTHONS)" $(if $(INDEX_URL),--index-url "$(INDEX_URL)") \
	$(if $(ACCEPT_CHANGED_HASHES),--accept-changed-hashes)

BOOTSTRAP = $(PYTHON) -I -S bootstrap.py --ve "$(VE)"

.DEFAULT_GOAL := help

.PHONY: help  ## show this help
help:
	@echo "Targets (variables: PYTHON=$(PYTHON) VE=$(VE); FORCE=1 forces a rebuild):"
	@awk -F '## ' '/^\.PHONY: [a-z-]+ +## / { sub(/^\.PHONY: /, "", $$1); sub(/ +$$/, "", $$1); \
		printf "  make %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# Always runs bootstrap.py: it decides by content (not mtimes) whether anything changed, in milliseconds.
.PHONY: ve  ## build ./ve from the checkout alone, offline (a no-op when nothing changed)
ve:
	@$(BOOTSTRAP) $(if $(FORCE),--force)

.PHONY: test  ## make check, flake8, then pytest, inside ./ve (builds it first)
test: ve
	@$(VE_PYTHON) -m tools.check
	$(VE_PYTHON) -m flake8 $(FLAKE8_ARGS)
	$(VE_PYTHON) -m pytest $(PYTEST_ARGS)

# Not `check: ve`: a broken lock or seed would stop `make ve` at its first error, and check lists them all.
# Without a ve, bootstrap.py --check (stdlib only) lists what it can see first; the full check runs in the ve.
.PHONY: check  ## offline: lock, requirements/, seeds and virtualenv.py agree; lists every problem
check:
	@if test -x "$(VE)/bin/python"; then $(VE_PYTHON) -m tools.check; else \
		$(BOOTSTRAP) --check && $(MAKE) --no-print-directory ve && $(VE_PYTHON) -m tools.check; fi

.PHONY: freeze  ## after editing requirements.in: re-lock (keeping pins), fetch, prune, verify, report
freeze: ve
	@$(VE_PYTHON) -m tools.freeze $(FREEZE_ARGS)

.PHONY: freeze-upgrade  ## like freeze, with every pin, the seed pip and virtualenv.py at their newest
freeze-upgrade: ve
	@$(VE_PYTHON) -m tools.freeze --upgrade $(FREEZE_ARGS)

# Through bootstrap.py: it removes only what it made, never through the ve link (VE=ve/ included).
.PHONY: clean  ## remove ./ve, both of its build slots and build leftovers
clean:
	@$(BOOTSTRAP) --clean
	rm -rf build .pytest_cache
