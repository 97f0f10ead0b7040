"""Shared by the export benchmarks: which quantized models to measure, CIFAR-10 batches, JSON.

Models come from (first given): ``--run DIR`` (a finished ``lowbit train`` run, measured as
trained), ``--init FILE`` (float weights, e.g. ``baselines/resnet20-cifar10.safetensors``, then
LSQ W8A8 and W4A4 per-channel, calibrated), or a random init whose BN statistics come from real
training images. ``--steps N`` then fine-tunes the quantized model for N SGD steps (QAT).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lowbit import QuantizerConfig, QuantSpec, calibrate, fold_batchnorm, prepare
from lowbit.data import BatchLoader, eval_augment, load_split, train_augment
from lowbit.models import create_model
from lowbit.nn import project_quantizers

RESULTS = Path(__file__).resolve().parent / "results"


def add_model_args(p: argparse.ArgumentParser, steps: int = 0, init: Optional[str] = None,
                   bias: Tuple[str, ...] = ("float",)) -> None:
    p.add_argument("--run", help="a `lowbit train` run folder (measured as trained)")
    p.add_argument("--init", default=init, help="float weights (.safetensors) to quantize, e.g. "
                   f"a baseline (default: {init or 'a random init'})")
    p.add_argument("--model", default="resnet20", help="registry model (with --init or random)")
    p.add_argument("--bits", type=int, nargs="+", default=[8, 4], help="W/A bit-widths (LSQ)")
    p.add_argument("--steps", type=int, default=steps, help="QAT steps after calibration")
    p.add_argument("--calib", type=int, default=512, help="calibration images")
    p.add_argument("--bias", nargs="+", choices=["float", "int32"], default=bias,
                   help="float: BN folded at export, float biases; int32: BN folded before "
                        "quantizing and biases rounded to the int32 accumulator grid s_x * s_w "
                        "(QuantSpec.int_bias), as integer runtimes do; both: one model each")
    p.add_argument("--data-dir", default=None)


def machine() -> Dict[str, object]:
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def write(path: Path, payload: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"wrote {path}")


def cifar(split: str, limit: Optional[int], data_dir=None, batch: int = 500, train_aug: bool = False):
    images = load_split("cifar10", split, data_dir, limit=limit)
    aug = train_augment("cifar10") if train_aug else eval_augment("cifar10")
    return BatchLoader(images, batch, augment=aug, shuffle=train_aug, prefetch=False,
                       drop_last=train_aug)


def _bn_statistics(model: nn.Module, loader) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    model.eval()


def _qat(model: nn.Module, steps: int, data_dir) -> Dict[str, float]:
    loader = cifar("train", None, data_dir, 128, train_aug=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    model.train()
    start, done, loss = time.perf_counter(), 0, float("nan")
    while done < steps:
        for x, y in loader:
            loss_t = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss_t.backward()
            opt.step()
            project_quantizers(model)
            done, loss = done + 1, float(loss_t.detach())
            if done >= steps:
                break
        loader.set_epoch(loader.epoch + 1)
    model.eval()
    return {"steps": steps, "final_loss": round(loss, 4), "seconds": round(time.perf_counter() - start, 1)}


def _float_model(args) -> nn.Module:
    # a random init keeps every residual branch alive (the zoo zero-inits the last BN of each)
    kwargs = {} if args.init or not args.model.startswith("resnet") else {"zero_init_residual": False}
    model = create_model(args.model, **kwargs)
    if args.init:
        from lowbit.models.weights import load_float_weights

        load_float_weights(model, args.init)
    else:
        _bn_statistics(model, cifar("train", args.calib, args.data_dir, 128))
    return model.eval()


def models(args) -> List[Tuple[str, nn.Module, Dict]]:
    """[(label, prepared+calibrated model, provenance)] as the arguments ask."""
    if args.run:
        from lowbit.train.restore import load_run

        run = load_run(args.run, args.data_dir)
        return [(Path(args.run).name, run.model.eval(), {"source": f"run {args.run}"})]
    out = []
    calib = cifar("train", args.calib, args.data_dir, 128)
    for bits in args.bits:
        for bias in args.bias:
            out.append(_quantized(args, bits, bias == "int32", calib))
    return out


def _quantized(args, bits: int, int_bias: bool, calib) -> Tuple[str, nn.Module, Dict]:
    torch.manual_seed(0)
    spec = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=bits, granularity="channel"),
                     act=QuantizerConfig(kind="lsq", bits=bits), int_bias=int_bias)
    float_model = _float_model(args)
    if int_bias:  # the deployed structure from the start: no BN left to fold at export
        fold_batchnorm(float_model, torch.zeros(1, 3, 32, 32), inplace=True)
    model = prepare(float_model, spec)
    calibrate(model, calib)
    info = {"source": f"init {args.init}" if args.init else "random init + real BN statistics",
            "spec": f"LSQ W{bits}A{bits}, per-channel weights, "
                    + ("BN folded first, int32 biases on s_x*s_w" if int_bias else "float biases"),
            "calibration_images": args.calib}
    if args.steps:
        info["qat"] = _qat(model, args.steps, args.data_dir)
    label = f"{args.model}-w{bits}a{bits}" + ("-int32bias" if int_bias else "")
    return label, model.eval(), info


def float_twin(ex) -> nn.Module:
    """The same network (BNs folded) with float32 weights and no quantization at all."""
    from lowbit.export.rebuild import build_runtime
    from lowbit.export.runtime import DequantLayer, RuntimeAdd

    def make(layer, module=None):
        mod = RuntimeAdd(layer) if layer.op == "add" else DequantLayer(layer, module=module)
        if layer.op == "add":
            mod.acts = nn.ModuleList([nn.Identity(), nn.Identity()])
        else:
            mod.act = None
        return mod

    return build_runtime(ex, make)


def export_float_onnx(module: nn.Module, x: torch.Tensor, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
