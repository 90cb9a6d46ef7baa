"""Test vectors (fixtures/vectors) and named malformed archives (fixtures/bad).

Both are made by fixtures/make_vectors.py. Re-encoding a vector's content with the parameters
in MANIFEST.tsv must reproduce the archive byte for byte, so that format drift fails here.
"""

from __future__ import annotations

import csv
import io

import pytest
from conftest import FIXTURES, NonSeekable, make_vectors

import vortexfmt
from vortexfmt import VortexFormatError
from vortexfmt.container.check import check_archive

VECTORS = FIXTURES / "vectors"
BAD = FIXTURES / "bad"


def read_tsv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


MANIFEST = read_tsv(VECTORS / "MANIFEST.tsv")
EXPECTED = read_tsv(BAD / "EXPECTED.tsv")


def first_difference(a: bytes, b: bytes) -> str:
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"first difference at offset {offset}: {x:#04x} != {y:#04x}"
    return f"lengths differ: {len(a)} != {len(b)}"


def test_committed_fixtures_are_what_the_script_makes():
    assert make_vectors.differences(make_vectors.generate()) == [], \
        "run: python fixtures/make_vectors.py"


# --- Vectors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["", "cm", "numeric", "primed"],
                         ids=lambda folder: folder or "vectors")
def test_each_manifest_lists_every_vector_of_its_folder(folder):
    directory = VECTORS / folder
    names = sorted(path.stem for path in directory.glob("*.vtx"))
    assert sorted(row["name"] for row in read_tsv(directory / "MANIFEST.tsv")) == names
    assert names == sorted(path.stem for path in directory.glob("*.bin"))


@pytest.mark.parametrize("row", MANIFEST, ids=lambda row: row["name"])
def test_vector_decodes_to_its_content(row):
    blob = (VECTORS / f"{row['name']}.vtx").read_bytes()
    content = (VECTORS / f"{row['name']}.bin").read_bytes()
    assert len(content) == int(row["raw_size"])
    assert vortexfmt.decompress(blob) == content
    with vortexfmt.open(NonSeekable(blob)) as reader:
        assert reader.read() == content


@pytest.mark.parametrize("row", MANIFEST, ids=lambda row: row["name"])
def test_reencoding_a_vector_reproduces_it(row):
    blob = (VECTORS / f"{row['name']}.vtx").read_bytes()
    content = (VECTORS / f"{row['name']}.bin").read_bytes()
    again = vortexfmt.compress(content, codec=row["codec"], frame_size=int(row["frame_size"]))
    assert again == blob, first_difference(again, blob)


@pytest.mark.parametrize("row", MANIFEST, ids=lambda row: row["name"])
def test_vortex_verifies_a_vector(cli, row):
    assert cli("verify", VECTORS / f"{row['name']}.vtx").exit_code == 0


def test_vectors_cover_the_codecs():
    codecs = set()
    for row in MANIFEST:
        blob = (VECTORS / f"{row['name']}.vtx").read_bytes()
        with vortexfmt.open(io.BytesIO(blob)) as reader:
            codecs |= {blob[entry.frame_offset + 4] for entry in reader.layout.frames}
    assert codecs == {0, 1, 3, 5}  # stored, zstd, lzma, cm (the model codecs: tests/golden)


# --- Malformed archives ------------------------------------------------------------------------


def test_expected_lists_every_bad_archive():
    assert sorted(row["file"] for row in EXPECTED) == \
        sorted(path.name for path in BAD.glob("*.vtx"))


@pytest.mark.parametrize("row", EXPECTED, ids=lambda row: row["file"])
def test_bad_archive_is_rejected_naming_what_is_wrong(row):
    blob = (BAD / row["file"]).read_bytes()
    assert len(blob) < 2048
    with pytest.raises(VortexFormatError) as caught:
        vortexfmt.decompress(blob)
    assert row["expected"] in str(caught.value)


@pytest.mark.parametrize("row", EXPECTED, ids=lambda row: row["file"])
def test_bad_archive_is_rejected_from_a_stream(row):
    blob = (BAD / row["file"]).read_bytes()
    with pytest.raises(VortexFormatError):
        with vortexfmt.open(NonSeekable(blob)) as reader:
            reader.read()


@pytest.mark.parametrize("row", EXPECTED, ids=lambda row: row["file"])
def test_vortex_verify_fails_on_a_bad_archive(cli, row):
    result = cli("verify", BAD / row["file"])
    assert result.exit_code == 1
    assert row["expected"] in result.stderr


@pytest.mark.parametrize("row", EXPECTED, ids=lambda row: row["file"])
def test_salvage_of_a_bad_archive_reports_damage(row):
    blob = (BAD / row["file"]).read_bytes()
    try:
        report = check_archive(io.BytesIO(blob), io.BytesIO(), salvage=True)
    except VortexFormatError:
        return
    assert not report.ok


# --- CM vectors (fixtures/vectors/cm) ----------------------------------------------------------

CM_VECTORS = VECTORS / "cm"
CM_MANIFEST = read_tsv(CM_VECTORS / "MANIFEST.tsv")


@pytest.mark.parametrize("row", CM_MANIFEST, ids=lambda row: row["name"])
def test_reencoding_a_cm_vector_reproduces_it(row):
    """The cm payload is a function of the raw bytes and the parameters MANIFEST.tsv gives."""
    blob = (CM_VECTORS / f"{row['name']}.vtx").read_bytes()
    content = (CM_VECTORS / f"{row['name']}.bin").read_bytes()
    assert len(content) == int(row["raw_size"])
    again = make_vectors.cm_archive(content, int(row["frame_size"]), int(row["lanes"]),
                                    int(row["table_bits"]), int(row["stride"]))
    assert again == blob, first_difference(again, blob)


def test_cm_vectors_cover_the_parameters():
    """Several lanes (and empty ones), records, the smallest and the largest tables."""
    from vortexfmt.spec.cm import max_table_bits
    rows = [{key: int(value) for key, value in row.items()
             if key not in ("name", "description")} for row in CM_MANIFEST]
    assert {1, 2, 40} <= {row["lanes"] for row in rows}
    def has_empty_lane(row):  # its first frame's last lane starts at the frame's end
        n = min(row["frame_size"], row["raw_size"])
        return -(-n // row["lanes"]) * (row["lanes"] - 1) >= n
    assert any(has_empty_lane(row) for row in rows)
    assert {0, 24, 37} <= {row["stride"] for row in rows}
    assert any(row["table_bits"] == 10 and row["raw_size"] > 2048 for row in rows)
    assert any(row["table_bits"] == max_table_bits(min(row["frame_size"], row["raw_size"]))
               and row["table_bits"] >= 13 for row in rows)


# --- Numeric vectors (fixtures/vectors/numeric, format 1.3) ------------------------------------

NUMERIC_VECTORS = VECTORS / "numeric"
NUMERIC_MANIFEST = read_tsv(NUMERIC_VECTORS / "MANIFEST.tsv")
PRIMED_VECTORS = VECTORS / "primed"
PRIMED_MANIFEST = read_tsv(PRIMED_VECTORS / "MANIFEST.tsv")


def cm_headers(blob: bytes):
    """(archive's version_minor, model_id, [(parsed cm payload header, raw size)])."""
    from vortexfmt.codecs.cm import parse_header
    with vortexfmt.open(io.BytesIO(blob)) as reader:
        frames = reader.layout.frames
    headers = []
    for entry in frames:
        assert blob[entry.frame_offset + 4] == 5  # a cm frame
        start = entry.frame_offset + 32
        payload = blob[start:start + entry.payload_size]
        headers.append((parse_header(payload, entry.raw_size)[0], entry.raw_size))
    return blob[9], blob[16:48], headers


def test_every_primed_vector_has_its_profile():
    assert sorted(path.stem for path in PRIMED_VECTORS.glob("*.vxprofile")) == \
        sorted(row["name"] for row in PRIMED_MANIFEST)


@pytest.mark.parametrize("row", NUMERIC_MANIFEST, ids=lambda row: row["name"])
def test_numeric_vector_decodes_and_every_frame_is_transformed(row):
    blob = (NUMERIC_VECTORS / f"{row['name']}.vtx").read_bytes()
    content = (NUMERIC_VECTORS / f"{row['name']}.bin").read_bytes()
    assert len(content) == int(row["raw_size"])
    assert vortexfmt.decompress(blob) == content
    minor, model_id, headers = cm_headers(blob)
    assert minor == 3 and model_id == bytes(32)
    for header, _ in headers:
        assert header.flags == 0x01
        assert header.transform.describe() == row["transform"]


def test_numeric_vectors_cover_the_descriptor():
    """Both orders, every width, both byte orders, delta orders 0-2, zigzag on and off,
    records with a tail, and a frame shorter than one record."""
    fields, orders, tails, short = set(), set(), 0, 0
    for row in NUMERIC_MANIFEST:
        blob = (NUMERIC_VECTORS / f"{row['name']}.vtx").read_bytes()
        for header, raw_size in cm_headers(blob)[2]:
            transform = header.transform
            orders.add(transform.order)
            fields |= set(transform.fields)
            records, tail = divmod(raw_size, transform.record_size)
            tails += records > 0 and tail > 0
            short += records == 0
    assert orders == {0, 1}
    assert {field.width for field in fields} == {1, 2, 4, 8}
    assert {field.big_endian for field in fields} == {False, True}
    assert {field.delta for field in fields} == {0, 1, 2}
    assert {field.zigzag for field in fields} == {False, True}
    assert {(field.delta, field.zigzag) for field in fields} >= {(1, True), (2, True),
                                                                  (2, False), (0, False)}
    assert tails >= 2 and short >= 1


@pytest.mark.parametrize("row", NUMERIC_MANIFEST, ids=lambda row: row["name"])
def test_vortex_verifies_a_numeric_vector(cli, row):
    assert cli("verify", NUMERIC_VECTORS / f"{row['name']}.vtx").exit_code == 0


# --- Primed vectors (fixtures/vectors/primed, format 1.3) --------------------------------------

@pytest.mark.parametrize("row", PRIMED_MANIFEST, ids=lambda row: row["name"])
def test_primed_vector_decodes_with_its_profile_only(row):
    from vortexfmt.profiles.files import load_profile
    blob = (PRIMED_VECTORS / f"{row['name']}.vtx").read_bytes()
    content = (PRIMED_VECTORS / f"{row['name']}.bin").read_bytes()
    profile_path = PRIMED_VECTORS / f"{row['name']}.vxprofile"
    profile = load_profile(profile_path)
    assert len(profile.prime) == int(row["prime_size"])
    minor, model_id, headers = cm_headers(blob)
    assert minor == 3 and model_id == profile.profile_id
    assert all(header.flags == 0x02 and header.lanes == 1 for header, _ in headers)
    assert vortexfmt.decompress(blob, model=str(profile_path)) == content
    other = next(path for path in PRIMED_VECTORS.glob("*.vxprofile") if path != profile_path)
    with pytest.raises(VortexFormatError):
        vortexfmt.decompress(blob, model=str(other))


@pytest.mark.parametrize("row", PRIMED_MANIFEST, ids=lambda row: row["name"])
def test_reencoding_a_primed_vector_with_the_writer_reproduces_it(row):
    """`vortex pack --model PROFILE` writes these very bytes: the profile's table size and
    stride, one lane, every frame primed."""
    content = (PRIMED_VECTORS / f"{row['name']}.bin").read_bytes()
    again = vortexfmt.compress(content, codec="cm", frame_size=int(row["frame_size"]),
                               model=str(PRIMED_VECTORS / f"{row['name']}.vxprofile"))
    blob = (PRIMED_VECTORS / f"{row['name']}.vtx").read_bytes()
    assert again == blob, first_difference(again, blob)
