"""Names as long as the kernel takes them: 4095 bytes and the NUL fill PATH_MAX.

probe_read_user_str over the 4096-byte window answers 4096 both for such a name
and for a longer one that it cut; the engine took every answer of 4096 as cut, so
a test that had not settled by the end of a 4095-byte name (`endswith`, `glob`)
was undecided although the kernel used the whole name. It is decided now, at
every window size, on both ABIs, and when the NUL is the last byte before
memory that cannot be read; a name with no NUL within the window is still cut:
undecided unless its start settles the test, and shown as cut in the record
even when the record is as large as the window.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os

import pytest
from systemwide_support import Bench, long_path, rule

from syscalltrack.engines.systemwide import SystemwideEngine, codegen
from syscalltrack.engines.systemwide.layout import KIND_UNDECIDED, KIND_UNREADABLE
from syscalltrack.events.event import Cut, Event, Undecided
from syscalltrack.rules import load_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf()")
PATH_MAX = 4096
SAFETY_POLL = 5.0  # seconds a poll may wait for records already in the ring
PAGE = mmap.PAGESIZE
PROT_NONE = 0
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
libc.unlink.argtypes = (ctypes.c_void_p,)

# A long literal (not compared word by word: the automaton runs) and tests that cannot
# settle before the string's end.
PREFIX = "/sct-long/" + "p" * 70
RULES = (rule("other", "unlink", 'PARAMS[1] startswith "/sct-other/"')
         + rule("suffix", "unlink", 'PARAMS[1] endswith ".conf"')
         + rule("glob", "unlink", 'PARAMS[1] glob "/sct-long/*/x"')
         + rule("prefix", "unlink", f'PARAMS[1] startswith "{PREFIX}"'))
OTHER, SUFFIX, GLOB, PREFIXED = range(4)


@pytest.fixture(autouse=True)
def records_within_the_window(monkeypatch):
    """Bench leaves record_string at 256, more than a 64-byte window allows."""
    generate = codegen.generate
    monkeypatch.setattr(codegen, "generate", lambda ruleset, *, window=PATH_MAX, **kw: generate(
        ruleset, window=window, **{"record_string": min(256, window), **kw}))


def name(size: int, tail: bytes, head: bytes = b"/sct-long/") -> bytes:
    """``size`` bytes: ``head``, then 'a's, then ``tail``."""
    out = head + b"a" * (size - len(head) - len(tail)) + tail
    assert len(out) == size
    return out


@pytest.mark.parametrize("abi", ["x86_64", "i386"])
@pytest.mark.parametrize("window", [64, 256, PATH_MAX])
def test_a_name_one_byte_shorter_than_the_window_is_decided(window, abi):
    """window - 1 bytes and the NUL fill the window: every test decides, as on one byte
    less; one byte more and the name is cut, undecided where the end would tell."""
    with Bench(RULES, window=window) as bench:
        def run(arg: bytes):
            out = bench.run("unlinkat", [-100, arg, 0], abi=abi)
            return out.rule, out.undecided

        for size in (window - 2, window - 1):
            assert run(name(size, b".conf")) == (SUFFIX, False), size
            assert run(name(size, b"/x")) == (GLOB, False), size
            assert run(name(size, b"/y")) == (None, False), size
        for size in (window, window + 1, 2 * window):
            assert run(name(size, b".conf")) == (SUFFIX, True), size
            assert run(name(size, b"/y")) == (SUFFIX, True), size
            # Settled by the start: decided however long the rest (the window-1 bytes
            # that were read hold the whole literal where the window allows it).
            assert run(name(size, b".conf", b"/sct-other/")) == (OTHER, False), size
        if window > len(PREFIX) + 2:  # the literal's automaton settles only at the end
            assert run(name(window - 1, b"/y", PREFIX.encode())) == (PREFIXED, False)


class Pages:
    """Two pages of our memory, the second unreadable: a name can end at their border."""

    def __init__(self):
        self.map = mmap.mmap(-1, 2 * PAGE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        if libc.mprotect(self.base + PAGE, PAGE, PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")

    def before_border(self, data: bytes) -> int:
        """``data`` written to end exactly at the unreadable page; its address."""
        start = PAGE - len(data)
        self.map[start:PAGE] = data
        return self.base + start

    def close(self) -> None:
        libc.mprotect(self.base + PAGE, PAGE, mmap.PROT_READ | mmap.PROT_WRITE)
        self.map.close()


def kernel_unlink(address: int) -> int:
    """The kernel's own answer for this name: the errno of unlink (none exist)."""
    assert libc.unlink(address) == -1
    return ctypes.get_errno()


@pytest.fixture
def pages():
    p = Pages()
    yield p
    p.close()


def test_names_ending_where_readable_memory_ends(pages):
    """4095 bytes whose NUL is the last readable byte: decided (the kernel takes the name).
    4096 bytes and no NUL before the border: cut, undecided where the start does not
    settle the test, not unreadable (the kernel reads it whole, and says ENAMETOOLONG).
    A name that runs into the border: unreadable, undecided (the kernel says EFAULT)."""
    with Bench(RULES) as bench:
        def run(address: int):
            out = bench.run("unlinkat", [-100, address, 0])
            return out.rule, out.undecided, out.kind

        whole = pages.before_border(name(PATH_MAX - 1, b".conf") + b"\0")
        assert kernel_unlink(whole) == errno.ENOENT
        assert run(whole) == (SUFFIX, False, 0)

        long = pages.before_border(name(PATH_MAX, b".conf"))
        assert kernel_unlink(long) == errno.ENAMETOOLONG
        assert run(long) == (SUFFIX, True, KIND_UNDECIDED)
        long = pages.before_border(name(PATH_MAX, b".conf", b"/sct-other/"))
        assert run(long) == (OTHER, False, 0)

        torn = pages.before_border(name(100, b".conf"))
        assert kernel_unlink(torn) == errno.EFAULT
        assert run(torn) == (OTHER, True, KIND_UNREADABLE + 1)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_process_unlinking_the_longest_name_is_seen_deciding(work, when):
    """A real unlink of a 4095-byte name gives an event carrying it whole (it was an
    undecided notice); 4096 and 5000 bytes (ENAMETOOLONG) stay undecided, and their
    notices carry the name as cut even when the record holds as many bytes as the
    window (a 4096-byte name was shown whole, 4095 bytes with no sign of the cut)."""
    filt = f'PARAMS[1] startswith "{work}/" && PARAMS[1] endswith "f"'
    text = rule("long", "unlink", filt, when=when)
    paths = {size: long_path(work, size) for size in (PATH_MAX - 1, PATH_MAX, 5000)}
    engine = SystemwideEngine(load_rules(text), window=PATH_MAX, record_string=PATH_MAX)
    with engine.load():
        with pytest.raises(FileNotFoundError):
            os.unlink(paths[PATH_MAX - 1])
        for size in (PATH_MAX, 5000):
            with pytest.raises(OSError) as failed:
                os.unlink(paths[size])
            assert failed.value.errno == errno.ENAMETOOLONG
        batch = engine.poll_records(SAFETY_POLL)
        while engine.pending():
            batch.rows.extend(engine.poll_records(0).rows)
    prefix = f"{work}/".encode()
    items = [x for x in batch.stream_items() if isinstance(x, Event | Undecided)
             and (x.event if isinstance(x, Undecided) else x).values[0].startswith(prefix)]
    assert len(items) == 3, items
    whole, *cut = items

    assert isinstance(whole, Event) and whole.rule == "long"
    assert whole.values[0].__class__ is bytes and whole.values[0] == paths[PATH_MAX - 1].encode()
    assert whole.retval == (-errno.ENOENT if when == "after" else None)
    for item, size in zip(cut, (PATH_MAX, 5000), strict=True):
        assert isinstance(item, Undecided) and item.rule == "long"
        value = item.event.values[0]
        assert value.__class__ is Cut and value == paths[size].encode()[:PATH_MAX - 1]
