"""The floor of a ptrace tracer in Python: sctrace's stops, and nothing done at them.

    python bench/ptrace_floor.py RULES -- CMD ARGS...

Runs CMD under the seccomp filter sctrace builds from RULES and under sctrace's
Tracer, with a consumer that asks for every watched call's exit and then
neither reads, evaluates nor prints anything.  bench/sctrace.py times it beside
sctrace: the difference is what the rule engine, the reads and the log cost;
this itself is the price of Python waiting on ptrace stops.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from syscalltrack.engines.sctrace.policy import build_policy
from syscalltrack.ptrace import Consumer, Tracer
from syscalltrack.ptrace.events import CONTINUE_TO_EXIT
from syscalltrack.rules import load_rules


class StopsOnly(Consumer):
    """Both stops of every watched call, no work at either."""

    def on_entry(self, call):
        return CONTINUE_TO_EXIT


def main() -> int:
    rules, sep, *argv = sys.argv[1:]
    if sep != "--" or not argv:
        raise SystemExit(__doc__.strip().splitlines()[2])
    with Tracer(StopsOnly()) as tracer:
        tracer.spawn(argv, seccomp_policy=build_policy(load_rules(Path(rules)), ()))
        return tracer.run()


if __name__ == "__main__":
    sys.exit(main())
