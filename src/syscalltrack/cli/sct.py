"""sct: one command for every syscalltrack tool (`sct check`, `sct config upload`, ...)."""

from __future__ import annotations

import argparse
import sys

from . import sct_config, sct_load, sct_unload, sctlog, sctrace
from .common import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sct", description=__doc__)
    sub = parser.add_subparsers(dest="tool", required=True, metavar="COMMAND")
    chk = sub.add_parser("check", help="validate a rule file (same as 'sct_config check')")
    chk.add_argument("file")
    chk.set_defaults(run=sct_config.check)
    for name, module, help_ in [
        ("config", sct_config, "upload, download, delete or check rules (sct_config)"),
        ("load", sct_load, "start the system-wide tracker (sct_load)"),
        ("unload", sct_unload, "stop the system-wide tracker (sct_unload)"),
        ("log", sctlog, "follow the log (sctlog)"),
        ("trace", sctrace, "run or attach to commands under rules (sctrace)"),
    ]:
        module.add_arguments(sub.add_parser(name, help=help_, description=module.__doc__))
    return parser


def main(argv: list[str] | None = None) -> int:
    return run("sct", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
