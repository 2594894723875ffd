"""How each system call argument is decoded.

tracefs only gives C types, and `const char *` is used both for NUL-terminated
strings and for byte buffers, so the decoding kind is decided here, by type,
argument name and system call.  Both engines and the formatter share it: one
printer per kind keeps the output uniform (strace's lesson).
"""

from __future__ import annotations

import enum


class ArgKind(enum.Enum):
    """The decoding kind of one argument."""

    PATH = "path"  # NUL-terminated file name, resolvable against cwd/dirfd
    STRING = "string"  # NUL-terminated text that is not a file name
    BUFFER = "buffer"  # bytes whose length is another argument
    INT = "int"  # signed integer
    UINT = "uint"  # unsigned integer
    FD = "fd"  # file descriptor
    DIRFD = "dirfd"  # directory fd of *at calls, may be AT_FDCWD
    OPEN_FLAGS = "open_flags"  # O_* flags
    AT_FLAGS = "at_flags"  # AT_* flags
    MODE = "mode"  # permission bits, printed in octal
    PTR = "ptr"  # an address the tool does not follow
    SOCKADDR = "sockaddr"  # struct sockaddr *, length in another argument
    STRARRAY = "strarray"  # NULL-terminated array of strings (argv, envp)

    @property
    def is_string(self) -> bool:
        """True when filters compare this argument as a string."""
        return self in _STRING_KINDS

    @property
    def is_signed(self) -> bool:
        """True when the raw register value is read as a signed integer."""
        return self in (ArgKind.INT, ArgKind.FD, ArgKind.DIRFD)


_STRING_KINDS = frozenset({ArgKind.PATH, ArgKind.STRING, ArgKind.BUFFER})

_PATH_NAMES = frozenset(
    {
        "filename", "pathname", "path", "oldname", "newname", "new_root", "put_old",
        "special", "specialfile", "dir_name", "library", "from_pathname", "to_pathname",
    }
)
_FD_NAMES = frozenset({"fd", "oldfd", "newfd", "fd_in", "fd_out", "epfd", "out_fd", "in_fd"})
_DIRFD_NAMES = frozenset({"dfd", "olddfd", "newdfd", "dirfd", "from_dfd", "to_dfd"})
_SIGNED_TYPES = frozenset(
    {"int", "long", "pid_t", "off_t", "loff_t", "key_t", "timer_t", "mqd_t", "clockid_t",
     "key_serial_t", "const clockid_t", "rwf_t"}
)
# `const char *` arguments that are text, not file names.
_STRING_ARGS = {
    ("symlink", "oldname"), ("symlinkat", "oldname"),  # a link target is free text
    ("mount", "type"), ("mount", "dev_name"),
    ("memfd_create", "uname"), ("mq_open", "u_name"), ("mq_unlink", "u_name"),
    ("add_key", "_type"), ("add_key", "_description"),
    ("request_key", "_type"), ("request_key", "_description"), ("request_key", "_callout_info"),
}
_XATTR_NAME_CALLS = frozenset(
    {"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
     "removexattr", "lremovexattr", "fremovexattr"}
)
# Buffers the caller fills in (write-like): (syscall, buffer arg) -> length arg name.
_BUFFER_ARGS = {
    ("write", "buf"): "count",
    ("pwrite64", "buf"): "count",
    ("sethostname", "name"): "len",
    ("setdomainname", "name"): "len",
    ("mq_timedsend", "u_msg_ptr"): "msg_len",
}
# Socket addresses the caller passes in, with their length by value. (The ones the kernel
# fills in -- accept, recvfrom, getsockname, getpeername -- have a length pointer instead:
# nothing to read before the call.)
_SOCKADDR_ARGS = {
    ("connect", "uservaddr"): "addrlen",
    ("bind", "umyaddr"): "addrlen",
    ("sendto", "addr"): "addr_len",
}
_OPEN_FLAG_CALLS = frozenset({"open", "openat"})
_AT_FLAG_ARGS = {
    ("unlinkat", "flag"), ("fchownat", "flag"), ("linkat", "flags"), ("newfstatat", "flag"),
    ("statx", "flags"), ("faccessat2", "flags"), ("fchmodat2", "flags"),
    ("utimensat", "flags"), ("execveat", "flags"), ("name_to_handle_at", "flag"),
}


def arg_kind(syscall: str, ctype: str, name: str, arg_names: tuple[str, ...]) -> ArgKind:
    """Decide the decoding kind of argument `name` of `syscall`."""
    ctype = " ".join(ctype.split())
    key = (syscall, name)
    if key in _BUFFER_ARGS and _BUFFER_ARGS[key] in arg_names:
        return ArgKind.BUFFER
    if ctype in ("const char *", "char *"):
        if key in _STRING_ARGS or (syscall in _XATTR_NAME_CALLS and name == "name"):
            return ArgKind.STRING
        if name in _PATH_NAMES or (name == "name" and syscall in ("acct", "umount2")):
            return ArgKind.PATH
        if syscall == "name_to_handle_at" and name == "name":
            return ArgKind.PATH
        return ArgKind.STRING if ctype == "const char *" else ArgKind.PTR
    if ctype == "const char *const *":
        return ArgKind.STRARRAY
    if ctype == "struct sockaddr *":
        return ArgKind.SOCKADDR
    if "*" in ctype:
        return ArgKind.PTR
    if ctype == "umode_t":
        return ArgKind.MODE
    if name in _DIRFD_NAMES or key == ("execveat", "fd"):
        return ArgKind.DIRFD
    if name in _FD_NAMES:
        return ArgKind.FD
    if name == "flags" and syscall in _OPEN_FLAG_CALLS:
        return ArgKind.OPEN_FLAGS
    if key in _AT_FLAG_ARGS:
        return ArgKind.AT_FLAGS
    return ArgKind.INT if ctype in _SIGNED_TYPES else ArgKind.UINT


def buffer_length_arg(syscall: str, name: str) -> str | None:
    """The name of the argument that holds the length of buffer (or input socket
    address) `name`."""
    return _BUFFER_ARGS.get((syscall, name)) or _SOCKADDR_ARGS.get((syscall, name))
