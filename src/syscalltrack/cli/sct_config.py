"""sct_config: upload, download, delete and check rule sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..daemon import client
from ..rules import load_rules
from ..rules.errors import printable
from .common import run_tool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("upload", help="validate FILE and make it the loaded rule set")
    up.add_argument("file")
    up.set_defaults(run=upload)
    down = sub.add_parser("download", help="print the loaded rules (re-uploadable)")
    down.set_defaults(run=download)
    delete_ = sub.add_parser("delete", help="remove all loaded rules")
    delete_.set_defaults(run=delete)
    chk = sub.add_parser("check", help="validate FILE only")
    chk.add_argument("file")
    chk.set_defaults(run=check)


def check(args: argparse.Namespace) -> int:
    """Validate a rule file and say what each rule watches."""
    ruleset = load_rules(Path(args.file))
    count = len(ruleset.rules)
    print(f"{count} rule{'s' if count != 1 else ''} OK")
    for rule in ruleset.rules:
        print(f"  {printable(rule.name)}: {rule.syscall} {rule.when} -> {rule.action.type}")
    return 0


def upload(args: argparse.Namespace) -> int:
    """Validate locally first (errors are shown even when nothing is loaded), then upload:
    the daemon compiles and loads the whole set, or changes nothing and says why."""
    text = Path(args.file).read_bytes()
    load_rules(text, filename=args.file)
    answer = client.request("upload", text=text.decode(), filename=args.file)
    print(f"Successfully uploaded rules from file '{args.file}'")
    for note in answer.get("notes", ()):
        print(f"sct_config: {note}", file=sys.stderr)
    return 0


def download(_args: argparse.Namespace) -> int:
    """Print the loaded set in canonical form, ready to upload again."""
    rules = client.request("download")["rules"]
    if not rules:
        print("sct_config: no rules loaded", file=sys.stderr)
    sys.stdout.write(rules)
    return 0


def delete(_args: argparse.Namespace) -> int:
    client.request("delete")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_tool("sct_config", __doc__, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
