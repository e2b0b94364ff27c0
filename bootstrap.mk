# bootstrap.mk version 1: the offline-bootstrap convention, for `include bootstrap.mk` in a project's Makefile.
# It expects beside it: bootstrap.py, virtualenv.py, virtualenv_support/, requirements.txt, requirements/.
# Override the variables below on the command line (`make ve PYTHON=python3.12`) or before the include.

BOOTSTRAP_MK_VERSION := 1
# The interpreter the ve is built for, and where the ve lives (a symlink to .ve-a or .ve-b beside it).
PYTHON ?= python3
VE ?= ve
# FORCE=1 rebuilds the ve even when nothing it is built from has changed.
FORCE ?=
FLAKE8_ARGS ?=
PYTEST_ARGS ?=

VE_SLOTS = $(dir $(VE)).$(notdir $(VE))-a $(dir $(VE)).$(notdir $(VE))-b
VE_LEFTOVERS = $(dir $(VE)).$(notdir $(VE)).lock $(VE).switching

.DEFAULT_GOAL := help

.PHONY: help  ## show this help
help:
	@echo "Targets (variables: PYTHON=$(PYTHON) VE=$(VE); FORCE=1 forces a rebuild):"
	@awk -F '## ' '/^\.PHONY: [a-z-]+ +## / { sub(/^\.PHONY: /, "", $$1); sub(/ +$$/, "", $$1); \
		printf "  make %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# Always runs bootstrap.py: it decides by content (not mtimes) whether anything changed, in milliseconds.
.PHONY: ve  ## build ./ve from the checkout alone, offline (a no-op when nothing changed)
ve:
	@$(PYTHON) -I -S bootstrap.py --ve "$(VE)" $(if $(FORCE),--force)

.PHONY: test  ## flake8, then pytest, inside ./ve (builds it first)
test: ve
	"$(VE)/bin/python" -I -m flake8 $(FLAKE8_ARGS)
	"$(VE)/bin/python" -m pytest $(PYTEST_ARGS)

.PHONY: clean  ## remove ./ve, both of its build slots and build leftovers
clean:
	rm -rf "$(VE)" $(VE_SLOTS) $(VE_LEFTOVERS) build .pytest_cache
