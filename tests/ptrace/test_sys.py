"""Raw ptrace requests the tracer does not use on its hot path, driven by hand."""

import ctypes
import errno
import os
import signal
import struct

from syscalltrack.ptrace import sys as pt
from syscalltrack.ptrace.seccomp import Policy
from syscalltrack.ptrace.tracer import Tracer

NR_UNLINK = 87
WALL = 0x40000000
_SECCOMP_INFO = struct.Struct("<BBHIQQQ6QII")
_EXIT_INFO = struct.Struct("<BBHIQQqB")


def test_set_syscall_info_fails_a_call_portably(helper, tmp_path):
    """Skip at the seccomp stop with nr = -1, then set the return value at the exit stop."""
    a = tmp_path / "a"
    a.write_text("x")
    r, w = os.pipe()
    info = ctypes.create_string_buffer(pt.SYSCALL_INFO_SIZE)
    siginfo = ctypes.create_string_buffer(128)
    with Tracer() as tracer:
        pid = tracer.spawn([helper, "unlink", str(a)], stdout=w,
                           seccomp_policy=Policy(trace={"x86_64": {NR_UNLINK}}))
        os.close(w)
        _, status = os.waitpid(pid, WALL)
        assert status >> 16 == pt.EVENT_SECCOMP
        pt.getsiginfo(pid, siginfo)
        assert struct.unpack_from("<i", siginfo)[0] == signal.SIGTRAP
        assert pt.get_syscall_info(pid, info) == 84  # up to seccomp.ret_data
        op, _, _, arch, ip, sp, nr, *rest = _SECCOMP_INFO.unpack_from(info)
        assert (op, arch, nr) == (pt.OP_SECCOMP, pt.AUDIT_ARCH_X86_64, NR_UNLINK)
        _SECCOMP_INFO.pack_into(info, 0, op, 0, 0, arch, ip, sp, 2**64 - 1, *rest[:6], rest[6], 0)
        pt.set_syscall_info(pid, info)
        pt.syscall(pid)
        _, status = os.waitpid(pid, WALL)
        assert os.WSTOPSIG(status) == signal.SIGTRAP | 0x80
        pt.get_syscall_info(pid, info)
        assert info.raw[0] == pt.OP_EXIT
        ctypes.memset(info, 0, pt.SYSCALL_INFO_SIZE)
        _EXIT_INFO.pack_into(info, 0, pt.OP_EXIT, 0, 0, pt.AUDIT_ARCH_X86_64, ip, sp,
                             -errno.EPERM, 1)
        pt.set_syscall_info(pid, info)
        pt.cont(pid)
        _, status = os.waitpid(pid, WALL)
        assert os.WIFEXITED(status)
    with os.fdopen(r) as f:
        assert f.read().splitlines() == [f"unlink {a} = -1 {errno.EPERM}"]
    assert a.exists()


def test_errors_name_the_request_and_keep_the_errno():
    try:
        pt.cont(os.getpid())
    except pt.PtraceError as exc:
        assert exc.errno == errno.ESRCH
        assert exc.op == "PTRACE_CONT"
        assert str(os.getpid()) in str(exc)
    else:
        raise AssertionError("PTRACE_CONT on an untraced process succeeded")
