"""Fixtures shared by every test folder: the C helper program, built once per session."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from syscalltrack.ptrace import sys as pt

HERE = Path(__file__).parent


def _ptrace_usable() -> str | None:
    """None if this process may PTRACE_SEIZE its own child, else the reason."""
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    try:
        pt.seize(pid, 0)
        return None
    except OSError as exc:
        return f"PTRACE_SEIZE refused here: {exc}"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@pytest.fixture(scope="session")
def helper(tmp_path_factory) -> str:
    """The helper program (tests/helper.c), built once per session."""
    reason = _ptrace_usable()
    if reason:
        pytest.skip(reason)
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the C test helper")
    return _build(HERE / "helper.c", tmp_path_factory.mktemp("helper"))


@pytest.fixture(scope="session")
def c_program(helper, tmp_path_factory):
    """Builds a C test program from its source file, once per session (``helper`` first:
    it skips where ptrace is refused or gcc is missing); returns the executable's path."""
    out_dir = tmp_path_factory.mktemp("c-programs")
    built: dict[Path, str] = {}

    def build(source: Path) -> str:
        if source not in built:
            built[source] = _build(source, out_dir)
        return built[source]
    return build


def _build(source: Path, out_dir: Path) -> str:
    out = out_dir / source.stem
    subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", str(out), str(source)], check=True)
    return str(out)
