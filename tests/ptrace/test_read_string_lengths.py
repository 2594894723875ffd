"""TraceeMemory.read_string around its chunk sizes: the first small read, a page edge,
the limit, with the /proc/PID/mem descriptor not yet open and then kept (read from this
process itself: the same reads as from a stopped tracee)."""

import ctypes
import mmap
import os

import pytest

from syscalltrack.ptrace.memory import FIRST_CHUNK, PAGE_SIZE, TraceeMemory


@pytest.fixture
def pages():
    """Two pages, the second one unmapped: a string may end right before the hole."""
    area = mmap.mmap(-1, 2 * PAGE_SIZE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(area))
    yield area, base
    # (the ctypes view keeps the mmap exported; the process end frees it)


@pytest.mark.parametrize("length", [0, 1, FIRST_CHUNK - 1, FIRST_CHUNK, FIRST_CHUNK + 1,
                                    PAGE_SIZE - 1, PAGE_SIZE + 300])
@pytest.mark.parametrize("kept", [False, True])
def test_strings_of_every_length_read_whole(pages, length, kept):
    area, base = pages
    text = bytes((i % 250) + 1 for i in range(length))
    area[:length + 1] = text + b"\0"
    memory = TraceeMemory(os.getpid())
    try:
        if kept:
            memory.read(base, 1)  # opens the descriptor the fast path reads from
        assert memory.read_string(base, limit=8192) == (text, False)
    finally:
        memory.close()


@pytest.mark.parametrize("kept", [False, True])
def test_a_string_ending_at_a_page_edge_before_a_hole(kept):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    base = libc.mmap(None, 2 * PAGE_SIZE, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert base not in (None, ctypes.c_void_p(-1).value)
    assert libc.munmap(base + PAGE_SIZE, PAGE_SIZE) == 0  # the hole: nothing mapped there
    try:
        ctypes.memset(base, ord("x"), PAGE_SIZE)
        ctypes.memmove(base + PAGE_SIZE - 4, b"end\0", 4)
        memory = TraceeMemory(os.getpid())
        try:
            if kept:
                memory.read(base, 1)
            assert memory.read_string(base + PAGE_SIZE - 4) == (b"end", False)
            assert memory.read_string(base + PAGE_SIZE - 300) == (b"x" * 296 + b"end", False)
        finally:
            memory.close()
    finally:
        libc.munmap(base, PAGE_SIZE)


@pytest.mark.parametrize("kept", [False, True])
@pytest.mark.parametrize("limit", [10, FIRST_CHUNK, FIRST_CHUNK + 10])
def test_a_string_longer_than_the_limit_is_cut_there(pages, kept, limit):
    area, base = pages
    area[:limit + 50] = b"y" * (limit + 50)
    memory = TraceeMemory(os.getpid())
    try:
        if kept:
            memory.read(base, 1)
        assert memory.read_string(base, limit=limit) == (b"y" * limit, True)
    finally:
        memory.close()
