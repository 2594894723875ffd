"""The PATH search `Tracer.spawn` makes for a command named without a slash."""

import os

from syscalltrack.ptrace.tracer import _find_command


def _file(path, mode):
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return str(path)


def test_first_executable_along_the_path(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _file(first / "tool", 0o644)  # not executable: passed over
    wanted = _file(second / "tool", 0o755)
    (first / "dir").mkdir()  # a directory is no command, even with its x bits
    assert _find_command("tool", f"{first}:{second}") == wanted
    assert _find_command("dir", f"{first}:{second}") is None
    assert _find_command("missing", f"{first}:{second}") is None


def test_an_empty_entry_is_the_current_directory(tmp_path, monkeypatch):
    _file(tmp_path / "tool", 0o755)
    monkeypatch.chdir(tmp_path)
    assert _find_command("tool", f"/nonexistent:{os.pathsep}") == os.path.join(".", "tool")
    assert _find_command("tool", "/nonexistent") is None
