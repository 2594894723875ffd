"""A userfaultfd cannot make sctrace wait forever.

sctrace reads a call's strings while the caller is stopped. A read of a page a
userfaultfd watches waits for the process's handler thread, and that thread may itself
wait at a stop for sctrace (a new thread's first stop, a traced call): then neither
goes on, and sctrace can only be SIGKILLed (found by review: state D in
process_vm_readv). Whatever the rules, sctrace refuses userfaultfds that handle the
kernel's faults (EPERM, as an unprivileged caller gets); with UFFD_USER_MODE_ONLY the
kernel's reads of a missing page fail instead of waiting, and so do sctrace's.
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

HERE = Path(__file__).resolve().parent
USERFAULTFD, IOCTL = (323, 323, 374), (16, 514, 54)  # (x86_64, x32: its own ioctl, i386)
IOC_NEW, USER_MODE_ONLY, CLOEXEC = 0xAA00, 1, 0o2000000
LOG_UNLINK = rule("unlink", "type = LOG")


def _answers(filt, call, args) -> set[int]:
    native, x32_nr, i386 = call
    x32 = filt.run(x32_nr | X32_SYSCALL_BIT, args=args)
    return {filt.run(native, args=args), RET_ALLOW if x32 == RET_TRACE else x32,
            filt.run(i386, arch=AUDIT_ARCH_I386, args=args)}


@pytest.mark.parametrize("rules", [LOG_UNLINK, rule("unlink", "type = FAIL\nerror_code = -1")])
def test_the_filter_refuses_userfaultfds_for_the_kernels_faults(rules):
    filt = build_policy(load_rules(rules)).compile()
    eperm = ret_errno(errno.EPERM)
    assert _answers(filt, USERFAULTFD, (CLOEXEC, 0, 0, 0, 0, 0)) == {eperm}
    assert _answers(filt, USERFAULTFD, (CLOEXEC | USER_MODE_ONLY, 0, 0, 0, 0, 0)) == {RET_ALLOW}
    assert _answers(filt, IOCTL, (3, IOC_NEW, CLOEXEC, 0, 0, 0)) == {eperm}
    assert _answers(filt, IOCTL, (3, IOC_NEW, USER_MODE_ONLY, 0, 0, 0)) == {RET_ALLOW}
    assert _answers(filt, IOCTL, (3, 0x5401, 0, 0, 0, 0)) == {RET_ALLOW}  # TCGETS: any other


@pytest.fixture(scope="module")
def userfault_unlink(c_program) -> str:
    return c_program(HERE / "userfault_unlink.c")


def _bare(program: str, path: Path, mode: str) -> str:
    path.touch()
    done = subprocess.run([program, str(path), mode], capture_output=True, text=True)
    if done.returncode == 3:
        pytest.skip(f"no userfaultfd here even without sctrace: {done.stdout.strip()}")
    return done.stdout


def test_a_userfaultfd_for_the_kernels_faults_is_refused(tmp_path, userfault_unlink):
    victim = tmp_path / "victim"
    assert _bare(userfault_unlink, victim, "kernel") == "unlink: OK\n"  # it works bare
    victim.touch()
    run = sctrace(tmp_path, LOG_UNLINK, userfault_unlink, str(victim), "kernel")
    assert (run.code, run.out) == (3, "userfaultfd: EPERM\n")
    assert victim.exists() and run.log == []


def test_a_user_mode_userfaultfd_runs_and_the_name_shows_as_an_address(tmp_path,
                                                                       userfault_unlink):
    victim = tmp_path / "victim"
    bare = _bare(userfault_unlink, victim, "user")
    assert bare == "unlink: EFAULT\n"  # (the kernel's read of the name cannot wait either)
    run = sctrace(tmp_path, LOG_UNLINK, userfault_unlink, str(victim), "user")
    assert (run.code, run.out) == (0, bare)
    assert len(run.log) == 1 and "unlink(0x" in run.log[0], run.log
