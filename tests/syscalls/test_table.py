"""Known facts about the system call table, pinned."""

import pytest

from syscalltrack.syscalls import (
    CONSTANTS,
    I386,
    X86_64,
    ArgKind,
    FromStruct,
    errno_name,
    table,
    variants_of,
)


def test_unlink_numbers_on_both_abis():
    t = table()
    assert t.by_name("unlink").nr == 87
    assert t.by_name("unlink", I386).nr == 10
    assert t.by_name("unlinkat").nr == 263
    assert t.by_nr(X86_64, 87).name == "unlink"
    assert t.by_nr(I386, 10).name == "unlink"


def test_ptrace_has_four_arguments():
    sc = table().lookup("ptrace")
    assert sc.nr == 101
    assert [a.name for a in sc.args] == ["request", "pid", "addr", "data"]


def test_calls_past_the_shared_table_are_known():
    t = table()
    assert t.by_name("openat2").nr == 437
    assert t.by_name("fchmodat2").nr == 452
    assert t.by_nr(I386, 437).name == "openat2"
    assert t.by_name("map_shadow_stack", I386) is None  # x86_64 only


@pytest.mark.parametrize(
    ("call", "arg", "kind"),
    [
        ("unlink", "pathname", ArgKind.PATH),
        ("unlinkat", "dfd", ArgKind.DIRFD),
        ("unlinkat", "flag", ArgKind.AT_FLAGS),
        ("openat", "flags", ArgKind.OPEN_FLAGS),
        ("openat", "mode", ArgKind.MODE),
        ("write", "buf", ArgKind.BUFFER),
        ("read", "fd", ArgKind.FD),
        ("read", "buf", ArgKind.PTR),  # filled by the kernel: nothing to show at entry
        ("execve", "argv", ArgKind.STRARRAY),
        ("connect", "uservaddr", ArgKind.SOCKADDR),
        ("symlink", "oldname", ArgKind.STRING),  # a link target is text, not a path
        ("getxattr", "name", ArgKind.STRING),
        ("ptrace", "request", ArgKind.INT),
        ("ptrace", "data", ArgKind.UINT),
    ],
)
def test_argument_kinds(call, arg, kind):
    args = {a.name: a for a in table().lookup(call).args}
    assert args[arg].kind is kind


def test_write_buffer_knows_its_length_argument():
    buf = table().lookup("write").args[1]
    assert buf.length_arg == 2


def test_i386_calls_borrow_their_native_twin():
    t = table()
    chown32 = t.by_name("chown32", I386)
    assert chown32.family == "chown"
    assert [a.kind for a in chown32.args] == [ArgKind.PATH, ArgKind.UINT, ArgKind.UINT]
    assert {sc.name for sc in t.family("stat")} >= {"stat", "stat64", "oldstat"}


def test_c_widths_normalise_register_values():
    dfd = table().lookup("unlinkat").args[0]
    assert dfd.normalise(0xFFFFFF9C) == -100  # upper half left as garbage by a 32-bit write
    assert dfd.normalise(2**64 - 100) == -100
    count = table().lookup("write").args[2]
    assert count.normalise(2**64 - 1) == 2**64 - 1  # size_t is unsigned
    assert count.as_signed(2**64 - 1) == -1  # %params prints signed decimal


def test_groups_select_calls():
    t = table()
    assert {"unlink", "openat", "stat"} <= t.group("file")
    assert "connect" in t.group("network")
    assert "unlink" not in t.group("network")


def test_every_row_has_consistent_arguments():
    for sc in table():
        assert len(sc.args) == sc.nargs
        for arg in sc.args:
            if arg.kind is ArgKind.BUFFER:
                assert sc.args[arg.length_arg].kind in (ArgKind.INT, ArgKind.UINT)


def test_unlink_variant_covers_unlinkat_without_removedir():
    (variant,) = variants_of("unlink")
    assert variant.modern == "unlinkat"
    at_fdcwd, path_ptr = CONSTANTS["AT_FDCWD"], 0x1000
    assert variant.condition.holds((at_fdcwd, path_ptr, 0))
    assert not variant.condition.holds((at_fdcwd, path_ptr, CONSTANTS["AT_REMOVEDIR"]))
    assert variant.classic_args((at_fdcwd, path_ptr, 0)) == (path_ptr,)
    assert variant.dirfd_of(1) == 0


def test_rmdir_variant_is_unlinkat_with_removedir():
    (variant,) = variants_of("rmdir")
    assert variant.condition.holds((0, 0, CONSTANTS["AT_REMOVEDIR"]))


def test_open_variants_map_arguments_and_structs():
    by_modern = {v.modern: v for v in variants_of("open")}
    assert by_modern["openat"].classic_args((-100, 0x10, 0o101, 0o644)) == (0x10, 0o101, 0o644)
    openat2 = by_modern["openat2"]
    fields = {FromStruct.OPEN_HOW_FLAGS: 0o2000000, FromStruct.OPEN_HOW_MODE: 0}
    assert openat2.classic_args((-100, 0x10, 0x20, 24), fields) == (0x10, 0o2000000, 0)


def test_every_variant_maps_onto_real_arguments():
    t = table()
    for classic in {"unlink", "rmdir", "open", "creat", "mkdir", "mknod", "rename", "link",
                    "symlink", "readlink", "chmod", "chown", "lchown", "access", "stat",
                    "lstat", "utimes", "utime", "execve"}:
        variants = variants_of(classic)
        assert variants, classic
        for v in variants:
            modern, old = t.lookup(v.modern), t.lookup(v.classic)
            assert len(v.args) == old.nargs, v
            for src, classic_arg in zip(v.args, old.args, strict=True):
                if isinstance(src, int):
                    assert modern.args[src].kind.is_string == classic_arg.kind.is_string, v
            for path_arg, dirfd_arg in v.dirfds:
                assert modern.args[path_arg].kind is ArgKind.PATH, v
                assert modern.args[dirfd_arg].kind is ArgKind.DIRFD, v


def test_constants():
    assert CONSTANTS["O_CREAT"] == 0o100
    assert CONSTANTS["AT_FDCWD"] == -100
    assert CONSTANTS["EPERM"] == 1
    assert CONSTANTS["SIGKILL"] == 9
    assert CONSTANTS["S_IRWXU"] == 0o700
    assert errno_name(13) == "EACCES"


def test_i386_arguments_are_32_bits_wide():
    ptrace32 = table().by_name("ptrace", I386)
    data = ptrace32.args[3]  # unsigned long: 4 bytes on i386
    assert data.width == 4
    assert data.as_signed(0xBFFFF018) == -1073745896
    assert table().by_name("ptrace").args[3].width == 8


def test_i386_registers_assemble_the_family_arguments():
    """A 64-bit value over two registers (low first; _llseek high first) and clone's
    swapped tls/child_tidptr: the arguments come out in the family's order and width."""
    t = table()
    pread = t.by_name("pread64", I386)
    assert [a.name for a in pread.args] == ["fd", "buf", "count", "pos"]
    assert [a.width for a in pread.args] == [4, 4, 4, 8]
    assert pread.arguments((3, 0x1000, 7, 0x10, 0x2, 0)) == (3, 0x1000, 7, 0x2_0000_0010)
    assert pread.register_of(1) == 1 and pread.register_of(3) is None
    assert pread.placed(3, 0x2_0000_0010) == {3: 0x10, 4: 0x2}  # what arguments() joins
    assert pread.placed(1, b"/x") == {1: b"/x"}
    assert t.by_name("pread64").placed(3, 5) == {3: 5}
    llseek = t.by_name("_llseek", I386)
    assert [a.name for a in llseek.args] == ["fd", "offset", "whence"]
    assert llseek.arguments((3, 0x1, 0x2, 0xBEEF, 0, 0)) == (3, 0x1_0000_0002, 0)
    clone = t.by_name("clone", I386)
    assert clone.arguments((1, 2, 3, 4, 5, 6)) == (1, 2, 3, 5, 4)
    assert t.by_name("unlink", I386).arguments((1, 2, 3, 4, 5, 6)) == (1, 2, 3, 4, 5, 6)
    for sc in t:
        if sc.registers is not None:  # each argument placed, no register used twice
            used = [r for where in sc.registers for r in where]
            assert len(sc.registers) == sc.nargs and len(used) == len(set(used))
            assert all(len(where) == 1 or a.width == 8
                       for a, where in zip(sc.args, sc.registers, strict=True))


def test_no_variant_is_a_call_whose_registers_move():
    """Variant conditions read the modern call's raw registers by argument index."""
    from syscalltrack.syscalls.variants import VARIANTS
    for v in VARIANTS:
        assert all(sc.registers is None for sc in table().family(v.modern))


def test_socket_addresses_passed_in_know_their_length_argument():
    """So engines can read exactly the caller's bytes; the ones the kernel fills in have a
    length pointer, nothing to read before the call."""
    t = table()
    assert t.by_name("connect", X86_64).args[1].length_arg == 2
    assert t.by_name("bind", I386).args[1].length_arg == 2
    assert t.by_name("sendto", X86_64).args[4].length_arg == 5
    assert t.by_name("accept", X86_64).args[1].length_arg is None
    assert t.by_name("getsockname", X86_64).args[1].length_arg is None


def test_a_row_twice_in_the_data_is_refused_when_the_table_loads():
    from syscalltrack.syscalls import SyscallTable

    header = "abi\tnr\tname\tnargs\tclasses\ttracepoint\targs"
    row = "x86_64\t{nr}\t{name}\t1\tfile\tunlink\tconst char * pathname"
    for second in (row.format(nr=999, name="unlink"), row.format(nr=87, name="other")):
        with pytest.raises(ValueError, match="is there twice"):
            SyscallTable("\n".join([header, row.format(nr=87, name="unlink"), second]))
    one = SyscallTable("\n".join([header, row.format(nr=87, name="unlink")]))
    assert one.by_nr(X86_64, 87) is one.by_name("unlink")  # built once, then the same row
