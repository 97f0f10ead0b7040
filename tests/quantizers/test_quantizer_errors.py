"""Bad quantizer input: clear ConfigErrors that say what to do, and degenerate tensors that
quantize without division by zero or NaN."""

import pytest
import torch

from lowbit.errors import ConfigError, LowbitError
from lowbit.quantizers import QuantizerConfig, make_quantizer

KINDS = ["uniform", "lsq", "learned_range", "nested", "dorefa", "pow2", "log2"]


@pytest.mark.parametrize("bits", [0, 17, -1, 100])
def test_bits_out_of_range(bits):
    with pytest.raises(ConfigError, match=rf"bits must be in 1\.\.16, got {bits}"):
        QuantizerConfig(bits=bits)


@pytest.mark.parametrize("bits", [2.5, "4", None, True])
def test_bits_not_a_whole_number(bits):
    with pytest.raises(ConfigError, match=r"bits must be a whole number in 1\.\.16, got"):
        QuantizerConfig(kind="lsq", bits=bits)


def test_errors_are_value_errors_for_callers():
    with pytest.raises(ValueError):
        QuantizerConfig(bits=0)
    assert issubclass(ConfigError, LowbitError)


@pytest.mark.parametrize("kind", ["uniform", "lsq", "learned_range", "pow2", "log2", "dorefa"])
@pytest.mark.parametrize("bits", [0, 17, 2.5, "4"])
def test_set_bits_validates(kind, bits):
    w = torch.randn(4, 4)
    q = make_quantizer(QuantizerConfig(kind=kind, bits=4), "weight", w.shape)
    q.init_from_tensor(w)
    with pytest.raises(ConfigError, match=r"1\.\.16"):
        q.set_bits(bits)
    assert q.bits == 4  # unchanged


def test_bits_range_per_kind():
    with pytest.raises(ConfigError, match="at least 2 bits"):
        QuantizerConfig(kind="log2", bits=1)
    with pytest.raises(ConfigError, match=r"bits \(9\) must lie in \[bits_min, bits_max\] = \[2, 8\]"):
        QuantizerConfig(kind="learned_range", bits=9)
    with pytest.raises(ConfigError, match=r"bits_min \(6\) must be <= bits_max \(4\)"):
        QuantizerConfig(kind="learned_range", bits=4, bits_min=6, bits_max=4)
    with pytest.raises(ConfigError, match="bits_max must be in 1..16"):
        QuantizerConfig(kind="learned_range", bits=4, bits_max=20)
    QuantizerConfig(kind="nested", bits=None)  # nested: None = no clip


def test_unknown_kind_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        QuantizerConfig(kind="lsqq")
    msg = str(info.value)
    assert "unknown quantizer kind 'lsqq'" in msg and "did you mean 'lsq'" in msg
    for kind in KINDS:
        assert kind in msg


def test_unknown_estimator_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown gradient estimator 'ewg'.*valid: acos, ewgs, "
                                          "invtanh, pbgs, ste, tanh"):
        QuantizerConfig(estimator="ewg")


def test_unknown_observer_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown observer 'percentil'.*did you mean "
                                          "'percentile'.*valid: gaussian, minmax, mse, percentile"):
        QuantizerConfig(observer="percentil")


def test_unknown_field_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown quantizer field 'bit'.*did you mean 'bits'"):
        QuantizerConfig.from_dict({"kind": "lsq", "bit": 4})


def test_bad_granularity():
    with pytest.raises(ConfigError, match="granularity must be one of tensor, channel, group"):
        QuantizerConfig(granularity="pixel")
    with pytest.raises(ConfigError, match="group_size >= 1"):
        QuantizerConfig(granularity="group")


def test_thesis_granularity_names():
    assert QuantizerConfig(granularity="row").granularity == "channel"
    col = QuantizerConfig(granularity="column")
    assert (col.granularity, col.axis) == ("channel", 1)
    assert QuantizerConfig(granularity="scalar").granularity == "tensor"


def test_group_size_must_divide_fan_in():
    cfg = QuantizerConfig(kind="lsq", bits=4, granularity="group", group_size=5)
    with pytest.raises(ConfigError, match=r"group_size 5 must divide the fan-in 27 .* choose a "
                                          r"divisor of 27 or use per-channel"):
        make_quantizer(cfg, "weight", (8, 3, 3, 3))
    make_quantizer(cfg.replace(group_size=9), "weight", (8, 3, 3, 3))  # fine


@pytest.mark.parametrize("kind", ["dorefa", "log2"])
def test_group_granularity_refused_where_unsupported(kind):
    with pytest.raises(ConfigError, match="tensor or channel granularity, not group"):
        QuantizerConfig(kind=kind, bits=4, granularity="group", group_size=4)


@pytest.mark.parametrize("gran", ["channel", "group", "row", "column"])
def test_per_channel_activation_quantizers_refused(gran):
    cfg = QuantizerConfig(kind="lsq", bits=4, granularity=gran, group_size=4)
    with pytest.raises(ConfigError, match="activation quantizers are per-tensor.*granularity: tensor"):
        make_quantizer(cfg, "act")


def test_asymmetric_learned_range_refused():
    with pytest.raises(ConfigError, match="learned_range is symmetric.*set symmetric: true"):
        QuantizerConfig(kind="learned_range", bits=4, symmetric=False)


@pytest.mark.parametrize("kind", ["nested", "dorefa", "log2"])
def test_asymmetric_refused_for_symmetric_kinds(kind):
    with pytest.raises(ConfigError, match="symmetric: true"):
        QuantizerConfig(kind=kind, bits=4, symmetric=False)


@pytest.mark.parametrize("est", ["pbgs", "ewgs", "acos", "tanh", "invtanh"])
def test_floor_rounding_with_non_ste_estimator_refused(est):
    with pytest.raises(ConfigError, match="floor rounding supports only the 'ste' estimator"):
        QuantizerConfig(kind="lsq", bits=4, rounding="floor", estimator=est)


def test_bad_role_and_uncalibrated_use():
    with pytest.raises(ConfigError, match="role must be 'weight' or 'act'"):
        make_quantizer(QuantizerConfig(), "bias")
    q = make_quantizer(QuantizerConfig(kind="lsq", bits=4), "act")
    with pytest.raises(ConfigError, match="calibrate"):
        q.quantize(torch.ones(3))
    with pytest.raises(ConfigError, match="run lowbit.calibrate"):
        q.eval()(torch.ones(3))
    with pytest.raises(ConfigError, match="signedness is decided at calibration"):
        q.signed


@pytest.mark.parametrize("bad", [dict(percentile=50), dict(percentile=101), dict(gaussian_k=0),
                                 dict(kind="nested", bits=None, threshold=0),
                                 dict(kind="nested", bits=None, eps=0),
                                 dict(kind="nested", bits=None, codes="ceil"),
                                 dict(kind="nested", bits=None, rounding="floor"),
                                 dict(kind="lsq", codes="round")])
def test_bad_hyperparameters(bad):
    with pytest.raises(ConfigError):
        QuantizerConfig(**bad)


# ----- degenerate tensors -------------------------------------------------------------------------
DEGENERATE = {
    "all_zero": torch.zeros(4, 6),
    "constant": torch.full((4, 6), 0.37),
    "negative_constant": torch.full((4, 6), -2.0),
    "zero_rows": torch.cat([torch.zeros(2, 6), torch.randn(2, 6)]),
    "tiny": torch.full((4, 6), 1e-30),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(DEGENERATE))
@pytest.mark.parametrize("gran", ["tensor", "channel"])
def test_degenerate_weights_are_finite(kind, name, gran):
    w = DEGENERATE[name].clone().requires_grad_()
    q = make_quantizer(QuantizerConfig(kind=kind, bits=4, granularity=gran), "weight", w.shape)
    q.init_from_tensor(w)
    y = q(w)
    y.backward(torch.ones_like(y))
    assert torch.isfinite(y).all() and torch.isfinite(w.grad).all()
    for n, p in q.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), n
    assert torch.equal(q.dequantize(q.quantize(w)), y.detach())
    for t in q.qparams(w).__dict__.values():
        if isinstance(t, torch.Tensor):
            assert torch.isfinite(t.float()).all()


@pytest.mark.parametrize("kind", KINDS)
def test_all_zero_activation_calibration_is_finite(kind):
    x = torch.zeros(8, 5, requires_grad=True)
    q = make_quantizer(QuantizerConfig(kind=kind, bits=4), "act")
    q.init_from_tensor(x)
    y = q(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert torch.equal(y.detach(), torch.zeros(8, 5))
    # later, real data through the tiny scale: clipped, still finite
    z = torch.randn(8, 5)
    assert torch.isfinite(q(z)).all()
