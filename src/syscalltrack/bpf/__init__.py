"""A pure-Python eBPF library (standard library only), in the spirit of cilium/ebpf.

It knows nothing about rules: the code generator builds instructions with
:mod:`.asm`, loads them with :mod:`.prog` against maps from :mod:`.maps`,
attaches them with :mod:`.link` and reads events with :mod:`.ringbuf`.
:mod:`.btf` gives kernel struct offsets (and loads the BTF callbacks need),
:mod:`.tracefs` tracepoint context layouts, :mod:`.features` what this
kernel allows, :mod:`.sys` the raw ``bpf()`` call. Every kernel object is
owned by one Python object with ``close()`` and a ``with`` form.
"""

from .asm import AsmError, Assembler, Instruction, disassemble
from .btf import BTFError
from .features import Features, Probe, probe
from .link import Link, attach_raw_tracepoint, attach_tracepoint
from .maps import Map, MapSpec, MapType
from .prog import Program, ProgramSpec, ProgType, raw_tp_context
from .ringbuf import RingBuffer
from .sys import BpfError

__all__ = [
    "AsmError", "Assembler", "BTFError", "BpfError", "Features", "Instruction", "Link", "Map",
    "MapSpec", "MapType", "Probe", "ProgType", "Program", "ProgramSpec", "RingBuffer",
    "attach_raw_tracepoint", "attach_tracepoint", "disassemble", "probe", "raw_tp_context",
]
