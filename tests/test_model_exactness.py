"""The byte model's inference is integer-exact: the same CDFs whatever the way it is run."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # the model codecs need the neural extra: skip without it

import torch

from vortexfmt import native
from vortexfmt.neural import intmath
from vortexfmt.neural.integer import IntegerByteModel, StepRunner, lookup_tables
from vortexfmt.neural.network import CONFIGS, ByteModel, ModelConfig

LENGTH = 96


def integer_model(config: ModelConfig, seed: int = 0) -> IntegerByteModel:
    torch.manual_seed(seed)
    tensors = ByteModel(config).export()
    tensors.update(lookup_tables(config))
    return IntegerByteModel(config, tensors)


def random_features(lanes: int, length: int = LENGTH, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 257, (lanes, length), generator=generator),
            torch.randint(0, 257, (lanes, length), generator=generator),
            torch.randint(0, 16, (lanes, length), generator=generator),
            torch.randint(0, 257, (lanes, length), generator=generator)]


def full_sequence(model, features):
    return model.run(model.new_state(features[0].shape[0], features[0].shape[1]), features)


def step_by_step(model, features):
    runner = StepRunner(model)
    state = runner.new_state(features[0].shape[0], features[0].shape[1])
    return torch.stack([runner.step(state, *(f[:, t] for f in features))
                        for t in range(features[0].shape[1])], dim=1)


@pytest.fixture(scope="module", params=["tiny", "small"])
def model(request):
    return integer_model(CONFIGS[request.param])


@pytest.mark.parametrize("lanes", [1, 7, 64])
def test_step_by_step_equals_full_sequence(model, lanes):
    features = random_features(lanes)
    assert torch.equal(step_by_step(model, features), full_sequence(model, features))


@pytest.mark.parametrize("block", [1, 5, 32])
def test_blocks_of_any_size_equal_full_sequence(model, block):
    features = random_features(7)
    state = model.new_state(7, LENGTH)
    blocks = [model.run(state, [f[:, t:t + block] for f in features])
              for t in range(0, LENGTH, block)]
    assert torch.equal(torch.cat(blocks, dim=1), full_sequence(model, features))


def test_lanes_in_another_order_give_the_same_cdfs(model):
    features = random_features(64)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(3))
    shuffled = full_sequence(model, [f[order] for f in features])
    assert torch.equal(shuffled, full_sequence(model, features)[order])
    assert torch.equal(step_by_step(model, [f[order] for f in features]), shuffled)


def test_one_lane_alone_equals_that_lane_in_a_batch(model):
    features = random_features(64)
    alone = full_sequence(model, [f[40:41] for f in features])
    assert torch.equal(alone, full_sequence(model, features)[40:41])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_does_not_change_cdfs(model, threads, monkeypatch):
    """torch's threads (the full sequence, the torch step) and the kernels' own
    (VORTEX_THREADS: lanes cut into one chunk a thread)."""
    features = random_features(64)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setenv("VORTEX_THREADS", "1")
        reference = full_sequence(model, features)
        torch.set_num_threads(threads)
        monkeypatch.setenv("VORTEX_THREADS", str(threads))
        assert torch.equal(full_sequence(model, features), reference)
        assert torch.equal(step_by_step(model, features), reference)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("config", [
    CONFIGS["tiny"], CONFIGS["small"],
    ModelConfig(d_model=24, n_layers=2, n_heads=4, d_ff=48, window=6, memory=3, compression=2),
], ids=["head_dim_8", "head_dim_12", "head_dim_6_compression_2"])
def test_cpu_step_kernel_computes_what_the_torch_step_computes(config, monkeypatch):
    """StepRunner's C++ kernels (int8 keys and values) against its torch code, past the
    point where the compressed memory's ring wraps around."""
    if native.step_kernel() is None:
        pytest.skip("VORTEX_NATIVE=0 in the environment: the torch step is what runs")
    model = integer_model(config, seed=5)
    features = random_features(9, length=160, seed=6)
    with_kernel = step_by_step(model, features)
    monkeypatch.setenv("VORTEX_NATIVE", "0")
    assert StepRunner(model).kernel is None
    assert torch.equal(with_kernel, step_by_step(model, features))
    assert torch.equal(with_kernel, full_sequence(model, features))


def test_the_step_kernel_refuses_arrays_of_the_wrong_dtype_or_shape(monkeypatch):
    monkeypatch.setenv("VORTEX_NATIVE", "1")
    kernel = native.step_kernel()
    lut = lookup_tables(CONFIGS["small"])["lut.output"].numpy()
    with pytest.raises(ValueError, match="logits must be a float32"):
        kernel.cdf_from_logits(torch.zeros(3, 256, dtype=torch.float64).numpy(), lut)
    with pytest.raises(ValueError, match=r"logits must be .* shape \(n, 256\)"):
        kernel.cdf_from_logits(torch.zeros(3, 255).numpy(), lut)
    logits = torch.randint(-300, 1, (5, 512)).float()[:, ::2]  # not contiguous: copied
    assert torch.equal(torch.from_numpy(kernel.cdf_from_logits(logits.numpy(), lut)),
                       intmath.cdf_from_logits(logits, torch.from_numpy(lut)))


def test_cdfs_are_valid_for_torchac(model):
    cdf = full_sequence(model, random_features(7))
    assert cdf.dtype == torch.int32 and cdf.shape[-1] == 257
    assert (cdf[..., 0] == 0).all() and (cdf[..., -1] == intmath.CDF_TOTAL).all()
    assert ((cdf[..., 1:] - cdf[..., :-1]) >= 1).all()  # every symbol codable


@pytest.mark.parametrize("spread", [0, 1, 50, 10_000, 1 << 20])
def test_cdf_from_any_logits_has_frequencies_at_least_one_and_total_two_to_sixteen(spread):
    lut = lookup_tables(CONFIGS["small"])["lut.output"]
    generator = torch.Generator().manual_seed(spread)
    logits = torch.randint(-spread - 1, spread + 1, (50, 256), generator=generator).float()
    logits[0] = 0  # all equal
    logits[1, 17] = spread + 1000  # one dominant symbol
    cdf = intmath.cdf_from_logits(logits, lut)
    freq = cdf[:, 1:] - cdf[:, :-1]
    assert (freq >= 1).all() and (cdf[:, -1] == 1 << 16).all()
    assert int(freq[1].argmax()) == 17


def test_to_torchac_wraps_values_into_int16():
    cdf = torch.tensor([[0, 1, 32767, 32768, 65535, 65536]], dtype=torch.int32)
    assert intmath.to_torchac(cdf).tolist() == [[0, 1, 32767, -32768, -1, 0]]


def test_floor_divide_is_exact_for_integers_below_two_to_twenty_four():
    generator = torch.Generator().manual_seed(0)
    numerator = torch.randint(-(1 << 24) + 1, 1 << 24, (200_000,), generator=generator)
    denominator = torch.randint(1, 1 << 15, (200_000,), generator=generator)
    got = intmath.floor_divide(numerator.float(), denominator.float())
    assert torch.equal(got.to(torch.int64), torch.div(numerator, denominator,
                                                      rounding_mode="floor"))


def test_a_model_whose_sums_could_leave_float32_exact_range_is_refused():
    config = ModelConfig(d_model=64, n_layers=1, n_heads=4, d_ff=2048)
    torch.manual_seed(0)
    tensors = ByteModel(config).export()
    tensors.update(lookup_tables(config))
    tensors["blocks.0.fc2.weight"] = torch.full_like(tensors["blocks.0.fc2.weight"], 127)
    with pytest.raises(ValueError, match="2\\^24"):
        IntegerByteModel(config, tensors)


def _tiny_tensors():
    torch.manual_seed(0)
    tensors = ByteModel(CONFIGS["tiny"]).export()
    tensors.update(lookup_tables(CONFIGS["tiny"]))
    return tensors


@pytest.mark.parametrize("table, index, value", [
    ("lut.attention", -1, 1),  # masked scores must weigh nothing
    ("lut.attention", 0, 0),  # the best score must weigh something (no 0 / 0)
    ("lut.output", 0, 0),  # the likeliest byte too
])
def test_lookup_tables_must_end_in_zero_and_start_above_zero(table, index, value):
    tensors = _tiny_tensors()
    tensors[table][index] = value
    with pytest.raises(ValueError, match="lookup tables"):
        IntegerByteModel(CONFIGS["tiny"], tensors)


def test_position_biases_must_stay_far_below_two_to_twenty_four():
    tensors = _tiny_tensors()
    tensors["blocks.0.position_bias"][0, 0] = 1 << 22
    with pytest.raises(ValueError, match="position_bias"):
        IntegerByteModel(CONFIGS["tiny"], tensors)


@pytest.mark.parametrize("compression", [0, 3, 6])
def test_memory_compression_must_be_a_power_of_two(compression):
    """A memory slot is a sum shifted by log2(compression), which is a mean only for
    powers of two; 3 slots of 127 would give 191, outside the int8 activation range."""
    with pytest.raises(ValueError, match="compression"):
        ModelConfig(compression=compression, window=8).validate()


def test_float_model_and_integer_model_agree_closely():
    """The exported model computes what training optimised (up to rounding)."""
    config = CONFIGS["tiny"]
    torch.manual_seed(0)
    network = ByteModel(config)
    tensors = network.export()
    tensors.update(lookup_tables(config))
    exact = IntegerByteModel(config, tensors)
    features = random_features(4)
    with torch.no_grad():
        float_probs = network(*features).softmax(-1)
    cdf = full_sequence(exact, features)
    int_probs = (cdf[..., 1:] - cdf[..., :-1]).float() / (1 << 16)
    assert (float_probs - int_probs).abs().mean() < 0.01
