"""The article's scenario as a library call, for the daemon to wrap.

The article loads ``unlink_rule1`` and ``ptrace_rule1`` (LOG) and, for
``rm ./dummy`` run by anyone, sctlog shows ``"rm" : "./dummy" delete by 0 --> 0``.
``prevent_delete`` (FAIL) is left out: it cannot run system-wide here (see
``engine.check_fail``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ...events.render import Renderer
from ...rules import ActionType, RuleSet, load_rules
from .engine import SystemwideEngine

ARTICLE_RULES = Path(__file__).resolve().parents[4] / "examples" / "article.rules"


def article_log_rules(path: str | os.PathLike = ARTICLE_RULES) -> RuleSet:
    """The LOG rules of the article's rule file, in file order."""
    rules = load_rules(Path(path))
    return RuleSet(r for r in rules.rules if r.action.type is ActionType.LOG)


def log_lines(engine: SystemwideEngine, timeout: float | None = None) -> Iterator[str]:
    """sctlog's view of an engine: one rendered line per event or notice."""
    render = Renderer()
    for item in engine.events(timeout):
        yield render(item)


def watch_article(path: str | os.PathLike = ARTICLE_RULES,
                  timeout: float | None = None) -> Iterator[str]:
    """Load the article's LOG rules system-wide and yield its log lines until closed."""
    with SystemwideEngine(article_log_rules(path)) as engine:
        yield from log_lines(engine, timeout)
