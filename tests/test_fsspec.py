"""Vortex through fsspec: compression="vortex" and "infer" on .vtx, on the memory and local
file systems; a random read fetches only the index and the frame it needs."""

from __future__ import annotations

import io
import os

import pytest

fsspec = pytest.importorskip("fsspec")

from fsspec.implementations.local import LocalFileSystem  # noqa: E402
from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402

import vortexfmt  # noqa: E402
import vortexfmt.fsspec  # noqa: E402, F401  (registers the compression)
from vortexfmt import spec  # noqa: E402
from vortexfmt.errors import VortexFormatError  # noqa: E402

FRAME = 64 << 10
FRAMES = 12


def _content() -> bytes:
    """FRAMES frames of lines that say where they are."""
    lines = b"".join(b"record %08d of the sample log, value %05d\n" % (i, i % 997)
                     for i in range(20_000))
    return (lines * 2)[:FRAME * FRAMES - 1000]


class CountingFile(io.RawIOBase):
    """A read-only view of a file that counts the bytes read from it."""

    def __init__(self, inner, counter: list) -> None:
        self._inner = inner
        self._counter = counter

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        buffer[:len(data)] = data
        self._counter[0] += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        self._inner.close()
        super().close()


def _counting(base):
    class Counting(base):
        """`base` whose files opened for reading count what is read from them."""

        protocol = f"counting{base.protocol if isinstance(base.protocol, str) else 'file'}"
        read_bytes = [0]

        @classmethod
        def _strip_protocol(cls, path):
            prefix = cls.protocol + "://"
            return base._strip_protocol(path[len(prefix):] if path.startswith(prefix)
                                        else path)

        def _open(self, path, mode="rb", **kwargs):
            inner = super()._open(path, mode=mode, **kwargs)
            return CountingFile(inner, self.read_bytes) if "r" in mode else inner

    return Counting


@pytest.fixture(params=["memory", "local"])
def where(request, tmp_path):
    """(file system class that counts reads, URL prefix, path of the archive)."""
    if request.param == "memory":
        cls = _counting(MemoryFileSystem)
        fsspec.register_implementation(cls.protocol, cls, clobber=True)
        yield cls, f"{cls.protocol}://", f"/vortex-test-{os.getpid()}/sample.log.vtx"
        MemoryFileSystem.store.clear()
    else:
        cls = _counting(LocalFileSystem)
        fsspec.register_implementation(cls.protocol, cls, clobber=True)
        yield cls, f"{cls.protocol}://", str(tmp_path / "sample.log.vtx")


def test_registered_with_fsspec():
    assert "vortex" in fsspec.available_compressions()
    assert fsspec.utils.infer_compression("x.bin.vtx") == "vortex"


def test_write_then_read_through_fsspec(where):
    cls, prefix, path = where
    data = _content()[:100_000]  # one frame: the default writer (auto, with cm) is slow
    with fsspec.open(prefix + path, "wb", compression="infer") as out:
        out.write(data)
    archive = cls().cat_file(path)
    assert archive.startswith(spec.FILE_MAGIC)
    assert vortexfmt.decompress(archive) == data
    with fsspec.open(prefix + path, "rb", compression="vortex") as source:
        assert source.read() == data
    with fsspec.open(prefix + path, "rt", compression="infer") as text:
        assert text.readline() == data.split(b"\n")[0].decode() + "\n"


def test_random_read_fetches_only_its_frame(where):
    cls, prefix, path = where
    data = _content()
    archive = vortexfmt.compress(data, codec="lzma", frame_size=FRAME)
    cls().pipe_file(path, archive)
    cls.read_bytes[0] = 0
    target = 7 * FRAME + 12_345
    with fsspec.open(prefix + path, "rb", compression="vortex") as source:
        source.seek(target)
        assert source.read(586) == data[target:target + 586]
        layout = source.layout
    payload = layout.frames[7].payload_size
    structure = spec.FILE_HEADER_SIZE + spec.TRAILER_SIZE + spec.index_size(FRAMES) + \
        spec.FRAME_HEADER_SIZE
    assert cls.read_bytes[0] == structure + payload
    assert cls.read_bytes[0] < len(archive) / 4


def test_damage_through_fsspec_is_vortexs_error(where):
    cls, prefix, path = where
    data = _content()
    archive = bytearray(vortexfmt.compress(data, codec="lzma", frame_size=FRAME))
    archive[spec.FILE_HEADER_SIZE + spec.FRAME_HEADER_SIZE + 100] ^= 0xFF  # frame 0
    cls().pipe_file(path, bytes(archive))
    with fsspec.open(prefix + path, "rb", compression="vortex") as source:
        source.seek(3 * FRAME)
        assert source.read(100) == data[3 * FRAME:3 * FRAME + 100]
        source.seek(0)
        with pytest.raises(VortexFormatError, match="frame 0"):
            source.read(100)


def test_append_is_refused():
    with pytest.raises(ValueError, match="not mode"):
        vortexfmt.fsspec.open_archive(io.BytesIO(), mode="a")
