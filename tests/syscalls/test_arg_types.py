"""Every argument's C type is one the table knows -- none silently taken for a 64-bit
unsigned value -- and arguments read as the kernel's wrapper casts the register: an
`__s32` or `const int` is the low 32 bits, signed, so setting upper register bits cannot
get a call around `PARAMS[n] == -1`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syscalltrack.syscalls import ArgKind, table
from syscalltrack.syscalls.table import c_type

RAW = st.integers(0, (1 << 64) - 1)


def test_every_argument_of_every_call_has_a_known_c_type():
    unknown = []
    for sc in table():
        for arg in sc.args:
            try:
                _spelling, width, signed = c_type(arg.ctype)
            except ValueError:
                unknown.append((sc.abi, sc.name, arg.name, arg.ctype))
                continue
            assert width in (2, 4, 8) and (arg.width, arg.signed) == (
                min(width, 4) if arg.compat else width, signed)
            if "*" in arg.ctype:
                assert (width, signed) == (8, False)
    assert unknown == []


@pytest.mark.parametrize("ctype", ["struct foo", "__s16", "const wchar_t", "u128"])
def test_an_unknown_c_type_is_an_error_not_a_64_bit_guess(ctype):
    with pytest.raises(ValueError, match="unknown C type"):
        c_type(ctype)


@pytest.mark.parametrize("ctype, expected", [
    ("__s32", ("int", 4, True)), ("const int", ("int", 4, True)),
    ("const __u32", ("unsigned int", 4, False)), ("__u64", ("unsigned long", 8, False)),
    ("__s64", ("long", 8, True)), ("const enum landlock_rule_type", ("unsigned int", 4, False)),
    ("const size_t", ("size_t", 8, False)), ("const clockid_t", ("clockid_t", 4, True)),
    ("cap_user_header_t", ("void *", 8, False)), ("const char *", ("const char *", 8, False)),
    ("const struct landlock_ruleset_attr *const", (
        "const struct landlock_ruleset_attr *const", 8, False)),
])
def test_c_types_spelled_otherwise(ctype, expected):
    assert c_type(ctype) == expected


@pytest.mark.parametrize("call, index, bits, signed", [
    ("inotify_rm_watch", 1, 32, True),  # __s32 wd
    ("landlock_add_rule", 0, 32, True),  # const int ruleset_fd
    ("landlock_add_rule", 1, 32, False),  # const enum landlock_rule_type
    ("landlock_add_rule", 3, 32, False),  # const __u32 flags
    ("landlock_restrict_self", 0, 32, True),
    ("landlock_create_ruleset", 2, 32, False),
])
@given(raw=RAW)
def test_arguments_read_as_the_kernel_casts_them(call, index, bits, signed, raw):
    for abi in ("x86_64", "i386"):
        arg = table().by_name(call, abi).args[index]
        low = raw & ((1 << bits) - 1)
        expected = low - (1 << bits) if signed and low >> (bits - 1) else low
        assert arg.normalise(raw) == expected


def test_upper_bits_do_not_hide_minus_one():
    wd = table().by_name("inotify_rm_watch").args[1]
    assert wd.kind is ArgKind.INT and wd.normalise(0xDEAD_BEEF_FFFF_FFFF) == -1
    fd = table().by_name("landlock_restrict_self").args[0]
    assert fd.normalise(0x1_0000_0003) == 3
