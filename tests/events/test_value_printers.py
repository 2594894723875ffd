"""One printer per argument kind: `%params` as the original printed, `%args` strace-like."""

from __future__ import annotations

import pytest

from syscalltrack.events import Limits, SockAddr, Unreadable, format_params, format_value
from syscalltrack.events.format import ARGS_PRINTERS, PARAMS_PRINTERS
from syscalltrack.syscalls import I386, ArgKind


def params(event, **limits):
    return format_params(event, Limits(**limits))


def args(event, **limits):
    return format_params(event, Limits(**limits), symbolic=True)


def test_every_kind_has_a_printer_in_both_styles():
    assert set(PARAMS_PRINTERS) == set(ArgKind) == set(ARGS_PRINTERS)


def test_paths_are_quoted_and_never_cut_by_max_string(make_event):
    event = make_event("unlink", [b"/very/" + b"long/" * 20])
    assert params(event, max_string=4) == '"/very/' + "long/" * 20 + '"'


def test_strings_are_cut_at_max_string(make_event):
    event = make_event("symlink", [b"target-of-link", b"name"])
    assert params(event, max_string=6) == '"target"..., "name"'


def test_buffer_cut_at_max_string_like_strace(make_event):
    event = make_event("write", [1, b"hello world\n", 12])
    assert params(event, max_string=5) == '1, "hello"..., 12'
    assert params(event) == '1, "hello world\\n", 12'


def test_buffer_captured_shorter_than_its_length_is_marked(make_event):
    event = make_event("write", [1, b"abc", 4096])
    assert params(event) == '1, "abc"..., 4096'


def test_null_pointers(make_event):
    read = make_event("read", [0, None, 10])
    assert params(read) == "0, <NULL>, 10"
    assert args(read) == "0, NULL, 10"
    unlink = make_event("unlink", [None])
    assert params(unlink) == "<NULL>"
    assert args(unlink) == "NULL"


def test_pointers_signed_decimal_in_params_hex_in_args(make_event):
    event = make_event("read", [3, 0x7FFD1234, 10])
    assert params(event) == "3, 2147291700, 10"
    assert args(event) == "3, 0x7ffd1234, 10"
    kernel_half = make_event("read", [3, 0xFFFFFFFF80001000, 10])
    assert params(kernel_half) == "3, -2147479552, 10"
    assert args(kernel_half) == "3, 0xffffffff80001000, 10"


def test_unreadable_memory_prints_its_address(make_event):
    event = make_event("unlink", [Unreadable(0x7FFD1234)])
    assert params(event) == args(event) == "0x7ffd1234"


def test_string_arrays(make_event):
    event = make_event("execve", [b"/bin/ls", (b"ls", b"-l"), ()])
    assert params(event) == '"/bin/ls", ["ls", "-l"], []'


def test_string_arrays_cut_at_max_array_and_max_string(make_event):
    event = make_event("execve", [b"/bin/echo", (b"echo", b"abcdefgh", b"x"), None])
    assert params(event, max_array=2, max_string=4) == \
        '"/bin/echo", ["echo", "abcd"..., ...], <NULL>'


@pytest.mark.parametrize(
    ("sockaddr", "expected"),
    [
        (SockAddr(2, "127.0.0.1", 80), "{AF_INET, 127.0.0.1:80}"),
        (SockAddr(10, "::1", 443), "{AF_INET6, [::1]:443}"),
        (SockAddr(1, "/run/x\n.sock"), '{AF_UNIX, "/run/x\\n.sock"}'),
        (SockAddr(16), "{AF_NETLINK}"),
        (SockAddr(99, raw=b"\x63\x00"), "{99}"),
    ],
)
def test_socket_addresses(make_event, sockaddr, expected):
    event = make_event("connect", [3, sockaddr, 16])
    assert params(event) == f"3, {expected}, 16"


def test_dirfd_prints_at_fdcwd_in_both_styles(make_event):
    event = make_event("unlinkat", [-100, b"x", 0])
    assert params(event) == 'AT_FDCWD, "x", 0'
    assert args(event) == 'AT_FDCWD, "x", 0'
    upper_half_garbage = make_event("unlinkat", [0xDEADBEEF_FFFFFF9C, b"x", 0])
    assert params(upper_half_garbage).startswith("AT_FDCWD")
    assert params(make_event("unlinkat", [-1, b"x", 0])) == '-1, "x", 0'


def test_integers_signed_decimal_of_their_c_width(make_event):
    kill = make_event("kill", [0xFFFFFFFF, 9])  # int pid: -1 whatever the upper half
    assert params(kill) == "-1, 9"
    write = make_event("write", [1, b"", 0xFFFFFFFFFFFFFFFF])  # size_t, 64-bit
    assert params(write).endswith(", -1")
    assert args(write).endswith(", 18446744073709551615")
    write32 = make_event("write", [1, b"", 0xFFFFFFFF], abi=I386)  # size_t, 32-bit on i386
    assert params(write32).endswith(", -1")
    assert args(write32).endswith(", 4294967295")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (0, "O_RDONLY"),
        (0o2000000, "O_RDONLY|O_CLOEXEC"),
        (0o1 | 0o100 | 0o1000, "O_WRONLY|O_CREAT|O_TRUNC"),
        (0o2 | 0o20200000, "O_RDWR|O_TMPFILE"),
        (0o4010000, "O_RDONLY|O_SYNC"),
        (0o10000 | 0o100000, "O_RDONLY|O_DSYNC|O_LARGEFILE"),
        (0o2 | 0x80000000, "O_RDWR|0x80000000"),
    ],
)
def test_open_flags_symbolic(make_event, flags, expected):
    event = make_event("open", [b"f", flags, 0o644])
    assert args(event) == f'"f", {expected}, 0644'
    assert params(event) == f'"f", {format_value(event, 1)}, 420'


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("unlinkat", [-100, b"d", 0x200], 'AT_FDCWD, "d", AT_REMOVEDIR'),
        ("unlinkat", [3, b"d", 0], '3, "d", 0'),
        ("faccessat2", [-100, b"f", 4, 0x200 | 0x100],
         'AT_FDCWD, "f", 4, AT_SYMLINK_NOFOLLOW|AT_EACCESS'),
        ("unlinkat", [-100, b"d", 0x200 | 0x10000000], 'AT_FDCWD, "d", AT_REMOVEDIR|0x10000000'),
    ],
)
def test_at_flags_symbolic(make_event, name, values, expected):
    assert args(make_event(name, values)) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0o755, "0755"), (0, "000"), (0o4755, "04755"), (0o100644, "S_IFREG|0644"),
     (0o20600, "S_IFCHR|0600")],
)
def test_modes_octal(make_event, mode, expected):
    event = make_event("mknod", [b"n", mode, 0])
    assert args(event) == f'"n", {expected}, 0'
    assert params(event) == f'"n", {mode}, 0'


def test_undecoded_arguments_print_their_raw_values(make_event):
    event = make_event("kill", [5, 15])
    raw_only = event._replace(values=())
    assert params(raw_only) == "5, 15"


def test_unexpected_value_types_still_print(make_event):
    event = make_event("kill", [None, b"x"])  # an engine that got it wrong must not crash us
    assert params(event) == '<NULL>, "x"'


def test_format_value_beyond_the_signature(make_event):
    assert format_value(make_event("getpid"), 0) == "?"
