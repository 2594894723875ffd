"""Running the real sctrace command in tests (a uniquely named module, unlike conftest)."""

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SCTRACE = [sys.executable, "-m", "syscalltrack.cli.sctrace"]


@dataclass
class Run:
    code: int
    out: str  # the traced command's stdout
    err: str  # the traced command's stderr
    log: list[str]  # sctrace's log lines (written with -o)
    notices: list[str]  # sctrace's own "sctrace: ..." lines on stderr


def sctrace(tmp_path: Path, rules: str | None, *command: str, options=(), cwd=None) -> Run:
    """Run `sctrace [-c RULES] OPTIONS -- COMMAND` and split what it printed."""
    args = list(SCTRACE)
    if rules is not None:
        rule_file = tmp_path / "test.rules"
        rule_file.write_text(rules)
        args += ["-c", str(rule_file)]
    log_file = tmp_path / "sctrace.log"
    args += ["-o", str(log_file), *options, "--", *command]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=300)
    lines = proc.stderr.splitlines()
    notices = [line for line in lines if line.startswith("sctrace: ")]
    err = "".join(line + "\n" for line in lines if not line.startswith("sctrace: "))
    log = log_file.read_text().splitlines() if log_file.exists() else []
    return Run(proc.returncode, proc.stdout, err, log, notices)


def rule(syscall: str, action: str, name: str = "r", filter_: str | None = None,
         when: str = "before") -> str:
    """One rule block in the article's layout."""
    filt = f"filter_expression {{{filter_}}}\n" if filter_ else ""
    return (f"rule\n{{\nsyscall_name = {syscall}\nrule_name = {name}\n{filt}"
            f"action {{\n{action}\n}}\nwhen = {when}\n}}\n")


def wait_until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `predicate`; the timeout is only a safety net against a hung test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
