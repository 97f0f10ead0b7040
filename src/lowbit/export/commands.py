"""What ``lowbit export`` and ``lowbit eval FILE`` do, kept out of the thin CLI module.

>>> export_target("runs/w4a4", "packed", "w4a4.lowbit")  # doctest: +SKIP
{'path': 'w4a4.lowbit', 'format': 'packed', 'file_bytes': 23412, ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import ConfigError
from ..train.restore import load_run
from .onnx_export import export_onnx, export_qonnx
from .packed import load_packed, save_packed
from .source import Exportable, exportable

FORMATS = ("packed", "onnx", "qonnx")


def _from_run(run_dir, fold_bn: bool, data_dir: Optional[str], allow_import: bool) -> Exportable:
    run = load_run(run_dir, data_dir, require_done=False, allow_import=allow_import)
    d = run.recipe.data
    return exportable(run.model, fold_bn=fold_bn, example_input=run.example_input,
                      data={"dataset": d.dataset, "image_size": d.image_size})


def load_target(target, fold_bn: bool = True, data_dir: Optional[str] = None,
                allow_import: bool = False) -> Exportable:
    """A run folder (rebuilt and converted) or a packed file (loaded and checked)."""
    path = Path(target)
    if path.is_dir():
        return _from_run(path, fold_bn, data_dir, allow_import)
    if path.is_file():
        return load_packed(path)
    raise ConfigError(f"{path} is neither a run folder nor a packed file")


def export_target(target, fmt: str, out, *, fold_bn: bool = True, opset: Optional[int] = None,
                  int4: bool = True, int32_bias: bool = False, int4_acts: bool = False,
                  data_dir: Optional[str] = None, allow_import: bool = False) -> Dict[str, Any]:
    """Export a run folder (or re-export a packed file) as ``fmt``; returns a size summary."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    ex = load_target(target, fold_bn, data_dir, allow_import)
    out = Path(out)
    summary: Dict[str, Any] = {"path": str(out), "format": fmt}
    if fmt == "packed":
        info = save_packed(ex, out)
        summary.update(file_bytes=info.file_bytes, header_bytes=info.header_bytes,
                       payload_bytes=info.payload_bytes)
    elif fmt == "onnx":
        export_onnx(ex, out, opset=opset or 21, int4=int4, int32_bias=int32_bias,
                    int4_acts=int4_acts, allow_import=allow_import)
    else:
        export_qonnx(ex, out, opset=opset or 13, allow_import=allow_import)
    summary.setdefault("file_bytes", out.stat().st_size)
    summary["float32_bytes"] = 4 * (sum(t.numel() for t in ex.quantized.float_state.values()) + sum(
        (l.weight_codes if l.weight_codes is not None else l.weight_float).numel()
        + (0 if l.dequantized_bias() is None else l.dequantized_bias().numel())
        for l in ex.quantized.layers.values() if l.op != "add"))
    return summary


def format_eval(res: Dict[str, Any]) -> str:
    """One line per predictor: top-1 and agreement."""
    lines = []
    for name, r in res["results"].items():
        extra = "".join(f", {k.replace('_', ' ')} {v:.2f}%" for k, v in r.items() if k != "top1")
        lines.append(f"{res['file']} [{name}]: top-1 {r['top1']:.2f}% on {res['n']} "
                     f"{res['dataset']} test images{extra}")
    return "\n".join(lines)
