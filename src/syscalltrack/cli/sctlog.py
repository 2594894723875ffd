"""sctlog: follow the tracker's log stream.

Any number of sctlog may run at once, each with its own format; one that
cannot keep up is told inline what it missed (``-- N events lost --``).
"""

from __future__ import annotations

import argparse
import sys

from ..daemon import client
from .common import run_tool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        help="a log_format string that overrides the rules' own; %%cwd and %%path print ? "
        "(the system-wide tracker does not capture them; sctrace does)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "-n", type=int, default=0, metavar="N", help="start with the last N lines the daemon kept"
    )
    parser.set_defaults(run=follow)


def follow(args: argparse.Namespace) -> int:
    """Copy the stream to stdout in the chunks it arrives in (lines are already whole)."""
    with client.connect() as sock:
        client.send(sock, "follow", format=args.format, json=args.json, last=args.n)
        stream = sock.makefile("rb")
        client.answer(stream, "follow")
        out = sys.stdout.buffer
        while chunk := stream.read1(1 << 16):
            out.write(chunk)
            out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_tool("sctlog", __doc__, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
