"""Packing and unpacking on a real dask.distributed LocalCluster (two worker processes of
one thread), `vortex pack/unpack --dask`, and Zarr arrays read as dask arrays."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from conftest import FIXTURES, leftovers, run_vortex  # noqa: E402

import vortexfmt  # noqa: E402
from vortexfmt import dask as vdask  # noqa: E402
from vortexfmt.errors import VortexError, VortexFormatError  # noqa: E402

SEED = FIXTURES / "seed"


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    paths = []
    for name in ("logs.bin", "telemetry.bin", "events.bin"):
        paths.append(tmp_path / name)
        shutil.copyfile(SEED / name, paths[-1])
    return paths


@pytest.mark.parametrize("options", [
    {"codec": "cm", "frame_size": 64 << 10},
    {"codec": "auto", "frame_size": 100_000},
    {"level": 4, "frame_size": 48 << 10},
])
def test_pack_by_frames_is_byte_for_byte_the_cli(client, inputs, tmp_path, options):
    source = inputs[1]  # 291,208 bytes: several frames
    target = tmp_path / "dask.vtx"
    [result] = vdask.pack_files([source], [target], client, split="frames", **options)
    args = ["pack", source, "-o", tmp_path / "local.vtx", "-q", "--frame-size",
            options["frame_size"]]
    args += ["--codec", options["codec"]] if "codec" in options else [f"-{options['level']}"]
    assert run_vortex(*args).returncode == 0
    assert target.read_bytes() == (tmp_path / "local.vtx").read_bytes()
    assert result.raw_size == source.stat().st_size
    assert result.packed_size == target.stat().st_size
    assert not leftovers(tmp_path)


def _int32_walk(count: int) -> bytes:
    """A slowly wandering little-endian int32 series, where a delta transform pays."""
    rng = np.random.default_rng(7)
    return np.cumsum(rng.integers(-40, 41, count), dtype=np.int64).astype("<i4").tobytes()


@pytest.mark.parametrize("split", ["frames", "files"])
def test_pack_with_a_layout_is_byte_for_byte_the_local_writer(client, tmp_path, split):
    source = tmp_path / "walk.i32"
    source.write_bytes(_int32_walk(50_000))  # 200,000 bytes: four frames
    target = tmp_path / "walk.vtx"
    [result] = vdask.pack_files([source], [target], client, split=split, codec="cm",
                                frame_size=64 << 10, layout="<i4")
    local = vortexfmt.compress(source.read_bytes(), codec="cm", frame_size=64 << 10,
                               layout="<i4")
    assert target.read_bytes() == local
    assert vortexfmt.decompress(local) == source.read_bytes()
    assert result.packed_size == len(local)
    plain = vortexfmt.compress(source.read_bytes(), codec="cm", frame_size=64 << 10)
    assert len(local) < len(plain)  # the frames were coded as numbers: delta pays here


def test_a_bad_layout_is_refused_before_any_task(client, tmp_path):
    with pytest.raises(ValueError, match="bad layout"):
        vdask.pack_files([FIXTURES / "seed" / "logs.bin"], [tmp_path / "x.vtx"], client,
                         codec="cm", layout="<q4")
    assert not (tmp_path / "x.vtx").exists()


def test_an_output_that_is_an_input_is_refused_before_any_task(client, inputs, tmp_path):
    original = [path.read_bytes() for path in inputs]
    link = tmp_path / "another-name"
    link.symlink_to(inputs[0])
    for outputs, message in [
        ([inputs[0], tmp_path / "b.vtx", tmp_path / "c.vtx"], "is the input file"),
        ([link, tmp_path / "b.vtx", tmp_path / "c.vtx"], "is the input file"),  # by any name
        ([tmp_path / "b.vtx", inputs[2], tmp_path / "c.vtx"], "is the input file"),  # another's
        ([tmp_path / "b.vtx", tmp_path / "b.vtx", tmp_path / "c.vtx"], "two inputs"),
    ]:
        with pytest.raises(ValueError, match=message):
            vdask.pack_files(inputs, outputs, client, codec="zstd")
        with pytest.raises(ValueError, match=message):
            vdask.unpack_files(inputs, outputs, client)
    assert [path.read_bytes() for path in inputs] == original
    assert not (tmp_path / "b.vtx").exists()


def test_whole_files_round_trip(client, inputs, tmp_path):
    results = vdask.pack_files(inputs, None, client, split="files", codec="lzma",
                               frame_size=64 << 10)
    for path, result in zip(inputs, results, strict=True):
        archive = Path(str(path) + ".vtx")
        assert result.output == str(archive)
        assert archive.read_bytes() == vortexfmt.compress(path.read_bytes(), codec="lzma",
                                                          frame_size=64 << 10)
    outputs = [tmp_path / (p.name + ".out") for p in inputs]
    vdask.unpack_files([str(p) + ".vtx" for p in inputs], outputs, client, split="files")
    for path, out in zip(inputs, outputs, strict=True):
        assert out.read_bytes() == path.read_bytes()


def test_unpack_by_frames_and_damage(client, inputs, tmp_path):
    source = inputs[2]
    archive = tmp_path / "events.vtx"
    archive.write_bytes(vortexfmt.compress(source.read_bytes(), codec="zstd",
                                           frame_size=32 << 10))
    [result] = vdask.unpack_files([archive], [tmp_path / "events.out"], client,
                                  split="frames")
    assert (tmp_path / "events.out").read_bytes() == source.read_bytes()
    assert result.raw_size == source.stat().st_size
    damaged = bytearray(archive.read_bytes())
    damaged[5000] ^= 0x01  # inside frame 0's payload
    archive.write_bytes(bytes(damaged))
    for split in ("frames", "files"):
        target = tmp_path / f"damaged-{split}.out"
        with pytest.raises(VortexFormatError, match="frame 0"):
            vdask.unpack_files([archive], [target], client, split=split)
        assert not target.exists()
    [result] = vdask.unpack_files([archive], [tmp_path / "x.out"], client, errors="return")
    assert isinstance(result.error, VortexFormatError)
    assert not leftovers(tmp_path)


def test_a_missing_input_is_its_files_error_only(client, inputs, tmp_path):
    results = vdask.pack_files([inputs[0], tmp_path / "missing.bin"], None, client,
                               split="files", errors="return", codec="zstd")
    assert results[0].error is None
    assert isinstance(results[1].error, FileNotFoundError)


def test_changed_input_is_refused():
    class Results:
        def next(self):
            return 0, b"abc", 0  # not the XXH64 of b"abc"

        def cancel(self):
            pass

    encoder = vortexfmt.codecs.auto.FrameEncoder("stored")
    frames = vdask._EncodedFrames(encoder, Results(), "f.bin")
    with pytest.raises(VortexError, match="changed while it was being packed"):
        frames.encode(b"abc")


def test_cli_pack_and_unpack_on_dask(client, inputs, tmp_path):
    address = client.scheduler.address
    result = run_vortex("pack", "--dask", address, "--codec", "cm", "--frame-size", "64K",
                        *inputs[:2])
    assert result.returncode == 0, result.stderr
    local = run_vortex("pack", "--codec", "cm", "--frame-size", "64K", "-o",
                       tmp_path / "local.vtx", inputs[0])
    assert local.returncode == 0
    assert Path(str(inputs[0]) + ".vtx").read_bytes() == (tmp_path / "local.vtx").read_bytes()
    for path in inputs[:2]:
        path.rename(str(path) + ".orig")
    result = run_vortex("unpack", "--dask", address, *[str(p) + ".vtx" for p in inputs[:2]])
    assert result.returncode == 0, result.stderr
    for path in inputs[:2]:
        assert path.read_bytes() == Path(str(path) + ".orig").read_bytes()
    # damage: one line naming the archive, status 1, no output
    archive = Path(str(inputs[0]) + ".vtx")
    damaged = bytearray(archive.read_bytes())
    damaged[200] ^= 0x10
    archive.write_bytes(bytes(damaged))
    result = run_vortex("unpack", "--dask", address, "-f", archive, "-o", tmp_path / "x")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vortex: {archive}: frame 0")
    assert not (tmp_path / "x").exists()
    assert run_vortex("pack", "--dask", address, "-").returncode == 2
    walk = tmp_path / "walk.i32"
    walk.write_bytes(_int32_walk(20_000))
    result = run_vortex("pack", "--dask", address, "--layout", "<i4", "--frame-size", "32K",
                        walk)
    assert result.returncode == 0, result.stderr
    assert Path(str(walk) + ".vtx").read_bytes() == vortexfmt.compress(
        walk.read_bytes(), frame_size=32 << 10, layout="<i4")


def test_zarr_store_as_a_dask_array(client, tmp_path):
    zarr = pytest.importorskip("zarr")
    import dask.array

    from vortexfmt.zarr import VortexCodec

    rng = np.random.default_rng(3)
    data = np.cumsum(rng.integers(-3, 4, size=(120, 300)), axis=1).astype("<i4")
    path = str(tmp_path / "counts.zarr")
    array = zarr.create_array(path, shape=data.shape, chunks=(60, 100), dtype="<i4",
                              compressors=[VortexCodec(codec="cm")])
    array[:] = data
    lazy = vdask.read_zarr(path)
    assert lazy.chunks == ((60, 60), (100, 100, 100))
    np.testing.assert_array_equal(lazy.compute(), data)  # decoded on the workers
    assert int(lazy.sum().compute()) == int(data.sum())
    np.testing.assert_array_equal(dask.array.from_zarr(path).compute(), data)
    victim = Path(path, "c", "1", "2")
    blob = bytearray(victim.read_bytes())
    blob[-5] ^= 0x08
    victim.write_bytes(bytes(blob))
    with pytest.raises(VortexFormatError, match="vortex chunk: "):
        vdask.read_zarr(path).compute()
