"""Raw ptrace(2) for x86_64 through ctypes.

Every wrapper raises :class:`PtraceError` (an ``OSError`` carrying the errno and
the request name) so callers can tell a vanished tracee (``ESRCH``) from a bug.
Buffers are passed in by the caller so the hot path allocates nothing.
"""

import ctypes
import errno as _errno
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_ptrace.restype = ctypes.c_long
# The requests made at every stop go through a second function object without argtypes:
# ctypes then passes each argument by its own type, at about half the cost of converting
# it through argtypes (~4,000 instructions a call instead of ~8,000).  Only ints that fit
# a C int, None (NULL) and ctypes objects (passed by address) may be given to it.
_fast = _libc["ptrace"]  # (indexing makes a new function object; _ptrace keeps argtypes)
_fast.restype = ctypes.c_long

# Requests.
PEEKDATA = 2
POKEDATA = 5
POKEUSER = 6
CONT = 7
GETREGS = 12
SETREGS = 13
DETACH = 17
SYSCALL = 24
GETEVENTMSG = 0x4201
GETSIGINFO = 0x4202
SEIZE = 0x4206
INTERRUPT = 0x4207
LISTEN = 0x4208
GET_SYSCALL_INFO = 0x420E
SET_SYSCALL_INFO = 0x4212

_NAMES = {
    PEEKDATA: "PTRACE_PEEKDATA", POKEDATA: "PTRACE_POKEDATA", POKEUSER: "PTRACE_POKEUSER",
    CONT: "PTRACE_CONT",
    GETREGS: "PTRACE_GETREGS", SETREGS: "PTRACE_SETREGS", DETACH: "PTRACE_DETACH",
    SYSCALL: "PTRACE_SYSCALL", GETEVENTMSG: "PTRACE_GETEVENTMSG",
    GETSIGINFO: "PTRACE_GETSIGINFO", SEIZE: "PTRACE_SEIZE", INTERRUPT: "PTRACE_INTERRUPT",
    LISTEN: "PTRACE_LISTEN", GET_SYSCALL_INFO: "PTRACE_GET_SYSCALL_INFO",
    SET_SYSCALL_INFO: "PTRACE_SET_SYSCALL_INFO",
}

# PTRACE_O_* options.
O_TRACESYSGOOD = 0x1
O_TRACEFORK = 0x2
O_TRACEVFORK = 0x4
O_TRACECLONE = 0x8
O_TRACEEXEC = 0x10
O_TRACESECCOMP = 0x80
O_EXITKILL = 0x100000

# PTRACE_EVENT_* (status >> 16 of a stop).
EVENT_FORK = 1
EVENT_VFORK = 2
EVENT_CLONE = 3
EVENT_EXEC = 4
EVENT_SECCOMP = 7
EVENT_STOP = 128

# struct ptrace_syscall_info.op
OP_NONE = 0
OP_ENTRY = 1
OP_EXIT = 2
OP_SECCOMP = 3

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000

SYSCALL_INFO_SIZE = 88
# op, reserved, flags, arch, ip, sp, nr, args[6]: the entry and seccomp layouts agree.
SYSCALL_INFO_HEAD = struct.Struct("<BBHIQQQ6Q")
# op, and the exit layout's rval (s64, right after the 24-byte header): one unpack
# tells an exit stop and its result (rval means nothing at other stops).
SYSCALL_INFO_OP_RVAL = struct.Struct("<B23xq")


_byref = ctypes.byref


class PtraceError(OSError):
    """A failed ptrace request; ``op`` names the request, ``pid`` the tracee."""

    def __init__(self, err: int, op: str, pid: int):
        super().__init__(err, f"{op}({pid}): {os.strerror(err)}")
        self.op = op
        self.pid = pid


class UserRegs(ctypes.Structure):
    """x86_64 ``struct user_regs_struct``, as PTRACE_GETREGS fills it."""

    _fields_ = [(name, ctypes.c_ulonglong) for name in (
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
        "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
        "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
    )]


# Registers holding syscall arguments 0..5 per ABI (x32 uses the x86_64 ones).
ARG_REGS_X86_64 = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
ARG_REGS_I386 = ("rbx", "rcx", "rdx", "rsi", "rdi", "rbp")


def _call(request: int, pid: int, addr, data) -> int:
    res = _ptrace(request, pid, addr, data)
    if res == -1:
        _check(request, pid)
    return res


def _check(request: int, pid: int) -> None:
    err = ctypes.get_errno()
    if err:
        raise PtraceError(err, _NAMES[request], pid)


def seize(pid: int, options: int) -> None:
    _call(SEIZE, pid, None, options)


def interrupt(pid: int) -> None:
    _call(INTERRUPT, pid, None, None)


# cont, syscall and get_syscall_info run at every stop: one Python frame each.
def cont(pid: int, sig: int = 0) -> None:
    if _fast(CONT, pid, None, sig) == -1:
        _check(CONT, pid)


def syscall(pid: int, sig: int = 0) -> None:
    """Restart so that the next syscall entry or exit stops the tracee."""
    if _fast(SYSCALL, pid, None, sig) == -1:
        _check(SYSCALL, pid)


def listen(pid: int) -> None:
    """Leave a group-stopped tracee stopped but let us see its SIGCONT."""
    _call(LISTEN, pid, None, None)


def detach(pid: int, sig: int = 0) -> None:
    _call(DETACH, pid, None, sig)


def getregs(pid: int, regs: UserRegs) -> None:
    if _fast(GETREGS, pid, None, _byref(regs)) == -1:
        _check(GETREGS, pid)


def setregs(pid: int, regs: UserRegs) -> None:
    if _fast(SETREGS, pid, None, _byref(regs)) == -1:
        _check(SETREGS, pid)


# Where each register is in ``struct user`` (its regs come first): PTRACE_POKEUSER offsets.
ORIG_RAX = UserRegs.orig_rax.offset
RAX = UserRegs.rax.offset
_ulong = ctypes.c_ulong


def pokeuser(pid: int, offset: int, value: int) -> None:
    """Set one register (``offset`` in ``struct user``, e.g. ``RAX``) to the u64 ``value``.

    Two of these cost less than GETREGS + SETREGS (~5.0 against ~7.2 us, timeit), which
    copy and check every register (segments and fs/gs bases included).
    """
    if _fast(POKEUSER, pid, offset, _ulong(value)) == -1:
        _check(POKEUSER, pid)


_SKIP = _ulong(0xFFFFFFFFFFFFFFFF)  # orig_rax = -1: no call to run


def skip_call(pid: int, retval: int) -> None:
    """At a syscall-entry or seccomp stop, skip the call and make `retval` its result
    (orig_rax = -1, rax = `retval`): a FAIL's two registers, in one Python call."""
    if _fast(POKEUSER, pid, ORIG_RAX, _SKIP) == -1 \
            or _fast(POKEUSER, pid, RAX, _ulong(retval & 0xFFFFFFFFFFFFFFFF)) == -1:
        _check(POKEUSER, pid)


_eventmsg = ctypes.c_ulong()


def geteventmsg(pid: int) -> int:
    """The new child's pid after a fork event, the former tid after exec."""
    _call(GETEVENTMSG, pid, None, ctypes.addressof(_eventmsg))
    return _eventmsg.value


def getsiginfo(pid: int, buf: ctypes.Array) -> None:
    """Fill ``buf`` (128 bytes) with the siginfo_t of the current stop."""
    _call(GETSIGINFO, pid, None, ctypes.addressof(buf))


def get_syscall_info(pid: int, buf: ctypes.Array) -> int:
    """Fill ``buf`` (88 bytes) with struct ptrace_syscall_info; returns the kernel's size."""
    res = _fast(GET_SYSCALL_INFO, pid, SYSCALL_INFO_SIZE, buf)
    if res == -1:
        _check(GET_SYSCALL_INFO, pid)
    return res


def set_syscall_info(pid: int, buf: ctypes.Array) -> None:
    _call(SET_SYSCALL_INFO, pid, SYSCALL_INFO_SIZE, ctypes.addressof(buf))


def peekdata(pid: int, addr: int) -> int:
    """One word of tracee memory; PEEKDATA's result can be -1, so errno decides."""
    ctypes.set_errno(0)
    res = _ptrace(PEEKDATA, pid, addr, None)
    if res == -1:
        err = ctypes.get_errno()
        if err:
            raise PtraceError(err, "PTRACE_PEEKDATA", pid)
    return res & 0xFFFFFFFFFFFFFFFF


def pokedata(pid: int, addr: int, word: int) -> None:
    _call(POKEDATA, pid, addr, word)


def is_gone(exc: OSError) -> bool:
    """True when the error only says the tracee died or is no longer stopped for us."""
    return exc.errno == _errno.ESRCH
