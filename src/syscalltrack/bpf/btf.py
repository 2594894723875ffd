"""Kernel type information from BTF (``/sys/kernel/btf/vmlinux``), and BTF of our own.

Generated code that walks kernel structures (``task->cred->euid``,
``task->real_parent->tgid``) must not hard-code offsets: they change with
kernel version and configuration. This reader resolves member paths to byte
offsets on the running kernel, descending through typedefs, qualifiers and
anonymous struct/union members.

The other direction: a program with subprograms (``bpf_loop`` callbacks)
loads only with BTF ``func_info`` naming a FUNC for each. :class:`Builder`
writes such BTF, :class:`Handle` loads it (BTF_LOAD, the log in the error),
and :func:`stub_func_info` gives the smallest set that satisfies the verifier.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import NamedTuple

from .asm import Instruction, subprograms
from .sys import FD, BpfError, BtfInfo, BtfLoadAttr, Cmd, bpf, fd_by_id, obj_info

VMLINUX = "/sys/kernel/btf/vmlinux"
MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")


class Kind(IntEnum):
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# Bytes of kind-specific data after the 12-byte common record: (fixed, per vlen item).
_TRAILER = {
    Kind.INT: (4, 0), Kind.ARRAY: (12, 0), Kind.STRUCT: (0, 12), Kind.UNION: (0, 12),
    Kind.ENUM: (0, 8), Kind.FUNC_PROTO: (0, 8), Kind.VAR: (4, 0), Kind.DATASEC: (0, 12),
    Kind.DECL_TAG: (4, 0), Kind.ENUM64: (0, 12),
}
_MODIFIERS = (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)


class BTFError(LookupError):
    """A type or member that this kernel's BTF does not have."""


@dataclass(frozen=True)
class Member:
    """A resolved member: offsets in bits from the start of the outer struct."""

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int  # 0 when not a bitfield

    @property
    def offset(self) -> int:
        """Byte offset; refused for a bitfield that does not start on a byte."""
        if self.bit_offset % 8:
            raise BTFError(f"member {self.name} is a bitfield at bit {self.bit_offset}")
        return self.bit_offset // 8


class BTF:
    """Parsed BTF blob; types are decoded lazily by id."""

    def __init__(self, blob: bytes):
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = \
            _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise BTFError(f"not BTF data (magic {magic:#x})")
        self._blob = blob
        self._strings = blob[hdr_len + str_off:hdr_len + str_off + str_len]
        self._records = [0]  # type id 0 is void
        self._names: dict[str, list[int]] = {}
        pos, end = hdr_len + type_off, hdr_len + type_off + type_len
        while pos < end:
            name_off, info, _ = _TYPE.unpack_from(blob, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            self._records.append(pos)
            if name_off:
                self._names.setdefault(self._str(name_off), []).append(len(self._records) - 1)
            fixed, per_item = _TRAILER.get(kind, (0, 0))
            pos += 12 + fixed + per_item * vlen

    @classmethod
    def load(cls, path: str = VMLINUX) -> BTF:
        with open(path, "rb") as f:
            return cls(f.read())

    def _str(self, off: int) -> str:
        return self._strings[off:self._strings.index(b"\0", off)].decode()

    def __len__(self) -> int:
        return len(self._records) - 1

    def kind(self, type_id: int) -> Kind:
        return Kind((_TYPE.unpack_from(self._blob, self._records[type_id])[1] >> 24) & 0x1F)

    def name(self, type_id: int) -> str:
        name_off = _TYPE.unpack_from(self._blob, self._records[type_id])[0]
        return self._str(name_off) if name_off else ""

    def find(self, name: str, kind: Kind | None = None) -> int:
        """Type id of ``name`` (of ``kind`` when given; structs are preferred)."""
        ids = self._names.get(name, [])
        wanted = [i for i in ids if kind is None or self.kind(i) == kind]
        if not wanted:
            raise BTFError(f"no {kind.name.lower() if kind else 'type'} {name!r} in BTF")
        composite = [i for i in wanted if self.kind(i) in (Kind.STRUCT, Kind.UNION)]
        return (composite or wanted)[0]

    def resolve(self, type_id: int) -> int:
        """Skip typedefs and qualifiers."""
        while type_id and self.kind(type_id) in _MODIFIERS:
            type_id = _TYPE.unpack_from(self._blob, self._records[type_id])[2]
        return type_id

    def size(self, type_id: int) -> int:
        """sizeof in bytes (pointers: 8)."""
        type_id = self.resolve(type_id)
        kind = self.kind(type_id)
        pos = self._records[type_id]
        if kind == Kind.PTR:
            return 8
        if kind == Kind.ARRAY:
            elem, _index, nelems = struct.unpack_from("<III", self._blob, pos + 12)
            return self.size(elem) * nelems
        if kind in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FLOAT):
            return _TYPE.unpack_from(self._blob, pos)[2]
        raise BTFError(f"type {type_id} ({kind.name}) has no size")

    def members(self, type_id: int) -> list[Member]:
        """Direct members of a struct/union (anonymous ones have name "")."""
        type_id = self.resolve(type_id)
        kind = self.kind(type_id)
        if kind not in (Kind.STRUCT, Kind.UNION):
            raise BTFError(f"{self.name(type_id) or type_id} is a {kind.name}, not a struct")
        pos = self._records[type_id]
        info = _TYPE.unpack_from(self._blob, pos)[1]
        kind_flag = info >> 31
        out = []
        for i in range(info & 0xFFFF):
            name_off, member_type, offset = _TYPE.unpack_from(self._blob, pos + 12 + 12 * i)
            bits, bitfield = (offset & 0xFFFFFF, offset >> 24) if kind_flag else (offset, 0)
            out.append(Member(self._str(name_off) if name_off else "", member_type, bits,
                              bitfield))
        return out

    def _member(self, type_id: int, name: str) -> Member | None:
        """``name`` in ``type_id``, looking inside anonymous struct/union members."""
        for m in self.members(type_id):
            if m.name == name:
                return m
            if not m.name and self.kind(self.resolve(m.type_id)) in (Kind.STRUCT, Kind.UNION):
                inner = self._member(m.type_id, name)
                if inner is not None:
                    return Member(inner.name, inner.type_id, m.bit_offset + inner.bit_offset,
                                  inner.bitfield_size)
        return None

    def member(self, struct_name: str, path: str) -> Member:
        """Resolve ``"a.b.c"`` inside ``struct_name`` (no pointer is followed).

        ``member("cred", "euid.val")`` gives the kuid_t's inner u32.
        """
        type_id = self.find(struct_name)
        total = 0
        found = None
        for part in path.split("."):
            found = self._member(type_id, part)
            if found is None:
                raise BTFError(f"{self.name(self.resolve(type_id)) or struct_name} has no "
                               f"member {part!r} (path {struct_name}.{path})")
            total += found.bit_offset
            type_id = found.type_id
        return Member(path, found.type_id, total, found.bitfield_size)

    def offsetof(self, struct_name: str, path: str) -> int:
        """Byte offset of member ``path`` in ``struct struct_name``."""
        return self.member(struct_name, path).offset

    def sizeof(self, name: str) -> int:
        return self.size(self.find(name))

    def pointee(self, type_id: int) -> str:
        """Name of what a pointer-typed member points to (to chain lookups)."""
        type_id = self.resolve(type_id)
        if self.kind(type_id) != Kind.PTR:
            raise BTFError(f"type {type_id} is not a pointer")
        return self.name(self.resolve(_TYPE.unpack_from(self._blob, self._records[type_id])[2]))


    def access(self, struct_name: str, expr: str) -> Access:
        """Plan a read like ``"real_parent->tgid"`` or ``"cred->euid.val"``.

        Each ``->`` is a pointer hop: the generated code reads a pointer at
        ``offsets[i]`` (from the previous object) and continues from it; the
        last offset is where the final ``size``-byte value lives.
        """
        offsets = []
        current = struct_name
        hops = expr.split("->")
        for i, hop in enumerate(hops):
            m = self.member(current, hop)
            offsets.append(m.offset)
            if i < len(hops) - 1:
                current = self.pointee(m.type_id)
        return Access(struct_name, expr, tuple(offsets), self.size(m.type_id))


@dataclass(frozen=True)
class Access:
    """Offsets of a pointer-chasing read, from :meth:`BTF.access`."""

    struct: str
    expr: str
    offsets: tuple[int, ...]
    size: int


@cache
def vmlinux() -> BTF:
    """The running kernel's BTF, parsed once per process."""
    return BTF.load()


def offsetof(struct_name: str, path: str) -> int:
    """Byte offset in the running kernel, e.g. ``offsetof("cred", "euid")``."""
    return vmlinux().offsetof(struct_name, path)


class Linkage(IntEnum):
    """A FUNC's linkage (its vlen field)."""

    STATIC = 0
    GLOBAL = 1  # the verifier checks a global function on its own, by its prototype


class Builder:
    """Writes a BTF blob from INT, FUNC_PROTO and FUNC records (what func_info needs)."""

    def __init__(self) -> None:
        self._types: list[bytes] = []
        self._strings = bytearray(b"\0")

    def _name(self, name: str) -> int:
        if not name:
            return 0
        off = len(self._strings)
        self._strings += name.encode() + b"\0"
        return off

    def _add(self, record: bytes) -> int:
        self._types.append(record)
        return len(self._types)  # ids start at 1: 0 is void

    def int(self, name: str, size: int, signed: bool = False) -> int:
        encoding = 1 if signed else 0  # BTF_INT_SIGNED
        return self._add(_TYPE.pack(self._name(name), Kind.INT << 24, size)
                         + struct.pack("<I", (encoding << 24) | size * 8))

    def func_proto(self, ret: int, params: Sequence[tuple[str, int]]) -> int:
        head = _TYPE.pack(0, (Kind.FUNC_PROTO << 24) | len(params), ret)
        return self._add(head + b"".join(struct.pack("<II", self._name(n), t)
                                         for n, t in params))

    def func(self, name: str, proto: int, linkage: Linkage = Linkage.STATIC) -> int:
        return self._add(_TYPE.pack(self._name(name), (Kind.FUNC << 24) | linkage, proto))

    def encode(self) -> bytes:
        types = b"".join(self._types)
        strings = bytes(self._strings)
        return _HEADER.pack(MAGIC, 1, 0, _HEADER.size, 0, len(types), len(types),
                            len(strings)) + types + strings


class Handle(FD):
    """BTF loaded into the kernel (owning its fd), e.g. for a program's func_info."""

    LOG_SIZE = 1 << 16

    @classmethod
    def load(cls, blob: bytes) -> Handle:
        """BTF_LOAD ``blob``; a refusal raises BpfError carrying the kernel's BTF log."""
        buf = ctypes.create_string_buffer(blob, len(blob))
        log = ctypes.create_string_buffer(cls.LOG_SIZE)
        attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(blob),
                           btf_log_buf=ctypes.addressof(log), btf_log_size=cls.LOG_SIZE,
                           btf_log_level=1)
        try:
            return cls(bpf(Cmd.BTF_LOAD, attr))
        except BpfError as e:
            raise BpfError(e.errno, Cmd.BTF_LOAD, log.value.decode(errors="replace")) from None

    @classmethod
    def from_id(cls, ident: int) -> Handle:
        """The loaded BTF with kernel id ``ident`` (BTF_GET_FD_BY_ID)."""
        return cls(fd_by_id(Cmd.BTF_GET_FD_BY_ID, ident).release())

    @property
    def id(self) -> int:
        return obj_info(self.fd, BtfInfo()).id


class FuncInfo(NamedTuple):
    """``struct bpf_func_info``: the subprogram starting at slot ``insn_off`` is FUNC
    ``type_id``."""

    insn_off: int
    type_id: int


def stub_func_info(insns: Sequence[Instruction]) -> tuple[bytes, tuple[FuncInfo, ...]]:
    """BTF and func_info for a program with callbacks: one static ``int f(int, int)``
    per subprogram, main included. Static functions are verified in their calling
    context, so the prototype is never checked against the real arguments; only
    their presence is required ("missing btf func_info" otherwise)."""
    b = Builder()
    int_t = b.int("int", 4, signed=True)
    proto = b.func_proto(int_t, [("a", int_t), ("b", int_t)])
    info = tuple(FuncInfo(start, b.func("f", proto)) for start in (0, *subprograms(insns)))
    return b.encode(), info
