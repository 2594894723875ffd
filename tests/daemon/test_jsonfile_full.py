"""A full disk under the JSON file: whole lines or none, and the lines not written are
counted (status, daemon.log); before, a broken line was left and nothing counted them."""

import json
import subprocess

from daemon_support import rule, wait_for


def make(gen, first: int, count: int) -> None:
    for i in range(first, first + count):
        (gen / str(i)).mkdir()
        (gen / str(i)).rmdir()


def test_a_full_disk_leaves_whole_lines_and_counts_the_others(tracker, tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(small)],
                   check=True)
    try:
        filler = small / "filler"
        filler.write_bytes(b"\0" * 16384)
        events = small / "events.json"
        rules = tmp_path / "r.conf"
        rules.write_text(rule("mk", "mkdir", f'PARAMS[1] startswith "{gen}/"'))
        tracker.ok("sct_load", "--no-syslog", "--json-file", str(events))
        tracker.ok("sct_config", "upload", str(rules))
        n = 1000  # about 500 bytes each: far more than 48 KiB holds
        make(gen, 0, n)
        wait_for(lambda: tracker.status()["events"]["delivered"] == n, "the events")
        jf = tracker.status()["json_file"]
        written, failed = jf["written"], jf["failed"]
        assert failed > 0 and written + failed == n
        assert jf["error"] == (f"{events}: No space left on device ({failed} lines not "
                               "written so far)")
        assert f"error: {jf['error']}" in tracker.ok("sct", "status")
        data = events.read_bytes()
        assert data.endswith(b"\n")
        assert [json.loads(line)["args"][0]["value"] for line in data.splitlines()] == \
            [f"{gen}/{i}" for i in range(written)]
        log = (tracker.run_dir / "daemon.log").read_text()
        assert " lines not written (" in log and "No space left on device" in log

        filler.unlink()  # room again: the error goes, the count stays
        make(gen, n, 10)
        wait_for(lambda: tracker.status()["events"]["delivered"] == n + 10, "the new events")
        jf = tracker.status()["json_file"]
        assert (jf["written"], jf["failed"], jf["error"]) == (written + 10, failed, None)
        lines = events.read_bytes().splitlines()
        assert [json.loads(line)["args"][0]["value"] for line in lines[-10:]] == \
            [f"{gen}/{i}" for i in range(n, n + 10)]
        tracker.ok("sct_config", "delete")  # no more lines coming: the rest is told
        log = (tracker.run_dir / "daemon.log").read_text()
        assert "syscalltrack: the JSON file: " in log and f"({failed} in all)" in log
    finally:
        tracker.teardown()  # the daemon holds the file open
        subprocess.run(["umount", str(small)], check=True)
