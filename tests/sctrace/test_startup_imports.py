"""sctrace's start-up leaves out the standard modules only rare paths need.

Each cost a few milliseconds to import (`python -X importtime`); they are imported
where they are used: JSON output, a rule-cache miss, a rule's error hint or
name-to-number macro, the first socket address or `%time` rendered, a daemon error.
"""

import os
import subprocess
import sys
from pathlib import Path

import syscalltrack

DEFERRED = {
    "base64", "datetime", "difflib", "grp", "ipaddress", "json", "pathlib", "pwd",
    "socket", "tempfile",
}


# Run sctrace's main() on a traced `true` (text output, the rule file parsed before: read
# from the cache), then list what was imported.
RUN_SCTRACE = """
import sys
import syscalltrack.cli.sctrace as sctrace
sys.argv = ["sctrace", "-c", sys.argv[1], "-o", sys.argv[2], "--", "true"]
try:
    sctrace.main()
finally:
    print(*sorted(sys.modules))
"""


def test_a_traced_command_runs_without_the_deferred_modules(tmp_path):
    rules = tmp_path / "unlink.rules"
    rules.write_text("rule\n{\nsyscall_name = unlink\nrule_name = r\n"
                     "action\n{\ntype = LOG\n}\nwhen = before\n}\n")
    src = Path(syscalltrack.__file__).parents[1]
    subprocess.run([sys.executable, "-c", RUN_SCTRACE, str(rules), str(tmp_path / "log")],
                   capture_output=True, check=True)  # (parsed with lark: cached for the next)
    run = subprocess.run(
        [sys.executable, "-S", "-c", RUN_SCTRACE, str(rules), str(tmp_path / "log")],
        env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "syscalltrack.ptrace.tracer" in run.stdout.split()  # (it did run)
    assert DEFERRED & set(run.stdout.split()) == set()
