"""The value semantics of filter expressions, shared by the validator and the compiler.

Integers: every integer value -- argument, credential, literal, constant --
is a signed 64-bit two's-complement number.  Arguments arrive normalised to
their C type (`Arg.normalise`), so an `int` of -100 is -100 and an
`unsigned int` of 0xffffffff stays 4294967295; a 64-bit unsigned argument at
or above 2**63 reads as negative.  `+`, `-` and unary `-` wrap to signed
64 bits; `&`, `|`, `~` are bitwise on the two's-complement form (they cannot
leave the range); comparisons are signed.  Comparisons, `!`, `&&` and `||`
yield 1 or 0, and a condition holds when its value is not 0 (as in C).
Literals must fit in 64 bits; those of 2**63 and above (`0xffffffffffffffff`)
read as their signed value.  The kernel engine's code generator reproduces
exactly this with 64-bit registers and signed jumps.

Socket address fields (`PARAMS[2].port`, see `ast.SOCKADDR_FIELDS`) may be absent
too: the pointer is NULL or unreadable, or the family has no such field (a
unix socket has no port).  Then, as for strings, every test on the field is
false and `!=` is true; the validator lets fields only be compared.

Strings are bytes.  A string variable may be absent (`None`: a NULL or
unreadable pointer, an unknown cwd): then every string test on it is false
-- `==`, `~=`, `startswith`, `endswith`, `glob`, `in` -- and `!=`, being
`!(a == b)`, is true.  `a ~= b`: b occurs in a.  `glob`: a shell pattern
(`*`, `?`, `[...]`, `[!...]`) over the whole string, where `*` also
matches `/`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..syscalls import Arg
from ..syscalls.constants import AF_INET, AF_INET6
from .ast import (
    SOCKADDR_FIELDS,
    STRING_VARIABLES,
    Binary,
    Call,
    Const,
    Expr,
    In,
    Num,
    Str,
    Unary,
    Var,
)

if TYPE_CHECKING:  # engines hand decoded addresses in; the language only reads them
    from ..events.event import SockAddr

BIT63 = 1 << 63
MASK64 = (1 << 64) - 1


def wrap64(value: int) -> int:
    """`value` as a signed 64-bit number (two's complement wrap-around)."""
    return ((value + BIT63) & MASK64) - BIT63


def is_string(expr: Expr, signature: tuple[Arg, ...]) -> bool:
    """True when `expr` (well typed, for a call with `signature`) denotes a string."""
    if isinstance(expr, Str):
        return True
    if isinstance(expr, Var):
        if expr.member is not None:
            return SOCKADDR_FIELDS.get(expr.member, False)
        if expr.name == "PATH" or expr.name in STRING_VARIABLES:
            return True
        if expr.name == "PARAMS" and expr.index is not None and 1 <= expr.index <= len(signature):
            return signature[expr.index - 1].kind.is_string
    return False


def is_constant(expr: Expr) -> bool:
    """True when `expr` mentions no variable, so it has one value for all calls."""
    if isinstance(expr, Var):
        return False
    if isinstance(expr, Unary):
        return is_constant(expr.operand)
    if isinstance(expr, Binary):
        return is_constant(expr.left) and is_constant(expr.right)
    if isinstance(expr, In):
        return is_constant(expr.operand) and all(is_constant(i) for i in expr.items)
    return True


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: wrap64(a + b),
    "-": lambda a, b: wrap64(a - b),
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "==": lambda a, b: int(a == b),
    "!=": lambda a, b: int(a != b),
    "<": lambda a, b: int(a < b),
    ">": lambda a, b: int(a > b),
    "<=": lambda a, b: int(a <= b),
    ">=": lambda a, b: int(a >= b),
    "&&": lambda a, b: int(bool(a) and bool(b)),
    "||": lambda a, b: int(bool(a) or bool(b)),
}
_STR_OPS: dict[str, Callable[[bytes, bytes], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "~=": lambda a, b: b in a,
    "startswith": lambda a, b: a.startswith(b),
    "endswith": lambda a, b: a.endswith(b),
    "glob": lambda a, b: glob_matcher(b)(a) is not None,
}


def const_value(expr: Expr) -> int | bytes:
    """The value of a constant expression whose names the validator has resolved."""
    if isinstance(expr, Num):
        return wrap64(expr.value)
    if isinstance(expr, Str):
        return expr.value
    if isinstance(expr, Const | Call):
        if expr.value is None:
            raise ValueError(f"{expr} is not resolved")
        return wrap64(expr.value)
    if isinstance(expr, Unary):
        operand = const_value(expr.operand)
        return {"!": lambda v: int(not v), "~": lambda v: ~v, "-": lambda v: wrap64(-v),
                "+": lambda v: v}[expr.op](operand)
    if isinstance(expr, Binary):
        left, right = const_value(expr.left), const_value(expr.right)
        if isinstance(left, bytes):
            return int(_STR_OPS[expr.op](left, right))
        return _INT_OPS[expr.op](left, right)
    if isinstance(expr, In):
        return int(const_value(expr.operand) in {const_value(i) for i in expr.items})
    raise ValueError(f"{expr} is not constant")


def glob_matcher(pattern: bytes) -> Callable[[bytes], re.Match | None]:
    """A function matching whole byte strings against shell pattern `pattern`."""
    regex = fnmatch.translate(pattern.decode("latin-1"))
    return re.compile(regex.encode("latin-1"), re.S).match


def is_member(expr: Expr) -> bool:
    """True when `expr` is a socket address field, `PARAMS[n].port` and the like."""
    return isinstance(expr, Var) and expr.member is not None


def sockaddr_member(address: SockAddr | None, member: str) -> int | bytes | None:
    """Field `member` of a decoded socket address; None when absent (see above)."""
    if address is None:
        return None
    inet = address.family in (AF_INET, AF_INET6)
    if member == "family":
        return address.family
    if member == "port":
        return address.port
    if member == "addr":
        return None if address.address is None else \
            address.address.encode("utf-8", "surrogateescape")
    if member == "sin_port":  # as in memory (network order), read as the host reads it
        return int.from_bytes(address.raw[2:4], "little") if inet and len(address.raw) >= 4 \
            else None
    if member == "sin_addr":
        return int.from_bytes(address.raw[4:8], "little") \
            if address.family == AF_INET and len(address.raw) >= 8 else None
    raise ValueError(f"no socket address field {member!r}")
