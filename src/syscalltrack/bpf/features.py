"""What this kernel allows, found by trying tiny loads and attaches.

Never from version strings: distributions backport and configurations
differ. Each answer is a :class:`Probe` with the precise reason for a
refusal (errno, its meaning here, the verifier's words), so a caller can tell
a user *why* a rule set cannot run.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from . import asm, btf
from .asm import R0, R2
from .isolate import in_child
from .link import (
    KPROBE_PMU,
    attach_kprobe,
    attach_raw_tracepoint,
    attach_tracepoint,
    attach_tracing,
)
from .maps import Map, MapSpec, MapType
from .prog import AttachType, Program, ProgType
from .sys import BpfError

ENOTSUPP = 524  # kernel-internal "not supported", leaks to user space
_ERRNO_MEANING = {
    errno.EPERM: "refused before verification (not a verifier error): the kernel does not "
                 "allow this here",
    errno.EINVAL: "the kernel does not know this type, attach point or helper",
    errno.EACCES: "the verifier rejected the program",
    errno.ENOENT: "the attach target does not exist",
    errno.E2BIG: "the attribute is larger than the kernel knows",
    errno.EOPNOTSUPP: "operation not supported",
    ENOTSUPP: "operation not supported (ENOTSUPP)",
}
_UNKNOWN_HELPER = ("invalid func ", "unknown func ", "cannot use helper")
RETURN_0 = (asm.mov(R0, 0), asm.exit())


@dataclass(frozen=True)
class Probe:
    """A definite answer: supported, or not with the reason."""

    supported: bool
    reason: str = ""
    detail: str = ""  # how it was tried, or what worked

    def __bool__(self) -> bool:
        return self.supported

    def __str__(self) -> str:
        verdict = "yes" if self.supported else "no"
        extra = self.detail if self.supported else self.reason
        return f"{verdict}: {extra}" if extra else verdict


def _why(e: OSError) -> str:
    code = errno.errorcode.get(e.errno, "ENOTSUPP" if e.errno == ENOTSUPP else str(e.errno))
    text = f"{code}, {_ERRNO_MEANING.get(e.errno, os.strerror(e.errno))}"
    log = getattr(e, "log", "")
    lines = [ln for ln in log.splitlines() if ln and not ln[0].isdigit()
             and not ln.startswith("processed ")]
    if lines:
        text += f"; verifier: {lines[-1]}"
    return text


def _try(step: str, action: Callable[[], object]) -> Probe:
    """Run ``action``; close what it returns (a kernel object or a tuple of them)."""
    try:
        result = action()
    except (OSError, btf.BTFError) as e:
        reason = _why(e) if isinstance(e, BpfError) else str(e)
        return Probe(False, f"{step}: {reason}")
    for obj in result if isinstance(result, tuple) else (result,):
        obj.close()
    return Probe(True, detail=step)


def _btf_target(names: tuple[str, ...], kind: btf.Kind) -> tuple[str, int]:
    """The first of ``names`` this kernel's BTF has, with its type id."""
    for name in names:
        try:
            return name, btf.vmlinux().find(name, kind)
        except btf.BTFError:
            continue
    raise btf.BTFError(f"none of {', '.join(names)} is a {kind.name.lower()} in kernel BTF")


# How to load a minimal program of each type: (prog type, expected attach, BTF targets
# in order of preference). fmod_ret wants the error-injectable syscall entry point.
_PROGRAM_TYPES: dict[str, tuple[ProgType, int, tuple[tuple[str, ...], btf.Kind] | None]] = {
    "socket_filter": (ProgType.SOCKET_FILTER, 0, None),
    "kprobe": (ProgType.KPROBE, 0, None),
    "tracepoint": (ProgType.TRACEPOINT, 0, None),
    "raw_tracepoint": (ProgType.RAW_TRACEPOINT, 0, None),
    "tp_btf": (ProgType.TRACING, AttachType.TRACE_RAW_TP, (("btf_trace_sys_enter",),
                                                           btf.Kind.TYPEDEF)),
    "fentry": (ProgType.TRACING, AttachType.TRACE_FENTRY, (("do_unlinkat",), btf.Kind.FUNC)),
    "fmod_ret": (ProgType.TRACING, AttachType.MODIFY_RETURN, (
        ("__x64_sys_getppid", "__se_sys_getppid", "__do_sys_getppid"), btf.Kind.FUNC)),
    "lsm": (ProgType.LSM, AttachType.LSM_MAC, (("bpf_lsm_file_open",), btf.Kind.FUNC)),
}


def _load_minimal(name: str, insns=RETURN_0) -> Program:
    prog_type, attach_type, target = _PROGRAM_TYPES[name]
    btf_id = 0
    if target is not None:
        btf_id = _btf_target(*target)[1]
    return Program.load(prog_type, insns, expected_attach_type=attach_type,
                        attach_btf_id=btf_id, name=f"probe_{name}"[:15])


@cache
def have_program_type(name: str) -> Probe:
    """Does the kernel load a minimal program of this type (see _PROGRAM_TYPES)?"""
    target = _PROGRAM_TYPES[name][2]
    where = ""
    if target is not None:
        try:
            where = f" on {_btf_target(*target)[0]}"
        except btf.BTFError as e:
            return Probe(False, f"load a {name} program: {e}")
    return _try(f"load a {name} program{where}", lambda: _load_minimal(name))


_MAP_TYPES = {
    "hash": MapSpec("probe_hash", MapType.HASH, 4, 4, 1),
    "array": MapSpec("probe_array", MapType.ARRAY, 4, 4, 1),
    "percpu_array": MapSpec("probe_pcpu_arr", MapType.PERCPU_ARRAY, 4, 4, 1),
    "percpu_hash": MapSpec("probe_pcpu_hash", MapType.PERCPU_HASH, 4, 4, 1),
    "ringbuf": MapSpec("probe_ringbuf", MapType.RINGBUF, 0, 0, os.sysconf("SC_PAGE_SIZE")),
}


@cache
def have_map_type(name: str) -> Probe:
    return _try(f"create a map of type {name}", lambda: Map.create(_MAP_TYPES[name]))


# Helper name -> program type it is meant for.
_HELPERS = {
    "probe_read_kernel": "tracepoint", "probe_read_user": "tracepoint",
    "probe_read_user_str": "tracepoint", "probe_read_kernel_str": "tracepoint",
    "get_current_task": "tracepoint", "get_current_task_btf": "tracepoint",
    "send_signal": "tracepoint", "send_signal_thread": "tracepoint",
    "ringbuf_output": "tracepoint", "ringbuf_reserve": "tracepoint",
    "ringbuf_submit": "tracepoint", "ringbuf_discard": "tracepoint",
    "override_return": "kprobe", "probe_write_user": "tracepoint",
}


@cache
def have_helper(helper: str, program_type: str | None = None) -> Probe:
    """Is ``helper`` callable from ``program_type``?

    The call is made with junk arguments: a verifier complaint about the
    arguments proves the helper exists; "unknown/invalid func" or "cannot use
    helper" proves it does not (for that program type).
    """
    program_type = program_type or _HELPERS[helper]
    step = f"call bpf_{helper} from a {program_type} program"
    try:
        _load_minimal(program_type, (asm.call(helper), *RETURN_0)).close()
    except BpfError as e:
        if e.errno in (errno.EINVAL, errno.EACCES) and not any(
                s in e.log for s in _UNKNOWN_HELPER):
            return Probe(True, detail=f"{step}: known to the verifier")
        return Probe(False, f"{step}: {_why(e)}")
    return Probe(True, detail=step)


def _attach(load: Callable[[], Program], attach: Callable[[Program], object]):
    """Load then attach; returns (link, program) for :func:`_try` to close in that order."""
    prog = load()
    try:
        link = attach(prog)
    except BaseException:
        prog.close()
        raise
    return link, prog


@cache
def have_attach(method: str) -> Probe:
    """Attach methods for syscalls: syscall_tracepoint, raw_tracepoint, tp_btf, kprobe."""
    tries = {
        "syscall_tracepoint": ("attach a tracepoint program to syscalls:sys_enter_getppid "
                               "(perf_event_open + BPF_LINK_CREATE, ioctl fallback)",
                               lambda: _attach(lambda: _load_minimal("tracepoint"),
                                               lambda p: attach_tracepoint(
                                                   p, "syscalls", "sys_enter_getppid"))),
        "raw_tracepoint": ("BPF_RAW_TRACEPOINT_OPEN sys_enter",
                           lambda: _attach(lambda: _load_minimal("raw_tracepoint"),
                                           lambda p: attach_raw_tracepoint(p, "sys_enter"))),
        "tp_btf": ("attach a tp_btf program to sys_enter",
                   lambda: _attach(lambda: _load_minimal("tp_btf"), attach_tracing)),
        "kprobe": ("attach a kprobe program to do_unlinkat",
                   lambda: _attach(lambda: _load_minimal("kprobe"),
                                   lambda p: attach_kprobe(p, "do_unlinkat"))),
    }
    step, action = tries[method]
    return _try(step, action)


def _override_kprobe() -> Probe:
    step = "kprobe + bpf_override_return on __x64_sys_getppid"
    if not os.path.exists(KPROBE_PMU):
        return Probe(False, f"{step}: CONFIG_KPROBES off: no kprobe PMU at {KPROBE_PMU}")
    helper = have_helper("override_return", "kprobe")
    if not helper:
        return Probe(False, f"{step}: {helper.reason} (CONFIG_BPF_KPROBE_OVERRIDE off)")
    insns = (asm.mov(R2, -errno.EPERM), asm.call("override_return"), *RETURN_0)
    return _try(step, lambda: _attach(lambda: Program.load(ProgType.KPROBE, insns),
                                      lambda p: attach_kprobe(p, "__x64_sys_getppid")))


def _override_trampoline(kind: str) -> Probe:
    probe = have_program_type(kind)
    if not probe:
        reason = probe.reason
        if "EPERM" in reason:
            reason += _ftrace_evidence()
        return Probe(False, reason)
    return _try(f"attach: {probe.detail}",
                lambda: _attach(lambda: _load_minimal(kind), attach_tracing))


def _ftrace_evidence() -> str:
    path = "/sys/kernel/tracing/available_filter_functions"
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        return f"; {path} is closed too ({errno.errorcode.get(e.errno, e.errno)}): " \
               "ftrace function hooks are not available to us"
    return ""


@dataclass(frozen=True)
class Features:
    """Everything the probe found, grouped the way callers ask."""

    program_types: dict[str, Probe]
    map_types: dict[str, Probe]
    helpers: dict[str, Probe]
    attach: dict[str, Probe]
    syscall_override: dict[str, Probe]

    @property
    def can_change_syscall_result(self) -> bool:
        return any(self.syscall_override.values())

    def render(self) -> str:
        """Human text, one line per probe."""
        out = []
        for title, group in (("program types", self.program_types),
                             ("map types", self.map_types), ("helpers", self.helpers),
                             ("attach methods", self.attach),
                             ("ways to change a syscall's result", self.syscall_override)):
            out.append(f"{title}:")
            width = max(map(len, group))
            out.extend(f"  {name:<{width}}  {probe}" for name, probe in group.items())
        return "\n".join(out)


@cache
def probe() -> Features:
    """Probe everything once per process, in a child process: the BTF parse some
    probes need costs ~30 MB a daemon would otherwise keep."""
    return in_child(_probe)


def _probe() -> Features:
    return Features(
        program_types={name: have_program_type(name) for name in _PROGRAM_TYPES},
        map_types={name: have_map_type(name) for name in _MAP_TYPES},
        helpers={name: have_helper(name) for name in _HELPERS},
        attach={name: have_attach(name) for name in
                ("syscall_tracepoint", "raw_tracepoint", "tp_btf", "kprobe")},
        syscall_override={
            "kprobe_override_return": _override_kprobe(),
            "fmod_ret": _override_trampoline("fmod_ret"),
            "lsm": _override_trampoline("lsm"),
        },
    )
