"""What the tools print and refuse before any daemon is involved."""

import subprocess
import sys

RULE = ('rule\n{{\nsyscall_name = unlink\nrule_name = {name}\naction {{\ntype = LOG\n}}\n'
        'when = before\n}}\n')


def test_sct_check_prints_a_rule_name_with_an_escape_as_text(tmp_path):
    rules = tmp_path / "esc.rules"
    rules.write_text(RULE.format(name="a\x1b[31mred"))  # a real ESC in the file
    done = subprocess.run([sys.executable, "-m", "syscalltrack.cli.sct", "check", str(rules)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\\x1b[31mred" in done.stdout


def test_sct_load_refuses_a_ring_the_kernel_cannot_make(tmp_path):
    done = subprocess.run([sys.executable, "-m", "syscalltrack.cli.sct_load", "--ring-mb", "4096"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "at most 2048 MB" in done.stderr
