"""sctrace's strace-like view (-e trace=...) of calls that never return."""

import re

from sctrace_support import sctrace

# Kill `sleep` once it is asleep inside clock_nanosleep (call 230), not before.
KILL_MID_CALL = ("sleep 100 & pid=$!; "
                 "until grep -q '^State:.*(sleeping)' /proc/$pid/status 2>/dev/null "
                 "&& grep -q '^230 ' /proc/$pid/syscall 2>/dev/null; do :; done; "
                 "kill -9 $pid; wait")


def test_exit_group_is_shown_with_an_unknown_result(tmp_path):
    run = sctrace(tmp_path, None, "sh", "-c", "exit 7", options=["-e", "trace=exit_group,exit"])
    assert run.code == 7
    assert len(run.log) == 1
    assert re.fullmatch(r"syscall: \d+\[sh\]: 231_exit_group\(7\) = \?", run.log[0])


def test_a_call_the_process_is_killed_in_is_shown_with_an_unknown_result(tmp_path):
    run = sctrace(tmp_path, None, "sh", "-c", KILL_MID_CALL,
                  options=["-e", "trace=clock_nanosleep"])
    assert run.code == 0
    assert len(run.log) == 1
    assert re.fullmatch(r"syscall: \d+\[sleep\]: 230_clock_nanosleep\(.*\) = \?", run.log[0])
