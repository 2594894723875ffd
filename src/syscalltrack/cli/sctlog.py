"""sctlog: follow the tracker's log stream.

Any number of sctlog may run at once, each with its own format; one that
cannot keep up is told inline what it missed (``-- N events lost --``).
When the tracker stops in order (sct_unload, or a stop signal) sctlog ends
with status 0; when the stream is cut instead (the daemon was killed or
crashed), it says so and ends with 1.
"""

from __future__ import annotations

import argparse
import sys

from ..daemon import client
from ..sinks.stream import END_OF_STREAM
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
    """Copy the stream to stdout in the chunks it arrives in (lines are already whole);
    a stream that ends without the daemon's END_OF_STREAM was cut, and that is an error."""
    with client.connect() as sock:
        client.send(sock, "follow", format=args.format, json=args.json, last=args.n,
                    end_mark=True)
        stream = sock.makefile("rb")
        client.answer(stream, "follow")
        out = sys.stdout.buffer
        ended = False
        while chunk := _read(stream):
            ended = chunk.endswith(END_OF_STREAM)  # the mark is the stream's last byte
            out.write(memoryview(chunk)[:-1] if ended else chunk)
            out.flush()
    if not ended:
        raise client.DaemonError("lost the connection to the daemon (the stream ended without "
                                 "the daemon's end-of-stream mark: the daemon was killed or "
                                 "crashed)")
    return 0


def _read(stream) -> bytes:
    """The next chunk of the stream; a broken connection is reported as lost, not as a
    traceback (errors writing stdout are not this function's)."""
    try:
        return stream.read1(1 << 16)
    except OSError as err:
        raise client.DaemonError(f"lost the connection to the daemon ({err.strerror})") \
            from None


def main(argv: list[str] | None = None) -> int:
    return run_tool("sctlog", __doc__, add_arguments, argv)


if __name__ == "__main__":
    from .launch import exit_now

    exit_now(main(), "sctlog")
