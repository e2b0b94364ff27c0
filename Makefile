# This project's Makefile. The convention's targets (ve, test, clean, ...) live in bootstrap.mk,
# which other projects can copy and include unchanged. `make` alone lists the targets.
include bootstrap.mk
