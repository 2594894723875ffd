"""Attaching programs: tracefs tracepoints via perf events, raw tracepoints.

Which to use for syscalls (measured, kernel-notes.md): a TRACEPOINT program
on ``syscalls:sys_enter_X`` costs ~+26 ns on calls of X only, but enabling
any syscall tracepoint puts *every* syscall on the slow path (+8-13 ns); a
RAW_TRACEPOINT on ``sys_enter`` costs ~+15 ns on every syscall. The code
generator chooses; this module offers both.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl

from . import tracefs
from .prog import AttachType, Program
from .sys import FD, BpfError, Cmd, LinkCreateAttr, RawTracepointAttr, bpf, perf_event_open

PERF_TYPE_TRACEPOINT = 2
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to config2 (PERF_ATTR_SIZE_VER1)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
    ]


class Link(FD):
    """An attachment; closing it detaches the program.

    For perf-event attachments it also owns the perf event fd (closed after
    the link). ``method`` says how the attachment was made.
    """

    def __init__(self, fd: int, method: str, perf: FD | None = None):
        super().__init__(fd)
        self.method = method
        self._perf = perf

    @property
    def perf_fd(self) -> int:
        """The perf event behind a perf attachment."""
        return self._perf.fd if self._perf is not None else self.fd

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._perf is not None:
                self._perf.close()

    def __repr__(self) -> str:
        return f"<Link {self.method} {'closed' if self.closed else f'fd={self.fd}'}>"


def open_perf_event(attr: PerfEventAttr, pid: int = -1, cpu: int = 0) -> FD:
    """perf_event_open wrapped in an owning FD."""
    return FD(perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC))


def attach_perf_event(prog: Program, perf: FD) -> Link:
    """Attach ``prog`` to an open perf event; the returned Link owns ``perf``.

    Uses BPF_LINK_CREATE (BPF_PERF_EVENT) and falls back to the older
    PERF_EVENT_IOC_SET_BPF ioctl on kernels without perf links.
    """
    try:
        try:
            link = Link(bpf(Cmd.LINK_CREATE, LinkCreateAttr(
                prog_fd=prog.fd, target_fd=perf.fd, attach_type=AttachType.PERF_EVENT)),
                "perf_event+bpf_link", perf)
        except BpfError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            fcntl.ioctl(perf.fd, PERF_EVENT_IOC_SET_BPF, prog.fd)
            link = Link(perf.release(), "perf_event+ioctl")
    except BaseException:
        perf.close()
        raise
    try:
        fcntl.ioctl(link.perf_fd, PERF_EVENT_IOC_ENABLE, 0)
    except BaseException:
        link.close()
        raise
    return link


def attach_tracepoint(prog: Program, category: str, name: str) -> Link:
    """Attach a TRACEPOINT program to tracefs event ``category:name``.

    One perf event on CPU 0 with pid -1 runs the program for events on every
    CPU (a second one on another CPU is refused with EEXIST).
    """
    attr = PerfEventAttr(type=PERF_TYPE_TRACEPOINT, size=ctypes.sizeof(PerfEventAttr),
                         config=tracefs.event_id(category, name), sample_period=1,
                         sample_type=PERF_SAMPLE_RAW, wakeup_events=1)
    return attach_perf_event(prog, open_perf_event(attr))


KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"


def attach_kprobe(prog: Program, symbol: str, retprobe: bool = False) -> Link:
    """Attach a KPROBE program to kernel function ``symbol`` via the kprobe PMU.

    Raises FileNotFoundError naming the PMU when the kernel has no kprobe
    events (CONFIG_KPROBES / CONFIG_KPROBE_EVENTS off).
    """
    try:
        with open(f"{KPROBE_PMU}/type") as f:
            pmu_type = int(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"no kprobe PMU at {KPROBE_PMU}: this kernel has no kprobe "
                                "events (CONFIG_KPROBES/CONFIG_KPROBE_EVENTS off)") from None
    config = 0
    if retprobe:
        with open(f"{KPROBE_PMU}/format/retprobe") as f:  # "config:0"
            config = 1 << int(f.read().split(":")[1])
    name = ctypes.create_string_buffer(symbol.encode())
    attr = PerfEventAttr(type=pmu_type, size=ctypes.sizeof(PerfEventAttr), config=config,
                         sample_period=1, wakeup_events=1, config1=ctypes.addressof(name))
    return attach_perf_event(prog, open_perf_event(attr))


def attach_tracing(prog: Program) -> Link:
    """Attach a BTF-targeted program (tp_btf, fentry, fexit, fmod_ret, LSM).

    The target was fixed at load time by ``attach_btf_id``, so
    RAW_TRACEPOINT_OPEN is called without a name.
    """
    try:
        return Link(bpf(Cmd.RAW_TRACEPOINT_OPEN, RawTracepointAttr(prog_fd=prog.fd)),
                    "bpf_trampoline")
    except BpfError as e:
        raise BpfError(e.errno, Cmd.RAW_TRACEPOINT_OPEN, detail=f"program {prog.name}") from None


def attach_raw_tracepoint(prog: Program, name: str) -> Link:
    """Attach a RAW_TRACEPOINT program to kernel tracepoint ``name`` (e.g. sys_enter)."""
    raw = ctypes.create_string_buffer(name.encode())
    attr = RawTracepointAttr(name=ctypes.addressof(raw), prog_fd=prog.fd)
    try:
        return Link(bpf(Cmd.RAW_TRACEPOINT_OPEN, attr), "raw_tracepoint")
    except BpfError as e:
        raise BpfError(e.errno, Cmd.RAW_TRACEPOINT_OPEN, detail=name) from None
