"""A rule whose log_format prints what only sctrace captures (%cwd, %path) is refused by the
system-wide engine at upload, with the log_format's position and "use sctrace" -- it would
print `?` on every line -- and the refusal changes nothing."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.rules import RuleError, load_rules

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
from daemon_support import Tracker  # the daemon tests' helpers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() and tracefs")


def logging_rule(name: str, log_format: str, action: str = "LOG") -> str:
    """A rule on unlink; its log_format is at line 6, column 13 of the text."""
    return (f"rule\n{{\nsyscall_name = unlink\nrule_name = {name}\naction {{\n"
            f"log_format {{{log_format}}}\ntype = {action}\n}}\nwhen = before\n}}\n")


@pytest.mark.parametrize(("fmt", "macro", "what"), [
    ("%comm cwd=%cwd", "cwd", "the caller's working directory"),
    ("%comm %path", "path", "the first path argument made absolute"),
])
def test_a_macro_only_sctrace_fills_in_is_refused_at_the_log_format(fmt, macro, what):
    with pytest.raises(RuleError) as err:
        SystemwideEngine(load_rules(logging_rule("r", fmt), filename="x.rules"))
    (diag,) = err.value.diagnostics
    assert str(diag).startswith(f"x.rules:6:13: error: rule 'r': log_format prints %{macro}, "
                                f"{what}")
    assert "would print '?' on every line" in str(diag) and str(diag).endswith("use sctrace")


def test_every_such_macro_of_every_rule_is_named_also_when_the_action_is_not_log():
    text = (logging_rule("both", "%cwd %path") + logging_rule("killer", "%path", "KILL")
            + logging_rule("literal", "%comm in %%cwd"))  # `%%cwd` is text, not a macro
    with pytest.raises(RuleError) as err:
        SystemwideEngine(load_rules(text, filename="x.rules"))
    found = [(d.line, *re.match(r"rule '(\w+)': log_format prints %(\w+),", d.message).groups())
             for d in err.value.diagnostics]
    assert found == [(6, "both", "cwd"), (6, "both", "path"), (16, "killer", "path")]


def test_replacing_with_a_refused_set_keeps_the_running_one():
    good = load_rules(logging_rule("good", "%comm %params"))
    with SystemwideEngine(good) as engine:
        ids = engine.ids()
        with pytest.raises(RuleError, match="log_format prints %cwd"):
            engine.replace(load_rules(logging_rule("bad", "%cwd")))
        assert engine.ruleset is good and engine.ids() == ids


def test_sct_config_upload_refuses_it_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SYSCALLTRACK_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SYSCALLTRACK_STATE_DIR", str(tmp_path / "state"))
    tracker = Tracker(tmp_path / "run", tmp_path / "state")
    try:
        tracker.ok("sct_load")
        good, bad = tmp_path / "good.rules", tmp_path / "bad.rules"
        good.write_text(logging_rule("good", "%comm %params"))
        bad.write_text(logging_rule("cwdtest", "%comm %params cwd=%cwd path=%path"))
        tracker.ok("sct_config", "upload", str(good))
        loaded = tracker.ok("sct_config", "download")
        done = tracker.tool("sct_config", "upload", str(bad))
        assert done.returncode == 1 and "Successfully" not in done.stdout
        assert done.stderr.splitlines() == [  # the daemon's answer, as for every refusal
            f"sct_config: {bad}:6:13: error: rule 'cwdtest': log_format prints %cwd, the "
            "caller's working directory, which the kernel engine does not capture (it would "
            "print '?' on every line); the system-wide engine cannot run it -- use sctrace",
            f"{bad}:6:13: error: rule 'cwdtest': log_format prints %path, the first path "
            "argument made absolute against the caller's cwd or dirfd, which the kernel "
            "engine does not capture (it would print '?' on every line); the system-wide "
            "engine cannot run it -- use sctrace"]
        assert tracker.ok("sct_config", "download") == loaded
        assert (tmp_path / "state" / "rules").read_text() == good.read_text()
        tracker.ok("sct_config", "delete")
    finally:
        tracker.teardown()


def test_sctlog_help_says_a_readers_cwd_and_path_print_a_question_mark():
    done = subprocess.run([sys.executable, "-m", "syscalltrack.cli.sctlog", "--help"],
                          capture_output=True, text=True, check=True)
    assert "%cwd and %path print ?" in " ".join(done.stdout.split())
