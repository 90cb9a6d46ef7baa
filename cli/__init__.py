"""The `vortex` command line (installed as vortexfmt.cli)."""
