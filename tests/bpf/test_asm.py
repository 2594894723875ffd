"""The assembler and disassembler, without a kernel."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syscalltrack.bpf import asm
from syscalltrack.bpf.asm import R0, R1, R2, R10, AsmError, Assembler


def sample() -> tuple[asm.Instruction, ...]:
    a = Assembler()
    a.mov(R0, 0)
    a.ldxdw(R1, R1, 8)
    a.jeq(R1, 3, "hit")
    a.jsgt32(R1, R2, "hit")
    a.ld_imm64(R2, 0x1122334455667788)
    a.add(R1, R2)
    a.and32(R1, 0xFF)
    a.stxw(R10, -8, R1)
    a.st(8, R10, -16, -1)
    a.atomic_add(8, R10, -16, R1)
    a.ja("out")
    a.label("hit")
    a.mov(R0, 1)
    a.label("out")
    a.call("get_current_pid_tgid")
    a.exit()
    return a.instructions()


def test_labels_resolve_to_slot_offsets_counting_ld_imm64_twice():
    linked = asm.link(sample())
    jeq, jsgt, ja = linked[2], linked[3], linked[10]
    # jeq at slot 2; "hit" at slot 12 (ld_imm64 takes slots 4-5).
    assert (jeq.off, jsgt.off, ja.off) == (9, 8, 1)


def test_encode_decode_round_trip():
    code = asm.encode(sample())
    assert len(code) == 8 * 15  # 14 instructions, ld_imm64 twice
    decoded = asm.decode(code)
    assert asm.encode(decoded) == code
    stripped = [i.__class__(i.opcode, i.dst, i.src, i.off, i.imm) for i in asm.link(sample())]
    assert list(decoded) == stripped


def test_disassembly_reads_like_the_verifier():
    text = asm.disassemble(sample())
    assert "r0 = 0" in text
    assert "r1 = *(u64 *)(r1 +8)" in text
    assert "if r1 == 3 goto +9 <hit>" in text
    assert "if w1 s> w2 goto +8 <hit>" in text
    assert "r2 = 0x1122334455667788 ll" in text
    assert "w1 &= 255" in text
    assert "*(u32 *)(r10 -8) = r1" in text
    assert "lock *(u64 *)(r10 -16) += r1" in text
    assert "call get_current_pid_tgid" in text
    assert "hit:\n   12: r0 = 1" in text
    assert text.endswith("exit")
    # Disassembling the bytecode gives the same lines minus labels.
    plain = asm.disassemble(asm.encode(sample()))
    assert "if r1 == 3 goto +9\n" in plain


def test_map_reference_resolved_at_encode():
    insns = (asm.ld_map_fd(R1, "events"), asm.exit())
    assert "r1 = map[events]" in asm.disassemble(insns)
    code = asm.encode(insns, {"events": 7})
    assert code[1] == 0x11 and int.from_bytes(code[4:8], "little") == 7
    with pytest.raises(AsmError, match="events"):
        asm.encode(insns, {})


@pytest.mark.parametrize("make", [
    lambda: asm.mov(R1, 1 << 31),
    lambda: asm.jeq(R1, -(1 << 31) - 1, "x"),
    lambda: asm.st(4, R10, -4, 0xFFFF_FFFF),
])
def test_immediates_beyond_signed_32_bits_are_refused(make):
    with pytest.raises(AsmError, match="ld_imm64"):
        make()


def test_undefined_and_duplicate_labels():
    with pytest.raises(AsmError, match="undefined label 'nowhere'"):
        asm.link((asm.ja("nowhere"), asm.exit()))
    a = Assembler()
    a.label("x")
    a.exit()
    with pytest.raises(AsmError, match="twice"):
        a.label("x")
    b = Assembler()
    b.label("dangling")
    with pytest.raises(AsmError, match="not followed"):
        b.instructions()


def test_unknown_helper_and_bad_size():
    with pytest.raises(AsmError, match="unknown helper"):
        asm.call("no_such_helper")
    with pytest.raises(AsmError, match="1, 2, 4 or 8"):
        asm.ldx(3, R1, R1, 0)


_REGS = st.sampled_from(list(asm.Reg)[:10])
_IMM = st.integers(asm.INT32_MIN, asm.INT32_MAX)
_OPERAND = st.one_of(_REGS, _IMM)
_ALU = sorted(n for n in dir(Assembler) if n.rstrip("_32") in
              {"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "mod", "xor", "mov",
               "arsh"})
_JUMPS = sorted(n for n in dir(Assembler) if n.startswith("j") and n != "ja")
_SIZES = st.sampled_from([1, 2, 4, 8])
_OFF = st.integers(-(1 << 15), (1 << 15) - 1)

_INSTRUCTION = st.one_of(
    st.builds(lambda op, d, s: getattr(asm, op)(d, s), st.sampled_from(_ALU), _REGS, _OPERAND),
    st.builds(lambda op, d, s, o: getattr(asm, op)(d, s, o), st.sampled_from(_JUMPS), _REGS,
              _OPERAND, _OFF),
    st.builds(asm.ldx, _SIZES, _REGS, _REGS, _OFF),
    st.builds(asm.stx, _SIZES, _REGS, _OFF, _REGS),
    st.builds(asm.st, _SIZES, _REGS, _OFF, _IMM),
    st.builds(asm.ld_imm64, _REGS, st.integers(0, (1 << 64) - 1)),
    st.builds(asm.call, st.sampled_from(sorted(asm.HELPERS))),
    st.builds(asm.neg, _REGS), st.builds(asm.exit),
)


@given(st.lists(_INSTRUCTION, max_size=40))
def test_any_program_survives_encode_decode_and_disassembles(insns):
    code = asm.encode(insns)
    assert asm.decode(code) == tuple(insns)
    text = asm.disassemble(code)
    assert "<opcode" not in text
    assert text == asm.disassemble(insns)


def test_callback_address_links_into_imm_and_lists_subprograms():
    a = Assembler()
    a.mov(R1, 4)
    a.ld_func(R2, "cb")  # slot 1-2: the kernel finds the callee at 1 + imm + 1
    a.call("loop")
    a.exit()
    a.label("cb")
    a.mov(R0, 0)
    a.exit()
    insns = a.instructions()
    linked = asm.link(insns)
    assert linked[1].src == asm.PSEUDO_FUNC and 1 + linked[1].imm + 1 == 5
    assert asm.subprograms(insns) == (5,)
    listing = asm.disassemble(insns)
    assert "r2 = func[cb]" in listing and "call loop" in listing
    assert asm.decode(asm.encode(insns))[1].imm == linked[1].imm
    assert asm.subprograms(sample()) == ()
