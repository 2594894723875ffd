"""What every tool shares: error reporting and exit codes, reading a rule file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..rules import RuleError, RuleSet, load_rules

Runner = Callable[[argparse.Namespace], int]


def load_rules_file(name: str) -> RuleSet:
    """The rules in file `name`, which messages call by the name given (as gcc does); not
    through pathlib, whose import costs sctrace's start-up time."""
    with open(name, "rb") as file:
        return load_rules(file.read(), name)


def run_tool(prog: str, doc: str | None,
             add_arguments: Callable[[argparse.ArgumentParser], None],
             argv: list[str] | None) -> int:
    """`main()` of a classic tool: its parser from `add_arguments`, then `run`."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(prog, parser, argv)


def run(prog: str, parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse `argv`, call the chosen runner, turn expected failures into messages."""
    args = parser.parse_args(argv)
    runner: Runner = args.run
    try:
        return runner(args)
    except RuleError as err:
        print(err, file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except OSError as err:
        if err.filename is None:
            raise
        print(f"{prog}: {err.filename}: {err.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except _daemon_errors() as err:  # last: worked out only for what none above caught
        print(f"{prog}: {err}", file=sys.stderr)
        return 1


def _daemon_errors() -> tuple[type[Exception], ...]:
    """The daemon client's errors, imported only once an exception gets this far: the
    client brings socket and json, which sctrace's start-up does not need."""
    from ..daemon.client import DaemonError, NotLoaded

    return NotLoaded, DaemonError
