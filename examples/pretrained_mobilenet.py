"""Walkthrough: a model from a model library, from PTQ to QAT to a deployable export.

The model is Hugging Face transformers' MobileNetV2ForImageClassification with TensorFlow
"same" padding (``tf_padding=True``): each of its conv blocks reads ``conv.stride``,
``conv.kernel_size`` and ``conv.dilation`` to pad its input, the kind of code lowbit's own zoo
never has. Nothing in it is changed for lowbit.

    pip install 'lowbit[examples]'                     # transformers
    python examples/pretrained_mobilenet.py --out runs/hf-mobilenet
    python examples/pretrained_mobilenet.py --weights path/to/save_pretrained_dir --out ...

1. **Float model.** ``--weights``: a folder written by ``save_pretrained`` (a real pretrained
   checkpoint, downloaded wherever you have internet), else a short float training on
   CIFAR-10 stands in for one. Saved as ``OUT/float.safetensors``.
2. **PTQ.** ``lowbit.ptq`` (prepare + calibrate) at W8A8 and W4A4: test accuracy and size.
3. **QAT.** A recipe that names this file's ``build`` as its model factory, starting from
   ``OUT/float.safetensors``; ``Trainer(..., allow_import=True)`` is ``lowbit train OUT/qat.yaml
   --allow-import --out OUT/qat`` (the recipe is written there too).
4. **Export.** The trained run as a packed file and as QDQ ONNX; the integer executor (packed
   file) and onnxruntime (ONNX) predict what the fake-quant model predicts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from lowbit import QuantizerConfig, QuantSpec, account, ptq
from lowbit.data import BatchLoader, eval_augment, load_split, train_augment
from lowbit.export import IntegerExecutor
from lowbit.export.commands import export_target
from lowbit.train import Trainer, recipe_from_dict

W4A4 = {"weight": {"kind": "lsq", "bits": 4, "granularity": "channel", "observer": "mse"},
        "act": {"kind": "lsq", "bits": 4, "observer": "percentile", "percentile": 99.99},
        "overrides": [{"pattern": "@first", "weight": {"bits": 8}, "act": {"bits": 8}},
                      {"pattern": "@last", "weight": {"bits": 8}, "act": {"bits": 8}}]}


class Logits(nn.Module):
    """The transformers model with a plain ``forward(pixel_values) -> logits``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def build(num_classes: int = 10, image_size: int = 32, depth_multiplier: float = 0.35,
          weights: str = "") -> nn.Module:
    """The model factory a recipe names (``pretrained_mobilenet:build``)."""
    # optional (the examples extra): imported here so that --help works without it
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    if weights:
        model = MobileNetV2ForImageClassification.from_pretrained(
            weights, num_labels=num_classes, ignore_mismatched_sizes=True)
    else:
        model = MobileNetV2ForImageClassification(MobileNetV2Config(
            num_channels=3, image_size=image_size, depth_multiplier=depth_multiplier,
            num_labels=num_classes, tf_padding=True))
    return Logits(model)


@torch.no_grad()
def predict(model: nn.Module, loader) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x) for x, _ in loader])


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * float((logits.argmax(1) == labels).float().mean())


def train_float(model: nn.Module, loader, steps: int, lr: float) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    model.train()
    done = 0
    while done < steps:
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
            done += 1
            if done == steps:
                return


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--weights", default="", help="a save_pretrained folder (default: train one)")
    p.add_argument("--train-images", type=int, default=20000)
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--float-epochs", type=float, default=4.0)
    p.add_argument("--qat-epochs", type=float, default=1.0)
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (the tests)")
    a = p.parse_args(argv)
    if a.tiny:
        a.train_images, a.test_images, a.float_epochs, a.qat_epochs = 256, 200, 1.0, 1.0
    a.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    train = load_split("cifar10", "train", limit=a.train_images)
    test = load_split("cifar10", "test", limit=a.test_images)
    train_loader = BatchLoader(train, 64, augment=train_augment("cifar10"), shuffle=True, seed=0,
                               drop_last=True, prefetch=False)
    calib = BatchLoader(train, 64, augment=eval_augment("cifar10"), prefetch=False)
    test_loader = BatchLoader(test, 500, augment=eval_augment("cifar10"), prefetch=False)
    labels = torch.cat([y for _, y in test_loader])
    summary = {}

    # 1. the float model ------------------------------------------------------------------
    model = build(weights=a.weights)
    if not a.weights:
        train_float(model, train_loader, int(a.float_epochs * len(train_loader)), lr=0.1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(a.out / "float.safetensors"))
    summary["float_top1"] = top1(predict(model, test_loader), labels)
    print(f"float: top-1 {summary['float_top1']:.2f}% ({sum(p.numel() for p in model.parameters()):,} "
          "parameters)", flush=True)

    # 2. PTQ: prepare + calibrate, nothing trained --------------------------------------------
    example = torch.zeros(1, 3, 32, 32)
    for bits in (8, 4):
        spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=bits, granularity="channel"),
                         act=QuantizerConfig(kind="uniform", bits=bits, observer="percentile"))
        qmodel = ptq(model, spec, calib, batches=4)
        acc = top1(predict(qmodel, test_loader), labels)
        kb = account(qmodel, example, fold_bn=True).size_bytes_packed / 1024
        summary[f"ptq_w{bits}a{bits}_top1"] = acc
        print(f"PTQ W{bits}A{bits}: top-1 {acc:.2f}%, {kb:.1f} KB packed", flush=True)

    # 3. QAT from the float weights: a recipe naming this file's model factory ----------------
    recipe = {"name": "hf-mobilenet_v2-w4a4", "seed": 0,
              "model": {"factory": "pretrained_mobilenet:build", "init": str(a.out / "float.safetensors"),
                        "args": {"weights": a.weights} if a.weights else {}},
              "data": {"dataset": "cifar10", "batch_size": 64, "train_limit": a.train_images,
                       "test_limit": a.test_images, "calib_batches": 4},
              "quant": W4A4, "optim": {"name": "sgd", "lr": 0.01, "weight_decay": 4e-5},
              "phases": [{"name": "qat", "epochs": a.qat_epochs}], "log_every": 50}
    (a.out / "qat.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    print(f"QAT: lowbit train {a.out / 'qat.yaml'} --allow-import --out {a.out / 'qat'}", flush=True)
    trainer = Trainer(recipe_from_dict(recipe), a.out / "qat", verbose=not a.tiny, allow_import=True)
    metrics = trainer.run()
    summary["qat_w4a4_top1"] = metrics["top1"]
    print(f"QAT W4A4: top-1 {metrics['top1']:.2f}%, {metrics['size_bytes_packed'] / 1024:.1f} KB packed "
          f"({metrics['compression']:.1f}x smaller than float32)", flush=True)

    # 4. export the run: packed file (integer executor) and ONNX (onnxruntime) ---------------
    for fmt in ("packed", "onnx"):
        s = export_target(a.out / "qat", fmt, a.out / f"model.{fmt}", allow_import=True)
        print(f"export: {s['path']} ({s['file_bytes']:,} bytes)", flush=True)
    fake = predict(trainer.model, test_loader)
    integer = predict(IntegerExecutor(str(a.out / "model.packed"), allow_import=True), test_loader)
    summary["integer_agreement"] = top1(integer, fake.argmax(1))
    import onnxruntime as ort  # optional: the onnx extra

    sess = ort.InferenceSession(str(a.out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = torch.cat([torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
                             for x, _ in test_loader])
    summary["onnx_agreement"] = top1(onnx_logits, fake.argmax(1))
    print(f"agreement with the fake-quant model: integer executor {summary['integer_agreement']:.2f}%, "
          f"onnxruntime {summary['onnx_agreement']:.2f}%", flush=True)
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
