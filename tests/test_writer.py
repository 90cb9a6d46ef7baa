"""ArchiveWriter: a write-only file object that cuts its input into frames and never seeks."""

from __future__ import annotations

import array
import io

import pytest
from conftest import CODECS, HANG_GUARD_S, SAMPLES, WriteOnly, calls_to, noise, text

import vortexfmt
from vortexfmt import ArchiveWriter, spec
from vortexfmt.container import structures
from vortexfmt.container.layout import read_layout


def frames_of(blob: bytes):
    return read_layout(io.BytesIO(blob)).frames


def codecs_of(blob: bytes) -> list[int]:
    return [structures.parse_frame_header(blob[e.frame_offset:e.frame_offset + 32],
                                          e.frame_offset, 1 << 28).codec
            for e in frames_of(blob)]


# --- Frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size, expected", [
    (0, []), (1, [1]), (63, [63]), (64, [64]), (65, [64, 1]), (64 * 3, [64, 64, 64]),
    (64 * 3 + 5, [64, 64, 64, 5]),
])
def test_input_is_cut_into_frames_of_frame_size(size, expected):
    sink = io.BytesIO()
    with ArchiveWriter(sink, codec="stored", frame_size=64) as writer:
        writer.write(noise(size))
    assert [entry.raw_size for entry in frames_of(sink.getvalue())] == expected


def test_frame_size_one():
    blob = vortexfmt.compress(b"abc", codec="stored", frame_size=1)
    assert [entry.raw_size for entry in frames_of(blob)] == [1, 1, 1]
    assert vortexfmt.decompress(blob) == b"abc"


@pytest.mark.parametrize("frame_size", [0, -1, spec.MAX_FRAME_SIZE + 1])
def test_frame_size_out_of_range_is_a_value_error(frame_size):
    with pytest.raises(ValueError, match="frame size must lie in 1..268435456"):
        ArchiveWriter(io.BytesIO(), frame_size=frame_size)


def test_unknown_codec_is_a_value_error_and_writes_nothing():
    sink = io.BytesIO()
    with pytest.raises(ValueError, match="unknown codec"):
        ArchiveWriter(sink, codec="brotli")
    assert sink.getvalue() == b""


def test_header_records_the_frame_size():
    blob = vortexfmt.compress(b"x", frame_size=1024)
    header = structures.parse_file_header(blob[:spec.FILE_HEADER_SIZE])
    assert header.frame_size == 1024


@pytest.mark.parametrize("frame_size", [1024, 4096, vortexfmt.DEFAULT_FRAME_SIZE])
def test_auto_archives_need_no_model(frame_size):
    blob = vortexfmt.compress(text(5000), frame_size=frame_size)
    header = structures.parse_file_header(blob[:spec.FILE_HEADER_SIZE])
    assert header.model_id == bytes(32)  # auto tries cm, lzma, zstd and stored


@pytest.mark.parametrize("codec, codec_id", [("stored", 0), ("zstd", 1), ("lzma", 3)])
def test_every_frame_uses_the_chosen_codec(codec, codec_id):
    blob = vortexfmt.compress(text(1000), codec=codec, frame_size=256)
    assert codecs_of(blob) == [codec_id] * 4


def test_auto_picks_per_frame():
    content = noise(256) + text(256)
    blob = vortexfmt.compress(content, codec="auto", frame_size=256)
    codecs = codecs_of(blob)
    assert codecs[0] == spec.CodecId.STORED
    assert codecs[1] in (spec.CodecId.ZSTD, spec.CodecId.LZMA, spec.CodecId.CM)


def test_auto_tries_cm_only_on_frames_worth_it():
    from vortexfmt.codecs.auto import FrameEncoder
    from vortexfmt.codecs.cm import CmCodec

    assert [c.name for c in FrameEncoder("auto", frame_size=1 << 20).codecs] == \
        ["stored", "zstd", "lzma", "cm"]
    small = CmCodec.auto_min_raw_size - 1
    assert "cm" not in [c.name for c in FrameEncoder("auto", frame_size=small).codecs]
    blob = vortexfmt.compress(text(4 * small), frame_size=1 << 20)
    assert codecs_of(blob) == [spec.CodecId.CM]
    blob = vortexfmt.compress(text(small), frame_size=1 << 20)  # one short frame
    assert spec.CodecId.CM not in codecs_of(blob)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip(codec, name):
    content = SAMPLES[name]
    assert vortexfmt.decompress(vortexfmt.compress(content, codec=codec, frame_size=256)) \
        == content


# --- Streaming ---------------------------------------------------------------------------------


def test_header_is_written_at_once():
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, frame_size=64)
    assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE
    writer.close()


def test_each_frame_is_written_as_soon_as_it_is_full():
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="stored", frame_size=64)
    writer.write(noise(63))
    assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE
    writer.write(b"!")
    assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE + spec.FRAME_HEADER_SIZE + 64
    writer.write(noise(64 * 2 + 10))
    assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE + 3 * (spec.FRAME_HEADER_SIZE + 64)
    writer.close()


def test_never_seeks_or_tells_the_underlying_file():
    content = text(1000)
    sink = WriteOnly()
    with ArchiveWriter(sink, frame_size=128) as writer:
        writer.write(content)
    assert bytes(sink.data) == vortexfmt.compress(content, frame_size=128)
    assert vortexfmt.decompress(bytes(sink.data)) == content


def test_output_does_not_depend_on_how_the_input_is_cut():
    content = text(700)
    whole = vortexfmt.compress(content, frame_size=100)
    sink = io.BytesIO()
    with ArchiveWriter(sink, frame_size=100) as writer:
        for start in range(0, len(content), 13):
            writer.write(content[start:start + 13])
    assert sink.getvalue() == whole


def test_output_is_deterministic():
    content = noise(500) + text(500)
    assert vortexfmt.compress(content, frame_size=128) == vortexfmt.compress(content,
                                                                             frame_size=128)


@pytest.mark.parametrize("data", [b"abcd", bytearray(b"abcd"), memoryview(b"abcd"),
                                  array.array("B", b"abcd")], ids=type)
def test_write_takes_bytes_like_objects_and_returns_the_byte_count(data):
    sink = io.BytesIO()
    with ArchiveWriter(sink) as writer:
        assert writer.write(data) == 4
    assert vortexfmt.decompress(sink.getvalue()) == b"abcd"


def test_write_counts_bytes_of_wide_items():
    data = array.array("I", [1, 2, 3])
    sink = io.BytesIO()
    with ArchiveWriter(sink) as writer:
        assert writer.write(data) == 12
    assert vortexfmt.decompress(sink.getvalue()) == data.tobytes()


def test_write_rejects_text():
    with ArchiveWriter(io.BytesIO()) as writer, pytest.raises(TypeError):
        writer.write("text")


def test_tell_raw_size_and_packed_size():
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="stored", frame_size=64)
    writer.write(noise(100))
    assert writer.tell() == 100  # raw bytes accepted, buffered or not
    assert writer.raw_size == 64  # raw bytes in frames
    assert writer.packed_size == len(sink.getvalue()) == 52 + 32 + 64
    writer.close()
    assert writer.raw_size == 100
    assert writer.packed_size == len(sink.getvalue())


def test_flush_keeps_a_partial_frame():
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="stored", frame_size=64)
    writer.write(b"partial")
    writer.flush()
    assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE
    writer.close()
    assert vortexfmt.decompress(sink.getvalue()) == b"partial"


def test_progress_is_called_with_each_frames_raw_size():
    seen = []
    with ArchiveWriter(io.BytesIO(), frame_size=64, progress=seen.append) as writer:
        writer.write(noise(150))
    assert seen == [64, 64, 22]


def test_codec_counts():
    with ArchiveWriter(io.BytesIO(), codec="zstd", frame_size=64) as writer:
        writer.write(text(150))
    assert writer.codec_counts == {spec.CodecId.ZSTD: 3}


# --- Frames encoded on several threads ----------------------------------------------------------


@pytest.mark.parametrize("codec", ["auto", "cm", "zstd", "lzma", "stored"])
@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_write_the_archive_one_thread_writes(codec, threads):
    content = text(3000) + noise(700) + text(2500)  # 13 frames, some text, some noise
    one = vortexfmt.compress(content, codec=codec, frame_size=512)
    assert vortexfmt.compress(content, codec=codec, frame_size=512, threads=threads) == one
    assert vortexfmt.decompress(one, threads=threads) == content


@pytest.fixture
def failing_frames(monkeypatch):
    """Frames that start with b"FAIL" fail to encode (RuntimeError "encoder failed")."""
    from vortexfmt.codecs.auto import FrameEncoder

    original = FrameEncoder.encode

    def failing(self, raw):
        if raw.startswith(b"FAIL"):
            raise RuntimeError("encoder failed")
        return original(self, raw)

    monkeypatch.setattr(FrameEncoder, "encode", failing)


def test_threads_keep_tell_progress_and_counts_whole():
    seen = []
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="zstd", frame_size=64, threads=4, progress=seen.append)
    writer.write(text(300))
    assert writer.tell() == 300  # frames still being encoded count as written
    writer.close()
    assert seen == [64, 64, 64, 64, 44]  # in frame order, from the calling thread
    assert writer.codec_counts == {spec.CodecId.ZSTD: 5}
    assert writer.raw_size == 300 and writer.packed_size == len(sink.getvalue())


def test_an_encoders_error_on_a_worker_thread_reaches_the_caller(failing_frames):
    with pytest.raises(RuntimeError, match="encoder failed"):
        with ArchiveWriter(io.BytesIO(), codec="zstd", frame_size=64, threads=3) as writer:
            writer.write(text(64) + b"FAIL" + text(60) + text(500))


def _tried(monkeypatch) -> dict:
    """Which codecs' encode() runs from now on, by codec name (they still run)."""
    from vortexfmt.codecs.cm import CmCodec
    from vortexfmt.codecs.lzma import LzmaCodec
    from vortexfmt.codecs.stored import StoredCodec
    from vortexfmt.codecs.zstd import ZstdCodec

    return {codec.name: calls_to(monkeypatch, codec, "encode")
            for codec in (StoredCodec, ZstdCodec, LzmaCodec, CmCodec)}


def test_auto_leaves_lzma_and_zstd_out_where_cm_leads_by_far(monkeypatch):
    """cm at most 9/10 of zstd -3 (CM_LEAD): lzma -9e and zstd -19 are not run."""
    from vortexfmt.codecs import auto as codecs
    from vortexfmt.codecs.cm import CmCodec
    from vortexfmt.codecs.zstd import ZstdCodec

    content = text(3000)
    cm_size = len(CmCodec().encode(content))
    numerator, denominator = codecs.CM_LEAD
    assert denominator * cm_size <= numerator * len(ZstdCodec(level=3).encode(content))  # leads
    tried = _tried(monkeypatch)
    codec_id, payload = codecs.FrameEncoder("auto").encode(content)
    assert (codec_id, len(payload)) == (spec.CodecId.CM, cm_size)
    assert len(tried["cm"]) == 1 and len(tried["stored"]) == 1
    assert len(tried["lzma"]) == 0
    assert [codec.level for codec in tried["zstd"]] == [codecs.PROBE_ZSTD_LEVEL]  # the probe


@pytest.mark.parametrize("content", [noise(3000), noise(2500) + text(500)],
                         ids=["noise", "mostly-noise"])
def test_auto_tries_every_codec_where_cm_does_not_lead(content, monkeypatch):
    """Otherwise every candidate is run and the smallest kept, the earlier on a tie."""
    from vortexfmt.codecs import auto as codecs

    encoder = codecs.FrameEncoder("auto")
    sizes = {codec.codec_id: len(codec.encode(content)) for codec in encoder.codecs}
    tried = _tried(monkeypatch)
    codec_id, payload = encoder.encode(content)
    assert len(tried["lzma"]) == 1 and len(tried["cm"]) == 1
    assert len(payload) == min(sizes.values())
    order = [codec.codec_id for codec in encoder.codecs]
    assert codec_id == min(order, key=lambda c: (sizes[c], order.index(c)))


@pytest.mark.parametrize("content", [text(70_000), noise(70_000), text(40_000) + noise(40_000)],
                         ids=["text", "noise", "both"])
def test_auto_picks_the_same_payload_on_one_thread_or_two(content):
    from vortexfmt.codecs import auto as codecs

    assert codecs.FrameEncoder("auto", threads=2).encode(content) == \
        codecs.FrameEncoder("auto", threads=1).encode(content)


def test_cm_encodes_a_frame_on_two_threads_while_a_cpu_is_spare(monkeypatch):
    """With `threads` CPUs, a frame gets a second thread while fewer frames than that are
    being encoded (and it is large enough for the hand-over to pay)."""
    import threading

    from vortexfmt.codecs import auto as codecs
    from vortexfmt.codecs.cm import CmCodec

    asked, second_came = [], threading.Event()
    encode = CmCodec.encode

    def spy(self, raw, stop=None, threads=1):
        asked.append(threads)
        if len(asked) == 1:
            second_came.wait(timeout=HANG_GUARD_S)  # still encoding while the other frame starts
        else:
            second_came.set()
        return encode(self, raw, stop, threads)

    monkeypatch.setattr(CmCodec, "encode", spy)
    frame = text(70_000)
    second_came.set()  # one frame at a time first: nothing to wait for
    assert codecs.FrameEncoder("cm", threads=1).encode(frame)[0] == codecs.CodecId.CM
    assert asked == [1]
    asked.clear()
    codecs.FrameEncoder("cm", threads=2).encode(frame)
    codecs.FrameEncoder("cm", threads=2).encode(frame[:60_000])
    assert asked == [2, 1]  # the second frame is too small
    asked.clear()
    second_came.clear()
    encoder = codecs.FrameEncoder("cm", threads=2)
    payloads = []
    both = [threading.Thread(target=lambda: payloads.append(encoder.encode(frame)))
            for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()
    assert sorted(asked) == [1, 2]  # one frame has the spare CPU, the other not
    assert len(payloads) == 2 and payloads[0] == payloads[1]  # and the same payload


def test_model_codecs_encode_on_the_calling_thread(tiny_model):
    with ArchiveWriter(io.BytesIO(), codec="neural", model=tiny_model, threads=4) as writer:
        assert writer.threads == 1
    with ArchiveWriter(io.BytesIO(), codec="auto", threads=4) as writer:
        assert writer.threads == 4


def test_flush_writes_the_frames_being_encoded():
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="zstd", frame_size=64, threads=4)
    writer.write(text(64 * 3 + 10))
    writer.flush()
    assert writer.raw_size == 64 * 3  # three whole frames out, the partial one kept
    assert writer.packed_size == len(sink.getvalue())
    writer.close()
    assert vortexfmt.decompress(sink.getvalue()) == text(64 * 3 + 10)


@pytest.mark.parametrize("threads", [1, 3])
def test_after_a_frame_fails_to_encode_the_writer_refuses_to_go_on(failing_frames, threads):
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="zstd", frame_size=64, threads=threads)
    writer.write(text(64))
    with pytest.raises(RuntimeError, match="encoder failed"):
        for _ in range(10):  # with threads, a later write reports it
            writer.write(b"FAIL" + text(60))
    with pytest.raises(RuntimeError, match="encoder failed"):
        writer.write(text(64))  # and every write after it, before taking any data
    with pytest.raises(RuntimeError, match="encoder failed"):
        writer.close()
    assert writer.closed
    with pytest.raises(vortexfmt.VortexFormatError):  # no index: it cannot pass for whole
        vortexfmt.decompress(sink.getvalue())


def test_a_failed_frame_cancels_the_frames_still_being_encoded(failing_frames, monkeypatch):
    from vortexfmt.codecs.auto import FrameEncoder

    cancelled = calls_to(monkeypatch, FrameEncoder, "cancel")
    writer = ArchiveWriter(io.BytesIO(), codec="cm", frame_size=4096, threads=3)
    with pytest.raises(RuntimeError, match="encoder failed"):
        for _ in range(10):
            writer.write(b"FAIL" + text(4092))
    assert cancelled == [writer.encoder]
    with pytest.raises(RuntimeError, match="encoder failed"):
        writer.close()


@pytest.mark.parametrize("leaving, aborts", [(KeyboardInterrupt, True), (SystemExit, True),
                                             (LookupError, False)])
def test_leaving_a_with_block_by_ctrl_c_or_exit_aborts_and_otherwise_closes(leaving, aborts):
    """Aborted: no frame for the buffered data, no index, so the archive reads as cut
    short. Closed: the archive is whole, as after any other with block."""
    sink = io.BytesIO()
    with pytest.raises(leaving):
        with ArchiveWriter(sink, codec="zstd", frame_size=1 << 20) as writer:
            writer.write(text(1000))
            raise leaving
    assert writer.closed
    if aborts:
        assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE
        with pytest.raises(vortexfmt.VortexFormatError):
            vortexfmt.decompress(sink.getvalue())
    else:
        assert vortexfmt.decompress(sink.getvalue()) == text(1000)


def test_an_interrupt_inside_close_cancels_the_frames_and_writes_nothing_more():
    from vortexfmt.errors import CodingCancelled

    class InterruptedSink(io.RawIOBase):
        """Raises KeyboardInterrupt at the first write once armed, counts writes after."""
        armed, after = False, 0

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            if self.armed:
                self.after += 1
                if self.after == 1:
                    raise KeyboardInterrupt
            return len(data)

    sink = InterruptedSink()
    writer = ArchiveWriter(sink, codec="cm", frame_size=100_000, threads=3)
    writer.write(text(250_000))
    sink.armed = True
    with pytest.raises(KeyboardInterrupt):
        writer.close()
    assert writer.closed
    assert sink.after == 1  # nothing after the interrupted write
    with pytest.raises(CodingCancelled):
        writer.encoder.encode(text(100))


def test_leaving_a_text_writers_with_block_by_ctrl_c_aborts_the_archive():
    sink = io.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        with vortexfmt.open(sink, "wt", codec="zstd") as out:
            out.write("some text\n" * 100)
            raise KeyboardInterrupt
    assert len(sink.getvalue()) == spec.FILE_HEADER_SIZE


@pytest.mark.parametrize("threads", [1, 3])
def test_abort_cancels_the_frames_being_encoded_and_writes_no_index(threads):
    from vortexfmt.errors import CodingCancelled

    sink = io.BytesIO()
    writer = ArchiveWriter(sink, codec="cm", frame_size=100_000, threads=threads)
    writer.write(text(250_000))  # with threads, two frames are being encoded
    writer.abort()
    assert writer.closed
    with pytest.raises(CodingCancelled):  # what was being encoded was told to stop
        writer.encoder.encode(text(100))
    with pytest.raises(vortexfmt.VortexFormatError):
        vortexfmt.decompress(sink.getvalue())
    writer.close()  # closed already: nothing more happens
    writer.abort()


@pytest.mark.parametrize("end", ["close", "abort"])
def test_a_writer_whose_init_failed_closes_quietly(end, tmp_path):
    """As the garbage collector closes it: no error, nothing written."""
    from vortexfmt.errors import VortexError

    sink = io.BytesIO()
    writer = ArchiveWriter.__new__(ArchiveWriter)
    with pytest.raises(VortexError):
        writer.__init__(sink, codec="neural", model=str(tmp_path / "missing.safetensors"))
    getattr(writer, end)()
    assert writer.closed
    assert sink.getvalue() == b""


def test_a_writer_left_open_at_exit_still_ends_its_archive(tmp_path):
    """As with one thread, interpreter exit closes it: frames submitted then are encoded
    on the exiting thread."""
    import subprocess
    import sys

    path = tmp_path / "open.vtx"
    script = (f"import vortexfmt\nw = vortexfmt.open({str(path)!r}, 'wb', codec='zstd', "
              "frame_size=100, threads=3)\nw.write(b'x' * 1050)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=HANG_GUARD_S)
    assert vortexfmt.decompress(path.read_bytes()) == b"x" * 1050


def test_kernels_load_on_the_calling_thread(monkeypatch):
    import threading

    from vortexfmt.codecs import cm as cm_module

    threads_seen = []
    original = cm_module.CmCodec.prepare

    def recording():
        threads_seen.append(threading.current_thread())
        return original()

    monkeypatch.setattr(cm_module.CmCodec, "prepare", staticmethod(recording))
    content = text(5000)
    blob = vortexfmt.compress(content, codec="cm", frame_size=1000, threads=3)
    assert vortexfmt.decompress(blob, threads=3) == content
    assert threads_seen and set(threads_seen) == {threading.main_thread()}


@pytest.mark.parametrize("threads", [0, -2])
def test_threads_below_one_are_a_value_error(threads):
    with pytest.raises(ValueError, match="threads must be at least 1"):
        ArchiveWriter(io.BytesIO(), threads=threads)


# --- File object behaviour ---------------------------------------------------------------------


def test_is_a_write_only_file_object():
    writer = ArchiveWriter(io.BytesIO())
    assert writer.writable()
    assert not writer.readable()
    assert not writer.seekable()
    writer.close()


def test_close_writes_index_and_trailer_once():
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, frame_size=64)
    writer.write(b"data")
    writer.close()
    blob = sink.getvalue()
    assert blob.endswith(spec.TRAILER_MAGIC)
    writer.close()
    assert sink.getvalue() == blob
    assert writer.closed


def test_write_after_close_is_a_value_error():
    writer = ArchiveWriter(io.BytesIO())
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")
    with pytest.raises(ValueError, match="closed"):
        writer.tell()


def test_does_not_close_a_handed_file():
    sink = io.BytesIO()
    with ArchiveWriter(sink) as writer:
        writer.write(b"x")
    assert not sink.closed


def test_closes_the_file_when_asked():
    class Sink(io.BytesIO):
        def close(self):
            self.final = self.getvalue()
            super().close()

    sink = Sink()
    with ArchiveWriter(sink, close_fileobj=True) as writer:
        writer.write(b"x")
    assert sink.closed
    assert vortexfmt.decompress(sink.final) == b"x"


def test_flushes_the_underlying_file_on_close():
    flushed = []

    class Sink(io.BytesIO):
        def flush(self):
            flushed.append(len(self.getvalue()))
            super().flush()

    sink = Sink()
    with ArchiveWriter(sink) as writer:
        writer.write(b"x")
    assert flushed and flushed[-1] == len(sink.getvalue())
