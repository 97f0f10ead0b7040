"""The studies of benchmarks/nested_fronts.py: one ``lowbit sweep`` each (recipe, then its
arguments; an optional ``out`` folder where a sweep ran under another name)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TITLES = {"mnist": "MNIST MLP", "cifar10": "CIFAR-10 CNN", "imagenette": "Imagenette ResNet-18/2"}
FLOAT = {d: json.loads((REPO / "baselines" / f"{b}.json").read_text())["top1"]
         for d, b in (("mnist", "mlp-mnist"), ("cifar10", "cnn-cifar10"),
                      ("imagenette", "resnet18h-imagenette"))}

LAM = "quant.weight.threshold+quant.bias.threshold"
STE = ["--set", "quant.weight.scale_grad=ste", "--set", "quant.bias.scale_grad=ste"]
ROUND = ["--set", "quant.weight.codes=round", "--set", "quant.bias.codes=round"]  # round(P/s), not floor


def _term(name: str, coefs: str, args: str = "") -> list:
    """The loss term ``name`` alone over ``coefs``, on the nested quantizer with STE scales."""
    method = f"methods.0={{name: {name}{', args: {' + args + '}' if args else ''}}}"
    return [*STE, "--set", method, "--param", f"methods.0.args.coef={coefs}"]


def _with_ratio(name: str, coefs: str, lam: str, args: str = "") -> list:
    """The ratio rule at lambda ``lam`` plus the loss term ``name`` over ``coefs``."""
    method = f"methods.0={{name: {name}{', args: {' + args + '}' if args else ''}}}"
    return ["--set", f"quant.weight.threshold={lam}", "--set", f"quant.bias.threshold={lam}",
            "--set", method, "--param", f"methods.0.args.coef={coefs}"]


STUDIES = {
    "mnist": {
        "ptq": ["mlp-mnist-ptq", "--param", "quant.weight.bits=2,3,4,8"],
        "lambda": ["mlp-mnist-nested", "--param", f"{LAM}=5.0e-5,1.0e-4,2.0e-4,3.0e-4,5.0e-4,1.0e-3"],
        "lr": ["mlp-mnist-nested", "--param", f"{LAM}=1.0e-4,3.0e-4,1.0e-3",
               "--param", "optim.quant_lr=1.0e-4,1.0e-3,1.0e-2"],
        "coef-inverse_scale": ["mlp-mnist-nested", *_with_ratio("inverse_scale", "1.0e-3,1.0e-2", "2.0e-4")],
        "coef-bin_count": ["mlp-mnist-nested", *_with_ratio("bin_count", "1.0e-2,1.0e-1", "2.0e-4", "max_bins: 8")],
        "coef-deviation": ["mlp-mnist-nested", *_with_ratio("deviation", "1.0e-1,1.0", "2.0e-4")],
        "terms-inverse_scale": ["mlp-mnist-nested", *_term("inverse_scale", "3.0e-3,1.0e-2,3.0e-2")],
        "terms-bin_count": ["mlp-mnist-nested", *_term("bin_count", "1.0e-2,1.0e-1,1.0", "max_bins: 8")],
        "terms-deviation": ["mlp-mnist-nested", *_term("deviation", "1.0e-1,1.0")],
        "seeds": ["mlp-mnist-nested", "--set", "quant.weight.threshold=2.0e-4",
                  "--set", "quant.bias.threshold=2.0e-4", "--param", "seed=0,1,2"],
        # the best scale learning rate of the lr study (1e-4) with two more levers on the front
        "wlr": ["mlp-mnist-nested", "--set", "optim.quant_lr=1.0e-4", "--param", f"{LAM}=1.0e-4,3.0e-4",
                "--param", "optim.lr=1.0e-3,3.0e-3"],
        # the reference without its clipping: ranges from the extremes (as the nested codes' range is)
        "ptq-minmax": ["mlp-mnist-ptq", "--set", "quant.weight.observer=minmax", "--param", "quant.weight.bits=3,4,8"],
        # the floor's cost apart from the ratio rule: uniform grids at min-max scales, frozen, with
        # floor or round, fine-tuned as the nested runs' second phase is
        "floor-ctrl": ["mlp-mnist-ptq", "--set", "quant.weight.observer=minmax",
                       "--set", "optim={name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 0.0}", "--set",
                       "phases.0={name: finetune, epochs: 3, freeze_quantizers: true, schedule: {kind: cosine}}",
                       "--param", "quant.weight.rounding+quant.bias.rounding=round,floor",
                       "--param", "quant.weight.bits=3,4"],
        # the front's lambda sweep with codes round(P/s) instead of floor(P/s)
        "lambda-round": ["mlp-mnist-nested", *ROUND, "--param",
                         f"{LAM}=3.0e-5,5.0e-5,7.0e-5,1.0e-4,2.0e-4,3.0e-4,5.0e-4,1.0e-3"],
        # seeds 1 and 2 of the round front's two largest points (seed 0 is in lambda-round; seeds
        # stay off the front tables, which would otherwise pick the best of three)
        "round-seeds": ["mlp-mnist-nested", *ROUND, "--param", f"{LAM}=3.0e-5,7.0e-5", "--param", "seed=1,2"],
        "finetune-long": ["mlp-mnist-nested", "--set", "optim.quant_lr=1.0e-4", "--param",
                          f"{LAM}=2.0e-4,3.0e-4,5.0e-4", "--param", "phases.1.epochs=3,10"],
    },
}

# sweeps that ran into another folder than runs/nested/DATASET-STUDY
OUTS = {"mnist-round-seeds": "runs/nested/mnist-seeds-round"}

CONV = "quant.overrides.0.weight.threshold+quant.overrides.0.bias.threshold"
DENSE = "quant.overrides.1.weight.threshold+quant.overrides.1.bias.threshold"
HOLD_CONV = ["--set", "quant.overrides.0.weight.threshold=1.0e-4", "--set", "quant.overrides.0.bias.threshold=1.0e-4"]
HOLD_DENSE = ["--set", "quant.overrides.1.weight.threshold=1.0e-4", "--set", "quant.overrides.1.bias.threshold=1.0e-4"]
STE_LR = ["--set", "optim.quant_lr=1.0e-3"]  # the scale learning rate of the MNIST runs (mlp-mnist-nested)

STUDIES["cifar10"] = {
    "ptq": ["cnn-cifar10-ptq", "--param", "quant.weight.bits=2,3,4,8"],
    "lr": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "phases.0.epochs=0.5", "--set",
           "phases.1={name: finetune, epochs: 0.5, freeze_quantizers: true, schedule: {kind: cosine}}",
           "--param", f"{LAM}=1.0e-4,3.0e-4,1.0e-3", "--param", "optim.quant_lr=3.0e-6,1.0e-5,3.0e-5"],
    "finetune": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-5",
                 "--set", "phases.1.epochs=1.5", "--param", f"{LAM}=5.0e-4,1.0e-3"],
    # seed 0 of this setting is the finetune study's lambda 5e-4 run
    "seeds": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-5",
              "--set", "phases.1.epochs=1.5", "--set", "quant.weight.threshold=5.0e-4",
              "--set", "quant.bias.threshold=5.0e-4", "--param", "seed=1,2"],
    "type-dense": ["cnn-cifar10-nested", *HOLD_CONV, "--param", f"{DENSE}=1.0e-3,3.0e-3,1.0e-2"],
    "type-conv": ["cnn-cifar10-nested", *HOLD_DENSE, "--param", f"{CONV}=3.0e-4,1.0e-3,3.0e-3"],
    "terms-inverse_scale": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", *STE_LR,
                            *_term("inverse_scale", "1.0e-2,3.0e-2")],
    # at the MNIST runs' scale learning rate every term collapsed the CNN: the ratio rule's one
    "terms-inverse_scale@qlr": ["cnn-cifar10-nested", "--set", "quant.overrides=[]",
                                *_term("inverse_scale", "1.0e-2")],
    "terms-bin_count": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", *STE_LR,
                        *_term("bin_count", "1.0e-1,1.0", "max_bins: 8")],
    "terms-deviation": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", *STE_LR, *_term("deviation", "1.0")],
    # the finetune study's setting at larger lambda: points under PTQ's 3- and 2-bit sizes
    "finetune-small": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-5",
                       "--set", "phases.1.epochs=1.5", "--param", f"{LAM}=1.3e-3,2.0e-3,4.0e-3"],
    "finetune-round": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-5",
                       "--set", "phases.1.epochs=1.5", *ROUND, "--param",
                       f"{LAM}=1.0e-4,2.0e-4,5.0e-4,1.0e-3,1.3e-3"],
    # the same at larger lambda: the front below PTQ at 4 bits
    "large-round": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-5",
                    "--set", "phases.1.epochs=1.5", *ROUND, "--param", f"{LAM}=2.0e-3,4.0e-3,8.0e-3,1.6e-2"],
    # a small lambda, slow scales and a 3-epoch fine-tune: the top of the front, against PTQ at 8 bits
    "finetune-top": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-6",
                     "--set", "quant.weight.threshold=1.0e-4", "--set", "quant.bias.threshold=1.0e-4",
                     "--set", "phases.1.epochs=3", "--param", "optim.lr=1.0e-3,5.0e-3"],
    # seeds 1 and 2 of finetune-top at lr 1e-3 (seed 0 is in finetune-top)
    "top-seeds": ["cnn-cifar10-nested", "--set", "quant.overrides=[]", "--set", "optim.quant_lr=3.0e-6",
                  "--set", "quant.weight.threshold=1.0e-4", "--set", "quant.bias.threshold=1.0e-4",
                  "--set", "phases.1.epochs=3", "--set", "optim.lr=1.0e-3", "--param", "seed=1,2"],
}
OUTS.update({"cifar10-lr": "runs/explore-cifar-lr", "cifar10-ptq": "runs/cifar-ptq",
             "cifar10-terms-inverse_scale@qlr": "runs/nested/cifar10-terms-inverse_scale-qlr"})
# terms-NAME@VARIANT: what the variant changes, for the tables
VARIANTS = {"qlr": "quant_lr 1e-5"}

# what a dataset's front does not cover, said under its heading
NOTES = {"imagenette": "Fine-tunes of one epoch (half learning scales, half frozen) or, in the finetune studies, "
                       "two and a half (half an epoch learning scales, two frozen); the per-type lambda was not "
                       "swept on this network (its one dense layer holds 2.6 of its 2,800 KB)."}

# the studies shown in the study section, in order, with what each varies
INTROS = {
    "lr": "scale learning rate x lambda",
    "lambda-mid": "one more lambda in the setting of the front's lambda sweep",
    "ctrl": "the fine-tune alone (scales fixed at their 8-bit start, quant_lr 0) at two weight learning rates",
    "finetune": "lambda with a longer fine-tune at frozen scales (0.5 epoch learning scales, 1.5 frozen)",
    "finetune-small": "larger lambda in the finetune study's setting (0.5 epoch learning scales, 1.5 frozen)",
    "finetune-top": "lambda 1e-4 with slow scales (quant_lr 3e-6) and a 3-epoch fine-tune at frozen scales, "
                    "at two weight learning rates",
    "wlr": "the weight learning rate (scale learning rate 1e-4) x lambda",
    "finetune-long": "lambda x the length of the fine-tune at frozen scales (scale learning rate 1e-4)",
    "ptq-minmax": "uniform PTQ with ranges from each row's extremes (no clipping, as the nested codes' range)",
    "floor-ctrl": "the floor's cost apart from the ratio rule: uniform grids at min-max scales, frozen, fine-tuned "
                  "3 epochs as the nested runs' second phase, with round or floor codes",
    "lambda-round": "the front's lambda sweep with codes round(P/s) (`codes: round`) instead of floor(P/s)",
    "finetune-round": "the finetune study with codes round(P/s) (`codes: round`)",
    "round-seeds": "seeds 1 and 2 of the round-code front's two largest points (seed 0: the lambda-round study)",
    "large-round": "the finetune-round study at larger lambda",
    "top-seeds": "seeds 1 and 2 of the finetune-top study at lr 1e-3 (seed 0: that study)",
}
INTROS_BY_DATASET = {("imagenette", "finetune"): "lambda with faster scales (quant_lr 3e-5) and a longer fine-tune "
                                                 "at frozen scales (0.5 epoch learning scales, 2 frozen)",
                     ("imagenette", "finetune-round"): "the previous study with codes round(P/s) (`codes: round`)"}

# seeds studies whose seed 0 ran in another study: (that study, its lambda)
SEED0 = {"cifar10": ("finetune", 5.0e-4)}

# (dataset, study, layer type, swept parameter): the lambda guidance per layer type
GUIDANCE = [("mnist", "lambda", "dense", "lambda"), ("cifar10", "type-conv", "conv", "lambda_conv"),
            ("cifar10", "type-dense", "dense", "lambda_dense")]

FT_HALF = ["--set", "phases.0.epochs=0.5", "--set",
           "phases.1={name: finetune, epochs: 0.5, freeze_quantizers: true, schedule: {kind: cosine}}"]
STUDIES["imagenette"] = {
    "ptq": ["resnet18h-imagenette-ptq", "--param", "quant.weight.bits=2,3,4,8"],
    "lr": ["resnet18h-imagenette-nested", "--param", f"{LAM}=3.0e-4,1.0e-3", "--param", "optim.quant_lr=1.0e-5,3.0e-5",
           *FT_HALF],
    # the fine-tune alone: scales fixed at their 8-bit start (quant_lr 0), at two weight learning rates
    "ctrl": ["resnet18h-imagenette-nested", "--param", "optim.lr=1.0e-3,5.0e-3", "--set", "optim.quant_lr=0.0",
             *FT_HALF],
    "lambda": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", *FT_HALF,
               "--param", f"{LAM}=1.0e-4,3.0e-4"],
    "lambda-mid": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", *FT_HALF, "--param", f"{LAM}=6.0e-4"],
    # faster scales (quant_lr 3e-5) and a 2-epoch fine-tune at frozen scales: points at PTQ's 3- and 4-bit sizes
    "finetune": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", "--set", "optim.quant_lr=3.0e-5",
                 "--set", "phases.0.epochs=0.5", "--set",
                 "phases.1={name: finetune, epochs: 2, freeze_quantizers: true, schedule: {kind: cosine}}",
                 "--param", f"{LAM}=7.0e-4,1.0e-3,2.0e-3"],
    "finetune-round": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", "--set", "optim.quant_lr=3.0e-5",
                       "--set", "phases.0.epochs=0.5", "--set",
                       "phases.1={name: finetune, epochs: 2, freeze_quantizers: true, schedule: {kind: cosine}}",
                       *ROUND, "--param", f"{LAM}=3.0e-4,7.0e-4,1.0e-3,2.0e-3,4.0e-3,8.0e-3,1.6e-2"],
    # each loss term alone with STE scales, in the front's setting (scale learning rate 1e-5)
    "terms-inverse_scale": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", *FT_HALF,
                            *_term("inverse_scale", "1.0e-2,1.0e-1")],
    "terms-bin_count": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", *FT_HALF,
                        *_term("bin_count", "1.0e-1,1.0", "max_bins: 8")],
    "terms-deviation": ["resnet18h-imagenette-nested", "--set", "optim.lr=1.0e-3", *FT_HALF,
                        *_term("deviation", "1.0")],
}
OUTS.update({"imagenette-ptq": "runs/imagenette-ptq", "imagenette-lr": "runs/explore-imagenette-lr",
             "imagenette-ctrl": "runs/explore-imagenette-ctrl"})
