"""sct_unload: stop the system-wide tracker; refused while rules are loaded, unless --force."""

from __future__ import annotations

import argparse
import os
import time

from ..daemon import client
from .common import run_tool

EXIT_WAIT = 30.0  # seconds: a safety net; the daemon exits right after answering


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="unload even while rules are loaded"
    )
    parser.set_defaults(run=unload)


def unload(args: argparse.Namespace) -> int:
    """Ask the daemon to go, then wait until it has: its kernel objects go with it."""
    with client.connect() as sock:
        client.send(sock, "unload", force=args.force)
        with sock.makefile("rb") as stream:
            pid = client.answer(stream, "unload")["pid"]
            stream.read()  # EOF: the daemon has closed everything
    deadline = time.monotonic() + EXIT_WAIT
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        if _zombie(pid):
            break
        time.sleep(0.01)
    return 0


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def main(argv: list[str] | None = None) -> int:
    return run_tool("sct_unload", __doc__, add_arguments, argv)


if __name__ == "__main__":
    from .launch import exit_now

    exit_now(main(), "sct_unload")
