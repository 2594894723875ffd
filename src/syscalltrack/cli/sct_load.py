"""sct_load: start the system-wide tracker (a background daemon) and wait until it is ready."""

from __future__ import annotations

import argparse
import os
import sys

from ..daemon import launch
from ..daemon.server import StartupError
from ..sinks.syslog import DEV_LOG, FACILITIES
from .common import run_tool


def add_daemon_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by sct_load and `sct daemon` (sct_load passes them through)."""
    parser.add_argument("--restore", action="store_true",
                        help="reload the last uploaded rule set (saved in the state directory)")
    parser.add_argument("--json-file", metavar="PATH",
                        help="also append every event to PATH as JSON lines (reopened on SIGHUP)")
    parser.add_argument("--syslog-facility", default="authpriv", choices=sorted(FACILITIES),
                        help="facility of the LOG lines sent to syslog (default: authpriv, "
                             "since they name users and files)")
    parser.add_argument("--syslog-socket", default=DEV_LOG, metavar="PATH",
                        help=f"syslog socket (default: {DEV_LOG})")
    parser.add_argument("--no-syslog", action="store_true", help="send nothing to syslog")
    parser.add_argument("--ring-mb", type=_power_of_two, default=8, metavar="MB",
                        help="size of the kernel ring buffer in MiB, a power of two (default "
                             "8); a larger one absorbs longer bursts, and is resident memory")
    parser.add_argument("--no-compat", action="store_true",
                        help="do not watch 32-bit (int $0x80) calls: cheaper on every system "
                             "call, but a 32-bit program then goes around the rules")


def _power_of_two(text: str) -> int:
    value = int(text)
    if value < 1 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"{value} is not a power of two (1, 2, 4, 8, ...)")
    if value > _RING_MB_MAX:  # (found only at the first upload, as MAP_CREATE: EINVAL)
        raise argparse.ArgumentTypeError(
            f"{value} MB is too large: the kernel takes a ring buffer of at most "
            f"{_RING_MB_MAX} MB (its size is a 32-bit number of bytes)")
    return value


_RING_MB_MAX = 2048


def passthrough(args: argparse.Namespace) -> list[str]:
    """The daemon options of ``args`` as command-line words."""
    argv = ["--syslog-facility", args.syslog_facility, "--syslog-socket", args.syslog_socket]
    if args.restore:
        argv.append("--restore")
    if args.json_file:
        argv += ["--json-file", args.json_file]
    if args.no_syslog:
        argv.append("--no-syslog")
    if args.no_compat:
        argv.append("--no-compat")
    argv += ["--ring-mb", str(args.ring_mb)]
    return argv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_daemon_options(parser)
    parser.set_defaults(run=load)


def load(args: argparse.Namespace) -> int:
    if args.json_file:
        args.json_file = os.path.abspath(args.json_file)  # the daemon runs in /
    try:
        ready = launch.start_background(passthrough(args))
    except StartupError as err:
        print(f"sct_load: {err}", file=sys.stderr)
        return 1
    restored = ready.get("restored")
    note = f", {restored} rules restored" if restored is not None else ""
    print(f"syscalltrack loaded (pid {ready['pid']}{note}); "
          "upload rules with 'sct_config upload FILE'")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_tool("sct_load", __doc__, add_arguments, argv)


if __name__ == "__main__":
    from .launch import exit_now

    exit_now(main(), "sct_load")
