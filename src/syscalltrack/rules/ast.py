"""The rule language's syntax tree: frozen values with source positions.

Positions never take part in equality (`compare=False`), so a rule printed
and parsed again compares equal to the original.  Values resolved by the
validator (constants, macros) are likewise ignored by equality: they follow
from the spelling, which is compared.  Nor is the grouping of a chain of `&&` or
`||` (both associative): the parser groups a long chain as a balanced tree, the
printer writes it flat, and a chain compares by its operands in order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..syscalls.constants import ERRNO


@dataclass(frozen=True, slots=True)
class Pos:
    """Where something was written: file name, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Pos("<generated>", 0, 0)


class When(enum.StrEnum):
    BEFORE = "before"
    AFTER = "after"


class ActionType(enum.StrEnum):
    LOG = "LOG"
    FAIL = "FAIL"
    KILL = "KILL"
    SUSPEND = "SUSPEND"
    REWRITE = "REWRITE"


# The deepest expression accepted, in levels of the tree (`a == 1` is 2; the compiled filter
# nests Python parentheses as deep): the validator refuses deeper ones, and the parser cuts
# them one level below this, so that no tree it builds is deep enough to exhaust Python's
# stack when it is built, cached (pickled) or checked.
MAX_DEPTH = 48

# Variables of filter expressions.  PARAMS and PATH take a 1-based index.
INDEXED_VARIABLES = frozenset({"PARAMS", "PATH"})
INT_VARIABLES = frozenset({"UID", "EUID", "SUID", "GID", "EGID", "SGID", "PID", "PPID", "TID",
                           "RETVAL"})
STRING_VARIABLES = frozenset({"COMM", "CWD"})
VARIABLES = INDEXED_VARIABLES | INT_VARIABLES | STRING_VARIABLES
# Fields of a socket address argument, `PARAMS[n].port`: name -> is a string.  `port` is in
# host order; `sin_port` and `sin_addr` are as they sit in memory, to compare with
# htons(80) and ipaddr("10.0.0.1") as the original did.
SOCKADDR_FIELDS = {"family": False, "port": False, "addr": True, "sin_port": False,
                   "sin_addr": False}


@dataclass(frozen=True, slots=True)
class Num:
    """An integer literal; `spelling` keeps `0755` or `0x10` for the printer."""

    value: int
    spelling: str | None = field(default=None, compare=False)
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal; its value is bytes (C escapes already decoded)."""

    value: bytes
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Var:
    """A variable: `UID`, `COMM`, or `PARAMS[n]`/`PATH[n]` with its 1-based index, or
    a field of a socket address argument, `PARAMS[n].port`."""

    name: str
    index: int | None = None
    member: str | None = None  # the socket address field, as in PARAMS[2].port
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Const:
    """A named constant such as `O_CREAT`; `value` is filled in by the validator."""

    name: str
    value: int | None = field(default=None, compare=False)
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Call:
    """A macro call such as `usernametoid("root")`; `value` is filled in by the validator."""

    func: str
    args: tuple[Expr, ...]
    value: int | None = field(default=None, compare=False)
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "!", "~", "-" or "+" (which changes nothing)
    operand: Expr
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


CHAIN_OPS = frozenset({"&&", "||"})  # associative: a chain's grouping does not matter


@dataclass(frozen=True, slots=True)
class Binary:
    """`left op right`.  For `&&` and `||`, equality and hashing look at the chain's
    operands in order (`terms`), not at how they are grouped: `(a || b) || c` equals
    `a || (b || c)`.  Both evaluate a, b, c left to right and stop at the same operand."""

    op: str  # || && == != < > <= >= ~= startswith endswith glob | & + -
    left: Expr
    right: Expr
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)

    def terms(self) -> tuple[Expr, ...]:
        """The operands of the chain of `op` this node heads, in order: `a || (b || c)` and
        `(a || b) || c` both give (a, b, c).  Without recursion (a chain may be long)."""
        terms: list[Expr] = []
        pending: list[Expr] = [self]
        while pending:
            node = pending.pop()
            if isinstance(node, Binary) and node.op == self.op:
                pending += (node.right, node.left)
            else:
                terms.append(node)
        return tuple(terms)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Binary:
            return NotImplemented
        if self.op != other.op:
            return False
        if self.op in CHAIN_OPS:
            return self.terms() == other.terms()
        return self.left == other.left and self.right == other.right

    def __hash__(self) -> int:
        if self.op in CHAIN_OPS:
            return hash((self.op, self.terms()))
        return hash((self.op, self.left, self.right))


@dataclass(frozen=True, slots=True)
class In:
    """`operand in (item, ...)`: membership in a list of constants."""

    operand: Expr
    items: tuple[Expr, ...]
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


Expr = Num | Str | Var | Const | Call | Unary | Binary | In


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """What a FAIL action makes the call return: `-1`, `0`, `-EPERM`, `EACCES`, `-13`.

    A number is returned as written (negative numbers are `-errno`, `-1` is
    `-EPERM`); an errno name means minus that errno, with or without its sign.
    """

    negative: bool
    name: str | None = None
    number: int | None = None
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)

    @property
    def value(self) -> int:
        """The return value the call gets (valid once the validator accepted the name)."""
        if self.name is not None:
            return -ERRNO[self.name]
        return -self.number if self.negative else self.number


@dataclass(frozen=True, slots=True)
class Action:
    """What a matching rule does.  `param`/`value` are REWRITE's (1-based argument, new value)."""

    type: ActionType
    error_code: ErrorCode | None = None
    log_format: str | None = None
    param: int | None = None
    value: Expr | None = None
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)
    keys: dict[str, Pos] = field(default_factory=dict, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Rule:
    """One `rule { ... }` block.  `keys` maps each key written to its value's position.

    `name` or `syscall` is empty and `action` None only in a rule that failed
    to parse completely; validated rules always have all three.
    """

    name: str
    syscall: str
    action: Action | None
    when: When = When.BEFORE
    filter: Expr | None = None
    exact_syscall: bool = False
    pos: Pos = field(default=NOWHERE, compare=False, repr=False, kw_only=True)
    keys: dict[str, Pos] = field(default_factory=dict, compare=False, repr=False, kw_only=True)

    def pos_of(self, key: str) -> Pos:
        """The position of `key`'s value, or of the rule when the key was not written."""
        return self.keys.get(key, self.pos)


@dataclass(frozen=True, slots=True)
class RuleFile:
    """The rules of one file, in file order."""

    rules: tuple[Rule, ...]
    filename: str = field(default="<rules>", compare=False)
