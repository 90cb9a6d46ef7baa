"""cm numeric transforms (FORMAT.md "CM payload", "Numeric descriptor"; format 1.3).

A cm frame may be rewritten before the model codes it (records of fields, each field's
values differenced, zigzag-mapped and written most significant byte first, interleaved or
as byte planes; the tail left as it is) and the payload records how, so that the reader
undoes it exactly. The encoder chooses by measuring, the frame as it is always among the
candidates; a user may say what the records are with a layout string.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import corpus_file
from hypothesis import given, settings
from hypothesis import strategies as st
from vortexfmt.spec import CodecId
from vortexfmt.spec import cm as layout

import vortexfmt
from vortexfmt import VortexFormatError
from vortexfmt.codecs import cm, frame_need, numeric_search
from vortexfmt.codecs.cm import CmCodec, parse_header
from vortexfmt.codecs.numeric import (
    INTERLEAVED,
    PLANES,
    Field,
    Transform,
    apply,
    from_descriptor,
    invert,
    to_descriptor,
)
from vortexfmt.codecs.record_layout import LayoutError, LayoutField, parse_layout
from vortexfmt.container.structures import parse_file_header


def random_walk(values: int, channels: int = 1, dtype: str = "<i4", seed: int = 0) -> bytes:
    steps = np.random.default_rng(seed).integers(-40, 41, (values, channels))
    return np.cumsum(steps, axis=0).astype(dtype).tobytes()


def text(size: int) -> bytes:
    words = b"the frame is coded bit by bit by a model that learns as it goes; "
    return (words * (size // len(words) + 1))[:size]


# --- The transform, as FORMAT.md defines it ----------------------------------------------------

fields = st.builds(Field, width=st.sampled_from([1, 2, 4, 8]), big_endian=st.booleans(),
                   delta=st.integers(0, 2), zigzag=st.booleans())
transforms = st.builds(Transform, fields=st.lists(fields, min_size=1, max_size=6).map(tuple),
                       order=st.sampled_from([INTERLEAVED, PLANES]))


@settings(max_examples=300, deadline=None)
@given(transforms, st.binary(max_size=400))
def test_every_transform_round_trips_any_bytes_and_keeps_their_size(transform, data):
    coded = apply(data, transform)
    assert len(coded) == len(data)
    assert invert(coded, transform) == data


@settings(max_examples=100, deadline=None)
@given(transforms, st.binary(max_size=200))
def test_the_tail_after_the_last_whole_record_is_kept_as_it_is(transform, data):
    whole = len(data) - len(data) % transform.record_size
    assert apply(data, transform)[whole:] == data[whole:]


def test_delta_and_zigzag_turn_a_steady_fall_into_small_numbers_most_significant_first():
    values = np.array([5, 2, -1, -4], "<i4").tobytes()
    coded = apply(values, Transform((Field(4, delta=1, zigzag=True),)))
    # residuals 5, -3, -3, -3 -> zigzag 10, 5, 5, 5, each big-endian
    assert coded == bytes.fromhex("0000000a 00000005 00000005 00000005")


def test_second_order_delta_of_a_straight_line_is_zero_after_two_values():
    line = np.arange(100, 1100, 100, dtype=">u2").tobytes()
    coded = np.frombuffer(apply(line, Transform((Field(2, True, delta=2),))), ">u2")
    assert coded[:2].tolist() == [100, 0] and not coded[2:].any()


def test_planes_put_each_byte_position_of_the_records_together():
    data = bytes.fromhex("0102 0a0b 0304 0c0d ff")  # two records of two <u2 fields, a tail
    interleaved = apply(data, Transform((Field(2), Field(2))))
    assert interleaved == bytes.fromhex("0201 0b0a 0403 0d0c ff")
    planes = apply(data, Transform((Field(2), Field(2)), PLANES))
    assert planes == bytes.fromhex("0204 0103 0b0d 0a0c ff")


def test_channels_are_differenced_each_on_its_own():
    left = np.arange(0, 50, dtype="<i2")
    right = np.arange(1000, 950, -1, dtype="<i2")
    both = np.stack([left, right], 1).tobytes()
    coded = apply(both, Transform((Field(2, delta=1, zigzag=True),) * 2))
    residuals = np.frombuffer(coded, ">u2").reshape(-1, 2)
    assert residuals[1:].tolist() == [[2, 1]] * 49  # +1 -> 2, -1 -> 1


def test_a_frame_shorter_than_a_record_is_not_changed():
    transform = Transform((Field(8, delta=1), Field(4)))
    assert apply(b"12345678901", transform) == b"12345678901"


def test_fields_and_transforms_refuse_what_the_descriptor_cannot_say():
    with pytest.raises(ValueError, match="width"):
        Field(3)
    with pytest.raises(ValueError, match="delta"):
        Field(4, delta=3)
    with pytest.raises(ValueError, match="fields"):
        Transform(())
    with pytest.raises(ValueError, match="fields"):
        Transform((Field(1),) * 256)


# --- Layout strings ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, fields", [
    ("<i4", [("i", 4, False)]),
    (">f8", [("f", 8, True)]),
    ("u1", [("u", 1, False)]),
    ("|u1", [("u", 1, False)]),
    ("<f4:3ch", [("f", 4, False)] * 3),
    ("<f4,<i4,<f8", [("f", 4, False), ("i", 4, False), ("f", 8, False)]),
    (" 2>i2 , u1 ", [("i", 2, True), ("i", 2, True), ("u", 1, False)]),
    ("<i2,>u4:2ch", [("i", 2, False), ("u", 4, True)] * 2),
])
def test_layout_strings_are_read_like_numpy_dtypes(text, fields):
    assert parse_layout(text).fields == tuple(LayoutField(*field) for field in fields)


def test_a_record_is_as_long_as_its_fields():
    assert parse_layout("<f4,<i4,<f8").record_size == 16
    assert parse_layout("<f4:6ch").record_size == 24


@pytest.mark.parametrize("text, reason", [
    ("", "empty field"),
    ("<x4", "not a field"),
    ("<i3", "1, 2, 4, 8 bytes, not 3"),
    ("<f1", "2, 4, 8 bytes, not 1"),
    ("|i4", "say '<' or '>'"),
    ("<i4,", "empty field"),
    ("<i4:6", "not a channel count"),
    ("<i4:0ch", "0 channels"),
    ("0<i4", "0 times"),
    ("<i4:256ch", "more than 255"),
    ("200<i4,100u1", "more than 255"),
    ("i4 i4", "not a field"),
])
def test_a_bad_layout_string_is_refused_saying_why(text, reason):
    with pytest.raises(LayoutError, match=reason) as error:
        parse_layout(text)
    assert "\n" not in str(error.value) and str(error.value).startswith("bad layout")
    assert isinstance(error.value, ValueError)


# --- The payload records the transform, and the reader undoes it ------------------------------

def test_a_layout_transform_is_recorded_and_decoded_exactly():
    data = random_walk(5000) + b"tail"
    codec = CmCodec(layout="<i4")
    payload = codec.encode(data)
    header, _ = parse_header(payload, len(data))
    assert header.flags == layout.NUMERIC_FLAG
    assert header.transform == Transform((Field(4, delta=1, zigzag=True),))
    assert header.stride == 4  # the record, as the record contexts see it
    assert CmCodec().decode(payload, len(data)) == data
    assert len(payload) < len(CmCodec(numeric=False).encode(data))


@pytest.mark.parametrize("transform", [
    Transform((Field(4, delta=1, zigzag=True),) * 3, PLANES),
    Transform((Field(8, True, 2, False), Field(1), Field(2, False, 0, True))),
])
def test_any_transform_the_encoder_is_given_decodes_exactly(transform):
    data = random_walk(3000, 3, "<i4") + b"xyz"
    payload = CmCodec(lanes=3).encode_with(data, transform)
    assert parse_header(payload, len(data))[0].transform == transform
    assert CmCodec().decode(payload, len(data)) == data


@settings(max_examples=25, deadline=None)
@given(transforms, st.binary(max_size=1500), st.integers(1, 4))
def test_any_transform_round_trips_through_the_codec(transform, data, lanes):
    payload = CmCodec(lanes=lanes).encode_with(data, transform)
    assert CmCodec().decode(payload, len(data)) == data


def test_text_is_not_measured_when_no_layout_estimates_clearly_smaller():
    def measure(sample, stride):
        raise AssertionError("stage 2 ran")
    assert numeric_search.choose_transform(text(100_000), None, measure, 0) is None


def test_the_search_finds_the_channels_of_a_multichannel_frame():
    data = random_walk(20_000, 4, "<i4", seed=3)  # 320 KB, records of 16 bytes
    payload = CmCodec().encode(data)
    header, _ = parse_header(payload, len(data))
    assert header.transform is not None
    assert [field.width for field in header.transform.fields] == [4] * 4
    assert all(field.delta >= 1 for field in header.transform.fields)
    assert CmCodec().decode(payload, len(data)) == data
    assert len(payload) < 0.95 * len(CmCodec(numeric=False).encode(data))
    # each step is one of 81 values: log2(81) bits a sample is the least any coder spends
    assert len(payload) < 1.02 * 80_000 * np.log2(81) / 8


def test_text_keeps_todays_coding_byte_for_byte():
    data = text(100_000)
    payload = CmCodec().encode(data)
    assert payload == CmCodec(numeric=False).encode(data)
    assert payload[1] == 0  # flags: no transform


def test_frames_below_the_search_size_are_not_searched_without_a_layout():
    data = random_walk(numeric_search.AUTO_MIN_RAW_SIZE // 4 - 1)
    assert CmCodec().encode(data) == CmCodec(numeric=False).encode(data)


def test_the_transform_chosen_never_measures_larger_than_the_identity_on_its_sample():
    data = random_walk(30_000, seed=5)
    sizes = []

    def measure(sample, stride):
        sizes.append(CmCodec()._measurer(None)(sample, stride))
        return sizes[-1]
    chosen = numeric_search.choose_transform(data, None, measure, 0)
    assert chosen is not None and len(sizes) >= 2
    assert min(sizes[1:]) < sizes[0] - sizes[0] // numeric_search.MARGIN


def test_a_layout_never_makes_a_frame_larger_where_the_sample_is_the_whole_frame():
    """The descriptor (2 + 2 bytes per field) counts against a transform: 11 records of a
    u64 and 50 float32 values, where the fields' deltas measure smaller than the bytes as
    they are, but not by the 104 bytes the descriptor of 51 fields takes."""
    rng = np.random.default_rng(7)
    stamps = (1_700_000_000_000 + 10 * np.arange(11)).astype("<u8")
    readings = (20 + rng.normal(0, 0.01, (11, 50)).cumsum(axis=0)).astype("<f4")
    records = np.zeros(11, dtype=[("t", "<u8"), ("v", "<f4", (50,))])
    records["t"], records["v"] = stamps, readings
    data = records.tobytes()
    assert len(data) <= numeric_search.SAMPLE_MIN_BYTES  # the sample is the frame
    plain = CmCodec(numeric=False).encode(data)
    for text in ("<u8,50<f4", "<u8,50<u4", "<u8,100<u2"):
        assert len(CmCodec(layout=text).encode(data)) <= len(plain), text


def test_revision_1_payloads_without_the_flag_still_decode():
    data = text(3000)
    payload = CmCodec(numeric=False).encode(data)
    assert payload[:2] == bytes([1, 0])
    assert CmCodec().decode(payload, len(data)) == data


def test_no_frame_is_transformed_that_a_reader_would_refuse_by_default():
    assert cm._fits_default_memory_limit(4 << 20, 1, cm.DEFAULT_MAX_TABLE_BITS)
    assert not cm._fits_default_memory_limit(256 << 20, 1, cm.DEFAULT_MAX_TABLE_BITS)


def test_frame_memory_counts_undoing_the_transform():
    data = random_walk(5000)
    plain = frame_need(CodecId.CM, CmCodec(numeric=False).encode(data), len(data)).memory
    transformed = frame_need(CodecId.CM, CmCodec(layout="<i4").encode(data), len(data)).memory
    assert transformed > plain


# --- A reader rejects a malformed descriptor ---------------------------------------------------

def payload_with(descriptor: bytes, flags: int = layout.NUMERIC_FLAG) -> bytes:
    # revision 1, flags, table_bits 10, stride 0, descriptor, one lane of a 0-byte stream
    return bytes([1, flags, 10, 0, 0]) + descriptor + bytes([1, 0])


@pytest.mark.parametrize("descriptor, reason", [
    (bytes([2, 1, 4, 0]), "unknown order 2"),
    (bytes([0, 0]), "no fields"),
    (bytes([0, 1, 3, 0]), "width 3"),
    (bytes([0, 2, 4, 0, 16, 0]), "field 1 has width 16"),
    (bytes([0, 1, 4, 0x10]), "unknown mode bits 0x10"),
    (bytes([0, 1, 4, 0x06]), "delta order 3"),
    (bytes([0, 3, 4, 0]), "truncated"),
    (bytes([0]), "truncated"),
])
def test_a_malformed_descriptor_is_a_format_error(descriptor, reason):
    payload = payload_with(descriptor)
    with pytest.raises(VortexFormatError, match=reason):
        CmCodec().decode(payload, 100)
    with pytest.raises(VortexFormatError, match=reason):
        frame_need(CodecId.CM, payload, 100)


def test_unknown_flag_bits_are_still_rejected():
    with pytest.raises(VortexFormatError, match="unknown flags 0x05"):
        CmCodec().decode(payload_with(bytes([0, 1, 4, 0]), flags=0x05), 100)


def test_a_payload_both_numeric_and_primed_is_rejected():
    with pytest.raises(VortexFormatError, match="both primed and numeric"):
        CmCodec().decode(payload_with(bytes([0, 1, 4, 0]), flags=0x03), 100)


def test_descriptors_build_and_parse_back():
    transform = Transform((Field(4, True, 2, True), Field(1), Field(8, False, 1, False)), PLANES)
    built = layout.NumericDescriptor.build(to_descriptor(transform))
    assert built == bytes([1, 3, 4, 0x0D, 1, 0, 8, 0x02])
    assert from_descriptor(layout.NumericDescriptor.parse(built)) == transform


def test_a_damaged_descriptor_in_an_archive_is_reported_as_damage():
    data = random_walk(5000)
    blob = bytearray(vortexfmt.compress(data, codec="cm", layout="<i4"))
    at = bytes(blob).index(bytes([1, 1, 4, 0x0A]))  # count 1, width 4, mode d1 z
    blob[at + 2] = 3  # width 3
    with pytest.raises(VortexFormatError):
        vortexfmt.decompress(bytes(blob))


# --- Writer, API and CLI -----------------------------------------------------------------------

def test_compress_takes_a_layout_and_records_format_1_3():
    data = random_walk(3000, 2, "<i2") + b"!"
    blob = vortexfmt.compress(data, layout="<i2:2ch", frame_size=4096)
    assert vortexfmt.decompress(blob) == data
    assert parse_file_header(blob[:52]).version_minor == layout.NUMERIC_MINOR_VERSION
    with vortexfmt.open(io.BytesIO(), "wb", layout="<f4,<i4,<f8") as writer:
        writer.write(b"")


def test_archives_that_cannot_hold_a_transform_stay_format_1_2():
    blob = vortexfmt.compress(text(5000), codec="cm", frame_size=4096)
    assert parse_file_header(blob[:52]).version_minor == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"layout": "<i3"}, "bad layout"),
    ({"layout": "<i4", "codec": "zstd"}, "cm codec"),
])
def test_writers_refuse_a_bad_layout_or_one_no_codec_uses(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vortexfmt.compress(b"abcd", **kwargs)
    with pytest.raises(ValueError, match=message):
        vortexfmt.open(io.BytesIO(), "wb", **kwargs)


def test_a_layout_is_for_writing_only():
    with pytest.raises(ValueError, match="writing only"):
        vortexfmt.open(io.BytesIO(), "rb", layout="<i4")


def test_vortex_pack_takes_a_layout(cli, tmp_path):
    source = tmp_path / "samples.i32"
    source.write_bytes(random_walk(2000))
    assert cli("pack", source, "--layout", "<i4", "-q").exit_code == 0
    assert vortexfmt.decompress((tmp_path / "samples.i32.vtx").read_bytes()) == \
        source.read_bytes()


def test_vortex_pack_refuses_a_bad_layout_on_one_line(cli, tmp_path):
    source = tmp_path / "samples.i32"
    source.write_bytes(b"1234")
    result = cli("pack", source, "--layout", "<q4")
    assert result.exit_code == 2
    [error] = result.output.splitlines()
    assert error.startswith("vortex: Invalid value for '--layout': bad layout '<q4': '<q4' is "
                            "not a field such as '<i4', '>f8' or '3u2' (see '")
    assert not (tmp_path / "samples.i32.vtx").exists()


# --- A real numeric file -----------------------------------------------------------------------

def test_a_numeric_corpus_file_codes_smaller_as_numbers():
    """seis_balst_lhe.i32 (int32 seismometer samples): zigzag-mapped values written most
    significant byte first code smaller than its bytes as they are."""
    data = corpus_file("seis_balst_lhe.i32").read_bytes()
    transform = Transform((Field(4, zigzag=True),))
    numeric = CmCodec().encode_with(data, transform)
    assert len(numeric) < len(CmCodec().encode_with(data, None))
    assert CmCodec().decode(numeric, len(data)) == data
