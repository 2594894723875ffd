"""Check parsed rules against the syscall table and the language's types.

All problems are collected, not just the first, each with its position.  The
result is the same rules with every constant and macro resolved to its
integer (`Const.value`, `Call.value`), ready for the compiler and the kernel
code generator.  Macros are resolved here, once: `usernametoid("root")`
asks the password database at load time, as the original did.
"""

from __future__ import annotations

import dataclasses
import os

from ..syscalls import CONSTANTS, NO_RETURN, ArgKind, Syscall, table
from ..syscalls.constants import ERRNO
from .ast import (
    INDEXED_VARIABLES,
    MAX_DEPTH,
    SOCKADDR_FIELDS,
    VARIABLES,
    Action,
    ActionType,
    Binary,
    Call,
    Const,
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
from .errors import Diagnostic, printable
from .macros import AFTER_ONLY_MACROS, MACRO_ORDER, MACROS, split_log_format
from .printer import expr_text
from .values import BIT63, const_value, is_constant, is_member

MAX_ERRNO = 4095  # the kernel's: a return value in -4095..-1 is an error, -errno

INT, STR = "integer", "string"
_STRING_OPS = frozenset({"~=", "startswith", "endswith", "glob"})
_ORDER_OPS = frozenset({"<", ">", "<=", ">="})
_REWRITABLE = frozenset({ArgKind.PATH, ArgKind.STRING, ArgKind.INT, ArgKind.UINT, ArgKind.FD,
                         ArgKind.DIRFD, ArgKind.OPEN_FLAGS, ArgKind.AT_FLAGS, ArgKind.MODE})
FUNCTIONS = ("usernametoid", "groupnametoid", "ipaddr", "htons")


# The longest REWRITE string: 4095 bytes, PATH_MAX with its NUL.  A longer one is useless
# for any path (ENAMETOOLONG), and it would be copied onto the caller's stack.
REWRITE_MAX = 4095


def validate(rulefile: RuleFile, diagnostics: list[Diagnostic]) -> tuple[Rule, ...]:
    """The rules of `rulefile` with names resolved; problems are appended to `diagnostics`."""
    return tuple(_RuleChecker(rule, diagnostics).check() for rule in rulefile.rules)


def arg_decl(arg) -> str:
    """`const char *pathname`, `int flags`: an argument as C declares it."""
    return f"{arg.ctype}{'' if arg.ctype.endswith('*') else ' '}{arg.name}"


def _did_you_mean(name: str, candidates) -> str:
    import difflib  # here and in macro_value: only for the rules that need them (start-up)

    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _depth(expr: Expr) -> int:
    """Nesting depth, computed without recursion (a fuzzer may nest deeply)."""
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, Unary):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, Binary):
            stack += [(node.left, depth + 1), (node.right, depth + 1)]
        elif isinstance(node, In):
            stack += [(child, depth + 1) for child in (node.operand, *node.items)]
        elif isinstance(node, Call):
            stack += [(child, depth + 1) for child in node.args]
    return deepest


class _RuleChecker:
    def __init__(self, rule: Rule, diagnostics: list[Diagnostic]):
        self.rule = rule
        self.diagnostics = diagnostics
        self.syscall: Syscall | None = None

    def error(self, pos: Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos, message))

    def check(self) -> Rule:
        rule = self.rule
        if rule.syscall:
            self.syscall = table().lookup(rule.syscall)
            if self.syscall is None:
                self.error(rule.pos_of("syscall_name"), f"unknown system call '{rule.syscall}'"
                           + _did_you_mean(rule.syscall, table().names))
            elif self.syscall.family in NO_RETURN and rule.when is When.AFTER:
                self.error(rule.pos_of("when"), f"{rule.syscall} never returns: an after rule "
                                                "on it would never act (use when = before)")
        filter_ = rule.filter
        if filter_ is not None:
            filter_, kind = self.expr(filter_)
            if kind == STR:
                self.error(filter_.pos, f"filter_expression must be a condition, but "
                                        f"{self.describe(filter_)} is a string")
        action = self.action(rule.action) if rule.action is not None else None
        return dataclasses.replace(rule, filter=filter_, action=action)

    # actions

    def action(self, action: Action) -> Action:
        rule, keys = self.rule, action.keys
        if "type" not in keys:  # the parser reported it; nothing here would be meaningful
            if action.log_format is not None:
                self.log_format(action.log_format, keys.get("log_format", action.pos))
            return action
        type_pos = keys["type"]
        if rule.when is When.AFTER and action.type in (ActionType.FAIL, ActionType.REWRITE):
            self.error(type_pos, f"{action.type} in an after rule: the call has already run "
                                 "(use when = before)")
        if action.type is ActionType.FAIL:
            if action.error_code is None and "error_code" not in keys:
                self.error(action.pos, "FAIL needs an error_code, such as error_code = -EPERM")
        elif "error_code" in keys:
            self.error(keys["error_code"], f"error_code is only for FAIL actions, not "
                                           f"{action.type}")
        code = action.error_code
        if code is not None:
            if code.name is not None and code.name not in ERRNO:
                self.error(code.pos, f"unknown errno name '{code.name}'"
                           + _did_you_mean(code.name, ERRNO))
            elif code.number is not None and code.number >= BIT63 and not code.negative:
                self.error(code.pos, f"error_code {code.number} does not fit in a signed "
                                     "64-bit return value")
            elif code.number is not None and code.negative and code.number > MAX_ERRNO:
                # Neither an errno nor a plausible result: seccomp cannot return it.
                self.error(code.pos, f"error_code -{code.number} is not an errno: a negative "
                                     f"error_code is -1 to -{MAX_ERRNO} (or a name, such as "
                                     "-EACCES); 0 pretends success, a positive number is "
                                     "returned as is")
        value = action.value
        if action.type is ActionType.REWRITE:
            value = self.rewrite(action)
        else:
            for key in ("param", "value"):
                if key in keys:
                    self.error(keys[key], f"{key} is only for REWRITE actions, not "
                                          f"{action.type}")
        if action.log_format is not None:
            self.log_format(action.log_format, keys.get("log_format", action.pos))
        return dataclasses.replace(action, value=value)

    def rewrite(self, action: Action) -> Expr | None:
        keys = action.keys
        if "param" not in keys or "value" not in keys:
            self.error(action.pos, "REWRITE needs param = N (the argument, from 1) and "
                                   "value = the new value")
        value = action.value
        if value is None:
            return None
        value, kind = self.expr(value)
        if kind is not None and not is_constant(value):
            self.error(value.pos, "REWRITE value must be a constant")
            return value
        if self.syscall is None or action.param is None or kind is None:
            return value
        args = self.syscall.args
        if action.param > len(args):
            self.error(keys["param"], f"param {action.param} is out of range: "
                                      f"{self.arg_summary()}")
            return value
        arg = args[action.param - 1]
        if arg.kind not in _REWRITABLE:
            self.error(keys["param"], f"argument {action.param} ({arg_decl(arg)}) cannot be "
                                      "rewritten: only strings, paths and integers can")
        elif arg.kind.is_string and kind != STR:
            self.error(value.pos, f"REWRITE value for argument {action.param} "
                                  f"({arg_decl(arg)}) must be a string")
        elif arg.kind.is_string and isinstance(value, Str) and len(value.value) > REWRITE_MAX:
            self.error(value.pos, f"REWRITE value for argument {action.param} "
                                  f"({arg_decl(arg)}) is {len(value.value)} bytes long; at "
                                  f"most {REWRITE_MAX} (PATH_MAX - 1: no path or name the "
                                  f"kernel takes is longer)")
        elif not arg.kind.is_string and kind != INT:
            self.error(value.pos, f"REWRITE value for argument {action.param} "
                                  f"({arg_decl(arg)}) must be an integer")
        return value

    def log_format(self, text: str, pos: Pos) -> None:
        for piece in split_log_format(text):
            if isinstance(piece, str):
                continue
            before = text[:piece.offset]
            line = pos.line + before.count("\n")
            col = piece.offset - before.rfind("\n") if "\n" in before else pos.col + piece.offset
            at = Pos(pos.file, line, col)
            if piece.name not in MACROS:
                self.error(at, f"unknown macro '%{piece.name}' in log_format; valid macros are "
                               + " ".join("%" + m for m in MACRO_ORDER))
            elif piece.name in AFTER_ONLY_MACROS and self.rule.when is When.BEFORE:
                self.error(at, f"%{piece.name} is only known after the call, but this rule "
                               "runs before it (when = before)")

    # expressions

    def arg_summary(self) -> str:
        sc = self.syscall
        if not sc.args:
            return f"{sc.name} has no arguments"
        names = ", ".join(a.name for a in sc.args)
        count = f"{len(sc.args)} argument" + ("s" if len(sc.args) > 1 else "")
        return f"{sc.name} has {count} ({names})"

    def describe(self, expr: Expr) -> str:
        if isinstance(expr, Var) and expr.name == "PARAMS" and expr.member is None \
                and self.syscall is not None \
                and expr.index is not None and 1 <= expr.index <= self.syscall.nargs:
            return f"PARAMS[{expr.index}] ({arg_decl(self.syscall.args[expr.index - 1])})"
        return expr_text(expr)

    def expr(self, expr: Expr) -> tuple[Expr, str | None]:
        """The resolved expression and its type (None after an error, to stop cascades)."""
        if _depth(expr) > MAX_DEPTH:
            self.error(expr.pos, f"expression nested too deeply (more than {MAX_DEPTH} levels)")
            return expr, None
        return self._expr(expr)

    def _expr(self, expr: Expr) -> tuple[Expr, str | None]:
        if isinstance(expr, Num):
            if expr.value >> 64:
                self.error(expr.pos, f"number {expr_text(expr)} does not fit in 64 bits")
                return expr, None
            return expr, INT
        if isinstance(expr, Str):
            return expr, STR
        if isinstance(expr, Var):
            return expr, self.var(expr)
        if isinstance(expr, Const):
            return self.const(expr)
        if isinstance(expr, Call):
            return self.call(expr)
        if isinstance(expr, Unary):
            operand, kind = self._expr(expr.operand)
            if expr.op != "!" and is_member(operand):
                self.error(expr.pos, f"{self.describe(operand)} can only be compared")
                kind = None
            elif kind == STR:
                need = "a condition" if expr.op == "!" else "an integer"
                self.error(expr.pos, f"'{expr.op}' needs {need}, but {self.describe(operand)} "
                                     "is a string")
                kind = None
            return dataclasses.replace(expr, operand=operand), kind and INT
        if isinstance(expr, In):
            return self.in_(expr)
        return self.binary(expr)

    def var(self, var: Var) -> str | None:
        if var.name not in VARIABLES:
            self.error(var.pos, f"unknown variable '{var.name}'; only PARAMS[n] and PATH[n] "
                                "take an index")
            return None
        if var.name in INDEXED_VARIABLES:
            if var.index is None:
                self.error(var.pos, f"{var.name} needs an argument number, as in "
                                    f"{var.name}[1]")
                return None
            return self.indexed(var)
        if var.index is not None:
            self.error(var.pos, f"{var.name} takes no index")
            return None
        if var.name == "RETVAL" and self.rule.when is When.BEFORE:
            self.error(var.pos, "RETVAL is only known after the call, but this rule runs "
                                "before it (when = before)")
            return None
        return STR if var.name in ("COMM", "CWD") else INT

    def indexed(self, var: Var) -> str | None:
        sc = self.syscall
        if sc is None:
            return None
        if not 1 <= var.index <= sc.nargs:
            first = "; arguments count from 1" if var.index == 0 else ""
            self.error(var.pos, f"{var.name}[{var.index}] is out of range: "
                                f"{self.arg_summary()}{first}")
            return None
        arg = sc.args[var.index - 1]
        if var.member is not None:
            return self.member(var, arg)
        if var.name == "PATH":
            if arg.kind is not ArgKind.PATH:
                self.error(var.pos, f"PATH[{var.index}] needs a path argument, but argument "
                                    f"{var.index} of {sc.name} is {arg_decl(arg)}")
                return None
            return STR
        return STR if arg.kind.is_string else INT

    def member(self, var: Var, arg) -> str | None:
        """`PARAMS[n].port` and the like: fields of a socket address argument."""
        written = f"{var.name}[{var.index}].{var.member}"
        if var.name != "PARAMS" or arg.kind is not ArgKind.SOCKADDR:
            self.error(var.pos, f"{written}: only socket address arguments have fields, and "
                                f"argument {var.index} of {self.syscall.name} is "
                                f"{arg_decl(arg)}")
            return None
        if arg.length_arg is None:
            self.error(var.pos, f"{written}: {self.syscall.name} fills this address in during "
                                "the call; fields can be read on addresses passed in "
                                "(connect, bind, sendto)")
            return None
        if var.member not in SOCKADDR_FIELDS:
            self.error(var.pos, f"{written}: a socket address has no field '{var.member}'; "
                                "its fields are " + ", ".join(SOCKADDR_FIELDS))
            return None
        return STR if SOCKADDR_FIELDS[var.member] else INT

    def const(self, const: Const) -> tuple[Expr, str | None]:
        if const.name in CONSTANTS:
            return dataclasses.replace(const, value=CONSTANTS[const.name]), INT
        if const.name.upper() in VARIABLES | CONSTANTS.keys():
            hint = f"; did you mean '{const.name.upper()}'?"
        else:
            hint = _did_you_mean(const.name, [*CONSTANTS, *VARIABLES])
        self.error(const.pos, f"unknown constant '{const.name}'{hint}")
        return const, None

    def call(self, call: Call) -> tuple[Expr, str | None]:
        if call.func not in FUNCTIONS:
            self.error(call.pos, f"unknown function '{call.func}'; expected "
                                 + ", ".join(FUNCTIONS[:-1]) + f" or {FUNCTIONS[-1]}")
            return call, None
        args = []
        kinds = []
        for arg in call.args:
            arg, kind = self._expr(arg)
            args.append(arg)
            kinds.append(kind)
        call = dataclasses.replace(call, args=tuple(args))
        if None in kinds:
            return call, None
        wants_string = call.func != "htons"
        example = '"root"' if call.func == "usernametoid" else '"wheel"' \
            if call.func == "groupnametoid" else '"127.0.0.1"' if call.func == "ipaddr" else "80"
        if len(args) != 1 or (wants_string and not isinstance(args[0], Str)) or (
                not wants_string and (kinds[0] != INT or not is_constant(args[0]))):
            what = "one string constant" if wants_string else "one integer constant"
            self.error(call.pos, f"{call.func} takes {what}, as in {call.func}({example})")
            return call, None
        value = self.macro_value(call, args[0])
        return dataclasses.replace(call, value=value), (None if value is None else INT)

    def macro_value(self, call: Call, arg: Expr) -> int | None:
        if call.func == "htons":
            port = const_value(arg)
            if not 0 <= port <= 0xFFFF:
                self.error(call.pos, f"htons takes a port from 0 to 65535, not {port}")
                return None
            return ((port & 0xFF) << 8) | (port >> 8)
        import grp
        import ipaddress
        import pwd

        text = os.fsdecode(arg.value)
        try:
            if call.func == "usernametoid":
                return pwd.getpwnam(text).pw_uid
            if call.func == "groupnametoid":
                return grp.getgrnam(text).gr_gid
            # The u32 as it sits in a sockaddr_in: network order in memory, read little-endian.
            return int.from_bytes(ipaddress.IPv4Address(text).packed, "little")
        except (KeyError, ValueError):
            what = {"usernametoid": "user", "groupnametoid": "group"}.get(call.func)
            if what:
                self.error(arg.pos, f"unknown {what} '{printable(text)}' in {expr_text(call)}")
            else:
                self.error(arg.pos, f"invalid IPv4 address '{printable(text)}' in "
                                    f"{expr_text(call)}")
            return None

    def in_(self, expr: In) -> tuple[Expr, str | None]:
        operand, kind = self._expr(expr.operand)
        items = []
        ok = kind is not None
        for item in expr.items:
            item, item_kind = self._expr(item)
            items.append(item)
            if item_kind is None:
                ok = False
            elif not is_constant(item):
                self.error(item.pos, "the items of 'in' must be constants")
                ok = False
            elif kind is not None and item_kind != kind:
                self.error(item.pos, f"cannot compare {kind} {self.describe(operand)} with "
                                     f"{item_kind} {self.describe(item)}")
                ok = False
        return dataclasses.replace(expr, operand=operand, items=tuple(items)), (ok and INT) or None

    def binary(self, expr: Binary) -> tuple[Expr, str | None]:
        left, lkind = self._expr(expr.left)
        right, rkind = self._expr(expr.right)
        expr = dataclasses.replace(expr, left=left, right=right)
        if lkind is None or rkind is None:
            return expr, None
        op = expr.op
        if op in ("==", "!="):
            if lkind != rkind:
                self.error(expr.pos, f"cannot compare {lkind} {self.describe(left)} with "
                                     f"{rkind} {self.describe(right)}")
                return expr, None
            return expr, INT
        if op in _STRING_OPS:
            if lkind != STR:
                self.error(expr.pos, f"'{op}' needs a string on its left, but "
                                     f"{self.describe(left)} is an integer")
                return expr, None
            if not isinstance(right, Str):
                self.error(right.pos, f"'{op}' needs a string constant on its right, not "
                                      f"{self.describe(right)}")
                return expr, None
            return expr, INT
        for side, kind in ((left, lkind), (right, rkind)):
            if op in ("+", "-", "&", "|") and is_member(side):
                # Absent for other families: no arithmetic on what may not be there.
                self.error(side.pos, f"{self.describe(side)} can only be compared, not used "
                                     f"in '{op}'")
                return expr, None
            if kind == STR:
                if op in _ORDER_OPS:
                    need = "compares integers only"
                elif op in ("&&", "||"):
                    need = "needs conditions"
                else:
                    need = "needs integers"
                # At the operand: an operator of a long chain may be lines away from it.
                self.error(side.pos, f"'{op}' {need}, but {self.describe(side)} is a string")
                return expr, None
        return expr, INT
