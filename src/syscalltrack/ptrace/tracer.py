"""The tracer: owns a tree of tracees, runs the wait loop, carries out decisions.

Two modes per tracee.  *seccomp*: the process was spawned under our filter; only the
calls the filter names stop it (``PTRACE_EVENT_SECCOMP``), and it is restarted with
``PTRACE_CONT`` unless the consumer wants the call's exit.  *syscall*: the process was
attached (it has no filter of ours) or spawned without a policy; it stops at every
entry and exit (``PTRACE_SYSCALL``), and an optional policy is evaluated in Python.

Invariant: after :meth:`Tracer.run` or :meth:`Tracer.close` no process is left stopped
or traced by us; spawned processes are killed (``EXITKILL`` covers our own death),
attached ones are detached and keep running.  The one exception is on purpose: a process
a SUSPEND decision stopped.  ``run`` waits until it exits; ``close`` kills it if we
spawned it, and leaves it stopped if we attached to it.
"""

import contextlib
import ctypes
import errno as _errno
import os
import resource
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from syscalltrack.ptrace import proc
from syscalltrack.ptrace import sys as pt
from syscalltrack.ptrace.events import (
    CONTINUE,
    CONTINUE_TO_EXIT,
    Action,
    Consumer,
    Decision,
    ProcessEvent,
    Syscall,
)
from syscalltrack.ptrace.memory import StackRoomError, TraceeMemory, below_stack
from syscalltrack.ptrace.seccomp import (
    RET_ACTION_MASK,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    RET_KILL_THREAD,
    Policy,
)

_WALL = 0x40000000
_WALL_NOHANG = _WALL | os.WNOHANG
# How long run() polls for the next stop before it sleeps in waitpid, and how its
# credit counts (see _next_stop).
SPIN_NS = 50_000
_CREDIT_MAX = 16
_LATE_COST = 4
_FLOOR_MAX = 4096
_NOTHING = (0, 0)  # waitpid's answer when no child has changed state
_SYSCALL_TRAP = signal.SIGTRAP | 0x80
_SECCOMP_STOP = pt.EVENT_SECCOMP << 8 | signal.SIGTRAP  # status >> 8 at a seccomp stop
_STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_U64 = 0xFFFFFFFFFFFFFFFF
_NR_EXECVE = 59
_NR_EXECVEAT = 322

_COMMON = (pt.O_TRACESYSGOOD | pt.O_TRACEFORK | pt.O_TRACEVFORK | pt.O_TRACECLONE
           | pt.O_TRACEEXEC)
SPAWN_OPTIONS = _COMMON | pt.O_TRACESECCOMP | pt.O_EXITKILL
# Attached processes must outlive us, so no EXITKILL; they have no filter of ours.
ATTACH_OPTIONS = _COMMON

_EVENT_KINDS = {pt.EVENT_FORK: "fork", pt.EVENT_VFORK: "vfork", pt.EVENT_CLONE: "clone"}
# Bound once: used at every stop.
_get_syscall_info = pt.get_syscall_info
_restart_to_next_call = pt.syscall
_new = tuple.__new__
_unpack_head = pt.SYSCALL_INFO_HEAD.unpack_from
_unpack_op_rval = pt.SYSCALL_INFO_OP_RVAL.unpack_from
_ARCH_X86_64 = pt.AUDIT_ARCH_X86_64
_X32_BIT = pt.X32_SYSCALL_BIT
_CONTINUE, _FAIL = Action.CONTINUE, Action.FAIL  # (an enum member lookup: ~0.1 µs in 3.11)


class SpawnError(OSError):
    """The command could not be started (the errno is the one exec or setup failed with)."""


class _Tracee:
    """Per-thread state.  ``detach`` is None, or the signal to leave it with at its next stop."""

    __slots__ = ("detach", "doomed", "force_ret", "memory", "owned", "pending", "policy",
                 "pre_exec", "restore", "rewind", "started", "syscall_mode", "task", "tgid",
                 "tid")

    def __init__(self, tid: int, tgid: int, syscall_mode: bool, owned: bool,
                 policy: Policy | None, started: bool):
        self.tid = tid
        self.tgid = tgid
        self.syscall_mode = syscall_mode
        self.owned = owned
        self.policy = policy
        self.started = started
        self.pending: Syscall | None = None  # call whose exit the consumer wants
        self.force_ret: int | None = None  # return value to impose at the exit stop
        # {register: original value} of a REWRITE, to put back at the call's exit stop
        self.restore: dict[str, int] | None = None
        self.pre_exec = False  # spawned child still running our setup code
        self.detach: int | None = None
        self.rewind = False  # on detach at an entry, back up so the call runs later
        self.doomed = False  # killed; just let it die
        self.memory = TraceeMemory(tid)
        self.task = proc.Task(tid, tgid)


class Tracer:
    """Traces spawned and attached processes for one :class:`Consumer`.

    Use as a context manager (or call :meth:`close`) so nothing is left traced when
    the caller fails.
    """

    def __init__(self, consumer: Consumer | None = None, spin_ns: int = SPIN_NS):
        """`spin_ns`: how long to poll for a stop that is coming soon before sleeping
        (0: always sleep; see `_next_stop`)."""
        self.consumer = consumer or Consumer()
        self.spin_ns = spin_ns
        self._tracees: dict[int, _Tracee] = {}
        self._orphans: dict[int, int] = {}  # tid → wait status, stopped before its parent's event
        self._main_pid: int | None = None
        self._spawned: set[int] = set()  # every process of the trees we started
        self.exit_code = 0
        self.suspended: list[int] = []
        # suspended pid → (pidfd, spawned by us), until it has exited
        self._suspended_fds: dict[int, tuple[int, bool]] = {}
        self._stop_signal = 0
        self._stop_requested = False
        self._wake_w = -1  # written by stop() to end the wait for suspended processes
        self._interrupted = 0  # the first SIGINT/SIGTERM/SIGHUP, left to the command
        self._to_relay = 0  # that signal, until we know whether the command got it too
        self._took_signal: set[int] = set()  # command processes seen taking it meanwhile
        self._info = ctypes.create_string_buffer(pt.SYSCALL_INFO_SIZE)
        self._regs = pt.UserRegs()
        self._nofile = _more_descriptors()

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def tracees(self) -> list[int]:
        return sorted(self._tracees)

    # ------------------------------------------------------------ starting

    def spawn(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | None = None, seccomp_policy: Policy | None = None,
              stdout: int | None = None, stderr: int | None = None) -> int:
        """Start ``argv`` traced; returns its pid once it has exec'd.

        With a policy the child installs its compiled filter just before exec (seccomp
        mode); without one it is traced at every call (syscall mode).  ``stdout`` and
        ``stderr`` are file descriptors to give the command instead of ours.  Callbacks for the
        exec call itself run inside this method.  Raises SpawnError if exec fails.
        """
        env = dict(os.environ if env is None else env)
        path = argv[0]
        if "/" not in path:
            found = shutil.which(path, path=env.get("PATH", os.defpath))
            if found is None:
                raise SpawnError(_errno.ENOENT, f"{path}: command not found", path)
            path = found
        filt = seccomp_policy.compile() if seccomp_policy is not None else None
        go_r, go_w = os.pipe()
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            _child(go_r, go_w, err_r, err_w, path, list(argv), env, cwd, filt,
                   {1: stdout, 2: stderr}, self._nofile)
        os.close(go_r)
        os.close(err_w)
        try:
            try:
                pt.seize(pid, SPAWN_OPTIONS)
            except OSError:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise
            t = _Tracee(pid, pid, filt is None, True, None, True)
            t.pre_exec = True
            self._tracees[pid] = t
            self._spawned.add(pid)
            if self._main_pid is None:
                self._main_pid = pid
            if t.syscall_mode:
                pt.interrupt(pid)  # a first stop, to restart it with PTRACE_SYSCALL
            os.write(go_w, b"g")
            os.close(go_w)
            go_w = -1
            while pid in self._tracees and self._tracees[pid].pre_exec:
                wpid, status = os.waitpid(pid, _WALL)
                self._handle(wpid, status)
            if pid not in self._tracees or self._tracees[pid].pre_exec:
                if self._main_pid == pid:
                    self._main_pid = None
                raise _spawn_error(os.read(err_r, 512), path)
        finally:
            if go_w >= 0:
                os.close(go_w)
            os.close(err_r)
        return pid

    def attach(self, pid: int, policy: Policy | None = None) -> list[int]:
        """Seize ``pid`` and all its threads (re-scanning until no new one appears).

        The process keeps running; it is traced in syscall mode, and ``policy`` (if
        given) decides in Python which calls reach the consumer.  Returns the tids.
        """
        attached: list[int] = []
        while True:
            try:
                tids = [t for t in proc.threads(pid) if t not in self._tracees]
            except FileNotFoundError:
                raise ProcessLookupError(_errno.ESRCH, f"no process {pid}") from None
            new = False
            for tid in tids:
                try:
                    pt.seize(tid, ATTACH_OPTIONS)
                except pt.PtraceError as exc:
                    if exc.errno == _errno.ESRCH:
                        continue  # exited meanwhile
                    if exc.errno == _errno.EPERM and attached and _traced_by_us(tid):
                        continue  # auto-attached by a thread we already hold
                    raise
                self._tracees[tid] = _Tracee(tid, pid, True, False, policy, True)
                attached.append(tid)
                pt.interrupt(tid)
                new = True
            if not new:
                return attached

    # ------------------------------------------------------------ the loop

    def run(self, handle_signals: bool = True) -> int:
        """Trace until no tracee is left and every process a SUSPEND stopped has exited.

        Returns the first spawned command's exit code.  With ``handle_signals`` (main
        thread only), SIGINT, SIGTERM and SIGHUP let the command clean up: the first one,
        while a command we spawned runs, is the command's to handle (sent on to it unless
        it got the signal too, as a Ctrl-C reaches the whole foreground process group) and
        tracing goes on.  A second one, or one with no spawned command left, ends tracing:
        spawned processes are killed, attached ones detached, and run returns 128 + signal.
        A signal ignored when run starts (nohup) stays ignored.
        """
        old = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in _INTERRUPTS:
                if signal.getsignal(sig) != signal.SIG_IGN:
                    old[sig] = signal.signal(sig, self._on_signal)
        # Bound once: this loop runs twice per traced call.
        tracees, orphans, next_stop = self._tracees, self._orphans, self._next_stop()
        handle, after_stop = self._handle, self.consumer.after_stop
        try:
            while tracees or orphans:
                if self._stop_requested:
                    break
                try:
                    pid, status = next_stop()
                except ChildProcessError:
                    break
                handle(pid, status)
                after_stop()
                if self._to_relay:
                    self._relay_signal()
            self._wait_for_suspended()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.close()
        if self._stop_signal:
            return 128 + self._stop_signal
        return self.exit_code

    def _next_stop(self) -> Callable[[], tuple[int, int]]:
        """waitpid(-1) that polls for a while before it sleeps, while stops come fast.

        A tracer asleep in waitpid is woken by the tracee's stop from another CPU: on
        this VM that wake-up cost more than all of sctrace's work at a stop (W2 of
        bench/sctrace.py by hand: 2.5-2.7 s sleeping, 1.9-2.4 s polling up to 50 µs).
        So the wait polls (WNOHANG) for up to `spin_ns` first while most recent stops
        came within `spin_ns` of our waiting for them: a saturating credit, one up for
        each such stop, `_LATE_COST` down for each later one, so that a command whose
        traced calls come further apart than that (even with their quick exit stops
        between) soon stops paying for vain polls; a late stop we polled for sets it
        to a floor that doubles with each such stop (up to `_FLOOR_MAX`) until one is
        found in time (with both CPUs busy, polling cost as much as sleeping). Each
        vain poll yields the CPU: a tracee woken on ours would otherwise wait for the
        polling to end (a command calling every 70 µs ran ~15% slower polling than
        sleeping without the yield, as fast with it). Polling turns on only with two
        CPUs or more to run on (asked again each time it turns on): on one, it would
        hold the tracee off its CPU.
        """
        spin_ns, clock, waitpid, yield_cpu = (self.spin_ns, time.monotonic_ns, os.waitpid,
                                              os.sched_yield)
        if not spin_ns:
            return lambda: waitpid(-1, _WALL)
        credit, floor = 0, _CREDIT_MAX

        def next_stop() -> tuple[int, int]:
            nonlocal credit, floor
            started = clock()
            found = _NOTHING
            polled = credit > 0
            if polled:
                end = started + spin_ns
                while True:
                    found = waitpid(-1, _WALL_NOHANG)
                    if found[0] or clock() >= end:
                        break
                    yield_cpu()  # (to the tracee, if it was woken on our CPU)
            if not found[0]:
                found = waitpid(-1, _WALL)
            if clock() - started >= spin_ns:
                if polled:  # in vain, and a yield on a busy CPU can last a time slice:
                    credit = -floor  # no polling for a while, twice as long each time
                    floor = min(2 * floor, _FLOOR_MAX)
                elif credit > -_CREDIT_MAX:
                    credit = max(credit - _LATE_COST, -_CREDIT_MAX)
            else:
                if polled:
                    floor = _CREDIT_MAX
                if credit < _CREDIT_MAX:
                    credit += 1
                    if credit == 1 and len(os.sched_getaffinity(0)) < 2:
                        credit = -floor  # (one CPU now: ask again after as many stops)
            return found

        return next_stop

    def stop(self) -> None:
        """End :meth:`run` at the next stop: safe from a callback or a signal handler.

        Tracees are interrupted so that a blocked ``waitpid`` returns, and the wait for
        suspended processes is woken.
        """
        self._stop_requested = True
        for tid in list(self._tracees):
            with contextlib.suppress(OSError):
                pt.interrupt(tid)
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")

    def _on_signal(self, sig: int, frame) -> None:
        """The first signal is the command's (see :meth:`run`); a second one ends tracing.

        The same signal again before the first was sent on (or found to have reached the
        command) is the first one sent twice, not a second one: timeout(1) sends it to its
        child (us), then at once to its whole process group.
        """
        if sig == self._to_relay:
            return
        command = self._command()
        if self._interrupted or not command:
            self._stop_signal = sig
            self.stop()
            return
        self._interrupted = self._to_relay = sig
        # The loop decides whether to relay it; a stop makes a blocked waitpid return.
        for t in list(self._tracees.values()):
            if t.tgid in command:
                with contextlib.suppress(OSError):
                    pt.interrupt(t.tid)
                break

    def _command(self) -> set[int]:
        """The processes a signal meant for the command goes to: the first one we spawned
        while we trace it, else every spawned process we still trace."""
        spawned = {t.tgid for t in self._tracees.values()
                   if t.owned and not t.doomed and t.detach is None}
        return {self._main_pid} if self._main_pid in spawned else spawned

    def _relay_signal(self) -> None:
        """Send the first signal on to the command, unless the command got it too.

        ``kill`` to our pid alone (timeout(1), systemd) reaches only us; a Ctrl-C or a
        ``kill -INT -PGID`` reaches the command as well, and twice would be one too many.
        A SIGINT while our group is its terminal's foreground group is taken for a
        Ctrl-C; other signals are looked for in the command.
        """
        sig = self._to_relay
        if not (sig == signal.SIGINT and _in_terminal_foreground()):
            for tgid in self._missed_by(sig):
                _kill(tgid, sig)
        self._to_relay = 0
        self._took_signal.clear()

    def _missed_by(self, sig: int) -> set[int]:
        """The command's processes that did not get ``sig``.

        One that got it has it pending, or took it at a signal-delivery stop: pending sets
        are read first, then the stops already there are collected, so that a signal
        taken in between is seen at its stop.  (One taken with sigwait or a signalfd
        leaves no trace.)
        """
        command = self._command()
        threads: dict[int, list[int]] = {tgid: [] for tgid in command}
        for t in self._tracees.values():
            if t.tgid in command:
                threads[t.tgid].append(t.tid)
        reached = {tgid for tgid, tids in threads.items() if _signal_pending(tgid, tids, sig)}
        for tid in [tid for tids in threads.values() for tid in tids]:
            try:
                pid, status = os.waitpid(tid, os.WNOHANG | _WALL)
            except ChildProcessError:
                continue
            if pid:
                self._handle(pid, status)
                self.consumer.after_stop()
        return command - reached - self._took_signal

    def _wait_for_suspended(self) -> None:
        """Stay until every process a SUSPEND stopped has exited, or :meth:`stop`.

        Were we to exit first, the stopped process's group could be left with no member
        whose parent is outside it (an orphaned process group), and the kernel would send
        it SIGHUP and SIGCONT: killed or resumed before the user could debug it.
        """
        if self._stop_requested or not self._suspended_fds:
            return
        wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
        by_fd = {fd: pid for pid, (fd, _) in self._suspended_fds.items()}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        told = False
        try:
            while by_fd and not self._stop_requested:
                ready = poller.poll(None if told else 0)  # first, those that exited already
                for fd, _ in ready:
                    if fd in by_fd:
                        poller.unregister(fd)
                        self._reap_suspended(by_fd.pop(fd))
                if not ready and not told:
                    self.consumer.on_suspended_wait(sorted(by_fd.values()))
                    told = True
        finally:
            wake_w, self._wake_w = self._wake_w, -1
            os.close(wake_w)
            os.close(wake_r)

    def _reap_suspended(self, pid: int) -> None:
        """Forget a suspended process that has exited (or is dying); reap it if it is our child."""
        fd, _ = self._suspended_fds.pop(pid)
        try:
            result = os.waitid(os.P_PIDFD, fd, os.WEXITED)
        except ChildProcessError:
            result = None  # not our child (or reaped by the tracing loop already)
        finally:
            os.close(fd)
        if result is not None and pid == self._main_pid:
            self.exit_code = (result.si_status if result.si_code == os.CLD_EXITED
                              else 128 + result.si_status)

    def close(self) -> None:
        """Kill what we spawned, detach what we attached, and reap until nothing is ours.

        Suspended processes we spawned are killed too; attached ones stay stopped.
        """
        for t in list(self._tracees.values()):
            if t.owned:
                t.doomed = True
                _kill(t.tgid)
            elif t.detach is None:
                t.detach = 0
                try:
                    pt.interrupt(t.tid)
                except OSError:
                    self._forget(t.tid)
        while self._tracees:
            try:
                pid, status = os.waitpid(-1, _WALL)
            except ChildProcessError:
                for tid in list(self._tracees):
                    self._forget(tid)
                break
            self._handle(pid, status)
        for tid in list(self._orphans):
            self._adopt_orphan(tid, None)
        for pid, (fd, spawned) in list(self._suspended_fds.items()):
            if spawned:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                self._reap_suspended(pid)
            else:
                del self._suspended_fds[pid]
                os.close(fd)

    # ------------------------------------------------------------ stops

    def _handle(self, pid: int, status: int) -> None:
        t = self._tracees.get(pid)
        if status & 0xFF != 0x7F:  # not WIFSTOPPED
            self._exited(pid, t, status)
            return
        if t is None:
            self._orphans[pid] = status
            return
        stop = status >> 8  # the two common stops first: one comparison each
        if stop == _SECCOMP_STOP and t.detach is None and not t.doomed:
            self._entry(t, "seccomp")
            return
        if stop == _SYSCALL_TRAP and t.detach is None and not t.doomed:
            self._syscall_stop(t)
            return
        sig = stop & 0xFF
        event = status >> 16
        if t.detach is not None:
            self._detach_at_stop(t, sig, event)
        elif t.doomed:
            self._resume(t)
        elif event == pt.EVENT_SECCOMP:
            self._entry(t, "seccomp")
        elif sig == _SYSCALL_TRAP:
            self._syscall_stop(t)
        elif event:
            self._event_stop(t, event, sig)
        else:
            if sig == self._to_relay:
                self._took_signal.add(t.tgid)
            self._resume(t, sig)  # signal-delivery stop: pass the signal on

    def _resume(self, t: _Tracee, sig: int = 0) -> None:
        try:
            if (t.syscall_mode or t.pending is not None or t.force_ret is not None
                    or t.restore is not None):
                pt.syscall(t.tid, sig)
            else:
                pt.cont(t.tid, sig)
        except pt.PtraceError as exc:
            if exc.errno != _errno.ESRCH:
                raise

    def _read_info(self, t: _Tracee) -> bool:
        """The stop's ptrace_syscall_info into self._info; False if the thread vanished."""
        try:
            _get_syscall_info(t.tid, self._info)
        except pt.PtraceError as exc:
            if exc.errno == _errno.ESRCH:
                return False
            raise
        return True

    def _syscall_stop(self, t: _Tracee) -> None:
        if not self._read_info(t):
            return
        op, rval = _unpack_op_rval(self._info)
        if op == pt.OP_EXIT:
            self._exit(t, rval)
        elif op == pt.OP_ENTRY and t.syscall_mode:
            self._entry(t, "entry", have_info=True)
        else:
            self._resume(t)

    def _exit(self, t: _Tracee, rval: int) -> None:
        if t.force_ret is not None:
            rval = t.force_ret
            t.force_ret = None
            self._set_return(t, rval)
        if t.restore is not None:
            # Before the consumer hears of the exit, not after: the call is over, and
            # whatever on_exit does (raise, stop() the tracer, which then detaches or
            # kills) the thread must not be left holding the scratch copy's address.
            # The consumer's Syscall already carries the arguments as they were.
            self._restore_args(t)
        call, t.pending = t.pending, None
        if call is not None:
            self.consumer.on_exit(call, rval)
        self._resume(t)

    def _entry(self, t: _Tracee, stage: str, have_info: bool = False) -> None:
        if not have_info:
            try:  # (_read_info, inlined: this runs at every stop)
                _get_syscall_info(t.tid, self._info)
            except pt.PtraceError as exc:
                if exc.errno == _errno.ESRCH:
                    return
                raise
        info = _unpack_head(self._info)  # op, reserved, flags, arch, ip, sp, nr, args[6]
        arch = info[3]
        nr = info[6]
        args = info[7:]
        if arch == _ARCH_X86_64:
            if nr & _X32_BIT and nr < 0x80000000:
                abi, nr = "x32", nr & ~_X32_BIT
            else:
                abi = "x86_64"
        elif arch == pt.AUDIT_ARCH_I386:
            abi = "i386"
            args = tuple([a & 0xFFFFFFFF for a in args])
        else:
            abi = hex(arch)
        call = _new(Syscall, (t.tgid, t.tid, abi, arch, nr, args, info[4], info[5], stage,
                              t.memory, t.task))
        if t.pre_exec and not (
                call.abi == "x86_64" and call.nr in (_NR_EXECVE, _NR_EXECVEAT)):
            self._resume(t)  # our own setup code between fork and exec
            return
        if t.policy is not None:
            verdict = t.policy.decide(call.abi, call.nr, call.args)
            if verdict == RET_ALLOW:
                self._resume(t)
                return
            if verdict & RET_ACTION_MASK == RET_ERRNO:
                self._apply(t, call, Decision.fail(verdict & 0xFFFF))
                return
            if verdict in (RET_KILL_PROCESS, RET_KILL_THREAD):
                self._apply(t, call, Decision.kill())
                return
        self._apply(t, call, self.consumer.on_entry(call) or CONTINUE)

    def _apply(self, t: _Tracee, call: Syscall, d: Decision) -> None:
        if d is CONTINUE_TO_EXIT:  # the usual answer for a logged call: nothing to change
            t.pending = call
            try:  # (_resume, inlined: with a call pending it restarts to the exit stop)
                _restart_to_next_call(t.tid, 0)
            except pt.PtraceError as exc:
                if exc.errno != _errno.ESRCH:
                    raise
            return
        action = d.action
        if action is _CONTINUE:
            if d.rewrite and not self._rewrite(t, call, d.rewrite):
                self._fail(t, _errno.EFAULT)
        elif action is _FAIL:
            self._fail(t, -d.retval)
        elif action is Action.KILL:
            self._skip_call(t)
            _kill(t.tgid)
            t.doomed = True
            return  # SIGKILL wakes it; nothing to restart
        else:
            self._suspend(t)
            return
        if d.want_exit:
            t.pending = call
        self._resume(t)

    # ------------------------------------------------------------ register surgery

    def _fail(self, t: _Tracee, err: int) -> None:
        """Skip the call (orig_rax = -1) with rax = -err: one stop is enough at seccomp."""
        pt.skip_call(t.tid, -err)
        if t.syscall_mode:
            t.force_ret = -err  # an entry stop's exit path may reset rax: impose it again

    def _skip_call(self, t: _Tracee) -> None:
        with contextlib.suppress(pt.PtraceError):
            pt.pokeuser(t.tid, pt.ORIG_RAX, _U64)

    def _set_return(self, t: _Tracee, rval: int) -> None:
        pt.pokeuser(t.tid, pt.RAX, rval & _U64)

    def _rewrite(self, t: _Tracee, call: Syscall, changes: Mapping[int, int | bytes]) -> bool:
        """Change the call's arguments; False (nothing written) if a string has nowhere to go.

        Strings are copied below the stack pointer (see ``place_below_stack``), each below
        the one before.  Every copy is checked before anything is written: it must fit in
        the caller's stack, and for an i386 call below 4 GiB (a 32-bit register holds the
        address).  The registers changed are kept in ``t.restore`` and put back at the
        call's exit stop: the kernel preserves them across a syscall, and inline-syscall
        code relies on that.
        """
        r = self._regs
        pt.getregs(t.tid, r)
        names = pt.ARG_REGS_I386 if call.abi == "i386" else pt.ARG_REGS_X86_64
        top = sp = r.rsp
        new: dict[str, int] = {}
        copies: list[tuple[int, bytes]] = []
        try:
            for index, value in sorted(changes.items()):
                if isinstance(value, bytes):
                    data = value if value.endswith(b"\0") else value + b"\0"
                    value = sp = below_stack(sp, len(data))  # a second string goes below
                    if call.abi == "i386" and value + len(data) > 1 << 32:
                        raise StackRoomError(
                            f"the copy's address {value:#x} on the caller's stack does not "
                            f"fit in 32 bits (the register of an i386 call)")
                    copies.append((value, data))
                new[names[index]] = value & _U64
            if copies:
                t.memory.check_below_stack(top, sp)
            for addr, data in copies:
                t.memory.write(addr, data)
        except OSError as exc:
            self.consumer.on_rewrite_error(call, exc)
            return False
        t.restore = {name: getattr(r, name) for name in new}
        for name, value in new.items():
            setattr(r, name, value)
        pt.setregs(t.tid, r)
        return True

    def _restore_args(self, t: _Tracee) -> None:
        """Put back the argument registers a REWRITE changed (rax, the result, stays)."""
        saved, t.restore = t.restore, None
        r = self._regs
        try:
            pt.getregs(t.tid, r)
            for name, value in saved.items():
                setattr(r, name, value)
            pt.setregs(t.tid, r)
        except pt.PtraceError as exc:
            if exc.errno != _errno.ESRCH:  # died meanwhile: nothing to put back
                raise

    def _rewind(self, t: _Tracee) -> None:
        """Undo the call in progress: skip it now and point rip back at the syscall insn.

        Like the kernel's own restart: ``syscall`` and ``int $0x80`` are both 2 bytes.
        """
        r = self._regs
        pt.getregs(t.tid, r)
        r.rax = r.orig_rax
        r.orig_rax = _U64
        r.rip -= 2
        pt.setregs(t.tid, r)

    # ------------------------------------------------------------ suspend / detach

    def _suspend(self, t: _Tracee) -> None:
        """Leave the whole process stopped before this call, and not traced.

        SIGSTOP is queued with kill() rather than passed to PTRACE_DETACH, which drops
        it at a seccomp stop.  Once resumed, calls our filter traces fail with ENOSYS,
        under a debugger too: only a tracer that asks for seccomp stops
        (``PTRACE_O_TRACESECCOMP``; gdb does not) lets them run.
        """
        self._rewind(t)
        # Opened while it cannot exit: once it has, its number may name another process.
        self._suspended_fds[t.tgid] = (os.pidfd_open(t.tgid), t.owned)
        _kill(t.tgid, signal.SIGSTOP)
        self._detach(t, 0)
        self.suspended.append(t.tgid)
        self.consumer.on_process_event(ProcessEvent("suspended", t.tgid, t.tid))
        for other in list(self._tracees.values()):
            if other.tgid == t.tgid:
                other.detach = 0
                other.rewind = True
                with contextlib.suppress(OSError):
                    pt.interrupt(other.tid)

    def _detach_at_stop(self, t: _Tracee, sig: int, event: int) -> None:
        if t.restore is not None and sig == _SYSCALL_TRAP and event == 0:
            with contextlib.suppress(pt.PtraceError):
                pt.get_syscall_info(t.tid, self._info)
                if self._info.raw[0] == pt.OP_EXIT:  # a rewritten call's exit
                    self._restore_args(t)
        if t.rewind and (event == pt.EVENT_SECCOMP or sig == _SYSCALL_TRAP):
            try:
                pt.get_syscall_info(t.tid, self._info)
                if self._info.raw[0] in (pt.OP_ENTRY, pt.OP_SECCOMP):
                    self._rewind(t)
            except pt.PtraceError:
                pass
        # At a signal-delivery stop, pass the signal on rather than lose it.
        self._detach(t, sig if event == 0 and sig != _SYSCALL_TRAP else t.detach)
        if not t.rewind:
            self.consumer.on_process_event(ProcessEvent("detached", t.tgid, t.tid))

    def _detach(self, t: _Tracee, sig: int) -> None:
        try:
            pt.detach(t.tid, sig)
        except pt.PtraceError as exc:
            if exc.errno != _errno.ESRCH:
                raise
        self._forget(t.tid)

    def _forget(self, tid: int) -> _Tracee | None:
        """Stop tracking thread ``tid`` and close what was kept open for it."""
        t = self._tracees.pop(tid, None)
        if t is not None:
            t.task.close()
            t.memory.close()
        return t

    # ------------------------------------------------------------ events

    def _event_stop(self, t: _Tracee, event: int, sig: int) -> None:
        if event in _EVENT_KINDS:
            child = pt.geteventmsg(t.tid)
            tgid = child
            if event == pt.EVENT_CLONE:
                try:
                    tgid = proc.tgid(child)
                except (OSError, KeyError, ValueError):
                    tgid = child
            new = _Tracee(child, tgid, t.syscall_mode, t.owned, t.policy, False)
            if t.restore is not None:
                # A rewritten fork or clone: the child got a copy of the changed
                # registers, and has no exit stop of its own to put them back at.
                new.restore = dict(t.restore)
            if t.owned:
                self._spawned.add(tgid)
            self._tracees[child] = new
            self.consumer.on_process_event(
                ProcessEvent(_EVENT_KINDS[event], t.tgid, t.tid, child=child))
            if child in self._orphans:
                self._handle(child, self._orphans.pop(child))
        elif event == pt.EVENT_EXEC:
            former = pt.geteventmsg(t.tid)
            if former != t.tid:
                # A non-leader thread exec'd and took over the leader's tid.
                old = self._forget(former)
                if old is not None:
                    t.pending, t.force_ret = old.pending, old.force_ret
            t.restore = None  # the new program's registers: nothing of the old to restore
            t.pre_exec = False
            t.tgid = t.tid
            t.memory.exec_done()
            self.consumer.on_process_event(ProcessEvent("exec", t.tid, t.tid))
        elif event == pt.EVENT_STOP:
            if not t.started:
                t.started = True  # the first stop of an auto-attached child
                if t.restore is not None:
                    self._restore_args(t)
            elif sig in _STOP_SIGNALS:
                try:
                    pt.listen(t.tid)  # group-stop: stay stopped, but tell us about SIGCONT
                except pt.PtraceError as exc:
                    if exc.errno != _errno.ESRCH:
                        raise
                return
        self._resume(t)

    def _exited(self, pid: int, t: _Tracee | None, status: int) -> None:
        if pid == self._main_pid:  # untraced if a SUSPEND detached it
            self.exit_code = (128 + os.WTERMSIG(status) if os.WIFSIGNALED(status)
                              else os.WEXITSTATUS(status))
        if t is None:
            return
        self._forget(pid)
        if not t.pre_exec:
            self.consumer.on_process_event(ProcessEvent("exit", t.tgid, pid, status=status))
        for tid in list(self._orphans):
            self._adopt_orphan(tid, t)

    def _adopt_orphan(self, tid: int, dead: _Tracee | None) -> None:
        """A stopped child whose parent's fork event will not come: take it over.

        It inherits the settings of the tracee that just died (its likely parent); with
        no such hint (closing), it is killed if its tree was spawned by us, else detached.
        """
        try:
            parents = {proc.ppid(tid), proc.tgid(tid)}
        except (OSError, KeyError, ValueError):
            parents = set()
        if dead is not None and any(p.tgid in parents for p in self._tracees.values()):
            return  # the parent lives: its event is still to come
        status = self._orphans.pop(tid)
        if dead is None:
            if parents & self._spawned:
                _kill(tid)
            with contextlib.suppress(pt.PtraceError):
                pt.detach(tid, 0)
            return
        self._tracees[tid] = _Tracee(tid, tid, dead.syscall_mode, dead.owned, dead.policy,
                                     False)
        self._handle(tid, status)


def _traced_by_us(tid: int) -> bool:
    try:
        return proc.tracer_pid(tid) == os.getpid()
    except OSError:
        return False


def _signal_pending(tgid: int, threads: list[int], sig: int) -> bool:
    """Whether ``sig`` is pending for process ``tgid`` or for one of its ``threads``."""
    bit = 1 << (sig - 1)
    for tid in threads:
        try:
            with open(f"/proc/{tgid}/task/{tid}/status", "rb") as f:
                text = f.read()
        except OSError:
            continue  # not one of its threads, or gone
        for line in text.splitlines():
            if line.startswith((b"SigPnd:", b"ShdPnd:")) and int(line.split()[1], 16) & bit:
                return True
    return False


def _in_terminal_foreground() -> bool:
    """Whether our process group is the foreground group of our controlling terminal."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False  # no controlling terminal
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _spawn_error(report: bytes, path: str) -> SpawnError:
    """Turn the child's ``stage:errno`` report into an error naming the program."""
    stage, _, num = report.decode(errors="replace").partition(":")
    if not num.isdigit():
        return SpawnError(_errno.ECHILD, f"{path}: child exited before exec", path)
    err = int(num)
    return SpawnError(err, f"{stage} {path}: {os.strerror(err)}", path)


def _more_descriptors() -> tuple[int, int]:
    """Raise our soft RLIMIT_NOFILE to the hard one and return the limits as found.

    A descriptor or two is kept per traced thread (proc.Task), and PATH[n] opens
    directories at every stop: out of descriptors, a path would be resolved as text
    only, and a symlinked directory could go around a rule. The commands we start get
    the limits they would have had without us back (_child).
    """
    found = resource.getrlimit(resource.RLIMIT_NOFILE)
    if found[0] != found[1]:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (found[1], found[1]))
    return found


def _child(go_r, go_w, err_r, err_w, path, argv, env, cwd, filt, fds, nofile) -> None:
    """Runs in the forked child: wait to be seized, install the filter, exec.

    Any failure is written to the CLOEXEC pipe as ``stage:errno`` and the child exits
    127; a successful exec closes the pipe instead.
    """
    stage = "start"
    try:
        os.close(go_w)
        os.close(err_r)
        os.read(go_r, 1)
        os.close(go_r)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        stage = "dup2"
        for target, fd in fds.items():
            if fd is not None:
                os.dup2(fd, target)
        if cwd is not None:
            stage = "chdir"
            os.chdir(cwd)
        stage = "setrlimit"
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
        if filt is not None:
            stage = "seccomp"
            filt.install()
        stage = "exec"
        os.execve(path, argv, env)
    except OSError as exc:
        os.write(err_w, f"{stage}:{exc.errno}".encode())
    except BaseException:
        os.write(err_w, f"{stage}:".encode())
    finally:
        os._exit(127)
