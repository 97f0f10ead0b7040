"""Untrusted files: nothing a file names is imported without permission, a small file cannot
claim its way to gigabytes of memory, damaged files are one-line errors, and every exported
file is written atomically (renamed into place, never rewritten in place)."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest
import torch

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.errors import ConfigError, FormatError
from lowbit.export import exportable
from lowbit.models import create_model

X = torch.randn(1, 3, 8, 8)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = prepare(create_model("cnn", widths=[4, 4, 8], hidden=8, input_size=8),
                    QuantSpec(weight=QuantizerConfig(bits=4, granularity="channel"),
                              act=QuantizerConfig(bits=8)))
    calibrate(model, [torch.randn(4, 3, 8, 8)])
    return exportable(model.eval())


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """A module that leaves a marker file when imported, on sys.path."""
    marker = tmp_path / "IMPORTED"
    (tmp_path / "lowbit_fuzz_canary.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop("lowbit_fuzz_canary", None)


def test_a_qonnx_node_domain_is_never_imported_without_permission(small, tmp_path, canary):
    pytest.importorskip("qonnx")
    from lowbit.export.evaluate import qonnx_predictor
    from lowbit.export.fuzz import import_file
    from lowbit.export.onnx_export import export_qonnx

    path = tmp_path / "evil.qonnx"
    path.write_bytes(import_file("import_qonnx", b"", export_qonnx(small, example_input=X).SerializeToString()))
    with pytest.raises(ConfigError, match="lowbit_fuzz_canary.*--allow-import"):
        qonnx_predictor(path)(X)
    assert not canary.exists() and "lowbit_fuzz_canary" not in sys.modules


def test_the_cli_refuses_it_too(small, tmp_path, canary, capsys):
    pytest.importorskip("qonnx")
    from lowbit.cli import main
    from lowbit.export.fuzz import import_file
    from lowbit.export.onnx_export import export_qonnx

    path = tmp_path / "evil.qonnx"
    path.write_bytes(import_file("import_qonnx", b"", export_qonnx(small, example_input=X).SerializeToString()))
    assert main(["eval", str(path), "--dataset", "cifar10", "--limit", "1"]) == 2
    assert "--allow-import" in capsys.readouterr().err and not canary.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 40, b"\x08\x07junk"])
def test_empty_or_foreign_onnx_bytes_are_format_errors(tmp_path, content):
    from lowbit.export.evaluate import evaluate_file

    path = tmp_path / "m.lowbit"
    path.write_bytes(content)
    with pytest.raises(FormatError):
        evaluate_file(path, dataset="mnist", limit=1)


@pytest.fixture(scope="module")
def bomb_base():
    from lowbit.export.fuzz import one_bit_mlp

    return one_bit_mlp(4000)  # 3.1M 1-bit codes in 0.4 MB


def _peak(fn):
    """Peak traced memory (numpy buffers included) while ``fn`` runs, and its error."""
    tracemalloc.start()
    try:
        fn()
        err = None
    except (FormatError, ConfigError) as exc:
        err = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, err


def test_tensors_that_do_not_fit_the_architecture_are_refused_before_decoding(bomb_base):
    """A re-signed file whose 1-bit weights do not fit the model it names used to be decoded
    (to int64, ~30 bytes a code) before the shape check."""
    from lowbit.export.fuzz import size_bomb
    from lowbit.export.packed import from_packed_bytes

    blob = size_bomb("bomb_arch", bomb_base, np.random.default_rng(0))
    peak, err = _peak(lambda: from_packed_bytes(blob))
    assert isinstance(err, FormatError) and "in the architecture" in str(err)
    assert peak < 4 * len(blob) + (8 << 20), peak


def test_decoded_size_is_capped_per_file(bomb_base, tmp_path):
    from lowbit.export.packed import from_packed_bytes, load_packed

    peak, err = _peak(lambda: from_packed_bytes(bomb_base, max_decoded_bytes=1 << 20))
    assert isinstance(err, FormatError) and "max_decoded_bytes" in str(err)
    assert peak < 4 * len(bomb_base) + (8 << 20)
    path = tmp_path / "m.lowbit"
    path.write_bytes(bomb_base)
    ex = load_packed(path)  # under the default cap: loads, codes as int8 (1 byte each)
    codes = ex.quantized.layers["fc1"].weight_codes
    assert codes.dtype == torch.int8 and codes.shape == (4000, 784)
    assert set(torch.unique(codes).tolist()) <= {-1, 0}


@pytest.mark.parametrize("bits, signed, dtype", [(1, True, torch.int8), (8, True, torch.int8),
                                                 (7, False, torch.int8), (8, False, torch.int16),
                                                 (12, True, torch.int16), (16, False, torch.int32)])
def test_codes_decode_into_the_smallest_dtype_exactly(bits, signed, dtype):
    from lowbit.export.bitstream import pack_codes, unpack_codes
    from lowbit.quantizers.granularity import Granularity

    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    codes = torch.randint(lo, hi + 1, (6, 50), dtype=torch.int32)
    codes[0, :2] = torch.tensor([lo, hi])
    b = torch.full((6,), bits)
    out = unpack_codes(pack_codes(codes, b, signed, Granularity("channel", 0)), b, signed,
                       Granularity("channel", 0), codes.shape)
    assert out.dtype == dtype and torch.equal(out.int(), codes)


def test_mixed_bit_widths_over_many_slices_decode_in_chunks(monkeypatch):
    """Slices of different widths decode a bounded group at a time, big ones alone."""
    from lowbit.export import bitstream
    from lowbit.quantizers.granularity import Granularity

    monkeypatch.setattr(bitstream, "CHUNK_BITS", 256)
    rng = np.random.default_rng(0)
    for per in (3, 40):
        bits = torch.from_numpy(rng.integers(1, 17, size=37))
        hi = (1 << (bits - 1)) - 1
        codes = torch.from_numpy(rng.integers(-(hi + 1).numpy()[:, None], hi.numpy()[:, None] + 1,
                                              size=(37, per))).int()
        gran = Granularity("channel", 0)
        buf = bitstream.pack_codes(codes, bits, True, gran)
        assert torch.equal(bitstream.unpack_codes(buf, bits, True, gran, codes.shape).int(), codes)


def test_onnx_exports_are_renamed_into_place(small, tmp_path):
    """Written in place before, so a crash mid-write left half a model under the real name."""
    pytest.importorskip("onnx")
    from lowbit.export.onnx_export import export_onnx

    path = tmp_path / "m.onnx"
    export_onnx(small, path, example_input=X)
    first = path.stat().st_ino
    export_onnx(small, path, example_input=X)
    assert path.stat().st_ino != first and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_plots_are_renamed_into_place(tmp_path):
    pytest.importorskip("matplotlib")
    from lowbit.report.pareto import save_pareto_plot

    path = tmp_path / "pareto.png"
    pts = {"a": [{"size": 1000, "top1": 80.0}, {"size": 2000, "top1": 85.0}]}
    save_pareto_plot(pts, path)
    first = path.stat().st_ino
    save_pareto_plot(pts, path)
    assert path.stat().st_ino != first and path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["pareto.png"]


def _with_external_weight(small, folder, location):
    """The ONNX export of ``small`` with its largest initializer moved to external data at
    ``location`` (relative to ``folder``, where the model is written)."""
    onnx = pytest.importorskip("onnx")
    from onnx.external_data_helper import convert_model_to_external_data

    from lowbit.export.onnx_export import export_onnx

    proto = export_onnx(small, example_input=X)
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location=location,
                                   size_threshold=64)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(folder / "model.onnx"))
    return folder / "model.onnx"


def test_external_data_beside_the_model_is_read(small, tmp_path):
    pytest.importorskip("onnxruntime")
    from lowbit.export.evaluate import onnx_metadata, ort_predictor
    from lowbit.export.onnx_export import export_onnx

    inline = tmp_path / "inline.onnx"
    inline.write_bytes(export_onnx(small, example_input=X).SerializeToString())
    path = _with_external_weight(small, tmp_path / "m", "weights.bin")
    assert (tmp_path / "m" / "weights.bin").stat().st_size > 0
    onnx_metadata(path)
    assert torch.equal(ort_predictor(path)(X), ort_predictor(inline)(X))


@pytest.mark.parametrize("where", ["../outside.bin", "/etc/hostname", "sub/../../outside.bin"])
def test_external_data_outside_the_model_folder_is_refused(small, tmp_path, capsys, where):
    pytest.importorskip("onnxruntime")
    import onnx

    from lowbit.cli import main
    from lowbit.export.evaluate import onnx_metadata

    path = _with_external_weight(small, tmp_path / "m", "weights.bin")
    proto = onnx.load(str(path), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = where
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(FormatError, match="outside the model's folder"):
        onnx_metadata(path)
    assert main(["eval", str(path), "--dataset", "cifar10", "--limit", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "outside the model's folder" in err[0]
