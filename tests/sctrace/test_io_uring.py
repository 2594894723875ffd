"""io_uring is no way around an enforcing rule: its operations make no system call.

A ring's IORING_OP_UNLINKAT deletes a file without an `unlink` or `unlinkat` call,
so no seccomp filter or ptrace stop sees it. When rules enforce anything, sctrace
refuses `io_uring_setup` (ENOSYS, as a kernel without io_uring answers); rule sets
that only log leave it alone.
"""

import errno
import subprocess
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

from syscalltrack.engines.sctrace import build_policy
from syscalltrack.ptrace import RET_ALLOW, ret_errno
from syscalltrack.ptrace.sys import AUDIT_ARCH_I386, X32_SYSCALL_BIT
from syscalltrack.rules import load_rules

HERE = Path(__file__).resolve().parent
IO_URING_SETUP = 425  # the same number on x86_64, x32 and i386


def _guarded(victim: Path) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -EPERM", "keep",
                filter_=f'PATH[1] == "{victim}"')


@pytest.fixture(scope="module")
def uring_unlink(helper, tmp_path_factory) -> str:
    """uring_unlink.c, built once (``helper`` first: it skips where ptrace is refused)."""
    out = tmp_path_factory.mktemp("uring") / "uring_unlink"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(HERE / "uring_unlink.c")],
                   check=True)
    return str(out)


@pytest.fixture
def ring_works(uring_unlink, tmp_path):
    """Skip (saying why) where this kernel gives no io_uring even without sctrace."""
    probe = tmp_path / "probe"
    probe.touch()
    done = subprocess.run([uring_unlink, str(probe)], capture_output=True, text=True)
    if done.returncode == 3:
        pytest.skip(f"io_uring is unavailable here without sctrace ({done.stdout.strip()}); "
                    "see sysctl kernel.io_uring_disabled")
    assert done.stdout == "unlinkat: 0\n" and not probe.exists(), done


def test_policy_refuses_io_uring_setup_on_every_abi_when_rules_enforce():
    filt = build_policy(load_rules(_guarded(Path("/x")))).compile()
    assert filt.run(IO_URING_SETUP) == ret_errno(errno.ENOSYS)
    assert filt.run(IO_URING_SETUP, arch=AUDIT_ARCH_I386) == ret_errno(errno.ENOSYS)
    assert filt.run(IO_URING_SETUP | X32_SYSCALL_BIT) == ret_errno(errno.ENOSYS)
    logging = build_policy(load_rules(rule("unlink", "type = LOG"))).compile()
    assert logging.run(IO_URING_SETUP) == RET_ALLOW


def test_a_ring_cannot_unlink_what_a_fail_rule_keeps(tmp_path, uring_unlink, ring_works):
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, _guarded(victim), uring_unlink, str(victim))
    assert run.out == "setup: ENOSYS\n"
    assert run.code == 3
    assert victim.exists()
    # the same rule still fails the plain call
    run = sctrace(tmp_path, _guarded(victim), "rm", "-f", str(victim))
    assert "Operation not permitted" in run.err and victim.exists()


def test_rules_that_only_log_leave_io_uring_working(tmp_path, uring_unlink, ring_works):
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, rule("unlink", "type = LOG"), uring_unlink, str(victim))
    assert (run.code, run.out) == (0, "unlinkat: 0\n")
    assert not victim.exists()
    assert run.log == []  # a ring's unlink is no system call: nothing to log
