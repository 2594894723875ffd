"""The tools' entry points end the process with os._exit once main() returns
(cli.launch): nothing written may be lost that way, and the exit status must stay
the tool's (for sctrace, the command's)."""

import gc
import os
import subprocess
import sys

import pytest

from syscalltrack.cli import launch

# Block-buffered output, as a user's shell gives (this environment may set it unbuffered).
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

RULE = """rule
{
syscall_name = getppid
rule_name = seen
action {
type = LOG
}
when = after
}
"""


def test_sctrace_run_as_a_module_keeps_its_output_and_the_commands_status(tmp_path):
    rules, log = tmp_path / "r.rules", tmp_path / "log"
    rules.write_text(RULE)
    script = "import os; [os.getppid() for _ in range(3000)]; os._exit(7)"
    done = subprocess.run(
        [sys.executable, "-m", "syscalltrack.cli.sctrace", "-c", str(rules), "-o", str(log),
         "--", sys.executable, "-c", script],
        capture_output=True, text=True, check=False, env=BUFFERED)
    assert done.returncode == 7, done.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 3000  # all of them: the -o file was written out before the exit
    assert all("seen" in line and "getppid" in line for line in lines)


def test_sctrace_to_stderr_run_as_a_module_loses_no_line(tmp_path):
    rules = tmp_path / "r.rules"
    rules.write_text(RULE)
    script = "import os; [os.getppid() for _ in range(500)]"
    done = subprocess.run(
        [sys.executable, "-m", "syscalltrack.cli.sctrace", "-c", str(rules),
         "--", sys.executable, "-c", script],
        capture_output=True, text=True, check=False, env=BUFFERED)
    assert done.returncode == 0, done.stderr
    assert sum("getppid" in line for line in done.stderr.splitlines()) == 500


def test_a_console_script_keeps_what_it_printed_to_a_pipe(tmp_path):
    rules = tmp_path / "r.rules"
    rules.write_text(RULE)
    script = ("import sys; from syscalltrack.cli.launch import sct_config; "
              f"sys.argv = ['sct_config', 'check', {str(rules)!r}]; sct_config()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, env=BUFFERED)  # (a pipe: flushed, or lost)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 rule OK\n")
    assert "seen: getppid after -> LOG" in done.stdout


def test_launch_exits_with_mains_status_and_the_collector_on(tmp_path, monkeypatch):
    rules = tmp_path / "r.rules"
    rules.write_text("rule {\n}\n")
    ended = []

    class Ended(Exception):
        pass

    def fake_exit(code):
        ended.append((code, gc.isenabled()))
        raise Ended

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["sct_config", "check", str(rules)])
    try:
        with pytest.raises(Ended):
            launch.sct_config()
    finally:
        gc.unfreeze()  # (launch froze this test process's objects)
    assert ended == [(1, True)]  # the invalid file's status; gc off only for the imports


def test_launch_leaves_an_error_to_the_usual_exit(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "_exit", lambda code: pytest.fail("os._exit on an error"))
    monkeypatch.setattr(sys, "argv", ["sct_config", "check"])  # argparse: file missing
    with pytest.raises(SystemExit) as info:
        launch.sct_config()
    assert info.value.code == 2
    assert gc.isenabled()


def test_output_that_cannot_be_written_is_said_not_lost_silently(tmp_path):
    rules = tmp_path / "r.rules"
    rules.write_text(RULE)
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "syscalltrack.cli.sct_config", "check",
                               str(rules)], stdout=full, stderr=subprocess.PIPE, text=True,
                              check=False, env=BUFFERED)
    assert done.returncode == 120
    assert done.stderr == "sct_config: cannot write stdout: [Errno 28] No space left on device\n"


def test_a_profiler_still_sees_the_end_of_the_run(tmp_path):
    rules = tmp_path / "r.rules"
    rules.write_text(RULE)
    done = subprocess.run([sys.executable, "-m", "cProfile", "-m", "syscalltrack.cli.sct_config",
                           "check", str(rules)], capture_output=True, text=True, check=False,
                          env=BUFFERED)
    assert done.returncode == 0, done.stderr
    assert "1 rule OK" in done.stdout
    assert "function calls" in done.stdout  # cProfile's report, printed at the exit
