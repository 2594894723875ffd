"""sctlog: follow the tracker's log stream."""

from __future__ import annotations

import argparse
import json
import sys

from ..daemon import client
from .common import run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", help="a log_format string that overrides the rules' own")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "-n", type=int, default=0, metavar="N", help="start with the last N lines the daemon kept"
    )
    parser.set_defaults(run=follow)


def follow(args: argparse.Namespace) -> int:
    with client.connect() as sock:
        request = {"op": "follow", "format": args.format, "json": args.json, "last": args.n}
        sock.sendall(json.dumps(request).encode() + b"\n")
        for line in sock.makefile("rb"):
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sctlog", description=__doc__)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run("sctlog", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
