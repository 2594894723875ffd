"""REWRITE must not write outside the caller's stack, and must leave the caller's registers
as the kernel would: real programs (tests/sctrace/rewrite_safety.c) under the sctrace command."""

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

HERE = Path(__file__).parent
SCT = [sys.executable, "-m", "syscalltrack.cli.sct"]


@pytest.fixture(scope="module")
def program(c_program) -> str:
    return c_program(HERE / "rewrite_safety.c")


def rewrite_open(orig: Path, new: str | Path, syscall: str = "open", param: int = 1) -> str:
    return rule(syscall, f'type = REWRITE\nparam = {param}\nvalue = "{new}"',
                filter_=f'PARAMS[{param}] == "{orig}"')


def long_path(tmp_path: Path) -> str:
    """A path of about 4 KB that names tmp_path/x (a directory per 'd/' would be needed)."""
    return f"{tmp_path}/" + "./" * 2000 + "x"


def rewrite_notice(run) -> str:
    [notice] = [n for n in run.notices if "could not rewrite" in n]
    assert "the call was failed with EFAULT" in notice
    return notice


def test_no_copy_below_a_malloced_signal_stack(tmp_path, program):
    """The reviewer's case: on a malloc'd sigaltstack, 4 KB below sp is the heap block
    before it; the copy went there (1760 bytes of 'V' overwritten)."""
    orig = tmp_path / "orig"
    run = sctrace(tmp_path, rewrite_open(orig, long_path(tmp_path)),
                  program, "heapaltstack", str(orig))
    assert run.out == f"open = -1 {errno.EFAULT}\nvictim bytes corrupted: 0\n"
    assert "is in the heap" in rewrite_notice(run)
    assert not orig.exists() and not (tmp_path / "x").exists()


def test_no_copy_past_the_end_of_a_small_stack(tmp_path, program):
    """An mmap'd 8 KB signal stack over a guard page, half used: not room for 4 KB."""
    orig, value = tmp_path / "orig", long_path(tmp_path)
    run = sctrace(tmp_path, rewrite_open(orig, value), program, "smallstack", str(orig))
    assert run.out == f"open = -1 {errno.EFAULT}\nvictim bytes corrupted: 0\n"
    notice = rewrite_notice(run)
    assert "not enough room on the caller's stack below sp (" in notice
    needed, available = [int(w) for w in
                         notice.split("below sp (")[1].split(")")[0].split()[::3]]
    assert needed >= len(value) + 1 + 128 > available > 0
    assert not orig.exists() and not (tmp_path / "x").exists()


def test_a_short_rewrite_on_the_same_small_stack_still_works(tmp_path, program):
    orig, new = tmp_path / "orig", tmp_path / "new"
    run = sctrace(tmp_path, rewrite_open(orig, new), program, "smallstack", str(orig))
    assert run.out == "open = 3 0\nvictim bytes corrupted: 0\n"
    assert new.exists() and not orig.exists()
    assert run.notices == []


def test_registers_are_restored_after_a_string_rewrite(tmp_path, program):
    """Raw openat in inline asm relies on rdi, rsi, rdx and r10 surviving the call; rsi
    pointed at the scratch copy after a REWRITE."""
    orig, new = tmp_path / "orig", tmp_path / "new"
    run = sctrace(tmp_path, rewrite_open(orig, new, "openat", 2),
                  program, "asmopenat", str(orig))
    assert run.out == "open = 3 0\nsame rdi=1 rsi=1 rdx=1 r10=1\n"
    assert new.exists() and not orig.exists()  # the rewrite took effect


def test_registers_are_restored_after_an_integer_rewrite(tmp_path, program):
    orig = tmp_path / "orig"
    rules = rule("openat", "type = REWRITE\nparam = 4\nvalue = 0600",
                 filter_=f'PARAMS[2] == "{orig}"')
    run = sctrace(tmp_path, rules, program, "asmopenat", str(orig))
    assert run.out == "open = 3 0\nsame rdi=1 rsi=1 rdx=1 r10=1\n"
    assert orig.stat().st_mode & 0o777 == 0o600  # the rewrite took effect


def test_registers_are_restored_when_the_rewritten_call_is_logged_at_exit(tmp_path, program):
    """A LOG after rule on the same call: the consumer wants the exit too."""
    orig, new = tmp_path / "orig", tmp_path / "new"
    rules = (rewrite_open(orig, new, "openat", 2)
             + rule("openat", "type = LOG\nlog_format {%sname %retval}", "after",
                    f'PARAMS[2] == "{orig}"', when="after"))
    run = sctrace(tmp_path, rules, program, "asmopenat", str(orig))
    assert run.out == "open = 3 0\nsame rdi=1 rsi=1 rdx=1 r10=1\n"
    assert run.log == ["openat 3"]
    assert new.exists()


def test_i386_copy_above_4g_is_refused_before_writing(tmp_path, program):
    """int $0x80 from a 64-bit process: its stack is far above 4 GiB, so a string copy
    there cannot be passed in a 32-bit register; it used to be written first anyway."""
    orig, new = tmp_path / "orig", tmp_path / "new"
    run = sctrace(tmp_path, rewrite_open(orig, new), program, "i386open", str(orig))
    assert run.out == f"open = -1 {errno.EFAULT}\npattern bytes changed: 0\n"
    notice = rewrite_notice(run)
    assert "does not fit in 32 bits" in notice
    assert "cannot access memory" not in notice
    assert not orig.exists() and not new.exists()


def sct_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "long.rules"
    path.write_text(text)
    return subprocess.run([*SCT, "check", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)


def test_a_rewrite_string_longer_than_path_max_is_refused(tmp_path):
    value = "/" + "a" * 4095  # 4096 bytes: with its NUL, past PATH_MAX
    text = ("rule\n{\n    syscall_name = open\n    rule_name = r\n"
            f'    action {{ type = REWRITE  param = 1  value = "{value}" }}\n}}\n')
    result = sct_check(tmp_path, text)
    assert result.returncode != 0
    assert ("long.rules:5:49: error: REWRITE value for argument 1 (const char *filename) is "
            "4096 bytes long; at most 4095") in result.stderr + result.stdout
    ok = sct_check(tmp_path, text.replace(value, value[1:]))  # 4095 bytes
    assert ok.returncode == 0, ok.stderr
