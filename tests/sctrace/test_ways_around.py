"""No way around an enforcing rule: calls a command could use to escape sctrace's stops.

- a ring's IORING_OP_UNLINKAT deletes a file with no system call at all;
- a child made with clone(CLONE_UNTRACED) is not followed, and a tracer of its own
  (PTRACE_TRACEME to its parent) lets through the calls sctrace's filter sends to a tracer;
- a seccomp filter of the command's own answering SECCOMP_RET_USER_NOTIF takes precedence
  over sctrace's RET_TRACE, and its supervisor lets the call run;
- open_by_handle_at opens a file with no path to match (root only).

Each C program below tries to unlink (or truncate) a file a FAIL rule keeps. When rules
enforce anything, sctrace refuses io_uring_setup and clone3 (ENOSYS), clone with
CLONE_UNTRACED (EPERM), seccomp listeners (EINVAL) and open_by_handle_at (EPERM), on every
ABI; rule sets that only log leave them.
"""

import errno
import subprocess
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

from syscalltrack.engines.sctrace import build_policy
from syscalltrack.ptrace import RET_ALLOW, RET_TRACE, ret_errno
from syscalltrack.ptrace.sys import AUDIT_ARCH_I386, X32_SYSCALL_BIT
from syscalltrack.rules import load_rules
from syscalltrack.syscalls import CONSTANTS

HERE = Path(__file__).resolve().parent
X32 = X32_SYSCALL_BIT
UNTRACED = CONSTANTS["CLONE_UNTRACED"]
THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes (no CLONE_UNTRACED)
SET_MODE_FILTER, NEW_LISTENER, TSYNC = 1, 8, 1
# (x86_64 and x32 number, i386 number)
IO_URING_SETUP, CLONE, CLONE3, SECCOMP = (425, 425), (56, 120), (435, 435), (317, 354)
OPEN_BY_HANDLE_AT = (304, 342)
ENFORCING = build_policy(load_rules(rule("unlink", "type = FAIL\nerror_code = -EPERM",
                                         filter_='PATH[1] == "/x"'))).compile()
LOGGING = build_policy(load_rules(rule("unlink", "type = LOG"))).compile()


def _guarded(victim: Path) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -EPERM", "keep",
                filter_=f'PATH[1] == "{victim}"')


def _on_every_abi(filt, call: tuple[int, int], args=(0,) * 6) -> set[int]:
    """The filter's answers for `call` from x86_64, x32 and i386 callers; an x32 call
    the filter lets go stops in sctrace (every x32 call does), which lets it run."""
    native, i386 = call
    x32 = filt.run(native | X32, args=args)
    return {filt.run(native, args=args), RET_ALLOW if x32 == RET_TRACE else x32,
            filt.run(i386, arch=AUDIT_ARCH_I386, args=args)}


@pytest.fixture(scope="module")
def build(c_program):
    """Builds one of this folder's C programs, by name."""
    return lambda name: c_program(HERE / f"{name}.c")


def test_the_filter_refuses_each_way_around_on_every_abi_when_rules_enforce():
    enosys, eperm, einval = (ret_errno(e) for e in (errno.ENOSYS, errno.EPERM, errno.EINVAL))
    assert _on_every_abi(ENFORCING, IO_URING_SETUP) == {enosys}
    assert _on_every_abi(ENFORCING, CLONE3) == {enosys}
    assert _on_every_abi(ENFORCING, CLONE, (UNTRACED | 0x11, 0, 0, 0, 0, 0)) == {eperm}
    assert _on_every_abi(ENFORCING, SECCOMP, (SET_MODE_FILTER, NEW_LISTENER | TSYNC, 0, 0, 0,
                                              0)) == {einval}
    assert _on_every_abi(ENFORCING, OPEN_BY_HANDLE_AT) == {eperm}
    # what is no way around stays allowed: threads, forks, filters without a listener
    assert _on_every_abi(ENFORCING, CLONE, (THREAD_FLAGS, 0, 0, 0, 0, 0)) == {RET_ALLOW}
    assert _on_every_abi(ENFORCING, SECCOMP, (SET_MODE_FILTER, TSYNC, 0, 0, 0, 0)) == {RET_ALLOW}
    assert _on_every_abi(ENFORCING, SECCOMP, (2, NEW_LISTENER, 0, 0, 0, 0)) == {RET_ALLOW}


def test_rule_sets_that_only_log_leave_them_alone():
    assert _on_every_abi(LOGGING, IO_URING_SETUP) == {RET_ALLOW}
    assert _on_every_abi(LOGGING, CLONE3) == {RET_ALLOW}
    assert _on_every_abi(LOGGING, OPEN_BY_HANDLE_AT) == {RET_ALLOW}
    assert _on_every_abi(LOGGING, CLONE, (UNTRACED, 0, 0, 0, 0, 0)) == {RET_ALLOW}
    assert _on_every_abi(LOGGING, SECCOMP, (SET_MODE_FILTER, NEW_LISTENER, 0, 0, 0, 0)) \
        == {RET_ALLOW}


@pytest.mark.parametrize(("program", "refused"), [
    ("uring_unlink", "setup: ENOSYS"),
    ("untraced_child", "clone: EPERM"),
    ("listener_continue", "seccomp: EINVAL"),
    ("handle_open", "open_by_handle_at: EPERM"),
])
def test_a_kept_file_survives(tmp_path, build, program, refused):
    exe = build(program)
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    bare = subprocess.run([exe, str(victim)], capture_output=True, text=True)
    if bare.returncode == 3:  # (the kernel refuses it with no sctrace at all)
        pytest.skip(f"{program} cannot run here even untraced: {bare.stdout.strip()}")
    # the way around works bare: the file is deleted, or truncated through the handle
    assert bare.returncode == 0 and not (victim.exists() and victim.read_text()), bare
    victim.write_text("keep\n")
    rules = _guarded(victim) + rule("open", "type = FAIL\nerror_code = -EACCES", "keep_open",
                                    filter_=f'PATH[1] == "{victim}"')
    run = sctrace(tmp_path, rules, exe, str(victim))
    assert run.out == refused + "\n"
    assert run.code == (0 if program == "handle_open" else 3)
    assert victim.read_text() == "keep\n"


def test_rules_that_only_log_leave_io_uring_working(tmp_path, build):
    exe = build("uring_unlink")
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, rule("unlink", "type = LOG"), exe, str(victim))
    if run.code == 3:
        pytest.skip(f"io_uring is unavailable on this kernel: {run.out.strip()}")
    assert (run.code, run.out) == (0, "unlinkat: 0\n")
    assert not victim.exists()
    assert run.log == []  # a ring's unlink is no system call: nothing to log


def test_threads_still_start_and_meet_the_rule(tmp_path, helper):
    """pthread_create's clone3 is refused; glibc falls back to clone and the threads,
    followed as before, have their unlinks failed."""
    prefix = tmp_path / "t"
    names = [Path(f"{prefix}.{k}") for k in range(4)]
    for name in names:
        name.touch()
    rules = rule("unlink", "type = FAIL\nerror_code = -EPERM", "keep",
                 filter_=f'PATH[1] startswith "{prefix}."')
    run = sctrace(tmp_path, rules, helper, "threads", "4", str(prefix))
    assert run.code == 0, run
    assert sorted(run.out.splitlines()) == [f"unlink {n} = -1 {errno.EPERM}" for n in names]
    assert all(name.exists() for name in names)
