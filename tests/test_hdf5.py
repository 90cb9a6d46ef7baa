"""The HDF5 filter (vortexfmt.hdf5, the plugin csrc/hdf5/h5z_vortex.cpp): datasets written
through h5py read back exactly in a fresh process that finds the plugin on
HDF5_PLUGIN_PATH alone; its chunks are Vortex chunks that Python's cm codec decodes, and
chunks written in Python decode through it; a damaged chunk is h5py's ordinary OSError,
never wrong data.

h5py's direct chunk I/O (read_direct_chunk, write_direct_chunk) is the way in to the
plugin's bytes: no ctypes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import vortexfmt.hdf5 as vortex_hdf5  # noqa: E402
from vortexfmt import native  # noqa: E402
from vortexfmt.codecs.cm import CmCodec, table_bits_for  # noqa: E402

#: magic, version, codec id, raw size, CRC-32 of the raw bytes (little-endian)
CHUNK_HEADER = struct.Struct("<3sBBQI")
STORED, CM = 0, 5
TIMEOUT_S = 120


# --- Data --------------------------------------------------------------------------------------


def _signal(n: int, seed: int) -> np.ndarray:
    """A smooth random walk with noise: what sensors record."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 20, n)) + rng.normal(0, 3, n)


def float32_series() -> np.ndarray:
    return _signal(24_000, 1).astype("<f4")


def int32_channels() -> np.ndarray:
    return np.stack([_signal(8_000, seed) for seed in (2, 3, 4)], axis=1).astype("<i4")


def uint8_image() -> np.ndarray:
    y, x = np.mgrid[0:192, 0:160]
    noise = np.random.default_rng(5).integers(0, 6, (192, 160))
    return ((x * 3 + y * 2) // 4 % 256 + noise).astype("u1")


#: name: (data, chunks, the stride set_local records: one row of a chunk)
DATASETS = {
    "float32": (float32_series, (8_192,), 4),
    "int32x3": (int32_channels, (4_096, 3), 12),
    "uint8": (uint8_image, (64, 160), 160),
}


def _chunk_bytes(name: str) -> int:
    make, chunks, _ = DATASETS[name]
    return make().dtype.itemsize * int(np.prod(chunks))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --- Chunks, in Python -------------------------------------------------------------------------


def python_decode(chunk: bytes) -> bytes:
    """The raw bytes of a Vortex chunk, decoded by Python's cm codec."""
    magic, version, codec, raw_size, crc = CHUNK_HEADER.unpack_from(chunk)
    assert (magic, version) == (b"VXC", 1)
    payload = chunk[CHUNK_HEADER.size:]
    raw = payload if codec == STORED else CmCodec().decode(payload, raw_size)
    assert codec in (STORED, CM) and len(raw) == raw_size and zlib.crc32(raw) == crc
    return raw


def python_chunk(raw: bytes, codec: int = CM, lanes: int = 1) -> bytes:
    payload = raw if codec == STORED else CmCodec(lanes=lanes).encode(raw)
    return CHUNK_HEADER.pack(b"VXC", 1, codec, len(raw), zlib.crc32(raw)) + payload


def _write(path, name: str = "x", data=None, chunks=None, **options):
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=data, chunks=chunks, **vortex_hdf5.filter_kwargs(**options))


def _run(script: str, **environment) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter that finds the plugin through HDF5_PLUGIN_PATH only."""
    env = {**os.environ, "HDF5_PLUGIN_PATH": str(vortex_hdf5.PLUGIN_DIR), **environment}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], text=True,
                          capture_output=True, timeout=TIMEOUT_S, check=False, env=env)


# --- Round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_dataset_reads_back_exactly_in_a_fresh_process(tmp_path, name):
    make, chunks, _ = DATASETS[name]
    data = make()
    path = tmp_path / f"{name}.h5"
    _write(path, data=data, chunks=chunks)
    with h5py.File(path) as f:
        stored = sum(f["x"].id.get_chunk_info(i).size for i in range(f["x"].id.get_num_chunks()))
    assert stored < data.nbytes * 0.8, (stored, data.nbytes)  # the chunks are compressed
    result = _run(f"""
        import hashlib, sys
        import h5py
        with h5py.File({str(path)!r}) as f:
            x = f["x"]
            data = x[...]
            print(x.id.get_create_plist().get_filter(0)[0], data.dtype.str, data.shape)
            print(hashlib.sha256(data.tobytes()).hexdigest())
        print(any(m.startswith("vortexfmt") for m in sys.modules))
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == [
        f"{vortex_hdf5.FILTER_ID} {data.dtype.str} {data.shape}", _digest(data), "False"]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_set_local_records_the_row_as_stride_and_the_chunk_size(tmp_path, name):
    make, chunks, stride = DATASETS[name]
    _write(tmp_path / "s.h5", data=make(), chunks=chunks)
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["x"].id.get_create_plist().get_filter(0)[2] == (18, stride, _chunk_bytes(name))
        chunk = f["x"].id.read_direct_chunk((0,) * len(chunks))[1]
    assert chunk[4] == CM and struct.unpack_from("<H", chunk, 20)[0] == stride


def test_options_are_recorded_and_used(tmp_path):
    data = float32_series()
    _write(tmp_path / "o.h5", data=data, chunks=(8_192,), stride=0, max_table_bits=12)
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["x"].id.get_create_plist().get_filter(0)[2] == (12, 0, 8_192 * 4)
        chunk = f["x"].id.read_direct_chunk((0,))[1]
        assert np.array_equal(f["x"][...], data)
    assert chunk[17:22] == bytes([1, 0, 12]) + struct.pack("<H", 0)  # revision, flags, ...


def test_an_incompressible_chunk_is_stored(tmp_path):
    data = np.random.default_rng(6).integers(0, 256, 20_000, dtype=np.uint8)
    _write(tmp_path / "r.h5", data=data, chunks=(10_000,))
    with h5py.File(tmp_path / "r.h5") as f:
        chunk = f["x"].id.read_direct_chunk((0,))[1]
        assert np.array_equal(f["x"][...], data)
    assert chunk == python_chunk(data[:10_000].tobytes(), codec=STORED)


def test_wrong_options_fail_the_dataset_creation(tmp_path):
    with h5py.File(tmp_path / "w.h5", "w") as f:
        for i, options in enumerate(((18, 1025), (9,), (23, 4), (18, 4, 0, 1))):
            with pytest.raises(ValueError):
                f.create_dataset(f"x{i}", data=np.zeros(100, "u1"), chunks=(50,),
                                 compression=vortex_hdf5.FILTER_ID, compression_opts=options)


def test_variable_length_strings_round_trip_without_a_chunk_size(tmp_path):
    words = [f"record {i} " * (i % 7) for i in range(600)]
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f.create_dataset("x", data=words, dtype=h5py.string_dtype(), chunks=(200,),
                         **vortex_hdf5.filter_kwargs())
    with h5py.File(tmp_path / "v.h5", "r+") as f:
        # no chunk size to check against (HDF5 2.0 calls no set_local for this type; one
        # that did would record 0, unknown)
        values = f["x"].id.get_create_plist().get_filter(0)[2]
        assert values in ((18,), (18, 8, 0))
        assert [w.decode() for w in f["x"][...]] == words
        chunk = f["x"].id.read_direct_chunk((0,))[1]
        f["x"].id.write_direct_chunk((0,), _edit(chunk, 5, struct.pack("<Q", 1 << 40)))
        with pytest.raises(OSError):  # the decoder's own memory limit refuses it
            f["x"][:10]


@pytest.mark.parametrize("options", [{"stride": 1025}, {"stride": -1}, {"max_table_bits": 9},
                                     {"max_table_bits": 23}, {"stride": True}])
def test_filter_kwargs_rejects_values_out_of_range(options):
    with pytest.raises(ValueError):
        vortex_hdf5.filter_kwargs(**options)


def test_filter_kwargs():
    assert vortex_hdf5.filter_kwargs() == {"compression": vortex_hdf5.FILTER_ID,
                                           "compression_opts": (18,)}
    assert vortex_hdf5.filter_kwargs(stride=8, max_table_bits=16)["compression_opts"] == (16, 8)
    assert 32768 <= vortex_hdf5.FILTER_ID <= 65535


# --- The same bytes as Python's codec ----------------------------------------------------------


@pytest.mark.parametrize("size,max_table_bits", [(65_536, 18), (65_536, 12), (3_000, 18)])
def test_a_chunk_is_the_cm_payload_of_the_python_kernel(tmp_path, size, max_table_bits):
    data = _signal(size // 4, 7).astype("<i4")
    _write(tmp_path / "p.h5", data=data, chunks=(len(data),), max_table_bits=max_table_bits)
    with h5py.File(tmp_path / "p.h5") as f:
        chunk = f["x"].id.read_direct_chunk((0,))[1]
    raw = data.tobytes()
    table_bits = table_bits_for(len(raw), max_table_bits)
    streams, _ = native.cm_kernel().encode(raw, 1, table_bits, 4, False)
    stream = streams[0]
    header = bytes([1, 0, table_bits]) + struct.pack("<H", 4) + b"\x01"
    length = bytearray()
    n = len(stream)
    while n >= 0x80:
        length.append(0x80 | n & 0x7F)
        n >>= 7
    length.append(n)
    assert chunk == CHUNK_HEADER.pack(b"VXC", 1, CM, len(raw), zlib.crc32(raw)) + \
        header + bytes(length) + stream
    assert python_decode(chunk) == raw


@pytest.mark.parametrize("codec,lanes", [(CM, 1), (CM, 3), (STORED, 1)])
def test_chunks_written_in_python_decode_through_the_filter(tmp_path, codec, lanes):
    data = int32_channels()
    _write(tmp_path / "d.h5", data=np.zeros_like(data), chunks=(4_096, 3))
    with h5py.File(tmp_path / "d.h5", "r+") as f:
        for start in range(0, len(data), 4_096):
            block = np.zeros((4_096, 3), "<i4")
            part = data[start:start + 4_096]
            block[:len(part)] = part
            f["x"].id.write_direct_chunk((start, 0), python_chunk(block.tobytes(), codec, lanes))
    with h5py.File(tmp_path / "d.h5") as f:
        assert np.array_equal(f["x"][...], data)


def test_plugin_chunks_decode_with_the_chunk_module(tmp_path):
    chunk_module = pytest.importorskip("vortexfmt.chunk")
    decode = getattr(chunk_module, "decode_chunk", None) or getattr(chunk_module, "decode", None)
    if decode is None:
        pytest.skip("vortexfmt.chunk has neither decode_chunk nor decode")
    data = uint8_image()
    _write(tmp_path / "m.h5", data=data, chunks=(64, 160))
    with h5py.File(tmp_path / "m.h5") as f:
        chunks = [f["x"].id.read_direct_chunk((row, 0))[1] for row in (0, 64, 128)]
    assert b"".join(bytes(decode(chunk)) for chunk in chunks) == data.tobytes()


# --- Damage ------------------------------------------------------------------------------------


def _cm_chunk() -> bytes:
    return python_chunk(float32_series()[:4_096].tobytes())


def _edit(chunk: bytes, offset: int, value: bytes) -> bytes:
    return chunk[:offset] + value + chunk[offset + len(value):]


def _flip(offset: int):
    return lambda chunk: _edit(chunk, offset % len(chunk), bytes([chunk[offset % len(chunk)] ^ 4]))


#: name: how the chunk is damaged (offsets: header 0..16, cm payload header from 17)
DAMAGE = {
    "stream byte": _flip(-200),
    "crc": _flip(13),
    "magic": _flip(0),
    "version 2": lambda c: _edit(c, 3, b"\x02"),
    "codec zstd": lambda c: _edit(c, 4, b"\x01"),
    "codec 99": lambda c: _edit(c, 4, b"\x63"),
    "stored codec": lambda c: _edit(c, 4, b"\x00"),
    "raw size 2^40": lambda c: _edit(c, 5, struct.pack("<Q", 1 << 40)),
    "raw size + 1": lambda c: _edit(c, 5, struct.pack("<Q", 16_385)),
    "raw size 2^64 - 1": lambda c: _edit(c, 5, b"\xff" * 8),
    "truncated header": lambda c: c[:12],
    "truncated stream": lambda c: c[:-3],
    "one byte more": lambda c: c + b"\x00",
    "cm revision 2": lambda c: _edit(c, 17, b"\x02"),
    "cm flags": lambda c: _edit(c, 18, b"\x01"),
    "table_bits 9": lambda c: _edit(c, 19, b"\x09"),
    "table_bits 23": lambda c: _edit(c, 19, b"\x17"),
    "stride 1025": lambda c: _edit(c, 20, struct.pack("<H", 1025)),
    "lanes 0": lambda c: _edit(c, 22, b"\x00"),
    "lanes 5000": lambda c: _edit(c, 22, b"\x88\x27"),
    "lanes LEB128 too long": lambda c: _edit(c, 22, b"\x81" + b"\x80" * 10),
}


def test_the_damage_cases_start_from_a_valid_chunk():
    chunk = _cm_chunk()
    assert chunk[4] == CM and chunk[22] == 1 and python_decode(chunk)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_chunk_is_an_oserror_never_data(tmp_path, damage):
    data = float32_series()[:8_192]
    _write(tmp_path / "d.h5", data=data, chunks=(4_096,))
    with h5py.File(tmp_path / "d.h5", "r+") as f:
        f["x"].id.write_direct_chunk((0,), DAMAGE[damage](_cm_chunk()))
    with h5py.File(tmp_path / "d.h5") as f:
        with pytest.raises(OSError):
            f["x"][:4_096]
        assert np.array_equal(f["x"][4_096:], data[4_096:])  # the other chunk is whole


def test_any_flipped_byte_gives_an_oserror_or_the_exact_data(tmp_path):
    data = float32_series()[:4_096]
    chunk = python_chunk(data.tobytes())
    _write(tmp_path / "b.h5", data=data, chunks=(4_096,))
    errors = 0
    with h5py.File(tmp_path / "b.h5", "r+") as f:
        for offset in [*range(0, 30), *range(30, len(chunk), 211), len(chunk) - 1]:
            f["x"].id.write_direct_chunk((0,), _flip(offset)(chunk))
            try:
                read = f["x"][...]
            except OSError:
                errors += 1
            else:
                assert np.array_equal(read, data), offset
    assert errors >= 30  # the header's bytes and the stream's, at the least


def test_a_damaged_file_fails_quietly_in_a_fresh_process(tmp_path):
    path = tmp_path / "f.h5"
    _write(path, data=float32_series(), chunks=(8_192,))
    with h5py.File(path) as f:
        info = f["x"].id.get_chunk_info(1)
    with open(path, "r+b") as file:  # a byte in the middle of the second chunk's stream
        file.seek(info.byte_offset + info.size // 2)
        byte = file.read(1)[0]
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte ^ 0x20]))
    script = f"""
        import h5py
        with h5py.File({str(path)!r}) as f:
            f["x"][:8_192]
            print("first chunk read")
            try:
                f["x"][8_192:16_384]
            except OSError as error:
                print("OSError:", error)
        """
    quiet = _run(script)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("first chunk read\nOSError:") and quiet.stderr == ""
    verbose = _run(script, VORTEX_HDF5_VERBOSE="1")
    assert verbose.stdout == quiet.stdout
    # the flipped bit turns the rest of the lane into noise, which costs more bits than the
    # stream has left: the decoder stops there, before the CRC-32 would have caught it
    assert verbose.stderr == ("vortex hdf5 filter: lane 0's stream ends before its bytes do "
                              "(more than 64 bits read past its end)\n")


def test_a_chunk_that_needs_more_than_the_memory_limit_is_refused(tmp_path):
    path = tmp_path / "l.h5"
    _write(path, data=float32_series(), chunks=(16_384,))  # 64 KiB chunks: 27 MB to decode
    script = f"""
        import h5py
        with h5py.File({str(path)!r}) as f:
            try:
                f["x"][:10]
            except OSError:
                print("refused")
            else:
                print("read")
        """
    assert _run(script).stdout == "read\n"
    refused = _run(script, VORTEX_HDF5_MEMORY_LIMIT=str(20 << 20), VORTEX_HDF5_VERBOSE="1")
    assert refused.stdout == "refused\n"
    assert "needs 2" in refused.stderr and "above the limit of 20971520" in refused.stderr


def test_the_hdf5_tools_write_with_the_plugin(tmp_path):
    """h5repack, with the libhdf5 it was built with (Debian's hdf5-tools: HDF5 1.10),
    compresses a file with the filter (set_local included) that h5py then reads."""
    if shutil.which("h5repack") is None:
        pytest.skip("h5repack is not installed (Debian: hdf5-tools)")
    data = int32_channels()
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=data, chunks=(4_096, 3))
    env = {**os.environ, "HDF5_PLUGIN_PATH": str(vortex_hdf5.PLUGIN_DIR)}
    subprocess.run(["h5repack", "-f", f"UD={vortex_hdf5.FILTER_ID},0,0",
                    str(tmp_path / "plain.h5"), str(tmp_path / "packed.h5")],
                   env=env, check=True, capture_output=True, timeout=TIMEOUT_S)
    with h5py.File(tmp_path / "packed.h5") as f:
        assert f["x"].id.get_create_plist().get_filter(0)[:3] == (
            vortex_hdf5.FILTER_ID, 0, (0, 12, 4_096 * 12))
        assert f["x"].id.read_direct_chunk((0, 0))[1][:5] == b"VXC\x01\x05"
        assert np.array_equal(f["x"][...], data)


# --- The package -------------------------------------------------------------------------------


def test_the_plugin_is_where_python_m_says():
    result = subprocess.run([sys.executable, "-m", "vortexfmt.hdf5"], text=True,
                            capture_output=True, timeout=TIMEOUT_S, check=True)
    assert result.stdout == f"{vortex_hdf5.PLUGIN_DIR}\n"
    assert vortex_hdf5.PLUGIN_FILE.parent == vortex_hdf5.PLUGIN_DIR
    assert vortex_hdf5.PLUGIN_FILE.is_file() and vortex_hdf5.PLUGIN_FILE.name.startswith("lib")


def test_importing_makes_the_filter_available_to_h5py():
    paths = [h5py.h5pl.get(i) for i in range(h5py.h5pl.size())]
    assert paths[0] == os.fsencode(vortex_hdf5.PLUGIN_DIR)
    assert h5py.h5z.filter_avail(vortex_hdf5.FILTER_ID)
    vortex_hdf5.register()  # again: the path is not added twice
    assert [h5py.h5pl.get(i) for i in range(h5py.h5pl.size())] == paths
