"""Attaching, detaching and dying: no tracee is ever left stopped or traced by accident."""

import os
import signal
import subprocess
import sys

from sctrace_support import SCTRACE, rule, wait_until


def status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def counter(path) -> int:
    text = path.read_text().strip()
    return int(text) if text else -1


def test_attach_logs_then_detaches_on_ctrl_c(tmp_path, helper):
    out = tmp_path / "count"
    target = subprocess.Popen([helper, "loop", str(out)])
    try:
        wait_until(lambda: out.exists() and counter(out) >= 0, what="the loop to start")
        rules = tmp_path / "r.rules"
        rules.write_text(rule("open", "type = LOG\nlog_format {%pid %params}"))
        log = tmp_path / "log"
        tracer = subprocess.Popen([*SCTRACE, "-c", str(rules), "-o", str(log),
                                   "-p", str(target.pid)])
        wait_until(lambda: log.exists() and log.read_text().count("\n") >= 3, what="events")
        assert status(target.pid)["TracerPid"].strip() == str(tracer.pid)
        tracer.send_signal(signal.SIGINT)
        assert tracer.wait(timeout=60) == 128 + signal.SIGINT
        assert status(target.pid)["TracerPid"].strip() == "0"
        first = log.read_text().splitlines()[0]
        assert first.startswith(f"{target.pid} \"{out}\"")
        seen = counter(out)
        wait_until(lambda: counter(out) > seen + 2, what="the process to go on untraced")
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()


def test_killing_sctrace_kills_the_command_it_started(tmp_path, helper):
    out = tmp_path / "count"
    rules = tmp_path / "r.rules"
    rules.write_text(rule("open", "type = LOG"))
    tracer = subprocess.Popen([*SCTRACE, "-c", str(rules), "-o", "/dev/null", "--",
                               sys.executable, "-c",
                               f"import subprocess; subprocess.run([{helper!r}, 'loop', "
                               f"{str(out)!r}])"])
    wait_until(lambda: out.exists() and counter(out) >= 0, what="the loop to start")
    children = _descendants(tracer.pid)
    assert children
    tracer.kill()
    tracer.wait()
    for pid in children:
        wait_until(lambda p=pid: not os.path.exists(f"/proc/{p}") or
                   status(p)["State"].startswith("Z"), what=f"pid {pid} to die")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in os.listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except FileNotFoundError:
                continue
            found += kids
            todo += kids
    return found
