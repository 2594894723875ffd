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


def test_importing_sctrace_leaves_out_the_deferred_modules():
    src = Path(syscalltrack.__file__).parents[1]
    run = subprocess.run(
        [sys.executable, "-S", "-c",
         "import sys, syscalltrack.cli.sctrace; print(*sorted(sys.modules))"],
        env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True, check=True)
    assert DEFERRED & set(run.stdout.split()) == set()

