"""sct_load: start the system-wide tracker."""

from __future__ import annotations

import argparse
import sys

from .common import run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=load)


def load(_args: argparse.Namespace) -> int:
    # The eBPF engine and its daemon are being built (issues 4 and 5); say so
    # rather than pretend, and point to what works today.
    print(
        "sct_load: the system-wide tracker (eBPF engine and daemon) is not part of this build "
        "yet, so syscalltrack cannot be loaded; to apply rules to one command or process "
        "tree, use 'sctrace -c RULES -- COMMAND'",
        file=sys.stderr,
    )
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sct_load", description=__doc__)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run("sct_load", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
