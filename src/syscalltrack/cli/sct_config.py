"""sct_config: upload, download, delete and check rule sets."""

from __future__ import annotations

import argparse
import os
import sys

from ..daemon import client, protocol
from ..rules import load_rules
from ..rules.errors import printable
from .common import load_rules_file, run_tool


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
    ruleset = load_rules_file(args.file)
    count = len(ruleset.rules)
    print(f"{count} rule{'s' if count != 1 else ''} OK")
    for rule in ruleset.rules:
        print(f"  {printable(rule.name)}: {rule.syscall} {rule.when} -> {rule.action.type}")
    return 0


def upload(args: argparse.Namespace) -> int:
    """Validate locally first (errors are shown even when nothing is loaded), then upload:
    the daemon compiles and loads the whole set, or changes nothing and says why.

    A file the daemon could not take in one request (protocol.MAX_REQUEST) is refused
    before it is parsed or sent, naming the file, its size and the limit."""
    text, size = _read_upload(args.file)
    if text is None:
        return _too_large(args.file, size)
    load_rules(text, filename=args.file)
    try:
        answer = client.request("upload", text=text.decode(), filename=args.file)
    except client.RequestTooLarge as err:  # the text takes more room escaped in JSON
        return _too_large(args.file, size, err.size)
    print(f"Successfully uploaded rules from file '{args.file}'")
    for note in answer.get("notes", ()):
        print(f"sct_config: {note}", file=sys.stderr)
    return 0


def _read_upload(name: str) -> tuple[bytes | None, int | None]:
    """The file's bytes and size; (None, size) when it is larger than one request can
    hold (size None when unknown: not a regular file), read no further than that."""
    with open(name, "rb") as f:
        text = f.read(protocol.MAX_REQUEST + 1)
        if len(text) <= protocol.MAX_REQUEST:
            return text, len(text)
        size = os.fstat(f.fileno()).st_size
        return None, size if size > protocol.MAX_REQUEST else None


def _too_large(name: str, size: int | None, request: int | None = None) -> int:
    if size is None:
        what = "it holds more than"
    elif request is None:
        what = f"it is {size} bytes, more than"
    else:
        what = (f"it is {size} bytes, but {request} bytes as an upload request (JSON "
                "escapes newlines, tabs, quotes, backslashes and non-ASCII characters), "
                "more than")
    print(f"sct_config: cannot upload '{printable(name)}': {what} the {client.limit_text()} "
          "the daemon takes in one upload; nothing was sent, the loaded rules are unchanged",
          file=sys.stderr)
    return 1


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
    from .launch import exit_now

    exit_now(main(), "sct_config")
