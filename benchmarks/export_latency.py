"""onnxruntime latency of the float model vs its QDQ exports, at batch 1 and 32.

For each model (see ``export_common``) the same BN-folded network is exported as float ONNX and
as QDQ ONNX in three forms: the default (float biases, int4 where possible), int8 containers
only, and int32 biases (the form onnxruntime fuses into integer kernels such as QLinearConv).
Each is timed in onnxruntime (default graph optimisations, ``--threads`` intra-op threads):
median and p90 of ``--runs`` runs after warm-up. The op types of onnxruntime's optimised graph
show which integer kernels it actually used. Writes ``benchmarks/results/export_latency.json``.

    python -m benchmarks.export_latency
    python -m benchmarks.export_latency --run runs/w4a4 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import onnx
import onnxruntime as ort
import torch
from benchmarks.export_common import RESULTS, add_model_args, export_float_onnx, float_twin, machine, models, write

from lowbit.export import export_onnx, exportable


def session(path: Path, threads: int, optimized: Path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3  # no warning about saving the optimised graph
    so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def time_runs(sess, x: np.ndarray, runs: int, budget_s: float) -> Dict[str, float]:
    name = sess.get_inputs()[0].name
    for _ in range(5):
        sess.run(None, {name: x})
    times, start = [], time.perf_counter()
    while len(times) < runs and time.perf_counter() - start < budget_s:
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_ms": round(1e3 * statistics.median(times), 3),
            "p90_ms": round(1e3 * times[int(0.9 * (len(times) - 1))], 3), "runs": len(times)}


def kernels(optimized: Path) -> Dict[str, int]:
    proto = onnx.load(str(optimized))
    return dict(collections.Counter(n.op_type for n in proto.graph.node).most_common())


def measure(label: str, model, args, folder: Path) -> Dict[str, object]:
    ex = exportable(model, example_input=torch.zeros(1, 3, 32, 32))
    files = {"float": folder / f"{label}-float.onnx", "qdq": folder / f"{label}-qdq.onnx",
             "qdq_int8_only": folder / f"{label}-qdq8.onnx", "qdq_int32_bias": folder / f"{label}-qdq32.onnx"}
    export_float_onnx(float_twin(ex), torch.zeros(1, 3, 32, 32), files["float"])
    export_onnx(ex, files["qdq"])
    export_onnx(ex, files["qdq_int8_only"], int4=False)
    export_onnx(ex, files["qdq_int32_bias"], int4=False, int32_bias=True)
    out: Dict[str, object] = {}
    rng = np.random.default_rng(0)
    for kind, path in files.items():
        opt = folder / f"{path.stem}-opt.onnx"
        sess = session(path, args.threads, opt)
        res = {"file_bytes": path.stat().st_size, "ort_kernels": kernels(opt)}
        for batch in (1, 32):
            x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
            res[f"batch{batch}"] = time_runs(sess, x, args.runs if batch == 1 else args.runs // 4, args.budget)
        out[kind] = res
    base = out["float"]
    for kind in files:
        for b in ("batch1", "batch32"):
            out[kind][b]["vs_float"] = round(out[kind][b]["median_ms"] / base[b]["median_ms"], 3)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(p)
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--runs", type=int, default=200, help="timed runs at batch 1 (batch 32: /4)")
    p.add_argument("--budget", type=float, default=20.0, help="max seconds per measurement")
    p.add_argument("--out", type=Path, default=RESULTS / "export_latency.json")
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, info in models(args):
            results[label] = {"model": info, **measure(label, model, args, Path(tmp))}
    write(args.out, {"benchmark": "export_latency", "machine": machine(), "onnxruntime": ort.__version__,
                     "threads": args.threads, "results": results})


if __name__ == "__main__":
    main()
