"""The system-wide engine: rule filters compiled to eBPF bytecode, evaluated in the kernel.

``SystemwideEngine(ruleset).load()`` watches every process on the machine;
``codegen`` documents how filters become programs (and which filters are
refused, with "use sctrace"), ``engine`` the attach choice, the after-rule
map and the never-silent loss accounting, ``dfa`` the string automata,
``demo`` the article's scenario as a library call.
"""

from .codegen import Plan, Prologue, generate
from .engine import Lost, RuleStats, SystemwideEngine, Undecided, caveats, check_fail, dump

__all__ = ["Lost", "Plan", "Prologue", "RuleStats", "SystemwideEngine", "Undecided",
           "caveats", "check_fail", "dump", "generate"]
