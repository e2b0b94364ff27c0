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
