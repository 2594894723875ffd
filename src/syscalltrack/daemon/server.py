"""The tracker daemon: one thread, one epoll loop, one owner for every kernel object.

The loop waits on the control socket, its connections, the engine's ring
buffer and a signal wake-up socket. Each ring batch is decoded once, rendered
once per distinct way some output wants it (syslog and default readers share
the rules' formats), and handed to syslog, the JSON file and every sctlog
reader (``sinks.stream``: bounded backlogs, so no reader can stall the loop).

With no rules loaded no BPF object exists at all: ``sct_config delete``
closes the engine, and unloading with rules loaded needs ``--force``.
Kernel objects are owned by file descriptors of this process only (nothing
is pinned), so a daemon killed with -9 takes them with it; the pid file is
held under flock, so the next start finds it free.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass

from ..bpf import features, tracefs
from ..bpf.isolate import in_child
from ..engines.systemwide import SystemwideEngine, caveats
from ..events import LogFormat, Lost, unknown_macros
from ..events.render import Renderer
from ..events.view import Records
from ..rules import RuleError, load_rules
from ..sinks.jsonfile import JsonFileSink
from ..sinks.stream import Reader, Stream
from ..sinks.syslog import DEV_LOG, FACILITIES, SyslogSink
from . import protocol

TICK = 0.25  # seconds: how often kernel loss counters are read while idle
BATCH = 4096  # records per loop turn: bounds latency and memory (8192 cost 7 MB more RSS
#                with the JSON file, for no more throughput)
RECV_SIZE = 65536
END_GRACE = 2.0  # seconds an orderly stop gives readers in all to take their last lines
OUT_LIMIT = 1 << 20  # answers a client has not read: past this, its next requests wait
ACCEPT_PAUSE = 1.0  # seconds: out of descriptors, stop accepting for this long
WARN_INTERVAL = 60.0  # seconds: an output's undelivered lines are told no oftener
MIN_RECORD = 32  # bytes: no record takes less room in the ring (bounds a drain)
Key = tuple[bool, str | None]  # (json, format override): one rendering
DEFAULT_KEY: Key = (False, None)
JSON_KEY: Key = (True, None)


class StartupError(Exception):
    """Why the daemon cannot start; sct_load prints it as it is."""


@dataclass
class Options:
    restore: bool = False
    json_file: str | None = None
    syslog_socket: str | None = DEV_LOG  # None: no syslog output
    syslog_facility: str = "authpriv"  # LOG lines name users and files: keep them private
    compat: bool = True  # also watch i386 (int $0x80) calls
    ring_mb: int = 8  # the kernel-to-daemon ring: resident in full, so it is most of our RSS


def preflight(compat: bool = True) -> None:
    """Refuse to start, with the precise reason, where the engine could not run (i386
    calls are watched through tp_btf programs on the raw syscall tracepoints)."""
    if os.geteuid() != 0:
        raise StartupError("syscalltrack must be loaded by root (it attaches eBPF programs "
                           f"to every process); you are uid {os.geteuid()}")
    try:
        tracefs.root()
    except OSError as err:
        raise StartupError(f"tracefs is missing and could not be mounted: {err}") from None
    # Asked in a child, as every kernel fact is (bpf.isolate): tp_btf's probe parses the
    # kernel's BTF, ~25 MB the daemon would keep for good (idle RSS 70 MB, not 42).
    for probe, hint in in_child(lambda: _needs(compat)):
        if not probe:
            raise StartupError(f"the kernel refuses what the tracker needs: {probe.reason}"
                               f"{hint}")


def _needs(compat: bool) -> list[tuple[features.Probe, str]]:
    """What the engine needs of the kernel, each probe with a hint for its refusal."""
    needs = [(features.have_map_type("ringbuf"), ""),
             (features.have_attach("syscall_tracepoint"), "")]
    if compat:
        needs.append((features.have_attach("tp_btf"),
                      " (sct_load --no-compat does without it, and without i386 calls)"))
    return needs


class _Control:
    """A control connection: bytes in until a newline, answers out without blocking."""

    def __init__(self, sock: socket.socket, uid: int):
        sock.setblocking(False)
        self.sock = sock
        self.uid = uid
        self.inbuf = bytearray()
        self.out = bytearray()
        self.closing = False  # refuse further requests; end the connection once `out` is sent
        self.drained = 0  # bytes read and dropped since closing


class Daemon:
    """The running tracker. ``start()`` then ``serve()``; ``close()`` frees everything."""

    def __init__(self, options: Options):
        self.options = options
        self.engine: SystemwideEngine | None = None
        self.started = time.monotonic()
        self.sel = selectors.DefaultSelector()
        self.stream = Stream()
        self.history: deque[Records] = deque()  # the last batches, >= HISTORY items in all
        self._history_len = 0
        self.renderers: dict[Key, Renderer] = {}
        self.syslog: SyslogSink | None = None
        self.jsonfile: JsonFileSink | None = None
        self.delivered = 0
        self.kernel_lost = 0
        self._lost_told: dict[int, int] = {}  # per rule of the engine: kernel losses passed on
        self._syslog_report = _Report("syslog", "sent")
        self._jsonfile_report = _Report("the JSON file", "written")
        self.restored: int | None = None
        self.stopping = False
        self._listener: socket.socket | None = None
        self._accept_paused = 0.0  # monotonic time to listen again at (0: listening)
        self._refused_since_warning = 0
        self._accept_warned_at = -3600.0
        self._pidfd = -1
        self._ring_fd = -1
        self._syslog_watched: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._unload_answer: _Control | None = None

    # -- start and stop ----------------------------------------------------------------
    def start(self) -> None:
        """Everything that can fail at start, in an order that leaves nothing on failure."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        opts = self.options
        preflight(opts.compat)
        if opts.syslog_facility not in FACILITIES:
            raise StartupError(f"unknown syslog facility '{opts.syslog_facility}'; one of: "
                               f"{', '.join(FACILITIES)}")
        os.makedirs(protocol.run_dir(), mode=0o755, exist_ok=True)
        self._lock_pidfile()
        if opts.json_file:
            try:
                self.jsonfile = JsonFileSink(opts.json_file)
            except OSError as err:
                raise StartupError(f"cannot open the JSON file {opts.json_file}: "
                                   f"{err.strerror}") from None
        if opts.syslog_socket:
            self.syslog = SyslogSink(opts.syslog_socket, opts.syslog_facility,
                                     warn=self._warn)
        if opts.restore:
            self._restore()
        self._listen()
        self._signals()

    def _lock_pidfile(self) -> None:
        path = protocol.pid_file()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise StartupError(f"syscalltrack is already loaded (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._pidfd = fd

    def _restore(self) -> None:
        path = protocol.saved_rules()
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            self._warn(f"syscalltrack: --restore: no saved rule set at {path}; "
                       "starting with no rules")
            return
        try:
            ruleset = load_rules(text, filename=path)
            if ruleset.rules:
                self._set_engine(self._new_engine(ruleset))
        except (RuleError, OSError) as err:
            raise StartupError(f"cannot restore the saved rule set {path}:\n{err}") from None
        self.restored = len(ruleset.rules)

    def _listen(self) -> None:
        """Bind the control socket where only root can reach it (mode 0600 from the start)."""
        path = protocol.control_socket()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale: the pid file lock proved no daemon owns it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(64)
        sock.setblocking(False)
        self._listener = sock
        self.sel.register(sock, selectors.EVENT_READ, "listen")

    def _signals(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: None)  # handled in the loop, via the wake-up fd
        self.sel.register(self._wake_r, selectors.EVENT_READ, "signal")

    def close(self) -> None:
        """Detach and free every kernel object first, then sockets and files. Idempotent."""
        self._set_engine(None)
        self.stream.close()
        for key in list(self.sel.get_map().values()):
            if isinstance(key.data, _Control):
                key.data.sock.close()
        self.sel.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(protocol.control_socket())
        if self._wake_r is not None:
            signal.set_wakeup_fd(-1)
            self._wake_r.close()
            self._wake_w.close()
            self._wake_r = self._wake_w = None
        for sink in (self.syslog, self.jsonfile):
            if sink is not None:
                sink.close()
        self._report_outputs(final=True)  # with syslog's lines that never went
        if self._pidfd >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(protocol.pid_file())
            os.close(self._pidfd)
            self._pidfd = -1

    def _warn(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # -- the loop ----------------------------------------------------------------------
    def serve(self) -> None:
        """Run until unloaded or signalled to stop."""
        while not self.stopping:
            backlog = self.engine is not None and self.engine.pending()
            if self._accept_paused and time.monotonic() >= self._accept_paused:
                self._resume_accept()
            timeout = 0 if backlog else TICK if self.engine or self._accept_paused else None
            for key, mask in self.sel.select(timeout):
                what = key.data
                if what == "ring":
                    self._pump()
                elif what == "listen":
                    self._accept()
                elif what == "signal":
                    self._on_signals()
                elif what == "syslog":
                    self.syslog.flush()
                    self._watch_syslog()
                elif isinstance(what, Reader):
                    self._on_reader(what, mask)
                elif isinstance(what, _Control):
                    self._on_control(what, mask)
            if self.engine is not None:
                self._pump()  # loss counters, and events a replace() kept aside
            self._report_outputs()
        self._finish_unload()

    def _pump(self) -> None:
        """One bounded batch from the kernel: under a burst the loop still answers
        control requests and readers between batches (the rest waits in the ring)."""
        if self.engine is not None:
            batch = self.engine.poll_records(0, BATCH)
            if len(batch):
                self._dispatch(batch)

    def _dispatch(self, batch: Records) -> None:
        """Render each item once per needed rendering (records straight from their
        views, no Event built); feed syslog, the file, readers."""
        self._remember(batch)
        keys = self.stream.renderings()
        if self.syslog is not None:
            keys.add(DEFAULT_KEY)
        if self.jsonfile is not None:
            keys.add(JSON_KEY)
        # What a reader that misses this batch is told it lost: the calls in it, including
        # those the kernel already reported lost (the notice goes with the batch).
        lost = [x.count for x in (*batch.before, *batch.after) if x.__class__ is Lost]
        events = len(batch) - len(lost)
        batches: dict[Key, tuple[bytes, int]] = {}
        for key in keys:
            lines = self._render(key, batch)
            if key == DEFAULT_KEY and self.syslog is not None:
                self.syslog.write_lines(lines)
                self._watch_syslog()
            lines.append("")
            batches[key] = ("\n".join(lines).encode("utf-8", "backslashreplace"), events)
        if self.jsonfile is not None:
            self.jsonfile.write(batches[JSON_KEY][0], len(batch))
        self.stream.publish(batches, weight=events + sum(lost))
        self.kernel_lost += sum(lost)
        for x in batch.after:  # the current engine's counters (`before`: an older set's)
            if x.__class__ is Lost:
                self._lost_told[x.index] = self._lost_told.get(x.index, 0) + x.count
        self.delivered += events
        for reader in list(self.stream.readers.values()):
            self._flush_reader(reader)

    def _watch_syslog(self) -> None:
        """Wait for syslog's socket to become writable while lines wait for it. Its
        socket changes when syslog is reconnected (and a new one may reuse the old
        one's number), so the one watched is known by identity."""
        sock = self.syslog.socket if self.syslog.waiting else None
        if sock is self._syslog_watched:
            return
        if self._syslog_watched is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self._syslog_watched)
        if sock is not None:
            self.sel.register(sock, selectors.EVENT_WRITE, "syslog")
        self._syslog_watched = sock

    def _report_outputs(self, final: bool = False) -> None:
        """Tell daemon.log of the lines syslog and the JSON file did not take (see
        _Report); ``final``: no more lines are coming, tell the rest now."""
        if self.syslog is not None:
            self._syslog_report.check(self.syslog.failed, self.syslog.error, self._warn, final)
        if self.jsonfile is not None:
            self._jsonfile_report.check(self.jsonfile.failed, self.jsonfile.error, self._warn,
                                        final)

    def _render(self, key: Key, batch: Records | list) -> list[str]:
        render = self.renderers.get(key)
        if render is None:
            render = self.renderers[key] = Renderer(json=key[0], override=key[1])
        return render.lines(batch)

    def _remember(self, batch: Records) -> None:
        """Keep the batches holding the last HISTORY items, undecoded, for `sctlog -n`."""
        history = self.history
        history.append(batch.last(protocol.HISTORY))  # of a long batch, only its end
        self._history_len += len(history[-1])
        while self._history_len - len(history[0]) >= protocol.HISTORY:
            self._history_len -= len(history.popleft())

    def _history_tail(self, count: int) -> list:
        """The last ``count`` (at most HISTORY) items as Events and notices."""
        count = min(count, protocol.HISTORY)
        out: list = []
        for batch in reversed(self.history):
            if len(out) >= count:
                break
            out[:0] = batch.tail(count - len(out))
        return out

    def _flush_reader(self, reader: Reader) -> None:
        done = reader.flush()
        if reader.closed:
            self._drop_reader(reader)
        else:
            self.sel.modify(reader.sock, selectors.EVENT_READ |
                            (0 if done else selectors.EVENT_WRITE), reader)

    def _drop_reader(self, reader: Reader) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(reader.sock)
        self.stream.remove(reader)
        if reader.key not in (DEFAULT_KEY, JSON_KEY) and reader.key not in self.stream.renderings():
            self.renderers.pop(reader.key, None)  # its compiled formats go with it

    def _on_reader(self, reader: Reader, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = reader.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop_reader(reader)
                return
        if mask & selectors.EVENT_WRITE:
            self._flush_reader(reader)

    def _on_signals(self) -> None:
        try:
            received = self._wake_r.recv(4096)
        except BlockingIOError:
            return
        for signum in received:
            if signum == signal.SIGHUP:
                self._reopen()
            else:
                self.stopping = True

    def _reopen(self) -> None:
        """SIGHUP: reopen the JSON file (log rotation) and retry syslog at once."""
        if self.jsonfile is not None:
            try:
                self.jsonfile.reopen()
            except OSError as err:
                self._warn(f"syscalltrack: cannot reopen {self.jsonfile.path}: {err.strerror}; "
                           "still writing to the old file")
        if self.syslog is not None:
            self.syslog.retry_now()
            self._watch_syslog()

    # -- control connections -----------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and the like: keep serving the others
                self._pause_accept(err)
                return
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                    struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            conn = _Control(sock, uid)
            self.sel.register(sock, selectors.EVENT_READ, conn)
            if uid != 0:
                self._reply(conn, protocol.error(
                    f"permission denied: only root may control syscalltrack (you are uid {uid})"))
                conn.closing = True
                self._flush_control(conn)

    def _pause_accept(self, err: OSError) -> None:
        """Out of descriptors (or memory): the pending connection stays queued and the
        listener stays readable, so stop listening for a moment instead of spinning, and
        warn once a minute at most."""
        self._refused_since_warning += 1
        now = time.monotonic()
        if now - self._accept_warned_at >= 60:
            more = self._refused_since_warning - 1
            self._warn(f"syscalltrack: cannot accept connections: {err.strerror}; pausing "
                       f"{ACCEPT_PAUSE:g} s at a time" + (f" ({more} more since the last "
                                                        "warning)" if more else ""))
            self._accept_warned_at, self._refused_since_warning = now, 0
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(self._listener)
        self._accept_paused = now + ACCEPT_PAUSE

    def _resume_accept(self) -> None:
        self._accept_paused = 0.0
        if self._listener is not None:
            self.sel.register(self._listener, selectors.EVENT_READ, "listen")

    def _on_control(self, conn: _Control, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush_control(conn)
            if not self._is_reader(conn):
                self._serve_lines(conn)  # requests that waited for the answers to drain
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_control(conn)
            return
        if conn.closing:
            # Read and drop what the client still sends, so that closing does not reset
            # the connection (and lose our answer) -- but not forever.
            conn.drained += len(data)
            if conn.drained > protocol.MAX_REQUEST:
                self._close_control(conn)
            return
        conn.inbuf += data
        if self._serve_lines(conn) or conn.closing:
            return
        # (Only the unfinished last line counts: complete ones may wait for the client to
        # read its answers.)
        if len(conn.inbuf) - conn.inbuf.rfind(b"\n") - 1 > protocol.MAX_REQUEST:
            self._refuse_long(conn, f"request longer than {protocol.MAX_REQUEST} bytes "
                                    "without a newline")

    def _refuse_long(self, conn: _Control, message: str) -> None:
        """A request past MAX_REQUEST: the error, then the connection ends, whether
        its newline was seen or not (which depends on how the bytes came in), and
        before anything of it was done."""
        conn.inbuf.clear()
        self._reply(conn, protocol.error(message))
        conn.closing = True
        self._flush_control(conn)

    def _serve_lines(self, conn: _Control) -> bool:
        """Answer the complete requests received, while the client reads its answers
        (one that does not cannot make the daemon hold more than OUT_LIMIT for it);
        True once the connection became a reader or was closed."""
        while not conn.closing and len(conn.out) < OUT_LIMIT and b"\n" in conn.inbuf:
            line, _, rest = conn.inbuf.partition(b"\n")
            conn.inbuf = bytearray(rest)
            if len(line) > protocol.MAX_REQUEST:
                self._refuse_long(conn, f"request of {len(line)} bytes, longer than the "
                                        f"{protocol.MAX_REQUEST} bytes a request may hold: "
                                        "refused, nothing changed")
                break
            self._handle(conn, bytes(line))
            if self._is_reader(conn):
                return True
        return False

    def _is_reader(self, conn: _Control) -> bool:
        try:
            return isinstance(self.sel.get_key(conn.sock).data, Reader)
        except (KeyError, ValueError):
            return True  # closed

    def _reply(self, conn: _Control, data: bytes) -> None:
        conn.out += data
        self._flush_control(conn)

    def _flush_control(self, conn: _Control) -> None:
        try:
            while conn.out:
                del conn.out[:conn.sock.send(conn.out)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close_control(conn)
            return
        if conn.closing and not conn.out:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)  # the client sees the end after our answer
        self.sel.modify(conn.sock, (selectors.EVENT_READ if len(conn.out) < OUT_LIMIT else 0)
                        | (selectors.EVENT_WRITE if conn.out else 0), conn)

    def _close_control(self, conn: _Control) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        conn.sock.close()

    def _handle(self, conn: _Control, line: bytes) -> None:
        """Answer one request; nothing a client sends can stop the daemon."""
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:  # (deep nesting)
            self._reply(conn, protocol.error(f"malformed request (not JSON: {err})"))
            return
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self._reply(conn, protocol.error('malformed request: expected {"op": "...", ...}'))
            return
        op = request["op"]
        handler = self._OPS.get(op)
        if handler is None:
            self._reply(conn, protocol.error(
                f"unknown op '{op[:64]}'; known: {', '.join(sorted(self._OPS))}"))
            return
        try:
            answer = handler(self, conn, request)
        except _BadRequest as err:
            answer = protocol.error(str(err))
        except Exception as err:  # a bug must cost one request, not the tracker
            self._warn(f"syscalltrack: internal error in '{op}': {err!r}")
            answer = protocol.error(f"internal error in '{op}': {err!r}")
        if answer is not None:
            self._reply(conn, answer)

    # -- operations --------------------------------------------------------------------
    def _op_ping(self, _conn, _req) -> bytes:
        return protocol.encode({"ok": True, "pid": os.getpid()})

    def _op_upload(self, _conn, req) -> bytes:
        text = _field(req, "text", str)
        filename = _field(req, "filename", str, "<upload>")
        try:  # (JSON can carry lone surrogates; the saved copy could not be written)
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise _BadRequest(f"{filename}: the rule text is not valid Unicode (a lone "
                              f"surrogate at offset {err.start}); nothing changed") from None
        try:
            ruleset = load_rules(text, filename=filename)
            if not ruleset.rules:
                self._set_engine(None)
            elif self.engine is None:
                self._set_engine(self._new_engine(ruleset))
            else:
                self.engine.replace(ruleset)  # the new set attaches before the old detaches
                self._lost_told = {}
                self._watch_ring()
                self._pump()  # what the old set produced, kept aside by replace()
        except RuleError as err:
            return protocol.error(str(err))
        except OSError as err:
            return protocol.error(f"the kernel refused the rule set, nothing changed: {err}")
        self._save(text)
        notes = caveats(ruleset) if ruleset.rules else [
            f"{filename}: note: no rules in it: nothing is watched now"]
        return protocol.encode({"ok": True, "rules": len(ruleset.rules), "notes": notes})

    def _save(self, text: str) -> None:
        """Keep the set for --restore: written aside, then renamed (never half a file)."""
        path = protocol.saved_rules()
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            tmp = f"{path}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError as err:
            self._warn(f"syscalltrack: cannot save the rule set to {path}: {err}")

    def _op_download(self, _conn, _req) -> bytes:
        text = self.engine.ruleset.text() if self.engine is not None else ""
        return protocol.encode({"ok": True, "rules": text})

    def _op_delete(self, _conn, _req) -> bytes:
        removed = len(self.engine.ruleset.rules) if self.engine is not None else 0
        self._set_engine(None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(protocol.saved_rules())
        return protocol.encode({"ok": True, "removed": removed})

    def _op_unload(self, conn, req) -> bytes | None:
        force = _field(req, "force", bool, False)
        if self.engine is not None and not force:
            n = len(self.engine.ruleset.rules)
            loaded = "1 rule is loaded; remove it" if n == 1 else f"{n} rules are loaded; " \
                "remove them"
            return protocol.error(
                f"cannot unload syscalltrack: {os.strerror(errno.EBUSY)} ({loaded} with "
                "'sct_config delete', or unload anyway with 'sct_unload --force')")
        self.stopping = True
        self._unload_answer = conn
        return None

    def _finish_unload(self) -> None:
        """Free the kernel objects, end the streams in order, then tell the client that
        asked, then go."""
        self._set_engine(None)
        self.stream.end(END_GRACE)
        if self.syslog is not None:
            self.syslog.finish(END_GRACE)
        conn = self._unload_answer
        if conn is not None:
            conn.sock.settimeout(END_GRACE)  # a client that does not read: not forever
            with contextlib.suppress(OSError):
                conn.sock.sendall(bytes(conn.out) + protocol.encode(
                    {"ok": True, "pid": os.getpid()}))

    def _op_follow(self, conn, req) -> bytes | None:
        fmt = _field(req, "format", str, None)
        json_ = _field(req, "json", bool, False)
        last = _field(req, "last", int, 0)
        end_mark = _field(req, "end_mark", bool, False)
        if fmt is not None:
            if len(fmt) > protocol.MAX_FORMAT:
                raise _BadRequest(f"format longer than {protocol.MAX_FORMAT} characters")
            unknown = unknown_macros(fmt)
            if unknown:
                raise _BadRequest(f"unknown macro {unknown[0][1]} in format at offset "
                                  f"{unknown[0][0]}")
            LogFormat(fmt)  # compiled here so a bad one is refused, not met mid-stream
        if last < 0:
            raise _BadRequest("last must be 0 or more")
        self.sel.unregister(conn.sock)
        key = (json_, None if json_ else fmt)
        reader = self.stream.add(conn.sock, key, end_mark)
        # The answers it has not read yet, then ours: first in its backlog, never blocking.
        reader.preface(bytes(conn.out) + protocol.encode({"ok": True}))
        self.sel.register(conn.sock, selectors.EVENT_READ, reader)
        if last:
            items = self._history_tail(last)
            if items:
                reader.offer("".join(f"{line}\n" for line in self._render(key, items))
                             .encode("utf-8", "backslashreplace"),
                             sum(x.__class__ is not Lost for x in items),
                             sum(x.count if x.__class__ is Lost else 1 for x in items))
        self._flush_reader(reader)
        return None

    def _op_status(self, _conn, _req) -> bytes:
        return protocol.encode({"ok": True, **self.status()})

    _OPS = {"ping": _op_ping, "upload": _op_upload, "download": _op_download,
            "delete": _op_delete, "unload": _op_unload, "follow": _op_follow,
            "status": _op_status}

    def status(self) -> dict:
        """What `sct status` shows: engine, kernel, rules with counters, readers, outputs."""
        engine = self.engine
        rules = []
        if engine is not None:
            for rule, st in zip(engine.ruleset.rules, engine.stats(), strict=True):
                rules.append({"name": rule.name, "syscall": rule.syscall,
                              "when": rule.when.value, "action": rule.action.type.value,
                              "matches": st.matches, "lost": st.lost,
                              "undecided": st.undecided})
        return {
            "pid": os.getpid(),
            "uptime": round(time.monotonic() - self.started, 3),
            "engine": None if engine is None else {"name": "systemwide (eBPF)",
                                                   "i386_calls_watched": engine.compat,
                                                   **engine.ids()},
            "kernel": features.probe().render(),
            "rules": rules,
            "events": {"delivered": self.delivered, "kernel_lost": self.kernel_lost},
            "readers": [{"json": r.json, "format": r.key[1], "backlog": r.backlog,
                         "events_sent": r.sent_events, "events_lost": r.lost_total}
                        for r in self.stream.readers.values()],
            "syslog": None if self.syslog is None else {
                "socket": self.syslog.path, "facility": self.options.syslog_facility,
                "sent": self.syslog.sent, "failed": self.syslog.failed,
                "waiting": self.syslog.waiting, "error": self.syslog.error},
            "json_file": None if self.jsonfile is None else {
                "path": self.jsonfile.path, "written": self.jsonfile.written,
                "failed": self.jsonfile.failed, "error": _with_count(
                    self.jsonfile.error, self.jsonfile.failed, "not written")},
            "run_dir": protocol.run_dir(),
            "saved_rules": protocol.saved_rules(),
        }

    # -- the engine --------------------------------------------------------------------
    def _new_engine(self, ruleset) -> SystemwideEngine:
        return SystemwideEngine(ruleset, compat=self.options.compat,
                                ring_size=self.options.ring_mb << 20).load()

    def _set_engine(self, engine: SystemwideEngine | None) -> None:
        """Make ``engine`` current; the old one's remaining events are delivered, then it
        is closed (all its kernel objects with it)."""
        old = self.engine
        if old is not None:
            self._drain()
            self._unwatch_ring()
            self.engine = None
            old.close()
        self.engine = engine
        self._lost_told = {}
        if engine is not None:
            self._watch_ring()
        else:
            self._report_outputs(final=True)  # no more lines come: tell what did not go
        # Rule sets change rarely, and young objects are collected rarely (launch.py):
        # whatever cycle the old set left goes now rather than at some distant collection.
        gc.collect()

    def _drain(self) -> None:
        """Deliver all the current engine's ring holds, and the kernel losses not passed
        on yet: closing the engine drops them. Batch by batch while records wait -- a
        full ring's worth at most, so that a flood refilling it cannot hold the daemon
        -- then the rest in one read, as engine.replace() does. (What the programs
        write between that read and their detaching, an instant later, is not seen.)"""
        engine = self.engine
        for _ in range((self.options.ring_mb << 20) // (MIN_RECORD * BATCH) + 1):
            if not engine.pending():
                break
            self._pump()
        rest = engine.poll_records(0, None)
        if len(rest):
            self._dispatch(rest)
        untold = [Lost(s.rule, s.index, s.lost - self._lost_told.get(s.index, 0))
                  for s in engine.stats() if s.lost > self._lost_told.get(s.index, 0)]
        if untold:
            self._dispatch(Records([], (0,), {}, after=untold))

    def _watch_ring(self) -> None:
        self._unwatch_ring()
        fd = self.engine.fileno()
        self.sel.register(fd, selectors.EVENT_READ, "ring")
        self._ring_fd = fd

    def _unwatch_ring(self) -> None:
        if self._ring_fd >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self._ring_fd)
            self._ring_fd = -1


class _Report:
    """An output's undelivered lines, told to the daemon's log (daemon.log) as they
    mount up -- at once the first time, then at most once per WARN_INTERVAL (a
    receiver that comes and goes must not flood the log) -- and all that is left
    when no more lines are coming: never a silent loss."""

    def __init__(self, output: str, verb: str):
        self.output, self.verb = output, verb
        self.told = 0  # of the output's `failed` count
        self.told_at = -WARN_INTERVAL

    def check(self, failed: int, error: str | None, warn, final: bool) -> None:
        new = failed - self.told
        if new <= 0:
            return
        now = time.monotonic()
        if not final and now - self.told_at < WARN_INTERVAL:
            return
        what = f"{new} lines not {self.verb} ({failed} in all)"
        if error is None:
            warn(f"syscalltrack: {self.output}: {what}; it takes lines again")
        else:
            warn(f"syscalltrack: {self.output}: {what}: {error}"
                 + ("" if final else f"; told again at most every {WARN_INTERVAL:g} s "
                    "while it lasts"))
        self.told, self.told_at = failed, now


def _with_count(error: str | None, count: int, what: str) -> str | None:
    """An error with the count of lines it cost so far (`sct status` shows the error)."""
    return None if error is None else f"{error} ({count} lines {what} so far)"


class _BadRequest(Exception):
    """A request field is missing or of the wrong type."""


_MISSING = object()


def _field(req: dict, name: str, kind: type, default=_MISSING):
    value = req.get(name, default)
    if value is _MISSING:
        raise _BadRequest(f"'{req['op']}' needs '{name}'")
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _BadRequest(f"'{name}' must be of type {kind.__name__}")
    return value
