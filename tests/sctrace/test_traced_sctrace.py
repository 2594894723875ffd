"""sctrace under a tracer that follows children (strace -f, gdb) cannot seize its command:
it says why in one line (it printed a PTRACE_SEIZE traceback, found by review)."""

import shutil
import subprocess

import pytest
from sctrace_support import SCTRACE, rule


def test_sctrace_under_strace_f_says_why_it_cannot_trace(tmp_path, helper):
    if shutil.which("strace") is None:
        pytest.skip("strace is needed to trace sctrace")
    rules = tmp_path / "log.rules"
    rules.write_text(rule("unlink", "type = LOG"))
    done = subprocess.run(["strace", "-f", "-o", "/dev/null", *SCTRACE, "-c", str(rules),
                           "--", "true"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("sctrace: cannot trace 'true': sctrace is itself traced "
                                  "by pid "), done.stderr
