"""Raw ``bpf()`` and ``perf_event_open()`` system calls through ctypes.

This is the only module that knows the ``union bpf_attr`` layouts. Each
command gets its own ctypes structure holding just the members it uses; the
kernel treats a shorter attribute as zero-extended, so there is no need to
spell out the whole union.
"""

from __future__ import annotations

import ctypes
import errno
import os
from enum import IntEnum

NR_BPF = 321
NR_PERF_EVENT_OPEN = 298
OBJ_NAME_LEN = 16

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class Cmd(IntEnum):
    """``enum bpf_cmd`` values for the commands this package issues."""

    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    PROG_TEST_RUN = 10
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    LINK_CREATE = 28


class BpfError(OSError):
    """A failed ``bpf()`` command, with the verifier log for PROG_LOAD."""

    def __init__(self, err: int, cmd: Cmd | str, log: str = "", detail: str = ""):
        name = cmd.name if isinstance(cmd, Cmd) else cmd
        text = f"{name}: {errno.errorcode.get(err, err)} ({os.strerror(err)})"
        if detail:
            text += f": {detail}"
        if log:
            text += "\nverifier log:\n" + log.rstrip()
        super().__init__(err, text)
        self.cmd = cmd
        self.log = log

    def __str__(self) -> str:
        return self.strerror


def addr(buf) -> int:
    """Address of a ctypes buffer (or 0 for None), as the attr's u64 pointer."""
    return 0 if buf is None else ctypes.addressof(buf)


class MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
    ]


class MapElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),  # next_key for MAP_GET_NEXT_KEY
        ("flags", ctypes.c_uint64),
    ]


class ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * OBJ_NAME_LEN),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
        ("prog_btf_fd", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64),
        ("func_info_cnt", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64),
        ("line_info_cnt", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
        ("attach_prog_fd", ctypes.c_uint32),
    ]


class TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class InfoAttr(ctypes.Structure):
    _fields_ = [
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    ]


class GetFdByIdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32),
                ("open_flags", ctypes.c_uint32)]


class BtfLoadAttr(ctypes.Structure):
    _fields_ = [
        ("btf", ctypes.c_uint64),
        ("btf_log_buf", ctypes.c_uint64),
        ("btf_size", ctypes.c_uint32),
        ("btf_log_size", ctypes.c_uint32),
        ("btf_log_level", ctypes.c_uint32),
    ]


class RawTracepointAttr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32)]


class LinkCreateAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("target_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("target_btf_id", ctypes.c_uint32),  # perf_event.bpf_cookie shares this slot
    ]


class ProgInfo(ctypes.Structure):
    """Leading part of ``struct bpf_prog_info``: enough for type, id and name."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
    ]


class BtfInfo(ctypes.Structure):
    """``struct bpf_btf_info`` up to its id."""

    _fields_ = [("btf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32),
                ("id", ctypes.c_uint32)]


class MapInfo(ctypes.Structure):
    """Leading part of ``struct bpf_map_info``."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
    ]


def bpf(cmd: Cmd, attr: ctypes.Structure) -> int:
    """Issue one ``bpf()`` command; return its result or raise BpfError.

    EINTR and (as libbpf does for PROG_LOAD) EAGAIN are retried.
    """
    while True:
        ret = _syscall(NR_BPF, ctypes.c_int(cmd), ctypes.byref(attr),
                       ctypes.c_uint(ctypes.sizeof(attr)))
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        if err == errno.EINTR or (err == errno.EAGAIN and cmd == Cmd.PROG_LOAD):
            continue
        raise BpfError(err, cmd)


def perf_event_open(attr: ctypes.Structure, pid: int, cpu: int, group_fd: int = -1,
                    flags: int = 0) -> int:
    """``perf_event_open(2)``; return the new fd or raise OSError."""
    ret = _syscall(NR_PERF_EVENT_OPEN, ctypes.byref(attr), ctypes.c_int(pid),
                   ctypes.c_int(cpu), ctypes.c_int(group_fd), ctypes.c_ulong(flags))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open: {os.strerror(err)}")
    return ret


def obj_info(fd: int, info: ctypes.Structure) -> ctypes.Structure:
    """Fill ``info`` (ProgInfo, MapInfo) for the object behind ``fd``."""
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=addr(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr)
    return info


def fd_by_id(cmd: Cmd, ident: int) -> FD:
    """An fd for the kernel object with id ``ident`` (PROG_/MAP_/BTF_GET_FD_BY_ID);
    BpfError ENOENT once the object is gone -- what a leak check looks for."""
    return FD(bpf(cmd, GetFdByIdAttr(id=ident)))


def obj_name(name: str) -> bytes:
    """Kernel object names: at most 15 bytes of ``[A-Za-z0-9_.]``."""
    raw = name.encode()
    if len(raw) >= OBJ_NAME_LEN or not all(c.isalnum() or c in "_." for c in name):
        raise ValueError(f"object name {name!r}: at most 15 characters of [A-Za-z0-9_.]")
    return raw


class FD:
    """A kernel file descriptor owned by exactly one Python object.

    ``close()`` is idempotent; the context manager closes on any exit, and the
    finaliser is only a safety net for objects dropped without closing.
    """

    def __init__(self, fd: int):
        self._fd = fd

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def release(self) -> int:
        """Hand the fd over to a new owner; this object no longer closes it."""
        fd = self.fd
        self._fd = -1
        return fd

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def fileno(self) -> int:
        return self.fd
