"""The per-command engine behind sctrace: rules applied through seccomp + ptrace."""

from .engine import RuleConsumer, attach, run_command
from .policy import build_policy

__all__ = ["RuleConsumer", "attach", "build_policy", "run_command"]
