"""Run a memory-hungry computation in a forked child and keep only its small answer.

Parsing the kernel's BTF (126,000 types) costs ~30 MB of Python objects that a
long-running daemon would keep for good, since CPython rarely returns freed
memory to the system. Struct offsets and probe results are a few hundred bytes:
a child computes them, sends them back pickled through a pipe (from our own
child, so the pickle is trusted), and takes the memory with it when it exits.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ChildError(RuntimeError):
    """The child failed; the message carries its traceback."""


def in_child(fn: Callable[[], T]) -> T:
    """`fn()` computed in a forked child; its exception is raised here as ChildError,
    or as itself when it was an OSError (callers handle those)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer, then leave without running the parent's cleanups
        os.close(r)
        try:
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as err:  # every failure must reach the parent
                answer = err if isinstance(err, OSError) else traceback.format_exc()
                payload = pickle.dumps((False, answer))
            with os.fdopen(w, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as inp:
            data = inp.read()
    finally:
        os.waitpid(pid, 0)
    if not data:
        raise ChildError("the child computing kernel facts died without answering")
    ok, value = pickle.loads(data)
    if ok:
        return value
    if isinstance(value, OSError):
        raise value
    raise ChildError(value)
