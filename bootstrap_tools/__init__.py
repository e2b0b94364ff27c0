"""Maintainer tooling of the offline-bootstrap convention; runs inside ./ve."""
