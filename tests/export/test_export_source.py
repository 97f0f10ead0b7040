"""exportable: writers and executors read convert's output only, and export finds BN pairs once.

The reference of each check is the ordinary export of the same model in the same test; the
second path reaches it from convert's output alone (quantizer modules unusable afterwards, or
no model at all), so any fact an exporter still took from a quantizer module shows up as an
error or as different bytes.
"""

import pytest
import torch
from export_nets import SPECS, SmallNet, build, q, randomize_bn

from lowbit import LayerOverride, QuantSpec, calibrate, convert, iter_quantizers, prepare
from lowbit.errors import ConfigError
from lowbit.export import export_onnx, export_qonnx, exportable, source
from lowbit.export.executor import FakeQuantExecutor, IntegerExecutor
from lowbit.export.packed import to_packed_bytes
from lowbit.models import create_model
from lowbit.quantizers import Quantizer

#: floor-rounded activations (QONNX only) and nested weights (floor codes)
FLOOR_ACTS = QuantSpec(weight=q("nested", None, granularity="channel"), act=q("uniform", 4, rounding="floor"))
METHODS = ("qparams", "quantize", "dequantize", "has_zero_point", "storage", "channel_bits", "forward")
PROPERTIES = ("rounding", "bits", "signed")


def _poison(model, monkeypatch) -> None:
    """Every quantizer module of ``model`` raises when asked anything."""
    def boom(*args, **kwargs):
        raise AssertionError("an exporter read a quantizer module after convert")

    for cls in {type(qz) for _, qz in iter_quantizers(model)} | {Quantizer}:
        for name in METHODS:
            monkeypatch.setattr(cls, name, boom)
        for name in PROPERTIES:
            monkeypatch.setattr(cls, name, property(boom))


def _outputs(ex, x, onnx_fn):
    """(packed bytes, integer and fake-quant outputs, ONNX bytes or the error) of an Exportable."""
    try:
        onnx_out = onnx_fn(ex, example_input=x[:2]).SerializeToString()
    except ConfigError as exc:
        onnx_out = str(exc)
    return (to_packed_bytes(ex)[0], IntegerExecutor(ex)(x), FakeQuantExecutor(ex)(x), onnx_out)


def exportable_shape(model):
    spec = model.lowbit_spec
    return spec["in_channels"], spec["input_size"], spec["input_size"]


def _floor_model():
    torch.manual_seed(0)
    model, x = SmallNet(), torch.randn(16, 3, 8, 8)
    randomize_bn(model)
    model = prepare(model, FLOOR_ACTS)
    calibrate(model, [x])
    return model.eval(), x


@pytest.mark.parametrize("case, onnx_fn", [
    ("uniform_asym", export_onnx),   # stored zero points
    ("skip_first", export_qonnx),    # a BN after an unquantized conv, folded into its float weight
    ("dorefa_w3a3", export_qonnx),   # implied zero points
    ("floor_acts", export_onnx),     # floor rounding: QDQ refuses it, from QParams alone
])
def test_every_exporter_reads_only_converts_output(case, onnx_fn, monkeypatch):
    model, x = _floor_model() if case == "floor_acts" else build(case)
    reference = _outputs(exportable(model, example_input=x[:2]), x, onnx_fn)
    real_convert = source.convert

    def convert_then_poison(m, **kwargs):
        qm = real_convert(m, **kwargs)
        _poison(m, monkeypatch)
        return qm

    monkeypatch.setattr(source, "convert", convert_then_poison)
    got = _outputs(exportable(model, example_input=x[:2]), x, onnx_fn)
    with pytest.raises(AssertionError, match="read a quantizer module"):
        model(x)  # the poison works
    assert got[0] == reference[0]
    assert torch.equal(got[1], reference[1]) and torch.equal(got[2], reference[2])
    assert got[3] == reference[3]
    if case == "floor_acts":
        assert "floor-rounded" in got[3]


@pytest.mark.parametrize("arch, spec", [
    ("resnet20", QuantSpec(weight=q("uniform", 4, granularity="channel", symmetric=False),
                           act=q("uniform", 4, symmetric=False),
                           overrides=(LayerOverride("@first", skip=True),))),  # float conv + BN
    ("mlp", SPECS["nested"]),
])
def test_a_quantized_model_exports_like_the_model_it_came_from(arch, spec):
    """A registry model: packed bytes from convert's output alone equal the model's export."""
    torch.manual_seed(0)
    float_model = create_model(arch)
    randomize_bn(float_model)
    x = torch.zeros(1, *exportable_shape(float_model)).normal_()
    model = prepare(float_model, spec)
    calibrate(model, [x])
    model.eval()
    for fold in (True, False):
        reference = to_packed_bytes(exportable(model, fold_bn=fold))[0]
        qm = convert(model, fold_bn=fold)
        assert to_packed_bytes(exportable(qm))[0] == reference


def test_export_runs_the_model_once_to_find_bn_pairs():
    """One hooked forward pass per export: convert finds every (layer, BN) pair for all folds."""
    model, x = build("skip_first")
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    ex = exportable(model, example_input=x[:2])
    assert len(calls) == 1
    assert ex.quantized.fold_structure == [["conv1", "bn1"]] and ex.quantized.folded_bn == ["bn2"]
    assert not any(k.startswith(("bn1.", "bn2.")) for k in ex.quantized.float_state)
