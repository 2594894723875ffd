"""Byte layouts shared by the generated programs and the Python side.

The *frame* is what a program knows about one call: the raw arguments, the
ids of the caller, and the strings it read. It lives in a per-CPU scratch
map for before rules, and in the per-thread ``after`` map between a call's
entry and its exit. The *record* is what leaves the kernel when a rule
matched: a header, the frame's head copied word by word, and each string
argument cut to ``record_string`` bytes. All records of one engine have the
same size, so the consumer decodes a whole batch with one ``iter_unpack``.
"""

from __future__ import annotations

import contextlib
import errno
import struct
from dataclasses import dataclass, field
from functools import cache

from ...bpf import btf
from ...bpf.isolate import in_child

# Frame head, in bytes.
ARGS = 0  # u64[6]: the raw arguments of the call that happened
EXTRA = 48  # u64[2]: open_how.flags and .mode for openat2 standing for open
NR = 64  # u64: syscall number, + I386_NR for i386 (an after-map entry is this call's)
RET = 72  # s64: return value (after rules)
PID, TID = 80, 84  # u32 each
PPID = 88  # u32, then 4 bytes of padding
CRED = 96  # the span of struct cred holding uid, gid, suid, sgid, euid, egid
CRED_FIELDS = ("uid", "gid", "suid", "sgid", "euid", "egid")
COMM_LEN = 16

I386_NR = 1 << 32  # added to an i386 call's number in NR: the two ABIs' numbers overlap

# x86 thread_info.status bit set while the task is in an int $0x80 (i386) call.
# The value is a #define, not in BTF; tests/systemwide/test_i386.py checks it on
# the running kernel (set during int $0x80 unlink, clear for x86_64 calls).
TS_COMPAT = 0x0002
REGS = {  # pt_regs members holding arguments 1-6, per ABI
    "x86_64": ("di", "si", "dx", "r10", "r8", "r9"),
    "i386": ("bx", "cx", "dx", "si", "di", "bp"),
}

# Record header before the copied frame head.
REC_TS, REC_RULE, REC_KIND, REC_FRAME = 0, 8, 12, 16
# A record's kind: an event, an undecided rule, or one undecided because PARAMS[n] could
# not be read (KIND_UNREADABLE + n).
KIND_EVENT, KIND_UNDECIDED, KIND_UNREADABLE = 0, 1, 16


@dataclass(frozen=True)
class Kernel:
    """Offsets in this kernel's structures (from BTF): ids, the compat flag, registers."""

    task_cred: int
    task_real_parent: int
    task_tgid: int
    cred_start: int  # first byte of the span read from struct cred
    cred_size: int  # bytes read (a multiple of 4)
    cred: dict[str, int] = field(hash=False)  # field -> offset within the span
    task_status: int  # task_struct.thread_info.status (TS_COMPAT lives there)
    regs: dict[str, tuple[int, ...]] = field(hash=False)  # abi -> pt_regs argument offsets
    orig_ax: int  # pt_regs.orig_ax: the call number, still there at sys_exit
    # BTF ids of the raw tracepoints' btf_trace_* typedefs, the target a tp_btf program
    # names at load: "sys_enter" / "sys_exit" -> id (absent where the BTF lacks it).
    tracepoints: dict[str, int] = field(hash=False)

    def tracepoint_id(self, name: str) -> int:
        """The BTF id that a tp_btf program on raw tracepoint ``name`` names."""
        try:
            return self.tracepoints[name]
        except KeyError:
            raise OSError(errno.ENOTSUP, f"this kernel's BTF has no btf_trace_{name}, so the "
                          f"engine's tp_btf programs cannot attach to the raw {name} "
                          "tracepoint; --no-compat uses the syscalls:* tracepoints instead "
                          "(and does not see i386 calls)") from None


@cache
def kernel() -> Kernel:
    """Offsets resolved once per process from /sys/kernel/btf/vmlinux (parsed in a
    child process: the parse's memory must not stay in a long-running daemon)."""
    return in_child(_kernel)


def _kernel() -> Kernel:
    vm = btf.vmlinux()
    offsets = {name: vm.offsetof("cred", f"{name}.val") for name in CRED_FIELDS}
    start = min(offsets.values())
    size = max(offsets.values()) + 4 - start
    return Kernel(vm.offsetof("task_struct", "cred"), vm.offsetof("task_struct", "real_parent"),
                  vm.offsetof("task_struct", "tgid"), start, size,
                  {name: off - start for name, off in offsets.items()},
                  vm.offsetof("task_struct", "thread_info.status"),
                  {abi: tuple(vm.offsetof("pt_regs", r) for r in names)
                   for abi, names in REGS.items()},
                  vm.offsetof("pt_regs", "orig_ax"), _tracepoint_ids(vm))


def _tracepoint_ids(vm: btf.BTF) -> dict[str, int]:
    """The ids this BTF has; a missing one is refused only by a plan that needs it."""
    ids = {}
    for name in ("sys_enter", "sys_exit"):
        with contextlib.suppress(btf.BTFError):
            ids[name] = vm.find(f"btf_trace_{name}", btf.Kind.TYPEDEF)
    return ids


def _align8(n: int) -> int:
    return (n + 7) & ~7


@dataclass(frozen=True)
class Layout:
    """Frame and record sizes for one rule set.

    ``window`` bytes of each string are compared (a power of two; 4096 is
    PATH_MAX, so a path the kernel accepts is compared whole); ``slots`` is
    the most string arguments any watched call has; ``record_string`` bytes
    of each go into the record.
    """

    window: int
    record_string: int
    slots: int
    cred_size: int

    @property
    def comm(self) -> int:
        return CRED + _align8(self.cred_size)

    @property
    def head(self) -> int:
        return self.comm + COMM_LEN

    def slot(self, k: int) -> int:
        """Frame offset of string slot k: s64 length, then ``window`` bytes. The length
        is probe_read_user_str's (the NUL included; 0 or less: unreadable), or
        ``window + 1`` when the string has no NUL within the window (cut)."""
        return self.head + k * (8 + self.window)

    @property
    def frame_size(self) -> int:
        # The tail of `window` bytes keeps the masked walk over COMM inside the value.
        return self.slot(self.slots) + self.window

    def record_slot(self, k: int) -> int:
        return REC_FRAME + self.head + k * (8 + self.record_string)

    @property
    def record_size(self) -> int:
        return self.record_slot(self.slots)

    def record_struct(self) -> struct.Struct:
        """Fields: ts, rule and kind as one word (rule | kind << 32), args[6], extra[2],
        nr, ret, pid, tid, ppid, cred words, comm, then (len, bytes) per slot.

        Rule and kind are read as one field because, with the nr word, they pick a
        record's view: the consumer checks that a batch has one view a field at a time.
        """
        words = _align8(self.cred_size) // 4
        slots = f"q{self.record_string}s" * self.slots
        return struct.Struct(f"<QQ6Q2QQqIII4x{words}I{COMM_LEN}s{slots}")
