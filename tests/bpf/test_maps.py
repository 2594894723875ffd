"""Map create/update/lookup/delete/iterate against the real kernel."""

import struct

import pytest

from syscalltrack.bpf.maps import Map, MapSpec, MapType, UpdateFlag, possible_cpus
from syscalltrack.bpf.sys import BpfError

pytestmark = pytest.mark.usefixtures("root")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


def test_hash_crud_and_iteration():
    with Map.create(MapSpec("t_hash", MapType.HASH, 4, 8, 16)) as m:
        assert m.lookup(U32.pack(1)) is None
        for k in range(5):
            m.update(U32.pack(k), U64.pack(k * 100))
        assert m.lookup(U32.pack(3)) == U64.pack(300)
        assert sorted(U32.unpack(k)[0] for k in m) == [0, 1, 2, 3, 4]
        assert dict(m.items())[U32.pack(4)] == U64.pack(400)
        assert m.delete(U32.pack(3)) is True
        assert m.delete(U32.pack(3)) is False
        with pytest.raises(BpfError, match="EEXIST"):
            m.update(U32.pack(1), U64.pack(0), UpdateFlag.NOEXIST)
        assert m.id > 0


def test_array_is_preallocated_and_zeroed():
    with Map.create(MapSpec("t_array", MapType.ARRAY, 4, 4, 3)) as m:
        assert [m.lookup(U32.pack(i)) for i in range(3)] == [b"\0" * 4] * 3
        m.update(U32.pack(2), U32.pack(7))
        assert m.lookup(U32.pack(2)) == U32.pack(7)
        assert len(list(m)) == 3
        with pytest.raises(BpfError, match="E2BIG"):
            m.update(U32.pack(3), U32.pack(1))


@pytest.mark.parametrize("kind", [MapType.PERCPU_ARRAY, MapType.PERCPU_HASH])
def test_percpu_values_have_one_slot_per_possible_cpu(kind):
    with Map.create(MapSpec("t_percpu", kind, 4, 4, 2)) as m:
        n = possible_cpus()
        assert m.value_stride == 8 * n
        m.update(U32.pack(0), b"".join(U64.pack(c + 1) for c in range(n)))
        assert m.lookup_percpu(U32.pack(0)) == [U32.pack(c + 1) for c in range(n)]


def test_ringbuf_map_creates_with_page_multiple():
    with Map.create(MapSpec("t_rb", MapType.RINGBUF, 0, 0, 4096)) as m:
        assert m.fd >= 0
    with pytest.raises(BpfError, match="EINVAL"):
        Map.create(MapSpec("t_rb_bad", MapType.RINGBUF, 0, 0, 1000))


def test_wrong_key_size_is_a_value_error():
    with Map.create(MapSpec("t_keys", MapType.HASH, 4, 4, 1)) as m, \
            pytest.raises(ValueError, match="key is 8 bytes"):
        m.lookup(U64.pack(1))
