"""Parse rule files into the syntax tree of `ast.py`.

The grammar is data (`grammar.lark`, LALR with a contextual lexer); a lark
Transformer turns the parse tree into our own nodes and records structural
problems (unknown, duplicate or missing keys, malformed values) as
diagnostics instead of stopping, so that one run reports them all.  lark's
exceptions are translated into `RuleError` with the expected input in words.

Lexical decisions: `#` starts a comment anywhere except inside a string and
inside `log_format {...}`, whose text is literal up to the matching brace
(braces inside must balance, three levels at most).  `rule_name` takes the
rest of its line, trimmed, up to a `#`.  Strings are double-quoted with C
escapes (`\\" \\\\ \\n \\t \\r \\0 \\xHH \\ooo`) and denote bytes; non-ASCII
characters are stored as their UTF-8 bytes.  Numbers are decimal, octal
(leading 0) or hex (0x).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
from pathlib import Path
from typing import NamedTuple

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .ast import (
    MAX_DEPTH,
    VARIABLES,
    Action,
    ActionType,
    Binary,
    Call,
    Const,
    ErrorCode,
    Expr,
    In,
    Num,
    Pos,
    Rule,
    RuleFile,
    Str,
    Unary,
    Var,
    When,
)
from .errors import Diagnostic, RuleError, printable
from .source import cache_dir

# Package data lies beside the modules (importlib.resources costs ~40 ms to import).
_HERE = Path(__file__).resolve().parent

RULE_KEYS = ("syscall_name", "rule_name", "filter_expression", "action", "when", "exact_syscall")
ACTION_KEYS = ("type", "error_code", "log_format", "param", "value")
REQUIRED_RULE_KEYS = ("syscall_name", "rule_name", "action")


@functools.cache
def _lark() -> lark.Lark:
    grammar = (_HERE / "grammar.lark").read_text()
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=False, cache=_cache_file(grammar) or False)


def _cache_file(grammar: str) -> str | None:
    """Where lark may keep the built parser tables (they cost ~0.1 s at every start):
    the private cache directory of `source` (lark's cache is a pickle too)."""
    directory = cache_dir()
    if directory is None:
        return None
    digest = hashlib.sha256(f"{lark.__version__}\0{grammar}".encode()).hexdigest()[:16]
    return os.path.join(directory, f"rules-parser-{digest}.lark")


def parse(text: str, filename: str = "<rules>",
          diagnostics: list[Diagnostic] | None = None) -> RuleFile:
    """Parse `text` into a RuleFile.

    A syntax error raises RuleError at once.  Structural problems (unknown or
    duplicate keys, missing required keys, malformed values) are appended to
    `diagnostics` when a list is given, so the caller can add the validator's
    findings; without a list they raise RuleError.
    """
    collected: list[Diagnostic] = []
    if "\r" in text and "\n" not in text:  # read as one line, it would fail somewhere odd
        raise RuleError([Diagnostic(Pos(filename, 1, text.index("\r") + 1),
                                    "the lines end with CR alone (old Mac style); convert "
                                    "the file to LF or CRLF line endings")])
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise RuleError([_syntax_error(exc, text, filename)]) from None
    except RecursionError:
        raise RuleError([Diagnostic(Pos(filename, 1, 1), "rules nested too deeply")]) from None
    _balance_chains(tree)
    _limit_depth(tree, filename, collected)
    result = _Builder(filename, collected).transform(tree)
    if diagnostics is None:
        if collected:
            raise RuleError(collected)
    else:
        diagnostics.extend(collected)
    return result


# -- long chains of && and || -------------------------------------------------------------

_CHAIN_OPS = frozenset({"OROR", "ANDAND"})


def _chain_op(node) -> str | None:
    """'OROR' or 'ANDAND' when `node` is a parse tree node joining two operands with it."""
    if isinstance(node, lark.Tree) and node.data == "binary" and len(node.children) == 3:
        op = node.children[1]
        if isinstance(op, Token) and op.type in _CHAIN_OPS:
            return op.type
    return None


def _balance_chains(tree: lark.Tree) -> None:
    """Regroup each flat chain `a || b || c || ...` (or of &&) into a balanced tree, in place.

    The grammar, being LALR, nests a chain one level per operator (((a || b) || c) || d),
    so a list of a few dozen values would be refused as nested too deeply, and a thousand
    would exhaust Python's stack while the tree is transformed.  Both operators are
    associative and both groupings evaluate the operands left to right, stopping at the same
    one, so a balanced tree -- whose depth grows with log2 of the length -- means exactly the
    same.  Each operator keeps its token, hence its position.  Parentheses are kept as written:
    `a || (b || c)` is a chain of two, whose second operand is a chain of two.
    Works without recursion (the chain may be long).
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        op = _chain_op(node)
        if op is None:
            stack += (c for c in node.children if isinstance(c, lark.Tree))
            continue
        terms, ops = [], []
        pending = [node]
        while pending:
            item = pending.pop()
            if isinstance(item, Token):
                ops.append(item)
            elif _chain_op(item) == op:
                left, token, right = item.children
                pending += (right, token, left)  # the left side comes off first
            else:
                terms.append(item)
        node.children = _balanced(terms, ops).children
        stack += terms


def _balanced(terms: list, ops: list[Token]) -> lark.Tree:
    """`terms` joined by `ops` (one fewer), the left half one larger when they do not split
    evenly (so a chain of three stays (a || b) || c, as the grammar groups it)."""
    if len(terms) == 1:
        return terms[0]
    half = (len(terms) + 1) // 2
    return lark.Tree("binary", [_balanced(terms[:half], ops[:half - 1]), ops[half - 1],
                                _balanced(terms[half:], ops[half:])])


# -- deep nesting --------------------------------------------------------------------------

_INNER = frozenset({"unary", "binary", "in_", "call"})  # parse tree nodes that are inner ast nodes
_LEAVES = frozenset({"number", "string", "name", "indexed", "field"})


def _limit_depth(tree: lark.Tree, filename: str, diagnostics: list[Diagnostic]) -> None:
    """Drop parentheses and cut every expression one level below `MAX_DEPTH`, in place.

    Other nesting than parentheses (`- - - x`, a sum of hundreds of terms, written as the
    grammar nests it) would make the transformer, the parse cache's pickle or the validator
    exhaust Python's stack.  An operator at level MAX_DEPTH + 1 gives way to a leaf (what
    lies below it is never looked at): the tree stays deeper than MAX_DEPTH, and the
    validator refuses it at the expression's own position.  Parentheses add no level to
    the syntax tree, but more than MAX_DEPTH of them nested are refused here, at the first
    one too many.  Run after `_balance_chains`, whose grouping is the depth that counts.
    Works without recursion.
    """
    stack = [(tree, 0, 0)]  # a node, its level in the expression (0: rule structure), parens
    while stack:
        node, depth, parens = stack.pop()
        for i, child in enumerate(node.children):
            inner = parens
            while isinstance(child, lark.Tree) and child.data == "paren":
                inner += 1
                if inner == MAX_DEPTH + 1:
                    at = child.children[0]
                    diagnostics.append(Diagnostic(
                        Pos(filename, at.line, at.column),
                        f"parentheses nested too deeply (more than {MAX_DEPTH} levels)"))
                child = node.children[i] = child.children[1]
            if not isinstance(child, lark.Tree) or child.data in _LEAVES:
                continue
            if child.data not in _INNER:
                stack.append((child, depth, inner))
            elif depth + 1 > MAX_DEPTH:
                at = Token("NUMBER", "0", line=child.meta.line, column=child.meta.column)
                node.children[i] = lark.Tree("number", [at])
            else:
                stack.append((child, depth + 1, inner))


# -- syntax errors in words ----------------------------------------------------------------

_WORDS = {
    "RULE": "'rule'", "RULE_NAME": "rule_name", "FILTER_EXPRESSION": "filter_expression",
    "ACTION": "action", "LOG_FORMAT": "log_format", "IN": "'in'", "SUBSTR": "'~='",
    "STARTSWITH": "'startswith'", "ENDSWITH": "'endswith'", "GLOB": "'glob'",
    "CMP_OP": "a comparison", "OROR": "'||'", "ANDAND": "'&&'", "BAR": "'|'", "AMP": "'&'",
    "ADD_OP": "'+' or '-'", "UNARY_OP": "'!' or '~'", "EQUAL": "'='", "LBRACE": "'{'",
    "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "DOT": "'.' and a field",
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string",
    "RULE_NAME_TEXT": "'=' and the rule's name", "LOG_TEXT": "'{' and the format text",
    "$END": "end of file",
}
_OPERATORS = frozenset({"OROR", "ANDAND", "CMP_OP", "SUBSTR", "STARTSWITH", "ENDSWITH", "GLOB",
                        "IN", "BAR", "AMP", "ADD_OP"})
_OPERAND = frozenset({"NUMBER", "STRING", "NAME", "LPAR", "UNARY_OP"})


def _expected_words(expected: set[str]) -> str:
    expected = set(expected)
    words = []
    if expected >= _OPERAND:
        words.append("an expression")
        expected -= _OPERAND | {"ADD_OP"}
    if len(expected & _OPERATORS) > 2:
        words.append("an operator")
        expected -= _OPERATORS | {"LPAR", "LSQB", "DOT"}  # a call, index or field continues
    if "NAME" in expected and expected & {"RULE_NAME", "LOG_FORMAT"}:
        keys = RULE_KEYS if "RULE_NAME" in expected else ACTION_KEYS
        words.append("a key (" + ", ".join(keys) + ")")
        expected -= {"NAME", "RULE_NAME", "FILTER_EXPRESSION", "ACTION", "LOG_FORMAT"}
    words += sorted(_WORDS.get(name, name) for name in expected)
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _show(text: str) -> str:
    text = text if len(text) <= 20 else text[:17] + "..."
    return repr(text)[1:-1].join("''")


def _end_pos(text: str, filename: str) -> Pos:
    line = text.count("\n") + 1
    return Pos(filename, line, len(text) - (text.rfind("\n") + 1) + 1)


def _accepted(exc: UnexpectedInput) -> set[str]:
    """The terminals the parser could really take next (LALR lookaheads over-approximate)."""
    parser = getattr(exc, "interactive_parser", None)
    if parser is not None:
        return set(parser.accepts())
    return set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())


def _syntax_error(exc: UnexpectedInput, text: str, filename: str) -> Diagnostic:
    expected = _accepted(exc)
    if isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {_show(text[exc.pos_in_stream])}"
        pos = Pos(filename, exc.line, exc.column)
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        what = f"unexpected {_show(str(exc.token))}"
        pos = Pos(filename, exc.line, exc.column)
    else:
        what = "unexpected end of file"
        pos = _end_pos(text, filename)
    words = _expected_words(expected)
    return Diagnostic(pos, f"{what}; expected {words}" if words else what)


# -- literals ------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {'"': b'"', "\\": b"\\", "n": b"\n", "t": b"\t", "r": b"\r", "'": b"'",
                   "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v", "?": b"?"}


class _Item(NamedTuple):
    """One `key = value` (or keyword block) inside a rule or action."""

    key: str
    key_pos: Pos
    value: object
    value_pos: Pos


class _Builder(Transformer):
    """Parse tree -> ast nodes, recording structural problems as diagnostics."""

    def __init__(self, filename: str, diagnostics: list[Diagnostic]):
        super().__init__(visit_tokens=False)
        self.filename = filename
        self.diagnostics = diagnostics

    def _at(self, thing) -> Pos:
        return Pos(self.filename, thing.line, thing.column)

    def _error(self, pos: Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos, message))

    # expressions

    @v_args(inline=True)
    def number(self, tok: Token) -> Num:
        text = str(tok)
        pos = self._at(tok)
        if text[:2] in ("0x", "0X"):
            return Num(int(text, 16), text, pos=pos)
        if len(text) > 1 and text[0] == "0":
            if not set(text) <= set("01234567"):
                self._error(pos, f"invalid octal number '{text}' (a leading 0 means octal)")
                return Num(0, text, pos=pos)
            return Num(int(text, 8), text, pos=pos)
        return Num(int(text), None, pos=pos)

    @v_args(inline=True)
    def string(self, tok: Token) -> Str:
        return Str(self._unescape(tok), pos=self._at(tok))

    def _unescape(self, tok: Token) -> bytes:
        body = str(tok)[1:-1]
        out = bytearray()
        last = 0
        for m in _ESCAPE.finditer(body):
            out += body[last:m.start()].encode()
            last = m.end()
            esc = m.group(1)
            if esc == "x":  # _ESCAPE took "x" alone: two hex digits do not follow
                self._escape_error(tok, m.start(), "'\\x' needs two hex digits, as in \\x41")
            elif esc[0] == "x":
                out.append(int(esc[1:], 16))
            elif esc[0] in "01234567":
                if int(esc, 8) > 0o377:
                    self._escape_error(tok, m.start(), f"octal escape '\\{esc}' is above \\377")
                out.append(int(esc, 8) & 0xFF)
            elif esc in _SIMPLE_ESCAPES:
                out += _SIMPLE_ESCAPES[esc]
            else:
                self._escape_error(tok, m.start(),
                                   f"unknown escape '\\{printable(esc)}' in string")
        out += body[last:].encode()
        return bytes(out)

    def _escape_error(self, tok: Token, offset: int, message: str) -> None:
        self._error(Pos(self.filename, tok.line, tok.column + 1 + offset), message)

    @v_args(inline=True)
    def name(self, tok: Token) -> Expr:
        name = str(tok)
        if name in VARIABLES:
            return Var(name, pos=self._at(tok))
        return Const(name, pos=self._at(tok))

    @v_args(inline=True)
    def indexed(self, tok: Token, _lsqb, index: Token, _rsqb) -> Var:
        return Var(str(tok), self.number(index).value, pos=self._at(tok))

    @v_args(inline=True)
    def field(self, tok: Token, _lsqb, index: Token, _rsqb, _dot, name: Token) -> Var:
        return Var(str(tok), self.number(index).value, str(name), pos=self._at(tok))

    def call(self, children) -> Call:
        func = children[0]
        args = tuple(c for c in children[2:-1] if not isinstance(c, Token))
        return Call(str(func), args, pos=self._at(func))

    @v_args(inline=True)
    def unary(self, op: Token, operand: Expr) -> Unary:
        return Unary(str(op), operand, pos=self._at(op))

    @v_args(inline=True)
    def binary(self, left: Expr, op: Token, right: Expr) -> Binary:
        return Binary(str(op), left, right, pos=self._at(op))

    def in_(self, children) -> In:
        operand, op = children[0], children[1]
        items = tuple(c for c in children[3:-1] if not isinstance(c, Token))
        return In(operand, items, pos=self._at(op))

    # rule structure

    @v_args(inline=True)
    def setting(self, key: Token, _eq, value: Expr) -> _Item:
        return _Item(str(key), self._at(key), value, value.pos)

    @v_args(inline=True)
    def rule_name(self, key: Token, text: Token) -> _Item:
        raw = str(text)[1:]
        name = raw.strip()
        pos = self._at(text)
        if name:
            pos = Pos(self.filename, text.line, text.column + 1 + (len(raw) - len(raw.lstrip())))
        return _Item("rule_name", self._at(key), name, pos)

    @v_args(inline=True)
    def filter(self, key: Token, _lbrace, expr: Expr, _rbrace) -> _Item:
        start = expr  # where the filter's text begins: its leftmost operand
        while isinstance(start, Binary | In):
            start = start.left if isinstance(start, Binary) else start.operand
        return _Item("filter_expression", self._at(key), expr, start.pos)

    @v_args(inline=True)
    def log_format(self, key: Token, text: Token) -> _Item:
        pos = Pos(self.filename, text.line, text.column + 1)
        return _Item("log_format", self._at(key), str(text)[1:-1], pos)

    def _items(self, items: list[_Item], allowed: tuple[str, ...], where: str) -> dict[str, _Item]:
        seen: dict[str, _Item] = {}
        for item in items:
            if item.key not in allowed:
                self._error(item.key_pos, _unknown_key(item.key, allowed, where))
            elif item.key in seen:
                first = seen[item.key].key_pos.line
                self._error(item.key_pos, f"duplicate key '{item.key}' (already given at line "
                                          f"{first})")
            else:
                seen[item.key] = item
        return seen

    def action(self, children) -> _Item:
        key = children[0]
        pos = self._at(key)
        items = self._items([c for c in children if isinstance(c, _Item)], ACTION_KEYS,
                            "action")
        if "type" in items:
            action_type = self._action_type(items["type"])
        else:
            self._error(pos, "action has no type; expected type = LOG, FAIL, KILL, SUSPEND "
                             "or REWRITE")
            action_type = None
        if action_type is None:  # the validator skips checks that depend on the type
            items.pop("type", None)
        error_code = self._error_code(items["error_code"]) if "error_code" in items else None
        param = self._param(items["param"]) if "param" in items else None
        action = Action(
            action_type or ActionType.LOG, error_code,
            items["log_format"].value if "log_format" in items else None,
            param,
            items["value"].value if "value" in items else None,
            pos=pos, keys={k: item.value_pos for k, item in items.items()},
        )
        return _Item("action", pos, action, pos)

    def _action_type(self, item: _Item) -> ActionType | None:
        word = _bare_name(item.value)
        if word in ActionType.__members__:
            return ActionType(word)
        message = "action type must be LOG, FAIL, KILL, SUSPEND or REWRITE"
        if word is not None:
            message = f"unknown action type '{word}'; expected LOG, FAIL, KILL, SUSPEND or " \
                      "REWRITE"
        self._error(item.value_pos, message)
        return None

    def _error_code(self, item: _Item) -> ErrorCode | None:
        value = item.value
        signed = isinstance(value, Unary) and value.op in ("-", "+")
        negative = signed and value.op == "-"
        inner = value.operand if signed else value
        if isinstance(inner, Num):
            return ErrorCode(negative, None, inner.value, pos=item.value_pos)
        if isinstance(inner, Const):
            return ErrorCode(negative, inner.name, None, pos=item.value_pos)
        self._error(item.value_pos, "error_code must be a number or an errno name, "
                                    "such as -1, -EPERM or EACCES")
        return None

    def _param(self, item: _Item) -> int | None:
        if isinstance(item.value, Num) and item.value.value >= 1:
            return item.value.value
        self._error(item.value_pos, "param must be an argument number, counting from 1")
        return None

    def rule(self, children) -> Rule:
        pos = self._at(children[0])
        items = self._items([c for c in children if isinstance(c, _Item)], RULE_KEYS, "rule")
        name = items["rule_name"].value if "rule_name" in items else ""
        if "rule_name" in items and not name:
            self._error(items["rule_name"].value_pos, "rule_name needs a value")
        missing = [key for key in REQUIRED_RULE_KEYS if key not in items]
        if missing:
            who = f"rule '{printable(name)}'" if name else "rule"
            listed = ", no ".join(missing[:-1]) + " and no " + missing[-1] if len(missing) > 1 \
                else missing[0]
            self._error(pos, f"{who} has no {listed}")
        syscall = ""
        if "syscall_name" in items:
            syscall = _bare_name(items["syscall_name"].value) or ""
            if not syscall:
                self._error(items["syscall_name"].value_pos,
                            "syscall_name must be a system call name, such as unlink")
        when = When.BEFORE
        if "when" in items:
            word = _bare_name(items["when"].value)
            if word in ("before", "after"):
                when = When(word)
            else:
                self._error(items["when"].value_pos, "when must be 'before' or 'after'"
                            + (f", not '{word}'" if word else ""))
        exact = False
        if "exact_syscall" in items:
            word = _bare_name(items["exact_syscall"].value)
            if word in ("yes", "no"):
                exact = word == "yes"
            else:
                self._error(items["exact_syscall"].value_pos,
                            "exact_syscall must be 'yes' or 'no'"
                            + (f", not '{word}'" if word else ""))
        return Rule(
            name, syscall, items["action"].value if "action" in items else None, when,
            items["filter_expression"].value if "filter_expression" in items else None,
            exact, pos=pos, keys={k: item.value_pos for k, item in items.items()},
        )

    def start(self, rules: list[Rule]) -> RuleFile:
        return RuleFile(tuple(rules), self.filename)


def _bare_name(value) -> str | None:
    """The word of a value written as a bare name (`unlink`, `before`, `LOG`)."""
    if isinstance(value, Const) or (isinstance(value, Var) and value.index is None):
        return value.name
    return None


def _unknown_key(key: str, allowed: tuple[str, ...], where: str) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key '{key}' in {where}; did you mean '{close[0]}'?"
    return f"unknown key '{key}' in {where}; expected one of {', '.join(allowed)}"
