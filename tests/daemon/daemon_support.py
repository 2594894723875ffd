"""Driving the real tools against a daemon with private run and state directories.

The tools are the installed console scripts next to the interpreter (not
the pyenv shims, which cost a shell start each); the daemon is the real one
``sct_load`` starts. Waits are bounded only as safety nets.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from kernel_objects import held_bpf_ids

from syscalltrack.bpf.sys import BpfError, bpf
from syscalltrack.daemon import client

BIN = Path(sys.executable).parent
SAFETY = 120.0  # seconds: only ever reached when something is broken
PROG_GET_FD_BY_ID, MAP_GET_FD_BY_ID = 13, 14
LOST = re.compile(rb"^-- (\d+) events lost", re.M)


def rule(name: str, syscall: str, filt: str | None = None, fmt: str | None = None) -> str:
    f = f"filter_expression {{{filt}}}\n" if filt else ""
    lf = f"log_format {{{fmt}}}\n" if fmt else ""
    return (f"rule\n{{\nsyscall_name = {syscall}\nrule_name = {name}\n{f}"
            f"action {{\ntype = LOG\n{lf}}}\nwhen = before\n}}\n")


def wait_for(condition, what: str, timeout: float = SAFETY):
    """Poll ``condition`` until it returns something true; fail after the safety net."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


class Tracker:
    """The tools, run as processes, against the run/state directories in the environment."""

    def __init__(self, run_dir: Path, state_dir: Path):
        self.run_dir = run_dir
        self.state_dir = state_dir
        self.followers: list[subprocess.Popen] = []

    def tool(self, name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                              timeout=SAFETY, env=env)

    def ok(self, name: str, *args: str) -> str:
        done = self.tool(name, *args)
        assert done.returncode == 0, f"{name} {args}: {done.stderr}"
        return done.stdout

    def loaded_with(self, rules: Path, text: str) -> str:
        """sct_load, then `text` written to `rules` and uploaded; the set as downloaded."""
        self.ok("sct_load")
        rules.write_text(text)
        self.ok("sct_config", "upload", str(rules))
        return self.ok("sct_config", "download")

    def follow(self, *args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
        """An sctlog process, stopped at teardown; returns once it is registered."""
        before = len(self.status()["readers"])
        proc = subprocess.Popen([str(BIN / "sctlog"), *args], stdout=stdout,
                                stderr=subprocess.PIPE)
        self.followers.append(proc)
        wait_for(lambda: len(self.status()["readers"]) > before or proc.poll() is not None,
                 "sctlog to connect")
        assert proc.poll() is None, proc.stderr.read()
        return proc

    def status(self) -> dict:
        return client.request("status")

    def pid(self) -> int | None:
        try:
            return int((self.run_dir / "syscalltrack.pid").read_text())
        except (OSError, ValueError):
            return None

    def teardown(self) -> None:
        """Whatever happened, nothing of ours keeps running."""
        for proc in self.followers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        pid = self.pid()
        if pid is not None and alive_process(pid):
            self.tool("sct_unload", "--force")
            if alive_process(pid):
                os.kill(pid, signal.SIGKILL)


def alive_process(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class _IdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32),
                ("open_flags", ctypes.c_uint32)]


def _alive(kind: int, ident: int) -> bool:
    try:
        os.close(bpf(kind, _IdAttr(id=ident)))
    except BpfError:
        return False
    return True


def kernel_objects_gone(ids: dict[str, list[int]]) -> bool:
    """No process holds our programs or maps, and the kernel has freed them (after an RCU
    grace period, hence the bounded wait)."""
    ours = {("prog_id", i) for i in ids["programs"]} | {("map_id", i) for i in ids["maps"]}
    if ours & held_bpf_ids():
        return False

    def freed():
        return not any(_alive(PROG_GET_FD_BY_ID, i) for i in ids["programs"]) and \
            not any(_alive(MAP_GET_FD_BY_ID, i) for i in ids["maps"])
    wait_for(freed, "the kernel to free our programs and maps", timeout=10)
    return True
