"""Per-process syscall tracing with seccomp + ptrace, standard library only.

Knows nothing about rules: an engine builds a :class:`Policy` (which calls stop, which
fail in the kernel) and a :class:`Consumer` (what to do at each stop), and a
:class:`Tracer` runs the processes.

Modules, one concern each: ``sys`` (raw ptrace), ``seccomp`` (cBPF filters),
``memory`` (tracee memory), ``proc`` (/proc facts), ``events`` (calls, decisions,
consumer), ``tracer`` (the wait loop).

REWRITE of a string argument: the new bytes are copied below the calling thread's stack
pointer, past the 128-byte red zone, and the argument register is pointed at them (see
:meth:`TraceeMemory.place_below_stack` for why that is safe while the call runs).
"""

from syscalltrack.ptrace.events import (
    Action,
    Consumer,
    Decision,
    ProcessEvent,
    Syscall,
)
from syscalltrack.ptrace.memory import MemoryAccessError, TraceeMemory
from syscalltrack.ptrace.proc import Credentials
from syscalltrack.ptrace.seccomp import (
    RET_ALLOW,
    RET_KILL_PROCESS,
    RET_TRACE,
    ArgCondition,
    ErrnoRule,
    Filter,
    Policy,
    ret_errno,
)
from syscalltrack.ptrace.sys import PtraceError
from syscalltrack.ptrace.tracer import SpawnError, Tracer

__all__ = [
    "RET_ALLOW",
    "RET_KILL_PROCESS",
    "RET_TRACE",
    "Action",
    "ArgCondition",
    "Consumer",
    "Credentials",
    "Decision",
    "ErrnoRule",
    "Filter",
    "MemoryAccessError",
    "Policy",
    "ProcessEvent",
    "PtraceError",
    "SpawnError",
    "Syscall",
    "TraceeMemory",
    "Tracer",
    "ret_errno",
]
