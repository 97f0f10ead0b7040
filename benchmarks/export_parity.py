"""Parity of every way to run an exported model with the fake-quant model, on the CIFAR-10 test set.

For each model (see ``export_common``; by default the shipped float ResNet-20 baseline at LSQ W8A8
and W4A4, calibrated, once with float biases and once with BN folded first and int32 biases on
the accumulator grid; ``--steps`` adds QAT steps): the fake-quant model's logits are
the reference; the model is written as a packed file and loaded back (no live model), run by the
integer executor and the fake-quant reconstruction, and exported to QDQ ONNX, run by
onnxruntime with its default optimisations (integer kernels where it fuses them) and with Q/DQ
executed literally. Reported per runner: top-1, top-1 agreement with the reference, and the
per-image max |logit difference| (median, p99, max). Writes ``benchmarks/results/export_parity.json``.

    python -m benchmarks.export_parity                   # all 10,000 test images
    python -m benchmarks.export_parity --limit 2000 --bias int32 --steps 100
    python -m benchmarks.export_parity --run runs/w4a4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import onnxruntime as ort
import torch
from benchmarks.export_common import RESULTS, add_model_args, cifar, machine, models, write

from lowbit.export import FakeQuantExecutor, IntegerExecutor, export_onnx, load_packed, save_packed


def ort_runner(path: Path, literal: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if literal:
        so.add_session_config_entry("session.disable_quant_qdq", "1")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])


def stats(out: torch.Tensor, ref: torch.Tensor, y: torch.Tensor, seconds: float) -> Dict[str, float]:
    err = (out - ref).abs().amax(dim=1)  # per image
    q = torch.quantile(err.double(), torch.tensor([0.5, 0.99], dtype=torch.float64))
    return {"top1": round(100 * float((out.argmax(1) == y).float().mean()), 2),
            "agreement_pct": round(100 * float((out.argmax(1) == ref.argmax(1)).float().mean()), 3),
            "disagreements": int((out.argmax(1) != ref.argmax(1)).sum()),
            "logit_diff_median": float(q[0]), "logit_diff_p99": float(q[1]),
            "logit_diff_max": float(err.max()), "images_diff_over_1e-4": int((err > 1e-4).sum()),
            "seconds": round(seconds, 1)}


@torch.no_grad()
def measure(label: str, model, loader, folder: Path) -> Dict[str, object]:
    packed = folder / f"{label}.lowbit"
    save_packed(model, packed, example_input=torch.zeros(1, 3, 32, 32))
    ex = load_packed(packed)  # from the file alone
    onnx_path = folder / f"{label}.onnx"
    export_onnx(ex, onnx_path)
    runners = {"fake_quant_model": model, "integer_executor": IntegerExecutor(ex),
               "fake_quant_from_file": FakeQuantExecutor(ex),
               "onnxruntime_default": ort_runner(onnx_path, False),
               "onnxruntime_literal_qdq": ort_runner(onnx_path, True)}
    outs: Dict[str, List[torch.Tensor]] = {k: [] for k in runners}
    secs = dict.fromkeys(runners, 0.0)
    labels = []
    for x, y in loader:
        labels.append(y)
        for k, f in runners.items():
            t = time.perf_counter()
            outs[k].append(f(x))
            secs[k] += time.perf_counter() - t
    y = torch.cat(labels)
    ref = torch.cat(outs["fake_quant_model"])
    return {k: stats(torch.cat(v), ref, y, secs[k]) for k, v in outs.items()}


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(p, steps=0, init="baselines/resnet20-cifar10.safetensors", bias=("float", "int32"))
    p.add_argument("--limit", type=int, default=None, help="first N test images (default: all)")
    p.add_argument("--out", type=Path, default=RESULTS / "export_parity.json")
    args = p.parse_args(argv)
    loader = cifar("test", args.limit, args.data_dir, 500)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, info in models(args):
            results[label] = {"model": info, "runners": measure(label, model, loader, Path(tmp))}
    write(args.out, {"benchmark": "export_parity", "machine": machine(), "onnxruntime": ort.__version__,
                     "test_images": len(loader.imageset), "results": results})


if __name__ == "__main__":
    main()
