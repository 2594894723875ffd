"""The JSON file the root daemon appends to is its own: never through a symlink, never a
file another user planted or may read or write (they would read every event, or make
root append to a file of their choosing)."""

import os
import stat

import pytest

from syscalltrack.sinks.jsonfile import JsonFileSink

NOBODY = 65534


def refusal(path) -> str:
    with pytest.raises(OSError) as err:
        JsonFileSink(str(path))
    return err.value.strerror


def test_a_new_file_is_created_private_and_appended_to(tmp_path):
    path = tmp_path / "events.json"
    sink = JsonFileSink(str(path))
    sink.write(b'{"a":1}\n', 1)
    sink.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b'{"a":1}\n'
    path.chmod(0o640)  # group-readable for a log shipper: allowed
    JsonFileSink(str(path)).close()


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"precious\n")
    target.chmod(0o600)
    link = tmp_path / "events.json"
    link.symlink_to(target)
    assert "symbolic link" in refusal(link)
    assert target.read_bytes() == b"precious\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown to another user")
def test_a_file_of_another_user_is_refused(tmp_path):
    path = tmp_path / "events.json"
    path.write_bytes(b"")
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    assert refusal(path) == f"refused: it belongs to uid {NOBODY} (who could read every event)"
    assert path.read_bytes() == b""


@pytest.mark.parametrize("mode, why", [(0o644, "everyone may read it"),
                                       (0o620, "writable by others"),
                                       (0o602, "writable by others")])
def test_loose_modes_are_refused(tmp_path, mode, why):
    path = tmp_path / "events.json"
    path.write_bytes(b"")
    path.chmod(mode)
    assert why in refusal(path)


def test_reopen_after_rotation_refuses_a_planted_symlink_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "events.json"
    sink = JsonFileSink(str(path))
    path.rename(tmp_path / "events.json.1")
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        sink.reopen()
    sink.write(b'{"b":2}\n', 1)  # still the old (renamed) file
    sink.close()
    assert (tmp_path / "events.json.1").read_bytes() == b'{"b":2}\n'
    assert not (tmp_path / "elsewhere").exists()


def test_the_daemon_says_why_it_will_not_start(tracker, tmp_path):
    link = tmp_path / "events.json"
    link.symlink_to(tmp_path / "target")
    done = tracker.tool("sct_load", "--json-file", str(link))
    assert done.returncode == 1
    assert f"cannot open the JSON file {link}: it is a symbolic link" in done.stderr
    assert not (tmp_path / "target").exists()
