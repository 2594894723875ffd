"""A tracker with private run and state directories, always unloaded afterwards."""

import os

import pytest
from daemon_support import Tracker


@pytest.fixture
def tracker(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root: the daemon loads eBPF programs")
    run_dir, state_dir = tmp_path / "run", tmp_path / "state"
    monkeypatch.setenv("SYSCALLTRACK_RUN_DIR", str(run_dir))
    monkeypatch.setenv("SYSCALLTRACK_STATE_DIR", str(state_dir))
    t = Tracker(run_dir, state_dir)
    try:
        yield t
    finally:
        t.teardown()
