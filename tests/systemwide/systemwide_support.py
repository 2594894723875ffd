"""Running generated programs under BPF_PROG_TEST_RUN, and building rule text.

The test prologue reads the arguments from a fake ``pt_regs`` in our own
memory (test runs execute in the calling process), so the filter body is the
one production runs; strings are ctypes buffers the fake registers point to
(for i386 programs, in memory below 4 GB: they keep the registers' low halves).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from syscalltrack.bpf.prog import Program, raw_tp_context
from syscalltrack.engines.systemwide import codegen
from syscalltrack.engines.systemwide.engine import create_maps
from syscalltrack.engines.systemwide.layout import kernel
from syscalltrack.rules import RuleSet, When, load_rules

PT_REGS_SIZE = 168
MAP_32BIT = 0x40


def rule(name: str, syscall: str, filt: str | None = None, when: str = "before",
         action: str = "LOG", extra: str = "") -> str:
    f = f"filter_expression {{{filt}}}\n" if filt else ""
    return (f"rule {{\nsyscall_name = {syscall}\nrule_name = {name}\n{f}{extra}"
            f"action {{\ntype = {action}\n}}\nwhen = {when}\n}}\n")


@dataclass
class Outcome:
    rule: int | None  # index of the matching rule, None when none matched
    undecided: bool
    kind: int = 0  # the record's kind (layout.KIND_*): why it was undecided


class Bench:
    """A rule set's programs behind the test prologue, loaded with their maps."""

    def __init__(self, text: str, window: int = 4096):
        self.ruleset: RuleSet = load_rules(text)
        self.plan = codegen.generate(self.ruleset, prologue=codegen.Prologue.TEST,
                                     window=window)
        self.maps = {}
        self.programs = {}
        self.low = mmap.mmap(-1, 1 << 16, flags=mmap.MAP_PRIVATE | MAP_32BIT)
        self.low_base = ctypes.addressof(ctypes.c_char.from_buffer(self.low))
        try:
            create_maps(self.plan, 1 << 20, self.maps)
            for p in self.plan.programs:
                self.programs[(p.syscall.abi, p.syscall.name, p.when)] = Program.load(
                    p.prog_type, p.instructions, maps=self.maps, name=p.name)
        except BaseException:
            self.close()
            raise

    def run(self, syscall: str, args: list[int | bytes | None], when: str = "before",
            retval: int = 0, abi: str = "x86_64") -> Outcome:
        """Run the program of (abi, syscall, when) on ``args`` (in ``abi``'s registers);
        bytes become string pointers."""
        keep = []
        regs = ctypes.create_string_buffer(PT_REGS_SIZE)
        low = 0
        for i, a in enumerate(args):
            if isinstance(a, bytes) and abi == "i386":
                self.low[low:low + len(a) + 1] = a + b"\0"
                a, low = self.low_base + low, low + len(a) + 1
            elif isinstance(a, bytes):
                buf = ctypes.create_string_buffer(a, len(a) + 1)
                keep.append(buf)
                a = ctypes.addressof(buf)
            elif a is None:
                a = 0
            struct.pack_into("<Q", regs, kernel().regs[abi][i], a & (2**64 - 1))
        prog = self.programs[(abi, syscall, When(when))]
        ret = prog.test_run(raw_tp_context(ctypes.addressof(regs), 0, retval)).retval
        if ret == 0:
            return Outcome(None, False)
        return Outcome((ret & 0xFFFF) - 1, bool(ret >> 16), ret >> 16)

    def close(self) -> None:
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        self.low.close()

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Context:
    """The Python evaluator's view of the same call: current ids, given arguments."""

    def __init__(self, args: list[int], strings: dict[int, bytes | None], retval: int = 0):
        self._args, self._strings = args, strings
        self.uid, self.euid, self.suid = os.getresuid()
        self.gid, self.egid, self.sgid = os.getresgid()
        self.pid, self.tid, self.ppid = os.getpid(), threading.get_native_id(), os.getppid()
        with open("/proc/thread-self/comm", "rb") as f:
            self.comm = f.read().rstrip(b"\n")
        self.cwd = None
        self.retval = retval

    def arg(self, index: int) -> int:
        return self._args[index]

    def string(self, index: int) -> bytes | None:
        return self._strings.get(index)

    def path(self, index: int) -> bytes | None:
        return None

    def path_last(self, index: int) -> bytes | None:
        return None


def long_path(work: Path, size: int) -> str:
    """A path of exactly ``size`` bytes under ``work``, in directories that do not exist
    (components of at most 60 bytes: only the whole name can be too long)."""
    head = f"{work}/"
    parts, left = [], size - len(head)
    while left > 0:
        part = min(left, 60)
        parts.append("d" * (part - 1) + "/" if left > part else "f" * part)
        left -= part
    path = head + "".join(parts)
    assert len(path) == size
    return path
