# This project's Makefile. The convention's targets (ve, test, clean, ...) live in bootstrap.mk,
# which other projects can copy and include unchanged. `make` alone lists the targets.
# The platforms this repository's lock fits (platforms/*.json describe them; README, declared platforms).
TARGET_PLATFORMS := linux-x86_64 linux-aarch64 macos-arm64
# This repository develops the convention: its `make test` lints the convention's own code, which a project
# that adopted it leaves out (bootstrap.mk, BOOTSTRAP_FLAKE8_CONVENTION).
BOOTSTRAP_FLAKE8_CONVENTION :=
include bootstrap.mk

# BENCH_ARGS="--rounds 3 --cases fresh,repin" narrows it (bench/bench.py --help).
BENCH_ARGS ?=
.PHONY: bench  ## compare make ve with the naive pip recipe and uv (needs the index on first run)
bench: ve
	"$(VE)/bin/python" -E -s bench/bench.py $(BENCH_ARGS)

# make clean also removes what make bench leaves under build/ (this repository's own, not the convention's).
clean: clean-bench
.PHONY: clean-bench
clean-bench:
	rm -rf build

# The convention's own tools (pip-tools, packaging, cyclonedx-python-lib: bootstrap_tools/tools.in) are locked by
# this repository for every Python the convention supports, and shipped by `make adopt` with their wheels.
TOOLS_PYTHONS ?= 3.10 3.11 3.12 3.13
.PHONY: tools-lock  ## re-lock bootstrap_tools/tools.in into tools.txt and wheels/ (UPGRADE=1: newest; needs the index)
tools-lock: bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).tools_lock --targets "$(TOOLS_PYTHONS)" $(if $(UPGRADE),--upgrade) \
		$(if $(INDEX_URL),--index-url "$(INDEX_URL)")
