"""Checks of the source tree that anyone can run: ``python -m core.tools.layers``."""
