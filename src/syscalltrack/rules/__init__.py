"""The rule language: parse, validate, print and compile rule files; first-match dispatch.

Knows nothing of kernels.  `load_rules` is the usual entry point; both
engines ask the resulting `RuleSet` which rules apply to a call.

Actions (reference §4): LOG writes a line in `log_format` (or
`DEFAULT_LOG_FORMAT`); FAIL makes the call return `error_code` without
running it (before rules only); KILL and SUSPEND kill or stop the caller;
REWRITE (before rules only, the per-command engine) replaces argument
`param` (from 1, classic signature) with `value`, a string for string and
path arguments, an integer constant expression for integer ones:

    action { type = REWRITE  param = 1  value = "/tmp/test-hosts" }

A `log_format` given on any action other than LOG means "also log this
line"; without one, only LOG logs.  `error_code` belongs to FAIL only,
`param`/`value` to REWRITE only.  Value semantics of filters (64-bit
integers, absent strings) are in `values.py`.
"""

from .ast import (
    NOWHERE,
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
from .compile import ArgConditions, ArgTest, CompiledFilter, compile_filter
from .context import FilterContext
from .errors import Diagnostic, RuleError
from .macros import DEFAULT_LOG_FORMAT, MACRO_ORDER, MACROS, Macro, split_log_format
from .printer import expr_text, quote, rule_text, rules_text
from .ruleset import BoundRule, Match, RuleSet, check_rules, load_rules
from .source import parse
from .validate import validate

__all__ = [
    "DEFAULT_LOG_FORMAT", "MACROS", "MACRO_ORDER", "NOWHERE", "Action", "ActionType",
    "ArgConditions", "ArgTest", "Binary", "BoundRule", "Call", "CompiledFilter", "Const",
    "Diagnostic", "ErrorCode", "Expr", "FilterContext", "In", "Macro", "Match", "Num", "Pos",
    "Rule", "RuleError", "RuleFile", "RuleSet", "Str", "Unary", "Var", "When", "check_rules",
    "compile_filter", "expr_text", "load_rules", "parse", "quote", "rule_text", "rules_text",
    "split_log_format", "validate",
]
