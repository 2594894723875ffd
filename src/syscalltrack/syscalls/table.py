"""The system call table: numbers, names, groups and argument decoding, per ABI.

The rows come from `data/syscalls.tsv` (strace's tables plus the tracefs format
files of Linux 6.18).  The i386 rows carry no argument list there; they borrow
the one of their x86_64 counterpart (`chown32` is `chown`, `stat64` is `stat`)
so that a 32-bit `int $0x80` call is decoded and matched like the native one.
Where the i386 registers do not line up with those arguments (a 64-bit offset
split over two registers, clone's swapped pointers), `Syscall.registers` says
where each argument comes from, and `Syscall.arguments` assembles them.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

from .kinds import ArgKind, arg_kind, buffer_length_arg

# Package data lies beside the modules (importlib.resources costs ~40 ms to import,
# pathlib ~5 ms).
_HERE = os.path.dirname(os.path.realpath(__file__))

X86_64 = "x86_64"
I386 = "i386"
ABIS = (X86_64, I386)
NO_RETURN = frozenset({"exit", "exit_group"})  # calls that end the thread: no exit to stop at


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: its C name and type, and how to decode it."""

    name: str
    ctype: str
    kind: ArgKind
    length_arg: int | None = None  # 0-based index of the length of a BUFFER or SOCKADDR
    compat: bool = False  # an i386 argument: `long` and pointers are 4 bytes

    @property
    def width(self) -> int:
        """Bytes of the register the kernel reads (`int` is 4, pointers 8, 4 on i386)."""
        width = c_type(self.ctype)[1]
        return min(width, 4) if self.compat else width

    @property
    def signed(self) -> bool:
        return c_type(self.ctype)[2]

    def normalise(self, raw: int) -> int:
        """The value of a raw 64-bit register as this argument's C type reads it.

        Filters compare, and both engines pass, arguments in this form: an
        `int dfd` of AT_FDCWD is -100 however the caller filled the upper half.
        """
        bits = self.width * 8
        value = raw & ((1 << bits) - 1)
        if self.signed and value >> (bits - 1):
            value -= 1 << bits
        return value

    def as_signed(self, raw: int) -> int:
        """The value printed by `%params`: signed decimal of the C type's width."""
        bits = self.width * 8
        value = raw & ((1 << bits) - 1)
        return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(frozen=True, slots=True)
class Syscall:
    """One system call of one ABI."""

    abi: str
    nr: int
    name: str
    args: tuple[Arg, ...]
    groups: frozenset[str]
    tracepoint: str | None = None  # suffix of syscalls:sys_enter_* on x86_64
    family: str = ""  # the x86_64 name rules use for it (i386 `chown32` -> `chown`)
    # Per argument, its register, or the (low, high) halves of a 64-bit value; None
    # when argument i is register i (every x86_64 call, most i386 ones).
    registers: tuple[tuple[int, ...], ...] | None = None

    @property
    def nargs(self) -> int:
        return len(self.args)

    def arguments(self, registers: tuple[int, ...]) -> tuple[int, ...]:
        """The raw argument values from the call's raw registers, in `args` order."""
        if self.registers is None:
            return registers
        return tuple([registers[r[0]] if len(r) == 1
                      else (registers[r[1]] & 0xFFFFFFFF) << 32 | registers[r[0]] & 0xFFFFFFFF
                      for r in self.registers])

    def lacks(self, index: int, args: tuple[Arg, ...]) -> bool:
        """Whether this call does not pass argument `index` of `args` (the list of another
        call of its family, or of a rule's call) in its registers: a few old i386 calls
        have fewer (`umount` no flags, `waitpid` no rusage) or others in their place (old
        `mmap` and `select`: one pointer to a struct of them all)."""
        return (index >= self.nargs or index >= len(args)
                or self.args[index].name != args[index].name)

    @property
    def layout(self) -> tuple[tuple[int, ...], ...]:
        """Per argument, the registers it comes from: one, or the (low, high) halves."""
        if self.registers is None:
            return tuple((i,) for i in range(len(self.args)))
        return self.registers

    def register_of(self, index: int) -> int | None:
        """The one register argument `index` lives in; None if it is split over two."""
        where = self.layout[index]
        return where[0] if len(where) == 1 else None

    def placed(self, index: int, value):
        """{register: value} that make argument `index` hold `value` (`arguments`'s
        inverse): a 64-bit value split over two registers goes into both halves."""
        where = self.layout[index]
        if len(where) == 1:
            return {where[0]: value}
        low, high = where
        return {low: value & 0xFFFFFFFF, high: value >> 32 & 0xFFFFFFFF}


# The integer C types of the table's arguments: (bytes, signed), as the kernel's syscall
# wrapper casts the register (an `int` is its low 32 bits, sign-extended).
_C_INT_TYPES = {
    "int": (4, True), "unsigned int": (4, False), "long": (8, True), "unsigned long": (8, False),
    "pid_t": (4, True), "uid_t": (4, False), "gid_t": (4, False), "umode_t": (2, False),
    "key_t": (4, True), "mqd_t": (4, True), "timer_t": (4, True), "clockid_t": (4, True),
    "key_serial_t": (4, True), "rwf_t": (4, True), "qid_t": (4, False), "off_t": (8, True),
    "loff_t": (8, True), "size_t": (8, False), "aio_context_t": (8, False),
    "old_uid_t": (2, False), "old_gid_t": (2, False),
}
# Other spellings of those types, and typedefs of pointers.
_C_ALIASES = {
    "unsigned": "unsigned int", "u32": "unsigned int", "__u32": "unsigned int", "__s32": "int",
    "u64": "unsigned long", "__u64": "unsigned long", "__s64": "long",
    "cap_user_header_t": "void *", "cap_user_data_t": "void *",
}


@functools.cache
def c_type(ctype: str) -> tuple[str, int, bool]:
    """(canonical spelling, bytes, signed) of the C type `ctype` of an argument.

    `const` is dropped, an enum is an `unsigned int` (the kernel's syscall enums have no
    negative values, so that is the type the compiler gives them), a pointer is 8 bytes,
    unsigned.  A type not known here raises ValueError: taken for a 64-bit value, a 32-bit
    argument's upper register bits, which the kernel ignores, would get around a rule.
    """
    if "*" in ctype:  # kept whole: `const char *` and `char *` decode differently
        return ctype, 8, False
    base = ctype.removeprefix("const ")
    base = _C_ALIASES.get(base, base)
    if "*" in base:
        return base, 8, False
    if base.startswith("enum "):
        base = "unsigned int"
    if base not in _C_INT_TYPES:
        raise ValueError(f"unknown C type {ctype!r}: add it to syscalls/table.py _C_INT_TYPES")
    return base, *_C_INT_TYPES[base]

# i386 calls whose x86_64 counterpart has another name.
_I386_FAMILY = {
    "oldstat": "stat", "stat64": "stat", "oldlstat": "lstat", "lstat64": "lstat",
    "oldfstat": "fstat", "fstat64": "fstat", "fstatat64": "newfstatat",
    "truncate64": "truncate", "ftruncate64": "ftruncate", "fcntl64": "fcntl",
    "statfs64": "statfs", "fstatfs64": "fstatfs", "mmap2": "mmap", "sendfile64": "sendfile",
    "umount": "umount2", "ugetrlimit": "getrlimit", "_newselect": "select",
    "fadvise64_64": "fadvise64", "sigaction": "rt_sigaction", "sigprocmask": "rt_sigprocmask",
    "sigsuspend": "rt_sigsuspend", "sigpending": "rt_sigpending", "sigreturn": "rt_sigreturn",
    "_llseek": "lseek", "waitpid": "wait4", "olduname": "uname", "oldolduname": "uname",
}
_TIME64 = re.compile(r"^(.*)_time64$")

# i386 calls whose registers do not line up with their family's x86_64 arguments
# (arch/x86/kernel/sys_ia32.c and the COMPAT_SYSCALL_DEFINEs with a 64-bit value):
# per argument, its register or the (low, high) registers of a 64-bit value.  i386
# clone is CONFIG_CLONE_BACKWARDS: tls comes before child_tidptr.  statfs64 and
# fstatfs64 pass the buffer's size before it.  preadv and pwritev split the position
# that x86_64 passes whole in pos_l.  (mmap2's offset counts pages: it stays as the
# register says.  preadv2 and pwritev2 have pos_l and pos_h on both ABIs.)
_I386_REGISTERS: dict[str, tuple[tuple[int, ...], ...]] = {
    "truncate64": ((0,), (1, 2)),
    "ftruncate64": ((0,), (1, 2)),
    "pread64": ((0,), (1,), (2,), (3, 4)),
    "pwrite64": ((0,), (1,), (2,), (3, 4)),
    "readahead": ((0,), (1, 2), (3,)),
    "fadvise64": ((0,), (1, 2), (3,), (4,)),
    "fadvise64_64": ((0,), (1, 2), (3, 4), (5,)),
    "sync_file_range": ((0,), (1, 2), (3, 4), (5,)),
    "fallocate": ((0,), (1,), (2, 3), (4, 5)),
    "_llseek": ((0,), (2, 1), (4,)),  # fd, offset_high, offset_low, result, whence
    "clone": ((0,), (1,), (2,), (4,), (3,)),
    "fanotify_mark": ((0,), (1,), (2, 3), (4,), (5,)),  # fd, flags, mask0, mask1, dfd, path
    "preadv": ((0,), (1,), (2,), (3, 4)),
    "pwritev": ((0,), (1,), (2,), (3, 4)),
    "statfs64": ((0,), (2,)),  # pathname, sz, buf
    "fstatfs64": ((0,), (2,)),  # fd, sz, buf
}
# i386 calls whose one register is not their family's first argument: old `select` and
# old `mmap` pass one pointer to a struct holding them all.
_I386_OWN_ARGS = {
    "select": "struct sel_arg_struct * arg",
    "mmap": "struct mmap_arg_struct * arg",
}
_UID16 = {"uid_t": "old_uid_t", "gid_t": "old_gid_t"}
# i386 calls of 16-bit ids (sys_chown16 and the like): the kernel reads the low 16 bits
# of an id register, so a uid of 0x10000 is root there.
_I386_UID16 = frozenset({"chown", "lchown", "fchown", "setuid", "setgid", "setreuid",
                         "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid"})


# x32's own numbers (the x32 bit taken off): the calls whose x32 form differs from the
# x86_64 one have these; every other x32 call has its x86_64 number (the kernel's
# unistd_x32.h).
X32_CALLS = {
    512: "rt_sigaction", 513: "rt_sigreturn", 514: "ioctl", 515: "readv", 516: "writev",
    517: "recvfrom", 518: "sendmsg", 519: "recvmsg", 520: "execve", 521: "ptrace",
    522: "rt_sigpending", 523: "rt_sigtimedwait", 524: "rt_sigqueueinfo", 525: "sigaltstack",
    526: "timer_create", 527: "mq_notify", 528: "kexec_load", 529: "waitid",
    530: "set_robust_list", 531: "get_robust_list", 532: "vmsplice", 533: "move_pages",
    534: "preadv", 535: "pwritev", 536: "rt_tgsigqueueinfo", 537: "recvmmsg", 538: "sendmmsg",
    539: "process_vm_readv", 540: "process_vm_writev", 541: "setsockopt", 542: "getsockopt",
    543: "io_setup", 544: "io_submit", 545: "execveat", 546: "preadv2", 547: "pwritev2",
}


class SyscallTable:
    """All system calls of all ABIs, with O(1) lookups by name and by number.

    A row becomes a `Syscall` when first asked for: working out every row's argument
    types cost ~15 ms of each tool's start-up, and a run asks for a few rows.
    """

    def __init__(self, text: str):
        lines = text.splitlines()
        header = lines[0].split("\t")
        records = [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:] if line]
        native = {rec["name"] for rec in records if rec["abi"] == X86_64}
        self._records: dict[tuple[str, str], dict[str, str]] = {}
        self._by_nr: dict[tuple[str, int], tuple[str, str]] = {}
        self._by_family: dict[str, list[tuple[str, str]]] = {}
        self._groups: dict[str, set[str]] = {}
        self._built: dict[tuple[str, str], Syscall] = {}
        for abi in ABIS:  # (x86_64 rows first: an i386 row borrows its twin's arguments)
            for rec in records:
                if rec["abi"] != abi:
                    continue
                name = rec["name"]
                rec["family"] = family = name if abi == X86_64 else _i386_family(name, native)
                key, number = (abi, name), (abi, int(rec["nr"]))
                if key in self._records or number in self._by_nr:
                    raise ValueError(f"syscalls.tsv: {abi} {name} ({rec['nr']}) is there twice")
                self._records[key] = rec
                self._by_nr[number] = key
                self._by_family.setdefault(family, []).append(key)
                for group in _groups(rec["classes"]):
                    self._groups.setdefault(group, set()).add(family)
        self._names = frozenset(name for (_abi, name) in self._records)

    def _get(self, key: tuple[str, str] | None) -> Syscall | None:
        if key is None:
            return None
        sc = self._built.get(key)
        if sc is None:
            rec = self._records.pop(key, None)  # (the built row replaces it)
            if rec is None:
                return None
            sc = self._built[key] = (_native_row(rec) if key[0] == X86_64 else
                                     _i386_row(rec, self._get((X86_64, rec["family"]))))
        return sc

    def by_nr(self, abi: str, nr: int) -> Syscall | None:
        return self._get(self._by_nr.get((abi, nr)))

    def by_x32_nr(self, nr: int) -> Syscall | None:
        """The x86_64 row of x32 call `nr` (the x32 bit taken off): its own number for the
        calls with an x32 form (`execve` is 520), else the x86_64 one."""
        name = X32_CALLS.get(nr)
        return self.by_name(name) if name is not None else self.by_nr(X86_64, nr)

    def by_name(self, name: str, abi: str = X86_64) -> Syscall | None:
        return self._get((abi, name))

    def lookup(self, name: str) -> Syscall | None:
        """The call named `name`, native if it exists there, else i386."""
        return self._get((X86_64, name)) or self._get((I386, name))

    def family(self, name: str) -> tuple[Syscall, ...]:
        """Every ABI's call that a rule naming `name` watches (before variants)."""
        sc = self.lookup(name)
        return tuple(self._get(key) for key in self._by_family.get(sc.family, ())) if sc else ()

    def group(self, group: str) -> frozenset[str]:
        """Names of the calls in strace group `group` (`file`, `network`, ...)."""
        return frozenset(self._groups.get(group, ()))

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(self._groups)

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def __iter__(self):
        return (self._get(key) for key in self._by_nr.values())

    def __len__(self) -> int:
        return len(self._by_nr)


def filled_length(args: tuple[Arg, ...], index: int) -> int | None:
    """For a socket address the call fills in (accept's peer), the index of the ``int *``
    its length is written to; None for any other argument (an address passed in has its
    length by value, `Arg.length_arg`)."""
    arg = args[index]
    if arg.kind is ArgKind.SOCKADDR and arg.length_arg is None \
            and index + 1 < len(args) and args[index + 1].kind is ArgKind.PTR:
        return index + 1
    return None


def _parse_args(syscall: str, spec: str) -> tuple[Arg, ...]:
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    names_types = []
    for part in parts:
        ctype, _, name = part.rpartition(" ")
        names_types.append((name, ctype.strip()))
    names = tuple(n for n, _ in names_types)
    args = []
    for name, ctype in names_types:
        kind = arg_kind(syscall, c_type(ctype)[0], name, names)
        length = buffer_length_arg(syscall, name) \
            if kind in (ArgKind.BUFFER, ArgKind.SOCKADDR) else None
        args.append(_arg(name, ctype, kind, names.index(length) if length else None))
    return tuple(args)


@functools.cache
def _arg(name: str, ctype: str, kind: ArgKind, length_arg: int | None = None,
         compat: bool = False) -> Arg:
    """The one `Arg` of these fields: many calls share their arguments, and making each
    anew (or with `dataclasses.replace`) was most of the table's load time, paid by every
    tool's start-up."""
    return Arg(name, ctype, kind, length_arg, compat)


def _compat(arg: Arg, compat: bool = True) -> Arg:
    return _arg(arg.name, arg.ctype, arg.kind, arg.length_arg, compat)


def _generic_args(count: int, start: int = 0, compat: bool = False) -> tuple[Arg, ...]:
    return tuple(_arg(f"arg{i + 1}", "unsigned long", ArgKind.UINT, compat=compat)
                 for i in range(start, count))


def _i386_family(name: str, native: set[str]) -> str:
    if name in native:
        return name
    if name in _I386_FAMILY:
        return _I386_FAMILY[name]
    if m := _TIME64.match(name):
        return m.group(1)
    if name.endswith("32") and name[:-2] in native:
        return name[:-2]
    return name


def _native_row(rec: dict[str, str]) -> Syscall:
    nargs = int(rec["nargs"])
    args = _parse_args(rec["name"], rec.get("args", ""))
    if len(args) != nargs:
        args = args[:nargs] + _generic_args(nargs, len(args))
    return Syscall(X86_64, int(rec["nr"]), rec["name"], args, _groups(rec["classes"]),
                   rec.get("tracepoint") or None, rec["name"])


def _i386_row(rec: dict[str, str], twin: Syscall | None) -> Syscall:
    """An i386 row, its arguments its x86_64 `twin`'s (the row of its family)."""
    nargs = int(rec["nargs"])
    registers = _I386_REGISTERS.get(rec["name"])
    if rec["name"] in _I386_OWN_ARGS:
        args = tuple(_compat(a) for a in _parse_args(rec["name"], _I386_OWN_ARGS[rec["name"]]))
    elif registers is not None:  # a value over two registers is 64 bits wide
        args = tuple(_compat(a, len(r) == 1) for a, r in zip(
            twin.args, registers, strict=True))
    else:
        args = tuple(_compat(a) for a in twin.args[:nargs]) if twin else ()
    if len(args) < nargs and registers is None:
        args = args + _generic_args(nargs, len(args), compat=True)
    if rec["name"] in _I386_UID16:
        args = tuple(_arg(a.name, _UID16.get(a.ctype, a.ctype), a.kind, a.length_arg,
                          a.compat) for a in args)
    return Syscall(I386, int(rec["nr"]), rec["name"], args, _groups(rec["classes"]),
                   None, rec["family"], registers)


@functools.cache
def _groups(classes: str) -> frozenset[str]:
    return frozenset(c for c in classes.split(",") if c)


@functools.cache
def table() -> SyscallTable:
    """The table shipped with the package (loaded once)."""
    with open(os.path.join(_HERE, "data", "syscalls.tsv")) as file:
        text = file.read()
    return SyscallTable(text)


