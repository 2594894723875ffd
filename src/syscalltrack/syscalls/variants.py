"""Classic calls and their modern successors.

On a 2002 system `rm` called `unlink`; today's coreutils call
`unlinkat(AT_FDCWD, path, 0)`.  A rule written for the classic call also
watches its successor when the successor does the same thing, and sees the
classic signature.  This module is the one place that says which successor,
under which condition, and where each classic argument comes from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .constants import AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, O_ACCMODE, O_CREAT, O_TRUNC, O_WRONLY


class FromStruct(enum.Enum):
    """A classic argument the modern call passes inside a struct (openat2's open_how)."""

    OPEN_HOW_FLAGS = "open_how.flags"
    OPEN_HOW_MODE = "open_how.mode"


ArgSource = int | FromStruct


@dataclass(frozen=True, slots=True)
class Condition:
    """The successor stands for the classic call when `args[arg] & mask == value`."""

    arg: int
    mask: int
    value: int

    def holds(self, args: tuple[int, ...] | list[int]) -> bool:
        return (args[self.arg] & self.mask) == self.value


@dataclass(frozen=True, slots=True)
class Variant:
    """`modern` acting as `classic`.

    `args[i]` is where classic argument i (0-based) comes from in the modern
    call; `dirfds` maps a modern path argument to the dirfd argument it is
    relative to.  `classic_condition` also restricts calls of the classic
    syscall itself (a `creat` rule watches `open` with creat's flags).
    """

    classic: str
    modern: str
    args: tuple[ArgSource, ...]
    dirfds: tuple[tuple[int, int], ...] = ()
    condition: Condition | None = None

    def classic_args(self, modern_args, struct_fields=None) -> tuple[int, ...]:
        """Map the modern call's raw arguments onto the classic signature.

        `struct_fields` supplies the values read from user memory for
        FromStruct sources; where it lacks one the value is 0.
        """
        out = []
        for src in self.args:
            if isinstance(src, FromStruct):
                out.append((struct_fields or {}).get(src, 0))
            else:
                out.append(modern_args[src])
        return tuple(out)

    def dirfd_of(self, modern_arg: int) -> int | None:
        """The modern argument index of the dirfd that `modern_arg` is relative to."""
        for path_arg, dirfd_arg in self.dirfds:
            if path_arg == modern_arg:
                return dirfd_arg
        return None


_CREAT_FLAGS = Condition(2, O_ACCMODE | O_CREAT | O_TRUNC, O_WRONLY | O_CREAT | O_TRUNC)
_FOLLOW = Condition(3, AT_SYMLINK_NOFOLLOW, 0)
_NOFOLLOW = Condition(3, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW)
_DFD = ((1, 0),)

VARIANTS: tuple[Variant, ...] = (
    Variant("unlink", "unlinkat", (1,), _DFD, Condition(2, AT_REMOVEDIR, 0)),
    Variant("rmdir", "unlinkat", (1,), _DFD, Condition(2, AT_REMOVEDIR, AT_REMOVEDIR)),
    Variant("open", "openat", (1, 2, 3), _DFD),
    Variant("open", "openat2", (1, FromStruct.OPEN_HOW_FLAGS, FromStruct.OPEN_HOW_MODE), _DFD),
    Variant("creat", "openat", (1, 3), _DFD, _CREAT_FLAGS),
    Variant("creat", "open", (0, 2), (), Condition(1, _CREAT_FLAGS.mask, _CREAT_FLAGS.value)),
    Variant("mkdir", "mkdirat", (1, 2), _DFD),
    Variant("mknod", "mknodat", (1, 2, 3), _DFD),
    Variant("rename", "renameat", (1, 3), ((1, 0), (3, 2))),
    Variant("rename", "renameat2", (1, 3), ((1, 0), (3, 2))),
    Variant("link", "linkat", (1, 3), ((1, 0), (3, 2))),
    Variant("symlink", "symlinkat", (0, 2), ((2, 1),)),
    Variant("readlink", "readlinkat", (1, 2, 3), _DFD),
    Variant("chmod", "fchmodat", (1, 2), _DFD),
    Variant("chmod", "fchmodat2", (1, 2), _DFD),
    Variant("chown", "fchownat", (1, 2, 3), _DFD, Condition(4, AT_SYMLINK_NOFOLLOW, 0)),
    Variant("lchown", "fchownat", (1, 2, 3), _DFD,
            Condition(4, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW)),
    Variant("access", "faccessat", (1, 2), _DFD),
    Variant("access", "faccessat2", (1, 2), _DFD),
    Variant("stat", "newfstatat", (1, 2), _DFD, _FOLLOW),
    Variant("lstat", "newfstatat", (1, 2), _DFD, _NOFOLLOW),
    Variant("stat", "statx", (1, 4), _DFD, Condition(2, AT_SYMLINK_NOFOLLOW, 0)),
    Variant("lstat", "statx", (1, 4), _DFD,
            Condition(2, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW)),
    Variant("utimes", "utimensat", (1, 2), _DFD),
    Variant("utime", "utimensat", (1, 2), _DFD),
    Variant("execve", "execveat", (1, 2, 3), _DFD),
)

_BY_CLASSIC: dict[str, tuple[Variant, ...]] = {}
for _v in VARIANTS:
    _BY_CLASSIC[_v.classic] = (*_BY_CLASSIC.get(_v.classic, ()), _v)


def variants_of(classic: str) -> tuple[Variant, ...]:
    """The modern calls a rule on `classic` also watches."""
    return _BY_CLASSIC.get(classic, ())
