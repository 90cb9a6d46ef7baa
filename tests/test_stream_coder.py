"""`vortexfmt._stream_coder`, the model codecs' arithmetic coder, writes torchac 0.9.3's
streams bit for bit and decodes them (and any other bytes) as torchac does.

The comparisons use the `torchac` fixture and skip where torch or torchac is missing; the
round trips and argument checks need neither."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vortexfmt import native

coder = native.stream_coder()


def normalized_cdf(rng: np.random.Generator, n: int, lp: int, extreme: bool = False):
    """(n, lp) int16 CDFs as the codecs make them: frequencies >= 1 adding up to 2^16,
    stored as uint16 (the last entry, 2^16, wraps to 0). `extreme`: every symbol but one
    has frequency 1."""
    symbols = lp - 1
    if extreme:
        freq = np.ones((n, symbols), dtype=np.int64)
        freq[np.arange(n), rng.integers(0, symbols, size=n)] += (1 << 16) - symbols
    else:
        weights = rng.integers(0, 1000, size=(n, symbols)) ** 2
        spare = (1 << 16) - symbols
        freq = 1 + weights * spare // np.maximum(weights.sum(axis=1, keepdims=True), 1)
        freq[:, 0] += (1 << 16) - freq.sum(axis=1)
    cdf = np.zeros((n, lp), dtype=np.int64)
    cdf[:, 1:] = np.cumsum(freq, axis=1)
    assert (cdf[:, -1] == 1 << 16).all()
    return cdf.astype(np.int16)  # numpy's cast wraps modulo 2^16, as intmath.to_torchac


def frequencies(cdf: np.ndarray) -> np.ndarray:
    """The (n, lp - 1) frequencies of int16 CDFs made by `normalized_cdf`."""
    values = cdf.astype(np.uint16).astype(np.int64)
    values[:, -1] = 1 << 16
    return np.diff(values, axis=1)


def reference_encode(torchac, cdf: np.ndarray, symbols: np.ndarray) -> bytes:
    import torch

    return torchac.encode_int16_normalized_cdf(torch.from_numpy(cdf.copy()),
                                               torch.from_numpy(symbols.copy()))


def reference_decode(torchac, cdf: np.ndarray, stream: bytes) -> np.ndarray:
    import torch

    return torchac.decode_int16_normalized_cdf(torch.from_numpy(cdf.copy()), stream).numpy()


def check_against_torchac(torchac, cdf: np.ndarray, symbols: np.ndarray) -> bytes:
    stream = coder.encode(cdf, symbols)
    assert stream == reference_encode(torchac, cdf, symbols)
    decoded = coder.decode(cdf, stream)
    assert decoded.dtype == np.int16 and decoded.shape == symbols.shape
    assert np.array_equal(decoded, symbols)
    return stream


@pytest.mark.parametrize("lp", [2, 3, 4, 17, 257, 1000])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_streams_equal_torchacs(torchac, lp, n):
    rng = np.random.default_rng(lp * 10_007 + n)
    cdf = normalized_cdf(rng, n, lp)
    # The probable symbols mostly, as a model codes them; a few improbable ones.
    freq = frequencies(cdf)
    likely = np.array([rng.choice(lp - 1, p=row / row.sum()) for row in freq], dtype=np.int16)
    symbols = np.where(rng.random(n) < 0.9, likely, rng.integers(0, lp - 1, size=n)).astype(
        np.int16).reshape(n)
    check_against_torchac(torchac, cdf, symbols)


@pytest.mark.parametrize("lp", [2, 3, 257])
def test_frequency_one_symbols_equal_torchacs(torchac, lp):
    """The least probable symbols, each 16 bits, many in a row: long runs of pending bits,
    first and last symbols (whose top is 2^16) included."""
    rng = np.random.default_rng(lp)
    n = 3000
    cdf = normalized_cdf(rng, n, lp, extreme=True)
    top = np.argmax(frequencies(cdf), axis=1)
    for symbols in (
        np.zeros(n, dtype=np.int16),
        np.full(n, lp - 2, dtype=np.int16),
        rng.integers(0, lp - 1, size=n).astype(np.int16),
        top.astype(np.int16),  # the one probable symbol: almost no bits
    ):
        check_against_torchac(torchac, cdf, symbols)


def test_many_symbols_equal_torchacs(torchac):
    rng = np.random.default_rng(11)
    n, lp = 300_000, 257
    cdf = normalized_cdf(rng, 64, lp)[rng.integers(0, 64, size=n)]
    symbols = rng.integers(0, lp - 1, size=n).astype(np.int16)
    stream = check_against_torchac(torchac, cdf, symbols)
    assert len(stream) > n  # about 8 bits a symbol: a long stream, not a short cut


def test_widest_rows_equal_torchacs(torchac):
    rng = np.random.default_rng(5)
    cdf = normalized_cdf(rng, 5, 1 << 16)  # 65535 symbols, each of frequency 1 or 2
    symbols = np.array([0, 1, 2, 30000, 32767], dtype=np.int16)  # int16 symbols: < 2^15
    check_against_torchac(torchac, cdf, symbols)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), lp=st.integers(2, 300), n=st.integers(0, 60), extreme=st.booleans())
def test_random_streams_equal_torchacs(torchac, data, lp, n, extreme):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cdf = normalized_cdf(rng, n, lp, extreme=extreme)
    symbols = np.array(data.draw(st.lists(st.integers(0, lp - 2), min_size=n, max_size=n)),
                       dtype=np.int16).reshape(n)
    check_against_torchac(torchac, cdf, symbols)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), lp=st.integers(2, 40), n=st.integers(0, 40))
def test_any_int16_rows_code_as_torchac_codes_them(torchac, seed, lp, n):
    """Rows that are no CDF at all (unsorted, zero-frequency symbols, a top below 2^16):
    nothing any codec makes, but the arithmetic, wrapping included, is still torchac's."""
    rng = np.random.default_rng(seed)
    cdf = rng.integers(-(1 << 15), 1 << 15, size=(n, lp)).astype(np.int16)
    symbols = rng.integers(0, lp - 1, size=n).astype(np.int16)
    assert coder.encode(cdf, symbols) == reference_encode(torchac, cdf, symbols)
    stream = rng.bytes(int(rng.integers(0, 2 * n + 6)))
    decoded = coder.decode(cdf, stream)
    assert np.array_equal(decoded, reference_decode(torchac, cdf, stream))


@pytest.mark.parametrize("damage", ["truncated", "empty", "flipped", "noise", "longer"])
def test_a_corrupt_stream_decodes_as_torchac_decodes_it(torchac, damage):
    rng = np.random.default_rng(7)
    n, lp = 2000, 257
    cdf = normalized_cdf(rng, n, lp)
    stream = coder.encode(cdf, rng.integers(0, lp - 1, size=n).astype(np.int16))
    bad = {
        "truncated": stream[:len(stream) // 3],
        "empty": b"",
        "flipped": bytes([stream[0] ^ 0x80]) + stream[1:],
        "noise": rng.bytes(len(stream)),
        "longer": stream + rng.bytes(100),
    }[damage]
    decoded = coder.decode(cdf, bad)
    assert decoded.shape == (n,) and ((decoded >= 0) & (decoded <= lp - 2)).all()
    assert np.array_equal(decoded, reference_decode(torchac, cdf, bad))


# Without torchac -------------------------------------------------------------------------------

@pytest.mark.parametrize("lp", [2, 3, 257])
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_decode_inverts_encode(lp, n):
    rng = np.random.default_rng(n + lp)
    cdf = normalized_cdf(rng, n, lp, extreme=n % 2 == 1)
    symbols = rng.integers(0, lp - 1, size=n).astype(np.int16)
    assert np.array_equal(coder.decode(cdf, coder.encode(cdf, symbols)), symbols)


def test_the_kernels_load_without_torch():
    script = ("import sys, vortexfmt._step_kernel, vortexfmt._mixing_kernel, "
              "vortexfmt._stream_coder; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_the_empty_stream_is_one_byte():
    # Nothing coded: the flush writes the bits 01, padded with zeros (as torchac).
    assert coder.encode(np.zeros((0, 257), np.int16), np.zeros(0, np.int16)) == b"\x40"


def test_decoding_garbage_never_reads_out_of_bounds():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n, lp = int(rng.integers(0, 50)), int(rng.integers(2, 20))
        cdf = rng.integers(-(1 << 15), 1 << 15, size=(n, lp)).astype(np.int16)
        decoded = coder.decode(cdf, rng.bytes(int(rng.integers(0, 20))))
        assert decoded.shape == (n,) and ((decoded >= 0) & (decoded <= lp - 2)).all()


def test_non_contiguous_arguments_are_copied_not_misread():
    rng = np.random.default_rng(9)
    wide = normalized_cdf(rng, 20, 257)
    cdf = wide[::2]  # every other row: not contiguous
    symbols = rng.integers(0, 256, size=20).astype(np.int16)[::2]
    stream = coder.encode(cdf, symbols)
    assert stream == coder.encode(cdf.copy(), symbols.copy())
    assert np.array_equal(coder.decode(cdf, stream), symbols)


@pytest.mark.parametrize("cdf, symbols, message", [
    (np.zeros((3, 257), np.int16), np.array([0, 256, 0], np.int16), "outside 0..255"),
    (np.zeros((3, 257), np.int16), np.array([0, -1, 0], np.int16), "outside 0..255"),
    (np.zeros((3, 2), np.int16), np.array([0, 1, 0], np.int16), "outside 0..0"),
    (np.zeros((3, 257), np.int16), np.zeros(4, np.int16), "symbols must be"),
    (np.zeros((3, 257), np.int16), np.zeros(3, np.int32), "symbols must be a int16"),
    (np.zeros((3, 257), np.int32), np.zeros(3, np.int16), "cdf must be a int16"),
    (np.zeros(257, np.int16), np.zeros(1, np.int16), "cdf must be"),
    (np.zeros((3, 1), np.int16), np.zeros(3, np.int16), "2 to 65536 entries"),
])
def test_bad_arguments_raise_value_error(cdf, symbols, message):
    with pytest.raises(ValueError, match=message):
        coder.encode(cdf, symbols)


def test_decode_checks_its_cdf():
    with pytest.raises(ValueError, match="2 to 65536"):
        coder.decode(np.zeros((3, 1), np.int16), b"abc")
    with pytest.raises(ValueError, match="cdf must be a int16"):
        coder.decode(np.zeros((3, 4), np.uint16), b"abc")
    with pytest.raises(TypeError):
        coder.decode(np.zeros((3, 4), np.int16), "not bytes")
