"""A child sctrace does not follow is no way around an enforcing rule.

`clone(CLONE_UNTRACED)` gives a child no automatic tracer; that child can make
its parent its tracer (PTRACE_TRACEME), and a tracer of its own lets through the
calls sctrace's seccomp filter sends to a tracer. When rules enforce anything,
`clone` with that flag fails (EPERM) and `clone3`, whose flags a filter cannot
read, fails with ENOSYS (glibc then uses `clone`).
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
from syscalltrack.syscalls import CONSTANTS

HERE = Path(__file__).resolve().parent
UNTRACED = CONSTANTS["CLONE_UNTRACED"]
CLONE, CLONE3, I386_CLONE = 56, 435, 120
THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes (no CLONE_UNTRACED)


def _guarded(victim: Path) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -EPERM", "keep",
                filter_=f'PATH[1] == "{victim}"')


@pytest.fixture(scope="module")
def untraced_child(helper, tmp_path_factory) -> str:
    """untraced_child.c, built once (``helper`` first: it skips where ptrace is refused)."""
    out = tmp_path_factory.mktemp("untraced") / "untraced_child"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(HERE / "untraced_child.c")],
                   check=True)
    return str(out)


def test_policy_refuses_untraced_children_on_every_abi_when_rules_enforce():
    filt = build_policy(load_rules(_guarded(Path("/x")))).compile()
    eperm, enosys = ret_errno(errno.EPERM), ret_errno(errno.ENOSYS)
    assert filt.run(CLONE, args=(UNTRACED | 0x11, 0, 0, 0, 0, 0)) == eperm
    assert filt.run(CLONE | X32_SYSCALL_BIT, args=(UNTRACED, 0, 0, 0, 0, 0)) == eperm
    assert filt.run(I386_CLONE, arch=AUDIT_ARCH_I386, args=(UNTRACED, 0, 0, 0, 0, 0)) == eperm
    assert filt.run(CLONE, args=(THREAD_FLAGS, 0, 0, 0, 0, 0)) == RET_ALLOW
    assert filt.run(I386_CLONE, arch=AUDIT_ARCH_I386,
                    args=(THREAD_FLAGS, 0, 0, 0, 0, 0)) == RET_ALLOW
    for arch, nr in ((None, CLONE3), (None, CLONE3 | X32_SYSCALL_BIT),
                     (AUDIT_ARCH_I386, CLONE3)):
        assert (filt.run(nr, arch=arch) if arch else filt.run(nr)) == enosys
    logging = build_policy(load_rules(rule("unlink", "type = LOG"))).compile()
    assert logging.run(CLONE, args=(UNTRACED, 0, 0, 0, 0, 0)) == RET_ALLOW
    assert logging.run(CLONE3) == RET_ALLOW


def test_an_untraced_child_cannot_unlink_what_a_fail_rule_keeps(tmp_path, untraced_child):
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, _guarded(victim), untraced_child, str(victim))
    assert (run.code, run.out) == (3, "clone: EPERM\n")
    assert victim.exists()


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
