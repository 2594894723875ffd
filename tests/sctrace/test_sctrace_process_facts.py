"""The caller's name and parent as sctrace logs them, read per call, and when lines come out."""

import os
import subprocess
import sys

from sctrace_support import SCTRACE, rule, sctrace

from syscalltrack.engines.sctrace import run_command
from syscalltrack.rules import load_rules

PYTHON = sys.executable
PR_SET_NAME = 15

# unlink under the interpreter's name, then renamed by prctl, then renamed by a write to
# /proc/self/comm, then in the program it execs.
RENAMES = f"""
import ctypes, os, sys
path = sys.argv[1]
os.unlink(path + "-1")
ctypes.CDLL(None).prctl({PR_SET_NAME}, b"renamed-prctl", 0, 0, 0)
os.unlink(path + "-2")
with open("/proc/self/comm", "w") as f:
    f.write("renamed-proc")
os.unlink(path + "-3")
os.execv("/bin/rm", ["rm", "-f", path + "-4"])
"""


def test_comm_follows_prctl_proc_writes_and_exec(tmp_path):
    base = tmp_path / "f"
    for i in range(1, 5):
        (tmp_path / f"f-{i}").touch()
    rules = rule("unlink", "type = LOG\nlog_format {%comm %params}")
    run = sctrace(tmp_path, rules, PYTHON, "-c", RENAMES, str(base))  # rm's unlinkat too
    assert run.code == 0, run.err
    interpreter = os.path.basename(PYTHON)[:15].encode()
    assert run.log == [
        f'"{interpreter.decode()}" "{base}-1"',
        f'"renamed-prctl" "{base}-2"',
        f'"renamed-proc" "{base}-3"',
        f'"rm" "{base}-4"',
    ]


def test_an_after_rule_sees_the_name_the_call_left(tmp_path):
    # The before rule reads the name at the entry (and never matches); the after rule
    # must not show that one.
    rules = (rule("execve", "type = LOG", "never", 'COMM == "no such name"')
             + rule("execve", "type = LOG\nlog_format {%comm %retval}", when="after"))
    run = sctrace(tmp_path, rules, "/bin/true")  # exec'd by sctrace's own child
    assert run.code == 0
    assert run.log == ['"true" 0']


def test_ppid_is_read_only_when_shown(tmp_path):
    victim = tmp_path / "victim"
    events = []
    for capture in ((), ("ppid",)):
        victim.touch()
        code = run_command(load_rules(rule("unlink", "type = LOG")), ["rm", str(victim)],
                           events.append, print, capture=capture)
        assert code == 0
    assert [(e.ppid, e.comm) for e in events] == [(-1, b"rm"), (os.getpid(), b"rm")]


def test_ppid_in_a_format_is_the_parents(tmp_path):
    (tmp_path / "victim").touch()
    rules = rule("unlink", "type = LOG\nlog_format {%ppid %comm}")
    run = sctrace(tmp_path, rules, "sh", "-c", f"rm {tmp_path / 'victim'}; echo $$")
    shell = int(run.out)
    assert run.log == [f'{shell} "rm"']


def test_a_line_comes_before_the_notice_of_its_own_call(tmp_path):
    victim = tmp_path / "victim"
    victim.touch()
    rule_file = tmp_path / "kill.rules"
    rule_file.write_text(rule("unlink", "type = KILL\nlog_format {about to kill %comm}"))
    # No -o: the log line and sctrace's notice share stderr.
    proc = subprocess.run([*SCTRACE, "-c", str(rule_file), "--", "rm", str(victim)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 128 + 9
    assert victim.exists()
    lines = proc.stderr.splitlines()
    assert lines[0] == 'about to kill "rm"'
    assert lines[1].startswith("sctrace: rule 'r' killed pid")
