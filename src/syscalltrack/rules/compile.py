"""Compile a validated filter into one Python function for the per-command engine.

The filter becomes the source of a single lambda over a `FilterContext`,
compiled once: constants folded, names resolved, no tree walk and no
allocation per node when it runs.  Its semantics are those of `values.py`.
The compiler also reports what the filter reads, so an engine fetches only
that, and -- when the filter depends on integer arguments alone -- the same
condition as a disjunction of simple argument tests, the form a seccomp
filter can check in the kernel.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from ..syscalls import Arg
from .ast import SOCKADDR_FIELDS, STRING_VARIABLES, Binary, Expr, In, Unary, Var
from .context import FilterContext
from .values import (
    BIT63,
    MASK64,
    const_value,
    glob_matcher,
    is_constant,
    is_string,
    sockaddr_member,
)

MAX_CONJUNCTIONS = 64

_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


@dataclass(frozen=True, slots=True)
class ArgTest:
    """`(PARAMS[arg+1] & mask) OP value`, or without the mask when `mask` is None.

    `arg` is 0-based in the rule's (classic) signature -- for a rule bound
    through a modern variant, `Variant.args[arg]` is the register to test;
    the comparison is signed 64-bit on the normalised argument (`values.py`).
    """

    arg: int
    op: str
    value: int
    mask: int | None = None


ArgConditions = tuple[tuple[ArgTest, ...], ...]  # OR of ANDs; () never holds, ((),) always does


@dataclass(frozen=True, eq=False)
class CompiledFilter:
    """A filter ready to run: `evaluate(ctx)` is True when the rule matches."""

    evaluate: Callable[[FilterContext], bool]
    source: str
    args: frozenset[int]  # integer arguments read (0-based)
    strings: frozenset[int]  # string/buffer arguments read
    paths: frozenset[int]  # PATH[n] read (0-based)
    variables: frozenset[str]  # UID, COMM, CWD, RETVAL, ...
    arg_conditions: ArgConditions | None  # set when `integer_only` and simple enough

    @property
    def integer_only(self) -> bool:
        """Decidable from the call's integer arguments and constants alone."""
        return not (self.strings or self.paths or self.variables)

    @property
    def always(self) -> bool:
        return self.arg_conditions == ((),)

    @property
    def needs_strings(self) -> bool:
        return bool(self.strings)

    @property
    def needs_paths(self) -> bool:
        return bool(self.paths)

    @property
    def needs_cwd(self) -> bool:
        return "CWD" in self.variables


def compile_filter(expr: Expr | None, signature: tuple[Arg, ...],
                   name: str = "filter") -> CompiledFilter:
    """Compile validated filter `expr` of a rule on a call with `signature`; None is "always"."""
    gen = _Generator(signature)
    code = "True" if expr is None else gen.condition(expr)
    source = f"lambda ctx: {code}"
    # repr: a rule's name may hold NUL, which compile() refuses in a file name
    evaluate = eval(compile(source, f"<filter {name!r}>", "eval"), gen.namespace)
    conditions = ((),) if expr is None else None
    if expr is not None and not (gen.strings or gen.paths or gen.variables):
        conditions = _arg_conditions(expr, signature, False)
    return CompiledFilter(evaluate, source, frozenset(gen.args), frozenset(gen.strings),
                          frozenset(gen.paths), frozenset(gen.variables), conditions)


def _wrap(code: str) -> str:
    return f"(((({code}) + {BIT63}) & {MASK64}) - {BIT63})"


class _Generator:
    """Python source for one filter, with the objects it refers to in `namespace`."""

    def __init__(self, signature: tuple[Arg, ...]):
        self.signature = signature
        self.namespace: dict[str, object] = {"__builtins__": {}}
        self.args: set[int] = set()
        self.strings: set[int] = set()
        self.paths: set[int] = set()
        self.variables: set[str] = set()
        self._names = itertools.count()

    def _bind(self, value: object) -> str:
        name = f"_k{next(self._names)}"
        self.namespace[name] = value
        return name

    def _temp(self) -> str:
        return f"_t{next(self._names)}"

    def condition(self, expr: Expr) -> str:
        if is_constant(expr):
            return repr(bool(const_value(expr)))
        code, kind = self.value(expr)
        if kind == "opt":
            temp = self._temp()
            return f"(({temp} := {code}) is not None and {temp} != 0)"
        return code if kind == "bool" else f"({code} != 0)"

    def value(self, expr: Expr) -> tuple[str, str]:
        """Python source for `expr` and its kind: "bool", "int" or "str"."""
        if is_constant(expr):
            value = const_value(expr)
            return repr(value), ("str" if isinstance(value, bytes) else "int")
        if isinstance(expr, Var):
            return self.var(expr)
        if isinstance(expr, Unary):
            if expr.op == "!":
                return f"(not {self.condition(expr.operand)})", "bool"
            operand = self.value(expr.operand)[0]
            if expr.op == "+":
                return operand, "int"
            return (f"(~{operand})" if expr.op == "~" else _wrap(f"-{operand}")), "int"
        if isinstance(expr, In):
            code = self.value(expr.operand)[0]
            values = frozenset(const_value(i) for i in expr.items)
            test = f"({code} in {self._bind(values)})"
            if guard := self.path_guard(expr.operand, values):
                test = f"({guard} and {test})"
            return test, "bool"
        return self.binary(expr)

    def var(self, var: Var) -> tuple[str, str]:
        if var.member is not None:  # read from memory, like a string; may be absent
            index = var.index - 1
            self.strings.add(index)
            getter = self._bind(functools.partial(sockaddr_member, member=var.member))
            kind = "str" if SOCKADDR_FIELDS[var.member] else "opt"
            return f"{getter}(ctx.sockaddr({index}))", kind
        if var.name == "PARAMS":
            index = var.index - 1
            if self.signature[index].kind.is_string:
                self.strings.add(index)
                return f"ctx.string({index})", "str"
            self.args.add(index)
            arg = self.signature[index]
            code = f"ctx.arg({index})"
            return (_wrap(code) if arg.width == 8 and not arg.signed else code), "int"
        if var.name == "PATH":
            self.paths.add(var.index - 1)
            return f"ctx.path({var.index - 1})", "str"
        self.variables.add(var.name)
        return f"ctx.{var.name.lower()}", ("str" if var.name in STRING_VARIABLES else "int")

    def binary(self, expr: Binary) -> tuple[str, str]:
        op = expr.op
        if op in ("&&", "||"):
            word = "and" if op == "&&" else "or"
            return f"({self.condition(expr.left)} {word} {self.condition(expr.right)})", "bool"
        left, kind = self.value(expr.left)
        right, rkind = self.value(expr.right)
        if "opt" in (kind, rkind):
            return self.present_test(op, (left, kind), (right, rkind)), "bool"
        if kind == "str":
            return self.string_test(op, expr, left, right), "bool"
        if op in ("+", "-"):
            return _wrap(f"{left} {op} {right}"), "int"
        if op in ("&", "|"):
            return f"({left} {op} {right})", "int"
        return f"({left} {op} {right})", "bool"

    def present_test(self, op: str, *sides: tuple[str, str]) -> str:
        """A comparison of fields that may be absent: false when one is, `!=` true."""
        checks, operands = [], []
        for code, kind in sides:
            if kind == "opt":
                temp = self._temp()
                checks.append(f"({temp} := {code}) is not None")
                code = temp
            operands.append(code)
        test = " and ".join([*checks, f"{operands[0]} {'==' if op == '!=' else op} {operands[1]}"])
        return f"(not ({test}))" if op == "!=" else f"({test})"

    def path_guard(self, var: Expr, literals) -> str | None:
        """For `PATH[n]` compared with string literals: a test that the name's last
        component as written (`FilterContext.path_last`) is that of some literal, which
        must hold for PATH to equal one, so that a call whose name cannot match is not
        resolved (`rm -r` of a tree under a rule on one file); None for anything else."""
        if not (isinstance(var, Var) and var.name == "PATH" and var.member is None) \
                or not all(isinstance(v, bytes) for v in literals):
            return None
        lasts = self._bind(frozenset(v.rpartition(b"/")[2] for v in literals))
        temp = self._temp()
        return f"(({temp} := ctx.path_last({var.index - 1})) is None or {temp} in {lasts})"

    def string_test(self, op: str, expr: Binary, left: str, right: str) -> str:
        if op in ("==", "!="):
            if is_constant(expr.left) or is_constant(expr.right):
                equal = f"({left} == {right})"  # None never equals a literal
                var, literal = ((expr.right, expr.left) if is_constant(expr.left)
                                else (expr.left, expr.right))
                if guard := self.path_guard(var, (const_value(literal),)):
                    equal = f"({guard} and {equal})"
            else:
                temp = self._temp()
                equal = f"(({temp} := {left}) is not None and {temp} == {right})"
            return equal if op == "==" else f"(not {equal})"
        temp = self._temp()
        present = f"({temp} := {left}) is not None"
        if op == "~=":
            return f"({present} and {right} in {temp})"
        if op == "glob":
            matcher = self._bind(glob_matcher(const_value(expr.right)))
            return f"({present} and {matcher}({temp}) is not None)"
        return f"({present} and {temp}.{op}({right}))"  # startswith, endswith


# -- integer-only filters as argument tests -------------------------------------------------

def _term(expr: Expr, signature: tuple[Arg, ...]) -> tuple[int, int | None] | None:
    """(argument, mask) when `expr` is `PARAMS[n]` or `PARAMS[n] & constant`."""
    if isinstance(expr, Var) and expr.name == "PARAMS" and expr.member is None \
            and not is_string(expr, signature):
        return expr.index - 1, None
    if isinstance(expr, Binary) and expr.op == "&":
        for var, mask in ((expr.left, expr.right), (expr.right, expr.left)):
            if isinstance(var, Var) and var.name == "PARAMS" and is_constant(mask):
                return var.index - 1, const_value(mask)
    return None


def _or(*parts: ArgConditions | None) -> ArgConditions | None:
    if any(p is None for p in parts):
        return None
    joined = tuple(itertools.chain.from_iterable(parts))
    return joined if len(joined) <= MAX_CONJUNCTIONS else None


def _and(left: ArgConditions | None, right: ArgConditions | None) -> ArgConditions | None:
    if left is None or right is None or len(left) * len(right) > MAX_CONJUNCTIONS:
        return None
    return tuple(a + b for a in left for b in right)


def _arg_conditions(expr: Expr, signature: tuple[Arg, ...], negate: bool) -> ArgConditions | None:
    """`expr` (or its negation) as an OR of ANDs of ArgTests; None when not that simple."""
    if is_constant(expr):
        return ((),) if bool(const_value(expr)) != negate else ()
    if isinstance(expr, Unary) and expr.op == "!":
        return _arg_conditions(expr.operand, signature, not negate)
    if isinstance(expr, Binary) and expr.op in ("&&", "||"):
        left = _arg_conditions(expr.left, signature, negate)
        right = _arg_conditions(expr.right, signature, negate)
        return _and(left, right) if (expr.op == "&&") != negate else _or(left, right)
    if isinstance(expr, In) and (term := _term(expr.operand, signature)):
        arg, mask = term
        values = sorted({const_value(i) for i in expr.items})
        if negate:
            return (tuple(ArgTest(arg, "!=", v, mask) for v in values),)
        return _or(*(((ArgTest(arg, "==", v, mask),),) for v in values))
    if isinstance(expr, Binary) and expr.op in _NEGATE:
        for side, other, op in ((expr.left, expr.right, expr.op),
                                (expr.right, expr.left, _FLIP[expr.op])):
            if (term := _term(side, signature)) and is_constant(other):
                op = _NEGATE[op] if negate else op
                return ((ArgTest(term[0], op, const_value(other), term[1]),),)
        return None
    if term := _term(expr, signature):
        return ((ArgTest(term[0], "==" if negate else "!=", 0, term[1]),),)
    return None
