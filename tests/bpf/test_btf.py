"""Struct offsets from the running kernel's BTF, checked by reading them in the kernel."""

import itertools
import os

import pytest

from syscalltrack.bpf import btf
from syscalltrack.bpf.asm import R0, R1, R2, R3, R6, R10, Assembler
from syscalltrack.bpf.btf import BTFError
from syscalltrack.bpf.prog import Program, ProgType, raw_tp_context
from syscalltrack.bpf.sys import BpfError, Cmd


@pytest.fixture(scope="module")
def kernel_btf() -> btf.BTF:
    if not os.path.exists(btf.VMLINUX):
        pytest.skip(f"no kernel BTF at {btf.VMLINUX} (CONFIG_DEBUG_INFO_BTF off)")
    return btf.vmlinux()


def test_cred_ids_are_in_declaration_order(kernel_btf):
    ids = ["uid", "gid", "suid", "sgid", "euid", "egid", "fsuid", "fsgid"]
    offsets = [kernel_btf.offsetof("cred", name) for name in ids]
    assert offsets == sorted(offsets)
    # kuid_t/kgid_t are 4-byte structs wrapping ``val``, packed back to back.
    assert [b - a for a, b in itertools.pairwise(offsets)] == [4] * 7
    assert kernel_btf.offsetof("cred", "euid.val") == kernel_btf.offsetof("cred", "euid")
    assert kernel_btf.offsetof("cred", "uid") >= kernel_btf.sizeof("atomic_t")


def test_task_struct_members_lie_within_it(kernel_btf):
    size = kernel_btf.sizeof("task_struct")
    for path in ("cred", "real_parent", "tgid", "pid", "comm", "fs"):
        assert 0 < kernel_btf.offsetof("task_struct", path) < size
    assert kernel_btf.access("task_struct", "comm").size == 16


def test_pointer_chains(kernel_btf):
    euid = kernel_btf.access("task_struct", "cred->euid.val")
    assert euid.offsets == (kernel_btf.offsetof("task_struct", "cred"),
                            kernel_btf.offsetof("cred", "euid"))
    assert euid.size == 4
    ppid = kernel_btf.access("task_struct", "real_parent->tgid")
    assert ppid.offsets[1] == kernel_btf.offsetof("task_struct", "tgid")


def test_bitfields_and_missing_members(kernel_btf):
    unaligned = [m for m in kernel_btf.members(kernel_btf.find("sk_buff"))
                 if m.bitfield_size and m.bit_offset % 8]
    assert unaligned, "expected sk_buff to have a bitfield not starting on a byte"
    with pytest.raises(BTFError, match="bitfield"):
        kernel_btf.offsetof("sk_buff", unaligned[0].name)
    with pytest.raises(BTFError, match="no member 'no_such'"):
        kernel_btf.offsetof("task_struct", "no_such")


def _read_current(offsets: tuple[int, ...], size: int):
    """Program returning current->(offsets...) read with probe_read_kernel per hop.

    A failed read returns -1, so a zero result (euid of root) is a real zero.
    """
    a = Assembler()
    a.call("get_current_task")
    a.mov(R6, R0)
    for i, off in enumerate(offsets):
        last = i == len(offsets) - 1
        a.st(8, R10, -8, 0)
        a.mov(R1, R10)
        a.add(R1, -8)
        a.mov(R2, size if last else 8)
        a.mov(R3, R6)
        a.add(R3, off)
        a.call("probe_read_kernel")
        a.jne(R0, 0, "failed")
        a.ldxdw(R6, R10, -8)
    a.mov(R0, R6)
    a.exit()
    a.label("failed")
    a.mov(R0, -1)
    a.exit()
    return a.instructions()


@pytest.mark.usefixtures("root")
@pytest.mark.parametrize(("expr", "expected"), [
    ("tgid", os.getpid),
    ("real_parent->tgid", os.getppid),
    ("cred->euid.val", os.geteuid),
    ("cred->egid.val", os.getegid),
])
def test_offsets_read_the_right_values_in_the_kernel(kernel_btf, expr, expected):
    """test_run executes in our process, so current is this Python process."""
    plan = kernel_btf.access("task_struct", expr)
    with Program.load(ProgType.RAW_TRACEPOINT, _read_current(plan.offsets, plan.size)) as p:
        assert p.test_run(raw_tp_context(0)).retval == expected()


def test_builder_output_reads_back():
    b = btf.Builder()
    int_t = b.int("int", 4, signed=True)
    proto = b.func_proto(int_t, [("a", int_t)])
    func = b.func("main", proto, btf.Linkage.GLOBAL)
    parsed = btf.BTF(b.encode())
    assert len(parsed) == 3
    assert parsed.find("main") == func and parsed.kind(func) == btf.Kind.FUNC
    assert parsed.kind(proto) == btf.Kind.FUNC_PROTO and parsed.size(int_t) == 4


def test_loaded_btf_has_an_id_and_is_found_by_it(root):
    blob, info = btf.stub_func_info(())
    assert [f.insn_off for f in info] == [0]
    with btf.Handle.load(blob) as handle:
        ident = handle.id
        assert ident > 0
        with btf.Handle.from_id(ident) as again:
            assert again.id == ident and again.fd != handle.fd


def test_btf_refusal_carries_the_kernel_log(root):
    b = btf.Builder()
    b.func_proto(7, [])  # return type 7 does not exist
    with pytest.raises(BpfError) as info:
        btf.Handle.load(b.encode())
    assert info.value.cmd == Cmd.BTF_LOAD and info.value.log
