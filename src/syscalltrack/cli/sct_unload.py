"""sct_unload: stop the system-wide tracker."""

from __future__ import annotations

import argparse
import sys

from ..daemon import client
from .common import run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="unload even while rules are loaded"
    )
    parser.set_defaults(run=unload)


def unload(args: argparse.Namespace) -> int:
    client.request("unload", force=args.force)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sct_unload", description=__doc__)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run("sct_unload", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
