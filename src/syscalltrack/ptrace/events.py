"""What the tracer tells its consumer, and what the consumer answers.

A consumer sees one :class:`Syscall` per stopped call and returns a :class:`Decision`;
the tracer carries the decision out.  The consumer never touches ptrace itself.
"""

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from syscalltrack.ptrace import proc
from syscalltrack.ptrace.memory import TraceeMemory


class Action(enum.Enum):
    CONTINUE = "continue"
    FAIL = "fail"
    KILL = "kill"
    SUSPEND = "suspend"


_NO_REWRITE: Mapping[int, int | bytes] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a stopped call.

    ``want_exit`` asks for :meth:`Consumer.on_exit` (it costs a second stop);
    a FAIL skips the call, which then returns ``retval`` (``-errno``, 0, or any value);
    ``rewrite`` maps argument index → new integer, or bytes placed in the tracee's
    memory (a NUL is appended) whose address becomes the argument.
    """

    action: Action = Action.CONTINUE
    want_exit: bool = False
    retval: int = 0
    rewrite: Mapping[int, int | bytes] = field(default_factory=lambda: _NO_REWRITE)

    @classmethod
    def proceed(cls, want_exit: bool = False,
                rewrite: Mapping[int, int | bytes] | None = None) -> "Decision":
        if not rewrite:
            return CONTINUE_TO_EXIT if want_exit else CONTINUE
        return cls(Action.CONTINUE, want_exit, 0, MappingProxyType(dict(rewrite)))

    @classmethod
    def fail(cls, errno: int, want_exit: bool = False) -> "Decision":
        """Skip the call; it returns ``-errno`` (``0`` = pretend it succeeded)."""
        if not 0 <= errno <= 4095:
            raise ValueError(f"errno {errno} out of range 0..4095")
        return cls(Action.FAIL, want_exit, -errno)

    @classmethod
    def returning(cls, retval: int, want_exit: bool = False) -> "Decision":
        """Skip the call; it returns ``retval`` as is (a fake result such as 5)."""
        return cls(Action.FAIL, want_exit, retval)

    @classmethod
    def kill(cls) -> "Decision":
        return KILL

    @classmethod
    def suspend(cls) -> "Decision":
        """Stop the process before the call and detach, so a debugger can attach."""
        return SUSPEND


CONTINUE = Decision()
CONTINUE_TO_EXIT = Decision(want_exit=True)
KILL = Decision(Action.KILL)
SUSPEND = Decision(Action.SUSPEND)


class Syscall(NamedTuple):
    """One call as the kernel reported it at a stop.

    ``nr`` is the number within ``abi`` (``x86_64``, ``i386`` or ``x32``; x32 numbers
    without the x32 bit); ``args`` are six unsigned integers (32-bit for i386);
    ``stage`` is ``"seccomp"`` (stopped by our filter) or ``"entry"`` (syscall-entry
    stop of an attached process).  The helpers read the tracee as it is now: call them
    from ``on_entry``/``on_exit``, while it is stopped.  ``memory`` and ``task`` belong to
    the calling thread and live as long as the tracer traces it.

    A named tuple: the tracer makes one at every stop of a call's entry, with
    ``tuple.__new__`` and no ``__init__`` to run.
    """

    pid: int
    tid: int
    abi: str
    arch: int
    nr: int
    args: tuple[int, ...]
    ip: int
    sp: int
    stage: str
    memory: TraceeMemory
    task: proc.Task

    def __repr__(self) -> str:
        args = ", ".join(hex(a) for a in self.args)
        return f"Syscall(pid={self.pid}, tid={self.tid}, {self.abi}:{self.nr}({args}))"

    def read_string(self, index: int, limit: int = 4096) -> bytes:
        """The NUL-terminated string argument ``index`` (MemoryAccessError if unreadable)."""
        return self.memory.read_string(self.args[index], limit)[0]

    def credentials(self) -> proc.Credentials:
        return proc.credentials(self.tid)

    def ppid(self) -> int:
        return proc.ppid(self.pid)

    def comm(self) -> str:
        return self.task.comm().decode("utf-8", "replace")

    def cwd(self) -> str:
        """The calling thread's cwd (a thread may have its own: unshare(CLONE_FS))."""
        return self.task.readlink(b"cwd")

    def fd_path(self, fd: int) -> str:
        """What the calling thread's fd refers to (its table may be its own: CLONE_FILES)."""
        return self.task.readlink(b"fd/%d" % fd)


@dataclass(frozen=True, slots=True)
class ProcessEvent:
    """A change in the traced tree.

    ``kind``: ``fork``/``vfork``/``clone`` (``child`` is the new tid), ``exec``,
    ``exit`` (``status`` is the raw wait status), ``suspended`` (left stopped and
    detached), ``detached``.
    """

    kind: str
    pid: int
    tid: int
    child: int | None = None
    status: int | None = None

    @property
    def exit_code(self) -> int | None:
        """Shell-style code: the exit status, or 128 + the killing signal."""
        if self.status is None:
            return None
        if os.WIFSIGNALED(self.status):
            return 128 + os.WTERMSIG(self.status)
        return os.WEXITSTATUS(self.status)


class Consumer:
    """Base consumer: lets every call run and ignores the rest; override what you need."""

    def on_entry(self, call: Syscall) -> Decision | None:
        return None

    def on_exit(self, call: Syscall, retval: int) -> None:
        """``retval`` is the raw return value: ``-errno`` on failure."""

    def on_process_event(self, event: ProcessEvent) -> None:
        pass

    def on_rewrite_error(self, call: Syscall, error: OSError) -> None:
        """A REWRITE could not be placed; the call was failed with EFAULT instead."""

    def on_suspended_wait(self, pids: list[int]) -> None:
        """Nothing is traced any more, but these suspended processes live on.

        :meth:`Tracer.run` returns only once they have exited (or it is interrupted).
        """

    def after_stop(self) -> None:
        """Called by :meth:`Tracer.run` once a stop is dealt with and the tracee let go.

        Work that need not keep the tracee stopped (rendering and writing a log line)
        belongs here: it then overlaps with the tracee running.
        """
