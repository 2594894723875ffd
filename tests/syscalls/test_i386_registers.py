"""i386 calls whose registers do not line up with their family's arguments, beyond
those first found: fanotify_mark's 64-bit mask over two registers (its dfd and pathname
were read from the mask's high half and the dfd), statfs64/fstatfs64's size before the
buffer, preadv/pwritev's split position, and the 16-bit id calls (sys_setuid16 and the
like), where a uid of 0x10000 is root."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syscalltrack.syscalls import table

U32 = st.integers(0, (1 << 32) - 1)


@given(U32, U32, U32, U32, U32, U32)
def test_fanotify_mark_joins_its_mask_and_finds_dfd_and_pathname(fd, flags, lo, hi, dfd, path):
    sc = table().by_name("fanotify_mark", "i386")
    native = table().by_name("fanotify_mark")
    assert [a.name for a in sc.args] == [a.name for a in native.args] == [
        "fanotify_fd", "flags", "mask", "dfd", "pathname"]
    args = sc.arguments((fd, flags, lo, hi, dfd, path))
    assert args == (fd, flags, hi << 32 | lo, dfd, path)
    assert sc.args[2].normalise(args[2]) == hi << 32 | lo  # the whole 64-bit mask
    assert sc.args[3].normalise(args[3]) == (dfd - (1 << 32) if dfd >> 31 else dfd)
    assert sc.placed(2, hi << 32 | lo) == {2: lo, 3: hi}


@pytest.mark.parametrize("call", ["statfs64", "fstatfs64"])
def test_statfs64_finds_the_buffer_after_its_size(call):
    sc = table().by_name(call, "i386")
    assert [a.name for a in sc.args] == [a.name for a in table().by_name(sc.family).args]
    assert sc.arguments((7, 84, 0x1000)) == (7, 0x1000)


@pytest.mark.parametrize("call", ["preadv", "pwritev"])
@given(lo=U32, hi=U32)
def test_preadv_position_is_whole(call, lo, hi):
    sc = table().by_name(call, "i386")
    assert [a.name for a in sc.args] == [a.name for a in table().by_name(call).args]
    position = sc.args[3].normalise(sc.arguments((3, 0x1000, 2, lo, hi))[3])
    assert position == hi << 32 | lo  # as x86_64's pos_l holds it


@pytest.mark.parametrize("call, index", [
    ("setuid", 0), ("setgid", 0), ("setfsuid", 0), ("setfsgid", 0), ("setreuid", 1),
    ("setregid", 0), ("setresuid", 2), ("setresgid", 1), ("chown", 1), ("lchown", 2),
    ("fchown", 1),
])
def test_16_bit_id_calls_read_the_low_16_bits(call, index):
    sc = table().by_name(call, "i386")
    assert sc.args[index].normalise(0x1_0000) == 0  # what sys_setuid16 and the like see
    assert sc.args[index].normalise(0x1_0005) == 5
    native = table().by_name(call).args[index]
    assert native.normalise(0x1_0000) == 0x1_0000  # 32-bit ids on x86_64
    assert table().by_name(f"{call}32", "i386").args[index].normalise(0x1_0000) == 0x1_0000
