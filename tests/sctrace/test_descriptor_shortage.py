"""Out of descriptors, sctrace cannot open a call's directories: PATH[n] falls back to
text, where a symlinked directory can go around a rule. It says so, once; and it raises
its own descriptor limit while the commands it starts keep the one they would have had."""

import os
import subprocess
import sys

import pytest

from syscalltrack.engines.sctrace import context
from syscalltrack.engines.sctrace.engine import RuleConsumer
from syscalltrack.rules import load_rules


def test_a_text_fallback_for_lack_of_descriptors_is_reported_once(monkeypatch):
    said = []
    consumer = RuleConsumer(load_rules(""), emit=lambda e: None, notice=said.append)
    monkeypatch.setattr(context, "text_fallbacks", [])
    consumer.after_stop()
    assert said == []
    context.text_fallbacks.append(OSError(24, "Too many open files"))
    consumer.after_stop()
    consumer.after_stop()
    assert len(said) == 1
    assert said[0].startswith("PATH[n] had to be resolved as text (Too many open files)")
    assert "ulimit -n" in said[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a hard limit needs root")
def test_sctrace_raises_its_own_limit_and_gives_the_command_the_one_found(tmp_path):
    """Run under soft 64 / hard 4096: sctrace works with 4096, the command sees 64."""
    rules = tmp_path / "r.rules"
    rules.write_text("rule {\nsyscall_name = unlink\nrule_name = r\naction {\ntype = LOG\n}\n}\n")
    code = ("import resource, subprocess, sys\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))\n"
            "sys.exit(subprocess.run([sys.executable, '-m', 'syscalltrack.cli.sctrace', '-c',"
            f" {str(rules)!r}, '--', 'sh', '-c', 'ulimit -Sn; ulimit -Hn']).returncode)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["64", "4096"]
    code = ("import resource\n"
            "from syscalltrack.ptrace import tracer\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))\n"
            "print(*tracer._more_descriptors(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["64", "4096", "4096", "4096"], done.stderr
