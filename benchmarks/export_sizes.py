"""File sizes of exported models vs float32 and vs the accounted size, and how far bit packing is
from an entropy coder (Shannon entropy of each layer's codes, zlib and lzma of the packed codes).

For each model (see ``export_common``): float32 safetensors of the float weights, the accounted
packed size (``lowbit.account(fold_bn=True)``), the packed file (header + data; the data must
equal the accounted size), QDQ ONNX (int4, int8-only), QONNX and a float ONNX of the same
folded network. Writes ``benchmarks/results/export_sizes.json``.

    python -m benchmarks.export_sizes                      # random init, W8A8 and W4A4
    python -m benchmarks.export_sizes --init baselines/resnet20-cifar10.safetensors
    python -m benchmarks.export_sizes --run runs/w4a4
"""

from __future__ import annotations

import argparse
import lzma
import math
import tempfile
import zlib
from pathlib import Path
from typing import Dict, List, Optional

import torch
from benchmarks.export_common import RESULTS, add_model_args, export_float_onnx, float_twin, machine, models, write
from safetensors.torch import save_file

from lowbit import account
from lowbit.export import export_onnx, export_qonnx, exportable, save_packed
from lowbit.export.bitstream import pack_codes


def entropy_bits(codes: torch.Tensor) -> float:
    """Shannon entropy of the code distribution times the count: the ideal coded size in bits."""
    _, counts = torch.unique(codes, return_counts=True)
    p = counts.double() / counts.sum()
    return float(-(p * torch.log2(p)).sum()) * codes.numel()


def code_sizes(ex) -> Dict[str, object]:
    rows, stream = [], b""
    for layer in ex.quantized.layers.values():
        if layer.weight_codes is None:
            continue
        qp = layer.weight_qparams
        packed = pack_codes(layer.weight_codes, qp.bits.to(torch.int64), qp.signed, qp.granularity).tobytes()
        stream += packed
        rows.append({"name": layer.name, "elements": layer.weight_codes.numel(),
                     "bits": sorted(set(qp.bits.reshape(-1).tolist())), "packed_bytes": len(packed),
                     "entropy_bytes": math.ceil(entropy_bits(layer.weight_codes) / 8),
                     "zlib_bytes": len(zlib.compress(packed, 9)),
                     "lzma_bytes": len(lzma.compress(packed, preset=9 | lzma.PRESET_EXTREME))})
    total = {k: sum(r[k] for r in rows) for k in ("packed_bytes", "entropy_bytes", "zlib_bytes", "lzma_bytes")}
    total["zlib_whole_stream_bytes"] = len(zlib.compress(stream, 9))
    total["lzma_whole_stream_bytes"] = len(lzma.compress(stream, preset=9 | lzma.PRESET_EXTREME))
    total["entropy_over_packed"] = round(total["entropy_bytes"] / max(total["packed_bytes"], 1), 3)
    return {"total": total, "layers": rows}


def float32_file_bytes(model: torch.nn.Module, folder: Path) -> int:
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
             if isinstance(v, torch.Tensor) and v.is_floating_point() and "quantizer" not in k}
    save_file(state, str(folder / "float32.safetensors"))
    return (folder / "float32.safetensors").stat().st_size


def measure(label: str, model, info: Dict, folder: Path) -> Dict[str, object]:
    x = torch.zeros(1, 3, 32, 32)
    cost = account(model, x, fold_bn=True)
    ex = exportable(model, example_input=x)
    packed = save_packed(ex, folder / f"{label}.lowbit")
    assert packed.payload_bytes == cost.size_bytes_packed, "packed data != accounted size"
    sizes = {"float32_safetensors_bytes": float32_file_bytes(model, folder),
             "float32_accounted_bytes": cost.float32_bytes,
             "accounted_packed_bytes": cost.size_bytes_packed,
             "accounted_packed_bytes_unfolded": account(model, x).size_bytes_packed,
             "packed_file_bytes": packed.file_bytes, "packed_header_bytes": packed.header_bytes,
             "payload_equals_accounted": packed.payload_bytes == cost.size_bytes_packed}
    for name, fn in (("onnx_qdq_bytes", lambda p: export_onnx(ex, p)),
                     ("onnx_qdq_int8_only_bytes", lambda p: export_onnx(ex, p, int4=False)),
                     ("qonnx_bytes", lambda p: export_qonnx(ex, p)),
                     ("onnx_float_bytes", lambda p: export_float_onnx(float_twin(ex), x, p))):
        path = folder / f"{label}-{name}.onnx"
        fn(path)
        sizes[name] = path.stat().st_size
    sizes["compression_vs_float32_file"] = round(sizes["float32_safetensors_bytes"] / packed.file_bytes, 2)
    return {"model": info, "sizes": sizes, "weight_codes": code_sizes(ex),
            "weight_bits_total": cost.weight_bits_total}


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(p, init="baselines/resnet20-cifar10.safetensors")  # trained weights: real code entropy
    p.add_argument("--out", type=Path, default=RESULTS / "export_sizes.json")
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, info in models(args):
            results[label] = measure(label, model, info, Path(tmp))
    write(args.out, {"benchmark": "export_sizes", "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
