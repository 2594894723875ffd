"""What an upload will not do that its author may expect is said when it is uploaded."""

from daemon_support import rule


def test_kill_and_suspend_before_rules_are_noted_as_acting_after_the_call(tracker, tmp_path):
    tracker.ok("sct_load")
    rules = tmp_path / "kill.conf"
    text = rule("watch", "unlink") + rule("stop", "unlink").replace("type = LOG",
                                                                    "type = SUSPEND")
    rules.write_text(text)
    done = tracker.tool("sct_config", "upload", str(rules))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Successfully uploaded rules from file '{rules}'\n"
    (note,) = done.stderr.splitlines()
    line = 1 + text[:text.index("SUSPEND")].count("\n")
    assert note.startswith(f"sct_config: {rules}:{line}:")
    assert "rule 'stop': SUSPEND is signalled at the call's entry" in note
    assert "the call itself runs; sctrace stops a call before it runs" in note


def test_an_empty_upload_says_that_nothing_is_watched_now(tracker, tmp_path):
    tracker.ok("sct_load")
    empty = tmp_path / "empty.conf"
    empty.write_text("# nothing yet\n")
    done = tracker.tool("sct_config", "upload", str(empty))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"sct_config: {empty}: note: no rules in it: nothing is watched now\n"
    assert tracker.ok("sct_config", "download") == ""
