"""Reading and writing a tracee's memory.

Reads go through a ``/proc/PID/mem`` descriptor kept open per tracee (one ``pread``,
no ctypes: ~2 µs where ``process_vm_readv`` through ctypes costs ~5 µs), then
``process_vm_readv``, then a fresh ``/proc/PID/mem``, then word-by-word PEEKDATA;
writes try ``process_vm_writev`` first.  So a kernel or a sandbox refusing one route
still leaves another.  An address the tracee itself could not read raises
:class:`MemoryAccessError`, which carries the address so a formatter can print it
instead of the string.
"""

import ctypes
import errno
import os
import struct

from syscalltrack.ptrace import sys as pt

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
RED_ZONE = 128  # x86_64 SysV: bytes below rsp a leaf function may use without moving rsp

_libc = ctypes.CDLL(None, use_errno=True)


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_libc.process_vm_writev.argtypes = [ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_ulong,
                                    ctypes.POINTER(_Iovec), ctypes.c_ulong, ctypes.c_ulong]
_libc.process_vm_writev.restype = ctypes.c_ssize_t
# Reads pass the iovecs by address, packed in one go: the hot path of every string read.
_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                              ctypes.c_ulong, ctypes.c_ulong]
_process_vm_readv.restype = ctypes.c_ssize_t
_IOVEC_PAIR = struct.Struct("<QQQQ")  # local {base, len}, remote {base, len}

# Errors meaning "this route is closed here", as opposed to "this address is bad".
_ROUTE_CLOSED = {errno.ENOSYS, errno.EPERM, errno.EACCES}


class MemoryAccessError(OSError):
    """Tracee memory at ``address`` could not be read or written."""

    def __init__(self, pid: int, address: int, err: int = errno.EFAULT):
        super().__init__(err, f"cannot access memory of {pid} at {address:#x}")
        self.pid = pid
        self.address = address


FIRST_CHUNK = 256


class TraceeMemory:
    """Memory of one process (any of its thread ids will do); reuses one scratch buffer.

    The ``/proc/PID/mem`` descriptor names the address space the process had when it
    was opened: the tracer calls :meth:`exec_done` when the process exec'd, and
    :meth:`close` when it forgets the thread.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self._scratch = ctypes.create_string_buffer(PAGE_SIZE)
        self._scratch_addr = ctypes.addressof(self._scratch)
        self._iov = ctypes.create_string_buffer(_IOVEC_PAIR.size)
        self._iov_addr = ctypes.addressof(self._iov)
        self._vm_ok = True
        self._fd = -1  # /proc/PID/mem, opened at the first read
        self._fd_ok = True  # False once opening it failed: use the other routes

    # ------------------------------------------------------------ reading

    def _pread(self, addr: int, size: int) -> bytes | None:
        """``size`` bytes from the kept descriptor, or None (short, failed, no descriptor)."""
        fd = self._fd
        if fd < 0:
            if not self._fd_ok:
                return None
            try:
                fd = self._fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._fd_ok = False  # refused here, or out of descriptors: not again
                return None
        try:
            data = os.pread(fd, size, addr)
        except (OSError, OverflowError):  # an address past 2**63 does not fit off_t
            return None
        return data if len(data) == size else None

    def exec_done(self) -> None:
        """The process has a new address space: the next read opens it."""
        self.close()
        self._fd_ok = True

    def close(self) -> None:
        """Close the kept descriptor (reads still work, through the other routes)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def read(self, addr: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``addr`` or MemoryAccessError."""
        if size == 0:
            return b""
        data = self._pread(addr, size)
        if data is not None:
            return data
        buf = self._scratch if size <= PAGE_SIZE else ctypes.create_string_buffer(size)
        local = self._scratch_addr if size <= PAGE_SIZE else ctypes.addressof(buf)
        got = self._readv(addr, local, size) if self._vm_ok else -1
        if got == size:
            return ctypes.string_at(local, size)  # not buf.raw: that copies the whole page
        if got < 0:
            data = self._read_fallback(addr, size)
            if data is not None:
                return data
        raise MemoryAccessError(self.pid, addr + max(got, 0))

    def read_string(self, addr: int, limit: int = 4096) -> tuple[bytes, bool]:
        """The NUL-terminated string at ``addr`` and whether it was cut at ``limit``.

        Reads page by page so a short string at the very end of a mapping is still
        readable even though the bytes after it are not.
        """
        fd = self._fd
        if fd >= 0 and addr:  # most strings are short: one small read, from the kept fd
            chunk = PAGE_SIZE - (addr % PAGE_SIZE)  # (as below: min of this, limit, first)
            if chunk > FIRST_CHUNK:
                chunk = FIRST_CHUNK
            if chunk > limit:
                chunk = limit
            try:
                data = os.pread(fd, chunk, addr)
            except (OSError, OverflowError):
                data = b""
            if len(data) == chunk:
                nul = data.find(b"\0")
                if nul >= 0:
                    return data[:nul], False
                # A longer string: go on after it, not read it again.
                return self._read_rest(addr + chunk, limit, [data], chunk, PAGE_SIZE)
        return self._read_rest(addr, limit, [], 0, FIRST_CHUNK)

    def _read_rest(self, addr: int, limit: int, parts: list[bytes], total: int,
                   first: int) -> tuple[bytes, bool]:
        """`read_string` from `addr` on, `parts` (`total` bytes) read before it; the first
        read is at most `first` bytes (a small one for a short string), the others a page."""
        if addr == 0:
            raise MemoryAccessError(self.pid, 0)
        while total < limit:
            chunk = min(PAGE_SIZE - (addr % PAGE_SIZE), limit - total, first)
            first = PAGE_SIZE
            data = self.read(addr, chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                if not parts:
                    return data[:nul], False
                parts.append(data[:nul])
                return b"".join(parts), False
            parts.append(data)
            total += chunk
            addr += chunk
        return b"".join(parts), True

    def read_pointer(self, addr: int, size: int = 8) -> int:
        return int.from_bytes(self.read(addr, size), "little")

    def read_string_array(self, addr: int, max_items: int = 4096, limit: int = 4096,
                          pointer_size: int = 8) -> tuple[list[bytes], bool]:
        """A NULL-terminated array of string pointers (argv, envp); True if cut short."""
        out = []
        for i in range(max_items):
            ptr = self.read_pointer(addr + i * pointer_size, pointer_size)
            if ptr == 0:
                return out, False
            out.append(self.read_string(ptr, limit)[0])
        return out, True

    def _readv(self, addr: int, local: int, size: int) -> int:
        """Bytes read by process_vm_readv into ``local``, or -1 if that route is closed here."""
        _IOVEC_PAIR.pack_into(self._iov, 0, local, size, addr, size)
        iov = self._iov_addr
        got = _process_vm_readv(self.pid, iov, 1, iov + 16, 1, 0)
        if got >= 0:
            return got
        err = ctypes.get_errno()
        if err in _ROUTE_CLOSED:
            self._vm_ok = False
            return -1
        if err == errno.ESRCH:
            raise MemoryAccessError(self.pid, addr, errno.ESRCH)
        return 0

    def _read_fallback(self, addr: int, size: int) -> bytes | None:
        try:
            fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                data = os.pread(fd, size, addr)
                if len(data) == size:
                    return data
            except OSError:
                pass
            finally:
                os.close(fd)
        return self._peek(addr, size)

    def _peek(self, addr: int, size: int) -> bytes | None:
        start = addr & ~7
        words = []
        try:
            for a in range(start, addr + size, 8):
                words.append(pt.peekdata(self.pid, a).to_bytes(8, "little"))
        except pt.PtraceError:
            return None
        off = addr - start
        return b"".join(words)[off:off + size]

    # ------------------------------------------------------------ writing

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` (the tracee must be stopped for this to be meaningful)."""
        buf = ctypes.create_string_buffer(data, len(data))
        local = _Iovec(ctypes.addressof(buf), len(data))
        remote = _Iovec(addr, len(data))
        got = _libc.process_vm_writev(self.pid, local, 1, remote, 1, 0)
        if got == len(data):
            return
        if got < 0 and ctypes.get_errno() not in _ROUTE_CLOSED:
            raise MemoryAccessError(self.pid, addr, ctypes.get_errno())
        try:
            fd = os.open(f"/proc/{self.pid}/mem", os.O_WRONLY)
            try:
                if os.pwrite(fd, data, addr) == len(data):
                    return
            finally:
                os.close(fd)
        except OSError:
            pass
        self._poke(addr, data)

    def _poke(self, addr: int, data: bytes) -> None:
        start = addr & ~7
        end = (addr + len(data) + 7) & ~7
        try:
            old = b"".join(pt.peekdata(self.pid, a).to_bytes(8, "little")
                           for a in range(start, end, 8))
            new = old[:addr - start] + data + old[addr - start + len(data):]
            for i in range(0, len(new), 8):
                pt.pokedata(self.pid, start + i, int.from_bytes(new[i:i + 8], "little"))
        except pt.PtraceError as exc:
            raise MemoryAccessError(self.pid, addr, exc.errno) from None

    def stack_room(self, sp: int) -> tuple[int, str]:
        """Bytes of writable memory right below ``sp`` that belong to sp's own mapping,
        and that mapping's name (``[stack]``, ``[heap]``, a file, or "").

        Read from ``/proc/PID/maps`` (the caller is stopped, so its mappings do not
        change meanwhile).  The mapping is the one holding the byte just below ``sp``:
        a stack pointer at the very top of its mapping has pushed nothing yet.  0 when
        that byte is in no mapping or in one the program cannot write.
        """
        below = sp - 1
        try:
            with open(f"/proc/{self.pid}/maps", "rb") as f:
                for line in f:
                    dash = line.index(b"-")
                    space = line.index(b" ", dash)
                    start = int(line[:dash], 16)
                    if start > below:
                        break  # sorted by address: none holds it
                    if below < int(line[dash + 1:space], 16):
                        fields = line.split(None, 5)
                        name = fields[5].strip().decode(errors="replace") if len(fields) > 5 else ""
                        if fields[1][1:2] != b"w":
                            return 0, name
                        return sp - start, name
        except OSError as exc:
            raise MemoryAccessError(self.pid, sp, exc.errno or errno.EFAULT) from None
        return 0, ""

    def place_below_stack(self, sp: int, data: bytes) -> int:
        """Copy ``data`` under the stack pointer of a thread stopped in a syscall.

        Why this is safe for the duration of the call: below ``sp - RED_ZONE`` the ABI
        promises nothing live (the 128-byte red zone under ``sp`` may hold a leaf
        function's locals, so we skip it); the thread is inside the kernel, so it cannot
        push anything there until the call returns; signal frames for this thread are
        only built once the call has returned.  Other threads never use this stack.
        The tracer puts the argument registers back at the call's exit stop, so a call
        the kernel restarts (after a signal handler, whose frame may overwrite the copy)
        enters again with its original arguments and is rewritten afresh.
        Returns the address, 16-byte aligned.

        Only if there is stack there: see :meth:`check_below_stack`, called first, which
        raises :class:`StackRoomError` and writes nothing when the copy does not fit.
        """
        addr = below_stack(sp, len(data))
        self.check_below_stack(sp, addr)
        self.write(addr, data)
        return addr

    def check_below_stack(self, sp: int, addr: int) -> None:
        """Raise :class:`StackRoomError` unless ``[addr, sp)`` is writable stack of the caller.

        PTRACE_POKEDATA and ``/proc/PID/mem`` write any page of a private mapping, read-only
        or PROT_NONE ones included, so a small stack (a signal stack, a coroutine's, a
        small thread's) would otherwise let the copy land in whatever lies below it.
        The whole range must be in the mapping that holds ``sp``.  A stack pointer in
        ``[heap]`` is refused outright: the stack is then a malloc'd block (a signal or
        coroutine stack) whose bounds the mapping does not show, and the heap right
        below it is other live objects.  (A stack carved out of some other big anonymous
        mapping cannot be told apart from a thread's own stack: the limit of this check.)
        """
        room, name = self.stack_room(sp)
        needed = sp - addr
        if name == "[heap]":
            raise StackRoomError(
                f"the caller's stack pointer {sp:#x} is in the heap (a malloc'd signal or "
                f"coroutine stack, whose size is unknown): nowhere safe to copy "
                f"{needed} bytes below it")
        if needed > room:
            raise StackRoomError(
                f"not enough room on the caller's stack below sp ({needed} bytes needed, "
                f"{room} available)")


def below_stack(sp: int, size: int) -> int:
    """Where :meth:`TraceeMemory.place_below_stack` puts ``size`` bytes under ``sp``."""
    return (sp - RED_ZONE - size) & ~15


class StackRoomError(OSError):
    """A REWRITE copy would not fit on the caller's stack; nothing was written."""

    def __init__(self, message: str):
        super().__init__(errno.EFAULT, message)

    def __str__(self) -> str:
        return self.strerror
