"""A plain tree-walking evaluator of filters, written from the spec in `values.py`.

It lives in the tests only: the product compiles filters; this is what the
compiled form must agree with.
"""

from __future__ import annotations

import fnmatch

from syscalltrack.rules import Call, Const, In, Num, Str, Unary, Var

BIT63 = 1 << 63


def s64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= BIT63 else value


def stringy(expr, signature) -> bool:
    if isinstance(expr, Str):
        return True
    if isinstance(expr, Var):
        if expr.name in ("PATH", "COMM", "CWD"):
            return True
        if expr.name == "PARAMS":
            return signature[expr.index - 1].kind.is_string
    return False


def evaluate(expr, ctx, signature):
    """An int for integer expressions, bytes or None for string ones."""
    if isinstance(expr, Num):
        return s64(expr.value)
    if isinstance(expr, Str):
        return expr.value
    if isinstance(expr, Const | Call):
        return s64(expr.value)
    if isinstance(expr, Var):
        if expr.name == "PARAMS":
            i = expr.index - 1
            return ctx.string(i) if signature[i].kind.is_string else s64(ctx.arg(i))
        if expr.name == "PATH":
            return ctx.path(expr.index - 1)
        return getattr(ctx, expr.name.lower())
    if isinstance(expr, Unary):
        value = evaluate(expr.operand, ctx, signature)
        if expr.op == "!":
            return int(value == 0)
        return ~value if expr.op == "~" else s64(-value)
    if isinstance(expr, In):
        value = evaluate(expr.operand, ctx, signature)
        return int(value is not None and value in [evaluate(i, ctx, signature)
                                                   for i in expr.items])
    left = evaluate(expr.left, ctx, signature)
    right = evaluate(expr.right, ctx, signature)
    op = expr.op
    if op == "&&":
        return int(left != 0 and right != 0)
    if op == "||":
        return int(left != 0 or right != 0)
    if stringy(expr.left, signature):
        if left is None or right is None:
            return int(op == "!=")
        return int({
            "==": left == right, "!=": left != right, "~=": right in left,
            "startswith": left.startswith(right), "endswith": left.endswith(right),
            "glob": fnmatch.fnmatchcase(left.decode("latin-1"), right.decode("latin-1")),
        }[op])
    return {
        "+": lambda: s64(left + right), "-": lambda: s64(left - right),
        "&": lambda: left & right, "|": lambda: left | right,
        "==": lambda: int(left == right), "!=": lambda: int(left != right),
        "<": lambda: int(left < right), ">": lambda: int(left > right),
        "<=": lambda: int(left <= right), ">=": lambda: int(left >= right),
    }[op]()


def matches(expr, ctx, signature) -> bool:
    return expr is None or evaluate(expr, ctx, signature) != 0
