"""Rule text to syntax tree, remembering what was parsed before.

Starting a tool used to import lark and load its parser tables on every run
(~0.08 s of sctrace's ~0.36 s start-up). A clean parse is therefore kept as a
pickle, keyed by the grammar and the code behind the tree, the file name and
the text, so a rule file parsed before is read back without lark; lark is
imported only on a miss. Pickles are trusted only from a directory the
current user owns and nobody else may write (these tools run as root): never
from /tmp.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import stat

from .ast import RuleFile
from .errors import Diagnostic, RuleError

_HERE = os.path.dirname(os.path.realpath(__file__))  # not pathlib: start-up time
# What a tree depends on: the grammar, the code building it, the classes it is made of.
_TREE_SOURCES = ("grammar.lark", "parser.py", "ast.py")
KEEP = 64  # parsed files kept; the oldest go first


@functools.cache
def cache_dir() -> str | None:
    """The private cache directory, or None when there is no safe one."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "syscalltrack")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return directory


@functools.cache
def _tree_digest() -> str:
    digest = hashlib.sha256()
    for name in _TREE_SOURCES:
        with open(os.path.join(_HERE, name), "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()


def parse(text: str, filename: str = "<rules>",
          diagnostics: list[Diagnostic] | None = None) -> RuleFile:
    """`parser.parse`, answered from the cache when this text was parsed cleanly before."""
    directory = cache_dir()
    path = None
    if directory is not None:
        key = hashlib.sha256(f"{_tree_digest()}\0{filename}\0{text}".encode(
            "utf-8", "surrogatepass")).hexdigest()[:32]
        path = os.path.join(directory, f"rules-ast-{key}.pickle")
        try:
            with open(path, "rb") as f:
                result = pickle.load(f)
            if isinstance(result, RuleFile):
                return result
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
                TypeError, ValueError):
            pass  # absent, or written by another version: parse again
    from . import parser  # lark, only now

    collected: list[Diagnostic] = []
    result = parser.parse(text, filename, collected)
    if collected:
        if diagnostics is None:
            raise RuleError(collected)
        diagnostics.extend(collected)
    elif path is not None:
        _store(path, result)
    return result


def _store(path: str, result: RuleFile) -> None:
    """Write atomically (a reader never sees half a file), then keep the newest KEEP."""
    import tempfile  # only on a miss: it costs start-up time

    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rules-ast-")
    except OSError:
        return  # a cache that cannot be written is only slower
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    # A full disk, or a tree pickle cannot take: the half-written file must not stay behind.
    except (OSError, RecursionError, pickle.PicklingError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    with contextlib.suppress(OSError):
        kept = sorted((e for e in os.scandir(directory) if e.name.startswith("rules-ast-")),
                      key=lambda e: e.stat().st_mtime, reverse=True)
        for old in kept[KEEP:]:
            os.unlink(old.path)
