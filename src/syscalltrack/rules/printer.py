"""The canonical text of rules: what `sct_config download` prints.

The layout is the reference's; the output parses back to equal rules.
Expressions get the fewest parentheses that keep their structure: a chain of
`&&` or `||` is written flat when the parser, which balances a flat chain,
would group it so again, and otherwise with the parentheses that keep its
grouping -- so a rule parses back not only equal but equally deep (a deeper
tree could pass the validator's depth limit). Strings are re-escaped so that
any byte value survives.
"""

from __future__ import annotations

from collections.abc import Iterable

from .ast import CHAIN_OPS, Binary, Call, Const, ErrorCode, Expr, In, Num, Rule, Str, Unary, Var

# Binding strength, loosest first; comparisons do not chain.
_PREC = {"||": 1, "&&": 2, "|": 4, "&": 5, "+": 6, "-": 6}
_CMP = 3
_UNARY = 7
_ATOM = 8


def _prec(expr: Expr) -> int:
    if isinstance(expr, Binary):
        return _PREC.get(expr.op, _CMP)
    if isinstance(expr, In):
        return _CMP
    if isinstance(expr, Unary):
        return _UNARY
    return _ATOM


def quote(value: bytes) -> str:
    """`value` as a double-quoted string literal of the rule language."""
    out = []
    for byte in value:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def expr_text(expr: Expr) -> str:
    """An expression in the rule language's syntax."""
    if isinstance(expr, Num):
        return expr.spelling or str(expr.value)
    if isinstance(expr, Str):
        return quote(expr.value)
    if isinstance(expr, Var):
        text = expr.name if expr.index is None else f"{expr.name}[{expr.index}]"
        return text if expr.member is None else f"{text}.{expr.member}"
    if isinstance(expr, Const):
        return expr.name
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(expr_text(a) for a in expr.args)})"
    if isinstance(expr, Unary):
        return expr.op + _wrap(expr.operand, _prec(expr.operand) < _UNARY)
    if isinstance(expr, In):
        items = ", ".join(expr_text(i) for i in expr.items)
        return f"{_wrap(expr.operand, _prec(expr.operand) <= _CMP)} in ({items})"
    prec = _prec(expr)
    if expr.op in CHAIN_OPS and balanced(expr):  # as the parser groups it: flat
        return f" {expr.op} ".join(_wrap(t, _prec(t) < prec) for t in expr.terms())
    if expr.op in CHAIN_OPS:  # a grouping of the user's: each side a unit of its own
        return (f"{_wrap(expr.left, _prec(expr.left) <= prec)} {expr.op} "
                f"{_wrap(expr.right, _prec(expr.right) <= prec)}")
    left = _wrap(expr.left, _prec(expr.left) < prec or (prec == _CMP and _prec(expr.left) == _CMP))
    right = _wrap(expr.right, _prec(expr.right) <= prec)
    return f"{left} {expr.op} {right}"


def balanced(expr: Binary) -> bool:
    """Whether the chain `expr` heads is grouped as the parser groups the same chain
    written flat: n terms split into (n + 1) // 2 on the left and the rest, each side
    again so. Without recursion (a chain may be long and grouped any way)."""
    counts: dict[int, int] = {}  # id(node) -> terms under it, once known
    pending = [expr]
    while pending:
        node = pending[-1]
        sides = [x for x in (node.left, node.right)
                 if isinstance(x, Binary) and x.op == expr.op and id(x) not in counts]
        if sides:
            pending += sides
            continue
        pending.pop()
        left, right = (counts.get(id(x), 1) if isinstance(x, Binary) and x.op == expr.op
                       else 1 for x in (node.left, node.right))
        if left != (left + right + 1) // 2:
            return False
        counts[id(node)] = left + right
    return True


def _wrap(expr: Expr, parens: bool) -> str:
    text = expr_text(expr)
    return f"({text})" if parens else text


def _error_code_text(code: ErrorCode) -> str:
    return ("-" if code.negative else "") + (code.name or str(code.number))


def rule_text(rule: Rule) -> str:
    """One rule block in the canonical layout."""
    lines = ["rule", "{", f"    syscall_name = {rule.syscall}", f"    rule_name = {rule.name}"]
    if rule.exact_syscall:
        lines.append("    exact_syscall = yes")
    if rule.filter is not None:
        lines.append(f"    filter_expression {{{expr_text(rule.filter)}}}")
    if rule.action is not None:
        action = rule.action
        lines += ["    action {", f"        type = {action.type}"]
        if action.error_code is not None:
            lines.append(f"        error_code = {_error_code_text(action.error_code)}")
        if action.param is not None:
            lines.append(f"        param = {action.param}")
        if action.value is not None:
            lines.append(f"        value = {expr_text(action.value)}")
        if action.log_format is not None:
            lines.append(f"        log_format {{{action.log_format}}}")
        lines.append("    }")
    lines += [f"    when = {rule.when}", "}"]
    return "\n".join(lines) + "\n"


def rules_text(rules: Iterable[Rule]) -> str:
    """A whole rule file: the blocks in order, separated by blank lines."""
    return "\n".join(rule_text(rule) for rule in rules)
