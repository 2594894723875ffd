"""A call the process dies in is shown with the process's name, read while it lived
(after its death /proc has nothing left to read)."""

import re
import subprocess

from sctrace_support import SCTRACE


def test_a_call_the_process_was_killed_in_keeps_its_name():
    done = subprocess.run([*SCTRACE, "-e", "trace=kill", "--", "sh", "-c", "kill -9 $$"],
                          capture_output=True, text=True)
    assert done.returncode == 128 + 9
    last = [line for line in done.stderr.splitlines() if "_kill(" in line][-1]
    assert re.fullmatch(r"syscall: \d+\[sh\]: 62_kill\(\d+, 9\) = \?", last), last
