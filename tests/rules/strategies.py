"""Hypothesis strategies: well-typed filters, whole rules, and call contexts."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from syscalltrack.rules import (
    MACRO_ORDER,
    Action,
    ActionType,
    Binary,
    Call,
    Const,
    ErrorCode,
    In,
    Num,
    Rule,
    Str,
    Unary,
    Var,
    When,
)
from syscalltrack.syscalls import ArgKind, table

SYSCALLS = ("open", "mmap", "rename", "kill", "unlink", "ptrace")
STRINGS = st.sampled_from([b"", b"/etc/passwd", b"/etc", b"passwd", b"a*", b"*", b"[a-c]?",
                           b'\x00\xff"\\\n', b"#{}"]) | st.binary(max_size=6)
NUMBERS = st.integers(0, 8) | st.integers(0, (1 << 64) - 1) | st.sampled_from(
    [(1 << 63) - 1, 1 << 63, (1 << 64) - 1, 0o755, 64, 100])
CONSTANTS = st.sampled_from(["O_CREAT", "O_WRONLY", "AT_FDCWD", "EPERM", "SIGKILL",
                             "PTRACE_ATTACH", "S_IRWXU"])
INT_VARS = ("UID", "EUID", "SUID", "GID", "EGID", "SGID", "PID", "PPID", "TID")


def signature(syscall: str):
    return table().lookup(syscall).args


def filters(syscall: str):
    """Well-typed filter expressions for a before rule on `syscall`."""
    args = signature(syscall)
    int_params = [i + 1 for i, a in enumerate(args) if not a.kind.is_string]
    str_params = [i + 1 for i, a in enumerate(args) if a.kind.is_string]
    path_params = [i + 1 for i, a in enumerate(args) if a.kind is ArgKind.PATH]
    str_vars = [Var("COMM"), Var("CWD")] + [Var("PARAMS", i) for i in str_params] + [
        Var("PATH", i) for i in path_params]
    str_leaf = st.builds(Str, STRINGS) | st.sampled_from(str_vars)
    int_leaf = st.one_of(
        st.builds(Num, NUMBERS), st.builds(Const, CONSTANTS),
        st.sampled_from([Var(n) for n in INT_VARS] + [Var("PARAMS", i) for i in int_params]),
        st.builds(lambda p: Call("htons", (Num(p),)), st.integers(0, 0xFFFF)),
    )
    int_op = st.sampled_from(["+", "-", "&", "|", "==", "!=", "<", ">", "<=", ">=", "&&", "||"])

    def extend(inner):
        return st.one_of(
            st.builds(Unary, st.sampled_from("!~-"), inner),
            st.builds(Binary, int_op, inner, inner),
            st.builds(Binary, st.sampled_from(["==", "!="]), str_leaf, str_leaf),
            st.builds(Binary, st.sampled_from(["~=", "startswith", "endswith", "glob"]),
                      str_leaf, st.builds(Str, STRINGS)),
            st.builds(In, inner, st.lists(st.builds(Num, NUMBERS), min_size=1, max_size=3)
                      .map(tuple)),
            st.builds(In, str_leaf, st.lists(st.builds(Str, STRINGS), min_size=1, max_size=3)
                      .map(tuple)),
        )

    return st.recursive(int_leaf, extend, max_leaves=12)


def _log_formats(when: When):
    """Formats with valid macros; a letter right after a macro would extend its name."""
    macros = [m for m in MACRO_ORDER if when is When.AFTER or m != "retval"]
    piece = st.sampled_from(["%" + m + " " for m in macros] + ["%%", " : ", "# not a comment",
                                                          "{nested {braces}}", "-->", "\n"]) \
        | st.text(st.characters(blacklist_characters="{}%", blacklist_categories=("Cs",)),
                  max_size=5)
    return st.lists(piece, max_size=6).map("".join)


NAMES = st.text(st.characters(blacklist_characters="#\n\r", blacklist_categories=("Cs", "Zl",
                                                                                   "Zp", "Cc")),
                min_size=1, max_size=20).map(str.strip).filter(bool)


@st.composite
def rules(draw):
    syscall = draw(st.sampled_from(SYSCALLS))
    when = draw(st.sampled_from(list(When)))
    types = [ActionType.LOG, ActionType.KILL, ActionType.SUSPEND]
    if when is When.BEFORE:
        types += [ActionType.FAIL, ActionType.REWRITE]
    kind = draw(st.sampled_from(types))
    fmt = draw(_log_formats(when)) if kind is ActionType.LOG or draw(st.booleans()) else None
    code = param = value = None
    if kind is ActionType.FAIL:
        code = draw(st.builds(ErrorCode, st.booleans(), st.sampled_from(["EPERM", "EACCES"]))
                    | st.builds(lambda n, neg: ErrorCode(neg, None, n), st.integers(0, 4095),
                                st.booleans()))
    if kind is ActionType.REWRITE:
        args = signature(syscall)
        param = draw(st.integers(1, len(args)))
        if args[param - 1].kind.is_string:
            value = draw(st.builds(Str, STRINGS))
        else:
            value = draw(st.builds(Num, NUMBERS))
        if args[param - 1].kind in (ArgKind.PTR, ArgKind.BUFFER, ArgKind.SOCKADDR,
                                    ArgKind.STRARRAY):
            kind, param, value, fmt = ActionType.KILL, None, None, fmt
    flt = draw(st.none() | filters(syscall))
    return Rule(draw(NAMES), syscall, Action(kind, code, fmt, param, value), when, flt,
                draw(st.booleans()))


@dataclass
class Context:
    """A FilterContext with every value given up front."""

    args: tuple[int, ...]
    strings: dict[int, bytes | None]
    paths: dict[int, bytes | None]
    uid: int = 0
    euid: int = 0
    suid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    pid: int = 1
    ppid: int = 0
    tid: int = 1
    comm: bytes = b"rm"
    cwd: bytes | None = b"/"
    retval: int | None = None
    reads: list = field(default_factory=list)

    def arg(self, index):
        return self.args[index]

    def string(self, index):
        return self.strings.get(index)

    def path(self, index):
        return self.paths.get(index)

    def path_last(self, index):
        path = self.paths.get(index)  # (what an engine knows before resolving, exactly)
        return None if path is None else path.rpartition(b"/")[2]


@st.composite
def contexts(draw, syscall: str):
    args = signature(syscall)
    ids = st.integers(0, 3) | st.integers(0, 0xFFFFFFFF)
    maybe = st.none() | STRINGS
    return Context(
        tuple(a.normalise(draw(NUMBERS)) for a in args),
        {i: draw(maybe) for i, a in enumerate(args) if a.kind.is_string},
        {i: draw(maybe) for i, a in enumerate(args) if a.kind is ArgKind.PATH},
        *(draw(ids) for _ in range(9)),
        comm=draw(STRINGS), cwd=draw(maybe),
    )
