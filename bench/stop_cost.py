"""Python bytecodes sctrace runs per stop, per function: a measure that does not move
with the VM's phase, unlike the wall times of bench/sctrace.py.

    python bench/stop_cost.py [--workload deny|churn] [--count 2000] [--path-filter]

Runs sctrace's main() in this process on bench/workload.c (compiled into a temporary
directory) twice, with COUNT and 2*COUNT calls, counting opcode events with
sys.settrace; the difference, divided by COUNT, is what one more call costs (start-up
taken out). The default is workload 4 of bench/sctrace.py: an unlink failed by a rule
on PATH[1].  Counting slows sctrace down ~20x; the counts, not the times, are the point.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from syscalltrack.cli import sctrace  # noqa: E402

RULE = """rule
{{
syscall_name = unlink
rule_name = bench
{filter}action {{
type = {action}
}}
when = {when}
}}
"""


def count(argv: list[str]) -> collections.Counter:
    """Opcodes run by sctrace's main(argv), per (file, function)."""
    counts: collections.Counter = collections.Counter()

    def on_call(frame, event, arg):
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        key = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"

        def on_opcode(frame, event, arg):
            if event == "opcode":
                counts[key] += 1
            return on_opcode
        return on_opcode

    sys.settrace(on_call)
    try:
        code = sctrace.main(argv)
    finally:
        sys.settrace(None)
    if code:
        raise SystemExit(f"sctrace exited with {code}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("deny", "churn"), default="deny",
                        help="deny: unlinks failed by a FAIL rule (workload 4); churn: "
                             "create+unlink logged by an after rule (workload 2)")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="stop-cost-") as tmp:
        work = Path(tmp)
        program = work / "workload"
        subprocess.run(["gcc", "-O2", "-o", str(program), str(HERE / "workload.c")],
                       check=True)
        target = work / ("victim" if args.workload == "deny" else "churn")
        if args.workload == "deny":
            target.touch()
            rule = RULE.format(filter=f'filter_expression {{PATH[1] == "{target}"}}\n',
                               action="FAIL\nerror_code = -EPERM", when="before")
        else:
            rule = RULE.format(filter="", action="LOG", when="after")
        rules = work / "bench.rules"
        rules.write_text(rule)
        runs = []
        for calls in (args.count, args.count, 2 * args.count):  # (the first warms caches)
            runs.append(count(["-c", str(rules), "-o", str(work / "log"), "--", str(program),
                               args.workload, str(calls), str(target)]))
    short, long = runs[1:]
    per_stop = (sum(long.values()) - sum(short.values())) / args.count
    print(f"{per_stop:.0f} bytecodes per {args.workload} call (start-up taken out)")
    diff = {k: (long[k] - short[k]) / args.count for k in long}
    for key, value in sorted(diff.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{value:8.1f}  {key}")


if __name__ == "__main__":
    main()
