"""Calibration: observers on known data, calibrate() over a model, PTQ, and bad data."""

import math

import pytest
import torch
from torch import nn

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare, ptq
from lowbit.calibrate import calibrate_weights
from lowbit.errors import ConfigError, DataError
from lowbit.models import create_model
from lowbit.nn import act_quantizers, quantizers, weight_quantizers
from lowbit.quantizers import Observer, make_quantizer
from lowbit.quantizers.granularity import Granularity
from lowbit.quantizers.observers import MSE_RATIOS

TENSOR = Granularity("tensor")


# ----- observers on known data --------------------------------------------------------------------
def test_minmax_per_tensor_and_per_channel_over_batches():
    obs = Observer("minmax", TENSOR)
    obs.update(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    obs.update(torch.tensor([[-4.0, 0.0]]))
    lo, hi = obs.compute()
    assert lo.tolist() == [-4.0] and hi.tolist() == [3.0]
    ch = Observer("minmax", Granularity("channel", axis=1))
    ch.update(torch.tensor([[1.0, -2.0, 7.0], [0.5, 3.0, 6.0]]))
    lo, hi = ch.compute()
    assert lo.tolist() == [0.5, -2.0, 6.0] and hi.tolist() == [1.0, 3.0, 7.0]


def test_percentile_of_a_known_tensor():
    x = torch.arange(10001, dtype=torch.float32) - 5000  # -5000..5000, step 1
    obs = Observer("percentile", TENSOR, percentile=99.0)
    obs.update(x)
    lo, hi = obs.compute()
    # the 1st and 99th percentiles (linear interpolation) of -5000..5000 are -4900 and 4900
    assert lo.item() == pytest.approx(-4900.0) and hi.item() == pytest.approx(4900.0)
    torch.manual_seed(0)
    y = torch.randn(3, 5000) * torch.tensor([[1.0], [5.0], [0.1]])
    obs = Observer("percentile", Granularity("channel", axis=0), percentile=99.9)
    obs.update(y)
    lo, hi = obs.compute()
    ref = torch.quantile(y, torch.tensor([0.001, 0.999]), dim=1)
    assert torch.allclose(lo, ref[0], rtol=1e-5) and torch.allclose(hi, ref[1], rtol=1e-5)


def test_percentile_streams_over_batches():
    torch.manual_seed(1)
    data = torch.randn(40, 10_000)
    obs = Observer("percentile", TENSOR, percentile=99.0, max_samples=1 << 16)
    for row in data:
        obs.update(row)
    lo, hi = obs.compute()
    ref = torch.quantile(data.reshape(-1)[::7], torch.tensor([0.01, 0.99]))
    # a bounded random sample: close to, not exactly, the full-data quantile (2.326 sigma)
    assert lo.item() == pytest.approx(ref[0].item(), abs=0.05)
    assert hi.item() == pytest.approx(ref[1].item(), abs=0.05)


def test_gaussian_is_mean_plus_minus_k_sigma():
    z = torch.randn(100_000, generator=torch.Generator().manual_seed(2)).double()
    z = (z - z.mean()) / z.std(unbiased=False)  # exactly mean 0, std 1
    x = (1.5 + 0.5 * z).float()
    mean, std = x.double().mean().item(), x.double().std(unbiased=False).item()
    obs = Observer("gaussian", TENSOR, gaussian_k=3.0)
    for part in x.chunk(7):  # streamed
        obs.update(part)
    lo, hi = obs.compute()
    assert lo.item() == pytest.approx(mean - 3 * std, rel=1e-5)
    assert hi.item() == pytest.approx(mean + 3 * std, rel=1e-5)
    # the range never exceeds what was seen
    wide = Observer("gaussian", TENSOR, gaussian_k=50.0)
    wide.update(x)
    lo, hi = wide.compute()
    assert lo.item() == x.min().item() and hi.item() == x.max().item()


def test_mse_clips_outliers_and_picks_the_best_ratio():
    torch.manual_seed(3)
    x = torch.cat([torch.rand(10_000) * 2 - 1, torch.tensor([40.0, -40.0])])
    q = make_quantizer(QuantizerConfig(kind="uniform", bits=4, observer="mse"), "weight", x.shape)
    obs = q.observer()
    obs.update(x)
    lo, hi = obs.compute()
    assert 1.0 <= hi.item() < 40 and lo.item() == -hi.item()
    # the chosen range has the smallest error among the candidate ratios
    samples = x.reshape(1, -1)
    errs = torch.stack([q._mse_error(samples, torch.tensor([-40.0 * r]), torch.tensor([40.0 * r]))
                        for r in MSE_RATIOS]).reshape(-1)
    best = MSE_RATIOS[int(errs.argmin())]
    assert hi.item() == pytest.approx(40.0 * float(best))
    q.init_from_tensor(x)  # and the quantizer adopts it: scale = hi / 7.5 (4-bit signed)
    assert q.scale.item() == pytest.approx(hi.item() / 7.5)


def test_observer_errors():
    obs = Observer("minmax", TENSOR, name="act quantizer fc1")
    with pytest.raises(DataError, match="act quantizer fc1: nothing was observed; the calibration "
                                        "loader was empty"):
        obs.compute()
    with pytest.raises(DataError, match="NaN or Inf.*check the input data"):
        obs.update(torch.tensor([1.0, float("nan")]))
    with pytest.raises(DataError, match="NaN or Inf"):
        obs.update(torch.tensor([float("inf")]))
    with pytest.raises(DataError, match="empty tensor"):
        obs.update(torch.zeros(0))


# ----- calibrate a model ------------------------------------------------------------------------
def _spec(observer="minmax", kind="uniform", bits=8):
    return QuantSpec(weight=QuantizerConfig(kind=kind, bits=bits, granularity="channel"),
                     act=QuantizerConfig(kind=kind, bits=bits, observer=observer), residual=True)


@pytest.mark.parametrize("kind", ["uniform", "lsq", "learned_range", "pow2", "log2", "nested"])
def test_calibrate_initialises_every_quantizer(kind):
    torch.manual_seed(4)
    q = prepare(create_model("resnet8"), _spec(kind=kind, bits=4))
    assert not any(bool(a.initialized) for _, a in act_quantizers(q))
    loader = [(torch.randn(4, 3, 32, 32), torch.zeros(4)) for _ in range(3)]
    calibrate(q, loader, batches=2)
    assert all(bool(qz.initialized) for _, qz in quantizers(q))
    assert q.training  # the mode is restored
    q.eval()
    with torch.no_grad():
        assert torch.isfinite(q(torch.randn(2, 3, 32, 32))).all()


def test_calibrated_scales_come_from_the_data():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    q = prepare(model, _spec())
    batches = [torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[4.0, 0.0, -1.0]])]
    calibrate(q, batches)
    first = q[0].input_quantizer
    assert first.signed and first.scale.item() == pytest.approx(4.0 / 127.5)  # symmetric signed 8-bit
    second = q[2].input_quantizer  # after ReLU: unsigned, [0, max]
    # observers see float activations (every act quantizer passes data through while observing)
    # computed with the quantized weights
    first.disable()
    relu_out = torch.relu(q[0](torch.cat(batches)))
    assert not second.signed
    assert second.scale.item() == pytest.approx(relu_out.max().item() / 255, rel=1e-6)


def test_calibrate_only_uses_the_requested_batches():
    q = prepare(nn.Sequential(nn.Linear(1, 1)), _spec())
    data = [torch.tensor([[1.0], [-1.0]]), torch.tensor([[100.0], [-1.0]])]
    calibrate(q, data, batches=1)
    assert q[0].input_quantizer.scale.item() == pytest.approx(1 / 127.5)
    calibrate(q, iter(data))  # all batches, from an iterator
    assert q[0].input_quantizer.scale.item() == pytest.approx(100 / 127.5)


def test_observer_override_and_weight_observer():
    torch.manual_seed(5)
    x = torch.cat([torch.randn(1, 100_000), torch.full((1, 1), 80.0)], dim=1).reshape(-1, 1)
    q = prepare(nn.Sequential(nn.Linear(1, 1)), _spec())
    calibrate(q, [x], act_observer="percentile")
    assert q[0].input_quantizer.scale.item() < 10 / 127.5  # the outlier was ignored
    calibrate(q, [x])
    assert q[0].input_quantizer.scale.item() == pytest.approx(80 / 127.5)
    w = q[0].weight.detach()
    assert calibrate_weights(q, "minmax") == 1
    assert q[0].weight_quantizer.scale.item() == pytest.approx(w.abs().max().item() / 127.5)


def test_calibrate_skips_disabled_and_dorefa_act_quantizers():
    spec = QuantSpec(weight=None, act=QuantizerConfig(kind="dorefa", bits=2))
    q = prepare(nn.Sequential(nn.Linear(2, 2)), spec)
    calibrate(q, [torch.randn(3, 2)])  # nothing to observe: fine
    q = prepare(nn.Sequential(nn.Linear(2, 2)), _spec())
    q[0].input_quantizer.disable()
    calibrate(q, [torch.randn(3, 2)])
    assert not bool(q[0].input_quantizer.initialized)


def test_nan_inf_and_empty_loaders_are_data_errors():
    q = prepare(nn.Sequential(nn.Linear(2, 2)), _spec())
    with pytest.raises(DataError, match="NaN or Inf values; check the input data and its "
                                        "normalisation"):
        calibrate(q, [torch.tensor([[1.0, float("nan")]])])
    with pytest.raises(DataError, match="NaN or Inf"):
        calibrate(q, [(torch.tensor([[float("inf"), 0.0]]), None)])
    assert q[0].input_quantizer.enabled  # quantizers are switched back on after the error
    with pytest.raises(DataError, match="yielded no batches; give it at least one batch"):
        calibrate(q, [])
    with pytest.raises(DataError, match="tensors or \\(inputs, targets\\) tuples, got str"):
        calibrate(q, ["not a tensor"])
    with pytest.raises(ConfigError, match="batches must be >= 1"):
        calibrate(q, [torch.ones(1, 2)], batches=0)


def test_nan_in_the_model_output_is_caught_at_the_next_layer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].bias.fill_(float("inf"))
    q = prepare(model, _spec())
    with pytest.raises(DataError, match="act quantizer 1: calibration saw NaN or Inf"):
        calibrate(q, [torch.ones(1, 2)])


def test_ptq_is_prepare_plus_calibrate():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    data = [(torch.randn(32, 8), None) for _ in range(4)]
    spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=8, granularity="channel"),
                     act=QuantizerConfig(kind="uniform", bits=8, observer="percentile"))
    qmodel = ptq(model, spec, data, batches=4)
    assert qmodel is not model and not hasattr(model[0], "weight_quantizer")
    ref = prepare(model, spec)
    calibrate(ref, data, batches=4)
    x = torch.randn(5, 8)
    with torch.no_grad():
        assert torch.equal(qmodel.eval()(x), ref.eval()(x))
        assert torch.allclose(qmodel(x), model(x), atol=0.05)


def test_signedness_is_learned_per_quantizer():
    q = prepare(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)), _spec())
    calibrate(q, [torch.randn(16, 2)])
    assert q[0].input_quantizer.signed and not q[2].input_quantizer.signed
    assert q[0].input_quantizer.qparams().qmin.item() == -128
    assert q[2].input_quantizer.qparams().qmin.item() == 0
    assert math.isfinite(q[2].input_quantizer.scale.item())


class _Branchy(nn.Module):
    """A model whose forward never calls ``unused``."""

    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.used(x)


def test_a_layer_the_forward_never_reaches_is_named_and_left_uncalibrated():
    q = prepare(_Branchy(), QuantSpec(act=QuantizerConfig(bits=8)))
    with pytest.raises(DataError, match=r"^layer\(s\) unused never ran during calibration"):
        calibrate(q, [torch.randn(2, 4)])
    assert not bool(q.unused.input_quantizer.initialized)
