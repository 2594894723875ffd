"""The article's walkthrough, command by command, against the real daemon and kernel."""

import subprocess
import threading
from pathlib import Path

from daemon_support import kernel_objects_gone, wait_for

from syscalltrack.rules import load_rules

ARTICLE = Path(__file__).resolve().parents[2] / "examples" / "article.rules"
UNLINK_RULE1, PREVENT_DELETE, _PTRACE_RULE1 = ARTICLE.read_text().split("\n\n")


def test_article_walkthrough(tracker, tmp_path):
    # sct_load (as root)
    done = tracker.tool("sct_load")
    assert done.returncode == 0, done.stderr
    assert "syscalltrack loaded" in done.stdout
    again = tracker.tool("sct_load")
    assert again.returncode == 1 and "already loaded" in again.stderr

    # sct_config upload /tmp/try.conf
    try_conf = tmp_path / "try.conf"
    try_conf.write_text(UNLINK_RULE1 + "\n")
    done = tracker.tool("sct_config", "upload", str(try_conf))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Successfully uploaded rules from file '{try_conf}'\n"
    first_ids = tracker.status()["engine"]

    # sctlog on one console; cd /tmp; touch ./dummy; rm ./dummy on another
    log = tracker.follow()
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["sh", "-c", "cd \"$1\" && touch ./dummy && rm ./dummy", "sh", str(work)],
                   check=True)
    expected = b'"rm" : "./dummy" delete by 0 --> 0\n'
    while (line := log.stdout.readline()) != expected:  # other processes may unlink too
        assert line, "sctlog ended before the article's line"
    # Read on, as its console would: an sctlog blocked on a full pipe while the steps below
    # run could not take its last lines within the daemon's grace at the unload.
    rest = threading.Thread(target=log.stdout.read, daemon=True)
    rest.start()

    # sct_config download: the canonical form, re-uploadable
    downloaded = tracker.ok("sct_config", "download")
    assert downloaded == load_rules(UNLINK_RULE1).text()
    assert load_rules(downloaded).text() == downloaded

    # sct_config delete; add prevent_delete to the file; sct_config upload /tmp/try.conf
    tracker.ok("sct_config", "delete")
    assert tracker.status()["engine"] is None
    try_conf.write_text(UNLINK_RULE1 + "\n" + PREVENT_DELETE)
    done = tracker.tool("sct_config", "upload", str(try_conf))
    assert done.returncode == 1
    assert "Successfully" not in done.stdout
    assert f"{try_conf}:" in done.stderr and "rule 'prevent_delete': FAIL cannot run " \
        "system-wide" in done.stderr
    assert "use sctrace" in done.stderr
    assert tracker.ok("sct_config", "download") == ""  # nothing changed

    # sct_unload with rules loaded: Device or resource busy
    try_conf.write_text(UNLINK_RULE1)
    tracker.ok("sct_config", "upload", str(try_conf))
    second_ids = tracker.status()["engine"]
    done = tracker.tool("sct_unload")
    assert done.returncode == 1
    assert "Device or resource busy" in done.stderr
    assert tracker.status()["rules"][0]["name"] == "unlink_rule1"

    # sct_config delete; sct_unload
    tracker.ok("sct_config", "delete")
    pid = tracker.pid()
    tracker.ok("sct_unload")
    rest.join(timeout=30)  # the stream ends with the daemon
    assert log.wait(timeout=30) == 0, log.stderr.read()
    assert not Path(f"/proc/{pid}").exists() or wait_for(
        lambda: not Path(f"/proc/{pid}").exists(), "the daemon to exit")
    assert not (tracker.run_dir / "control.sock").exists()
    for ids in (first_ids, second_ids):
        assert kernel_objects_gone(ids)
    done = tracker.tool("sct_config", "download")
    assert done.returncode == 1 and "not loaded" in done.stderr and "sct_load" in done.stderr
