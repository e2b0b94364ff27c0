"""The build of `make ve`, behind bootstrap.py's no-op (bootstrap_build.core)."""
