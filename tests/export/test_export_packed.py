"""The packed file: accounted size, exact round trip, rebuilt model equals the fake-quant model."""

from __future__ import annotations

import json

import pytest
import torch
from export_nets import NO_FOLD, SPECS, Conv1dNet, SmallNet, build
from safetensors import safe_open

from lowbit import QuantizerConfig, QuantSpec, account, calibrate, fold_batchnorm, prepare
from lowbit.errors import ConfigError, FormatError
from lowbit.export import FakeQuantExecutor, exportable, load_packed, save_packed
from lowbit.export.packed import from_packed_bytes, to_packed_bytes
from lowbit.models import create_model

CASES = [(name, fold) for name in SPECS for fold in (False, True) if not (fold and name in NO_FOLD)]


@pytest.mark.parametrize("name,fold", CASES)
def test_size_round_trip_and_exact_reconstruction(tmp_path, name, fold):
    model, x = build(name)
    info = save_packed(model, tmp_path / "m.lowbit", fold_bn=fold, example_input=x[:1])
    size = (tmp_path / "m.lowbit").stat().st_size
    assert info.file_bytes == size
    assert size - info.header_bytes == account(model, x[:1], fold_bn=fold).size_bytes_packed
    live = exportable(model, fold_bn=fold, example_input=x[:1])
    loaded = load_packed(tmp_path / "m.lowbit")
    for layer_name, layer in live.quantized.layers.items():
        got = loaded.quantized.layers[layer_name]
        for attr in ("weight_codes", "bias_codes", "weight_float", "bias"):
            a, b = getattr(layer, attr), getattr(got, attr)
            assert (a is None) == (b is None) and (a is None or torch.equal(a.to(b.dtype), b)), attr
        if layer.weight_qparams is not None:
            assert torch.equal(layer.dequantized_weight(), got.dequantized_weight())
    with torch.no_grad():
        ref, rebuilt = model(x), FakeQuantExecutor(loaded, model=model)(x)
    if fold:  # BN folded into scales: other float rounding, same codes
        torch.testing.assert_close(rebuilt, ref, atol=1e-4, rtol=1e-4)
    else:  # the same float operations: bit for bit
        assert torch.equal(rebuilt, ref)


def test_registry_model_rebuilds_from_the_file_alone(tmp_path):
    model = prepare(create_model("resnet8", num_classes=7),
                    QuantSpec(weight=QuantizerConfig(bits=3, granularity="channel"),
                              act=QuantizerConfig(bits=5), residual=True))
    x = torch.randn(4, 3, 32, 32)
    calibrate(model, [x])
    save_packed(model.eval(), tmp_path / "r8.lowbit", data={"dataset": "cifar10"})
    ex = load_packed(tmp_path / "r8.lowbit")
    assert ex.model is None and ex.model_ref["arch"]["num_classes"] == 7 and ex.data["dataset"] == "cifar10"
    with torch.no_grad():
        torch.testing.assert_close(FakeQuantExecutor(ex)(x), model(x), atol=1e-4, rtol=1e-4)
    with safe_open(str(tmp_path / "r8.lowbit"), "np") as f:  # an ordinary safetensors file
        manifest = json.loads(f.metadata()["lowbit.manifest"])
        assert set(f.keys()) >= {"q:conv1.weight.codes", "q:conv1.weight.scale", "q:conv1.input0.scale"}
    layer = {l["name"]: l for l in manifest["layers"]}["layer1.0.conv1"]
    assert layer["weight"]["bits"] == 3 and layer["weight"]["signed"] is True
    assert layer["weight"]["granularity"]["mode"] == "channel" and layer["folded_bn"] == "layer1.0.bn1"
    assert manifest["fold_bn"] is True and "layer1.0.bn1" in manifest["folded_bn"]


def test_bn_folded_before_training_and_mixed_bits(tmp_path):
    x = torch.randn(8, 3, 8, 8)
    folded = fold_batchnorm(SmallNet(), x[:1])
    prefolded = prepare(folded, SPECS["lsq_w4a4"])
    calibrate(prefolded, [x])
    model, _ = build("learned_range")  # per-channel mixed bits: a uint8 bit-width per channel
    for m in (prefolded, model):
        info = save_packed(m.eval(), tmp_path / "f.lowbit", example_input=x[:1])
        assert info.payload_bytes == account(m, x[:1], fold_bn=True).size_bytes_packed
        with torch.no_grad():
            torch.testing.assert_close(FakeQuantExecutor(tmp_path / "f.lowbit", model=m)(x), m(x),
                                       atol=1e-4, rtol=1e-4)
    manifest = load_packed(tmp_path / "f.lowbit")
    assert any(l.weight_qparams is not None and len(set(l.weight_qparams.bits.tolist())) > 1
               for l in manifest.quantized.layers.values())


def test_own_module_is_imported_only_when_allowed(tmp_path):
    model = prepare(Conv1dNet(), SPECS["lsq_w4a4"])
    x = torch.randn(4, 4, 16)
    calibrate(model, [x])
    save_packed(model.eval(), tmp_path / "c.lowbit", example_input=x[:1], module_kwargs={})
    ex = load_packed(tmp_path / "c.lowbit")
    assert ex.model_ref == {"source": "module", "class": "export_nets:Conv1dNet", "kwargs": {}}
    with pytest.raises(ConfigError, match="allow_import=True"):
        FakeQuantExecutor(ex)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(FakeQuantExecutor(ex, allow_import=True)(x), ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(FakeQuantExecutor(ex, model=Conv1dNet())(x), ref, atol=1e-4, rtol=1e-4)


def test_models_that_cannot_be_exported(tmp_path):
    with pytest.raises(ConfigError, match="prepare"):
        save_packed(SmallNet(), tmp_path / "a.lowbit", example_input=torch.zeros(1, 3, 8, 8))
    uncalibrated = prepare(SmallNet(), SPECS["lsq_w4a4"])
    with pytest.raises(ConfigError, match="calibrat"):
        save_packed(uncalibrated, tmp_path / "a.lowbit", example_input=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="log2"):
        save_packed(build("log2_w4")[0], tmp_path / "a.lowbit", example_input=torch.zeros(1, 3, 8, 8))
    wide, x = build("nested")  # unbounded nested codes: more than 16 bits after a tiny scale
    with torch.no_grad():
        wide.conv1.weight_quantizer.scale.fill_(1e-7)
    with pytest.raises(ConfigError, match="1..16"):
        save_packed(wide, tmp_path / "a.lowbit", example_input=x[:1])
    assert not (tmp_path / "a.lowbit").exists()


def _resign(blob: bytes, edit) -> bytes:
    """Apply ``edit`` to the manifest of a packed file and write a fresh, valid checksum."""
    ex = from_packed_bytes(blob)
    new, _ = to_packed_bytes(ex)
    from lowbit.export import packed, safetensors_io as sio

    meta, arrays = sio.from_bytes(new)
    manifest = json.loads(meta["lowbit.manifest"])
    edit(manifest, arrays)
    text = json.dumps(manifest)
    payload = b"".join(a.tobytes() for a in arrays.values())
    return sio.to_bytes(arrays, {"lowbit.manifest": text,
                                 "lowbit.sha256": packed._digest(text, arrays, payload)})


@pytest.mark.parametrize("edit,match", [
    (lambda m, a: m["model"]["arch"].update(num_classes=11), "weight shape"),
    (lambda m, a: m["model"]["arch"].update(name="resnet9000"), "cannot be built"),
    (lambda m, a: m["model"]["arch"].update(num_classes=10**9), "num_classes"),
    (lambda m, a: m["layers"][0]["weight"].update(bits=5), "bytes|shape"),
    (lambda m, a: m["layers"][0]["weight"].update(shape=[16, 3, 3, 4]), "bytes|shape"),
    (lambda m, a: m["layers"][0].update(name="nope"), "missing"),
    (lambda m, a: m["layers"][0].update(name="../etc"), "module name"),
    (lambda m, a: m["layers"][0]["attrs"].update(stride=[2, 2]), "attributes"),
    (lambda m, a: m["layers"][0].update(op="conv7d"), "op"),
    (lambda m, a: m.update(version=2), "version"),
    (lambda m, a: m.update(format="other"), "not a lowbit packed file"),
    (lambda m, a: m["layers"][-1].update(bias=None), "does not describe"),
    (lambda m, a: a.update({"q:conv1.weight.scale": a["q:conv1.weight.scale"] * float("nan")}), "NaN"),
    (lambda m, a: a.update({"q:conv1.input0.scale": -a["q:conv1.input0.scale"]}), "positive"),
])
def test_consistent_but_wrong_manifests_are_refused(tmp_path, edit, match):
    model = prepare(create_model("resnet8"), SPECS["lsq_w4a4"])
    calibrate(model, [torch.randn(2, 3, 32, 32)])
    blob = to_packed_bytes(exportable(model.eval()))[0]
    with pytest.raises(FormatError, match=match):
        ex = from_packed_bytes(_resign(blob, edit))
        FakeQuantExecutor(ex)
