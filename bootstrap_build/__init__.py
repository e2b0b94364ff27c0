"""The build of `make ve` behind bootstrap.py's no-op: small standard-library modules, one job each (see
docs/architecture.md), compiled from their tracked source by bootstrap.py's importer, never from bytecode."""
