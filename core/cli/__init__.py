"""``python -m core.cli``: Atelier's operations for scripts and servers.

Each subcommand lives in its own module here and exposes ``register(subparsers)``; the module
is imported only to build the parser, and heavy imports (torch) happen inside the handlers.
Handlers raise :class:`UserError` for bad input: the CLI prints its one-line message and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ("generate", "dataset", "checkpoints", "train", "jobs", "worker", "models", "video", "users",
                      "project", "walk", "directions", "vectors", "upscale")


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Atelier command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"core.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"core.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
