"""Module-level functions: vortexfmt.open(), compress() and decompress()."""

from __future__ import annotations

import io

import pytest
from conftest import CODECS, SAMPLES, noise, text

import vortexfmt
from vortexfmt import (
    ArchiveReader,
    ArchiveWriter,
    FrameDamageError,
    ModelMismatchError,
    UnsupportedCodecError,
    VortexError,
    VortexFormatError,
)

# --- compress / decompress ---------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", SAMPLES)
def test_compress_decompress_round_trip(codec, name):
    content = SAMPLES[name]
    blob = vortexfmt.compress(content, codec=codec, frame_size=256)
    assert vortexfmt.decompress(blob) == content


@pytest.mark.parametrize("frame_size", [1, 64, 4096, vortexfmt.DEFAULT_FRAME_SIZE])
def test_frame_sizes(frame_size):
    content = text(3000)
    assert vortexfmt.decompress(vortexfmt.compress(content, frame_size=frame_size)) == content


def test_compress_defaults():
    blob = vortexfmt.compress(text(100))
    with ArchiveReader(io.BytesIO(blob)) as reader:
        assert reader.header.frame_size == vortexfmt.DEFAULT_FRAME_SIZE == 4 << 20


def test_compress_compresses_repetitive_input():
    content = b"vortex " * 10_000
    assert len(vortexfmt.compress(content, frame_size=4096)) < len(content) // 10


def test_decompress_takes_bytes_like_objects():
    blob = vortexfmt.compress(b"hello")
    assert vortexfmt.decompress(bytearray(blob)) == b"hello"
    assert vortexfmt.decompress(memoryview(blob)) == b"hello"


@pytest.mark.parametrize("garbage", [b"", b"hello", noise(500)])
def test_decompress_rejects_what_is_not_an_archive(garbage):
    with pytest.raises(VortexFormatError):
        vortexfmt.decompress(garbage)


def test_compress_rejects_bad_arguments():
    with pytest.raises(ValueError, match="frame size"):
        vortexfmt.compress(b"x", frame_size=0)
    with pytest.raises(ValueError, match="unknown codec"):
        vortexfmt.compress(b"x", codec="gzip")


def test_error_family():
    assert issubclass(VortexFormatError, VortexError)
    assert issubclass(VortexFormatError, ValueError)
    assert issubclass(FrameDamageError, VortexFormatError)
    assert issubclass(UnsupportedCodecError, VortexFormatError)
    assert issubclass(ModelMismatchError, VortexError)


# --- open: binary ------------------------------------------------------------------------------


def test_open_returns_reader_and_writer(tmp_path):
    path = tmp_path / "a.vtx"
    with vortexfmt.open(path, "wb", frame_size=64) as writer:
        assert isinstance(writer, ArchiveWriter)
        writer.write(text(500))
    with vortexfmt.open(path, "rb") as reader:
        assert isinstance(reader, ArchiveReader)
        assert reader.read() == text(500)
    assert vortexfmt.decompress(path.read_bytes()) == text(500)


@pytest.mark.parametrize("mode", ["r", "rb", "br"])
def test_read_modes(tmp_path, mode):
    path = tmp_path / "a.vtx"
    path.write_bytes(vortexfmt.compress(b"abc"))
    with vortexfmt.open(str(path), mode) as reader:
        assert reader.read() == b"abc"


@pytest.mark.parametrize("mode", ["w", "wb", "x", "xb"])
def test_write_modes(tmp_path, mode):
    path = tmp_path / "a.vtx"
    with vortexfmt.open(path, mode, codec="zstd") as writer:
        writer.write(b"abc")
    assert vortexfmt.decompress(path.read_bytes()) == b"abc"


def test_x_mode_refuses_an_existing_file(tmp_path):
    path = tmp_path / "a.vtx"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        vortexfmt.open(path, "xb")
    assert path.read_bytes() == b"precious"


@pytest.mark.parametrize("mode", ["", "a", "ab", "r+", "rw", "rr", "rbt", "wtb", "U"])
def test_invalid_modes(mode):
    with pytest.raises(ValueError, match="invalid mode"):
        vortexfmt.open(io.BytesIO(), mode)


@pytest.mark.parametrize("argument", [{"encoding": "utf-8"}, {"errors": "strict"},
                                      {"newline": ""}])
def test_text_arguments_in_binary_mode(argument):
    with pytest.raises(ValueError, match="text mode only"):
        vortexfmt.open(io.BytesIO(), "rb", **argument)


def test_open_file_objects_are_left_open():
    sink = io.BytesIO()
    with vortexfmt.open(sink, "wb") as writer:
        writer.write(b"abc")
    assert not sink.closed
    source = io.BytesIO(sink.getvalue())
    with vortexfmt.open(source) as reader:
        assert reader.read() == b"abc"
    assert not source.closed


def test_open_by_path_closes_the_file(tmp_path, opened_files):
    path = tmp_path / "a.vtx"
    writer = vortexfmt.open(path, "wb")
    writer.write(b"abc")
    assert not opened_files[0].closed
    writer.close()
    assert opened_files[0].closed
    assert vortexfmt.decompress(path.read_bytes()) == b"abc"
    with vortexfmt.open(path) as reader:
        reader.read()
    assert opened_files[1].closed


def test_open_with_bad_arguments_creates_no_file(tmp_path, opened_files):
    with pytest.raises(ValueError, match="unknown codec"):
        vortexfmt.open(tmp_path / "a.vtx", "wb", codec="nope")
    with pytest.raises(ValueError, match="frame size"):
        vortexfmt.open(tmp_path / "a.vtx", "wb", frame_size=0)
    assert opened_files == []
    assert not (tmp_path / "a.vtx").exists()


@pytest.mark.parametrize("arguments", [
    {"model": "missing.vxprofile"},           # a profile that is not there
    {"codec": "zstd", "layout": "<i4"},       # a layout for a codec that takes none
    {"frame_size": 4096.0},                   # not an integer
    {"threads": 2.5},
], ids=["missing-profile", "layout-without-cm", "float-frame-size", "float-threads"])
@pytest.mark.parametrize("mode", ["wb", "wt"])
def test_a_refused_write_open_leaves_an_existing_file_as_it_was(tmp_path, mode, arguments):
    path = tmp_path / "precious.vtx"
    archive = vortexfmt.compress(b"precious")
    path.write_bytes(archive)
    with pytest.raises((ValueError, TypeError, VortexError)):
        vortexfmt.open(path, mode, **arguments)
    assert path.read_bytes() == archive


@pytest.mark.parametrize("arguments", [{"encoding": "no-such-encoding"}, {"newline": "\t"}],
                         ids=["encoding", "newline"])
@pytest.mark.parametrize("mode", ["wt", "xt", "rt"])
def test_bad_text_arguments_are_refused_before_any_file_is_touched(tmp_path, opened_files,
                                                                   mode, arguments):
    path = tmp_path / ("precious.vtx" if mode != "xt" else "new.vtx")
    archive = vortexfmt.compress(b"precious")
    if mode != "xt":
        path.write_bytes(archive)
    with pytest.raises((LookupError, ValueError)):
        vortexfmt.open(path, mode, **arguments)
    assert opened_files == []
    if mode == "xt":
        assert not path.exists()
    else:
        assert path.read_bytes() == archive


def test_x_mode_removes_the_file_it_created_when_the_writer_fails(tmp_path, monkeypatch):
    def failing_header(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vortexfmt.api.ArchiveWriter, "_emit", failing_header)
    with pytest.raises(OSError, match="No space"):
        vortexfmt.open(tmp_path / "new.vtx", "xb")
    assert not (tmp_path / "new.vtx").exists()


def test_frame_size_and_threads_must_be_integers():
    with pytest.raises(TypeError, match="frame size"):
        vortexfmt.compress(b"x", frame_size=4096.0)
    with pytest.raises(TypeError, match="threads"):
        vortexfmt.compress(b"x", threads=2.0)
    with pytest.raises(TypeError, match="threads"):
        vortexfmt.decompress(vortexfmt.compress(b"x"), threads=2.0)


def test_a_reader_that_failed_to_open_closes_quietly():
    """Its finaliser calls close() on the half-built reader: nothing may be raised there."""
    reader = ArchiveReader.__new__(ArchiveReader)
    with pytest.raises(VortexFormatError):
        reader.__init__(io.BytesIO(b"not an archive at all"))
    reader.close()
    assert reader.closed


def test_text_mode_closes_the_file_it_opened(tmp_path, opened_files):
    with vortexfmt.open(tmp_path / "t.vtx", "wt", encoding="utf-8") as out:
        out.write("x")
    with vortexfmt.open(tmp_path / "t.vtx", "rt", encoding="utf-8") as source:
        assert source.read() == "x"
    assert [file.closed for file in opened_files] == [True, True]


def test_writer_and_reader_pass_codec_and_frame_size(tmp_path):
    path = tmp_path / "a.vtx"
    with vortexfmt.open(path, "wb", codec="lzma", frame_size=100) as writer:
        writer.write(text(450))
    with vortexfmt.open(path) as reader:
        assert reader.header.frame_size == 100
        assert len(reader.layout.frames) == 5
        assert reader.read() == text(450)


# --- open: text --------------------------------------------------------------------------------

TEXT = "première ligne\nzweite Zeile\n第三行\n" * 50


def test_text_round_trip(tmp_path):
    path = tmp_path / "t.vtx"
    with vortexfmt.open(path, "wt", encoding="utf-8", frame_size=64) as out:
        assert out.write(TEXT) == len(TEXT)
    with vortexfmt.open(path, "rt", encoding="utf-8") as source:
        assert source.read() == TEXT
    assert vortexfmt.decompress(path.read_bytes()) == TEXT.encode("utf-8")


def test_text_lines(tmp_path):
    path = tmp_path / "t.vtx"
    with vortexfmt.open(path, "wt", encoding="utf-8", frame_size=64) as out:
        out.write(TEXT)
    with vortexfmt.open(path, "rt", encoding="utf-8") as source:
        assert source.readline() == "première ligne\n"
        assert list(source)[:2] == ["zweite Zeile\n", "第三行\n"]


def test_text_encoding_errors_and_newline(tmp_path):
    path = tmp_path / "t.vtx"
    with vortexfmt.open(path, "wt", encoding="latin-1", newline="\r\n") as out:
        out.write("café\n")
    assert vortexfmt.decompress(path.read_bytes()) == b"caf\xe9\r\n"
    with vortexfmt.open(path, "rt", encoding="ascii", errors="replace", newline="") as source:
        assert source.read() == "caf\ufffd\r\n"
    with vortexfmt.open(path, "rt", encoding="latin-1") as source:
        assert source.read() == "café\n"


def test_text_mode_over_a_file_object():
    sink = io.BytesIO()
    with vortexfmt.open(sink, "wt", encoding="utf-8") as out:
        out.write("hello\n")
    sink.seek(0)
    with vortexfmt.open(sink, "rt", encoding="utf-8") as source:
        assert source.readlines() == ["hello\n"]


def test_every_error_a_caller_may_catch_is_exported():
    from vortexfmt import errors

    for name in ("VortexError", "VortexFormatError", "FrameDamageError", "FrameMemoryError",
                 "ModelMismatchError", "MissingExtraError", "UnsupportedCodecError",
                 "CodingCancelled"):
        assert getattr(vortexfmt, name) is getattr(errors, name)
        assert name in vortexfmt.__all__
        assert issubclass(getattr(vortexfmt, name), vortexfmt.VortexError)
