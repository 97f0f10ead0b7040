"""The ``lowbit`` command line: thin argument parsing over the public API.

Every user error (bad recipe, missing data, corrupt checkpoint, ...) is one line on stderr
and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import yaml

from .errors import LowbitError
from .evaluate import evaluate
from .export.commands import export_target, format_eval
from .export.evaluate import evaluate_file
from .files import check_output_file, write_text
from .methods import METHODS
from .models import list_models
from .report import read_report, render_markdown
from .report.fronts import compare_fronts
from .sweep import Sweep, format_comparison, format_points, parse_param, parse_seeds, read_trials
from .train import Trainer, load_recipe
from .train.folder import FolderLock
from .train.outputs import write_json
from .train.recipe import bundled_recipes_dir
from .train.restore import load_run

EPILOGS = {
    "train": """examples:
  lowbit train recipes/resnet20-cifar10-w4a4.yaml --out runs/w4a4
  lowbit train resnet20-cifar10-w4a4 --set phases.0.epochs=1 --set data.train_limit=5000 --out runs/quick
  lowbit train recipes/resnet20-cifar10.yaml --out runs/fp32 --resume      # continue after a crash
  lowbit train my-model.yaml --allow-import --out runs/mine  # model: {factory: "mypkg.models:build"}
  torchrun --nproc_per_node=2 -m lowbit train mlp-mnist --out runs/ddp     # multi-process""",
    "eval": """examples:
  lowbit eval runs/w4a4                  # the trained model of a run folder
  lowbit eval runs/w4a4 --data-dir ~/data
  lowbit eval w4a4.lowbit --executor both  # a packed file: integer executor + fake-quant
  lowbit eval w4a4.onnx --limit 1000       # an ONNX file in onnxruntime""",
    "export": """examples:
  lowbit export runs/w4a4 --format packed --out w4a4.lowbit   # bit-packed safetensors
  lowbit export runs/w4a4 --format onnx --out w4a4.onnx       # QDQ, runs in onnxruntime
  lowbit export runs/w4a4 --format qonnx --out w4a4.qonnx     # Quant nodes for FINN/hls4ml
  lowbit export w4a4.lowbit --format onnx --out w4a4.onnx     # from a packed file""",
    "sweep": """examples:
  lowbit sweep resnet20-cifar10-mp --param methods.0.args.weight_avg_bits=2,3,4 --out runs/pareto
  lowbit sweep mlp-mnist --param optim.lr=log:1e-3:1e-1 --trials 8 --objective top1 --out runs/lr
  lowbit sweep resnet20-cifar10-w4a4 --param quant.weight.bits+quant.act.bits=2,3,8 --out runs/uniform
  lowbit sweep recipes/lowbitwidth/resnet20-w2-*.yaml --seeds 0,1 --set data.train_limit=20000 --out runs/w2
      (a study: every recipe at every seed; the table gives mean +- standard error per recipe)
  lowbit sweep resnet20-cifar10-mp --param methods.0.args.weight_avg_bits=2,3,4 --seeds 0,1,2 \
      --compare runs/uniform/sweep.json --out runs/mixed
      (each uniform point against the best mixed point no larger: gap of means +- standard error)
  Grid runs live in OUT/<recipe>+<key>=<value>+seed=<s>; all points at the first seed run before
  any at the next. Rerun the same command (or add seeds or values) to continue; finished runs are
  reused, interrupted ones resume. Results: OUT/sweep.json (runs, points with mean and standard
  error, Pareto front), OUT/pareto.png, OUT/curves.png (test top-1 per epoch of each point)""",
    "models": "example:\n  lowbit models",
    "recipes": "example:\n  lowbit recipes",
    "report": "example:\n  lowbit report runs/w4a4      # re-render report.md (and plots) from report.json",
}


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (``--limit 0`` or ``-5`` is an error, not ignored)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $LOWBIT_DATA, then ../shared/data)")


def _add_allow_import(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--allow-import", action="store_true",
                   help=f"let {what} import code of your Python environment; off by default")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowbit", description="Learned low-bit quantization: train, evaluate, report, export.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run `lowbit COMMAND --help` for the options and an example of each command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mk = lambda name, help_: sub.add_parser(  # noqa: E731
        name, help=help_, description=help_, epilog=EPILOGS.get(name),
        formatter_class=argparse.RawDescriptionHelpFormatter)

    p = mk("train", "train a recipe and write metrics.json, report.json, report.md and a checkpoint")
    p.add_argument("recipe", help="a recipe YAML file or the name of a bundled recipe")
    p.add_argument("--out", required=True, help="output folder for the run")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set optim.lr=0.05 --set phases.1.epochs=3")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--force", action="store_true",
                   help="replace the run in OUT once the new one has trained its first epoch")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--compare", metavar="SWEEP_JSON",
                   help="another sweep's sweep.json: for each of its points, the best point of this "
                        "sweep no larger, the gap of the means +- standard error (OUT/comparison.json)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_allow_import(p, "the recipe's model.factory")
    _add_data_dir(p)

    p = mk("eval", "evaluate a trained run or an exported file on its test set")
    p.add_argument("target", help="a run folder written by `lowbit train`, or a .lowbit/.onnx file")
    p.add_argument("--dataset", help="dataset of an exported file (default: the one it records)")
    p.add_argument("--limit", type=_positive_int, help="evaluate the first N test images only")
    p.add_argument("--executor", default="integer", choices=["integer", "fake_quant", "both"],
                   help="how to run a packed file (default: integer)")
    _add_allow_import(p, "the run's model.factory or the file's own model class")
    _add_data_dir(p)

    p = mk("export", "export a trained run (or a packed file) as packed, ONNX or QONNX")
    p.add_argument("target", help="a run folder written by `lowbit train`, or a packed file")
    p.add_argument("--format", default="packed", choices=["packed", "onnx", "qonnx"])
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--no-fold-bn", dest="fold_bn", action="store_false",
                   help="keep batch norms (default: fold them into the preceding layers)")
    p.add_argument("--opset", type=int, help="ONNX opset (default 21 for onnx, 13 for qonnx)")
    p.add_argument("--no-int4", dest="int4", action="store_false",
                   help="int8 containers only (for runtimes without int4)")
    p.add_argument("--int4-acts", action="store_true",
                   help="4-bit activations as int4/uint4 too (default: 8-bit containers with a "
                        "Clip; onnxruntime cannot run 4-bit Q/DQ next to MaxPool)")
    p.add_argument("--int32-bias", action="store_true",
                   help="int32 biases (integer-runtime form; rounds biases, see docs/export.md)")
    _add_allow_import(p, "the run's model.factory or the file's own model class")
    _add_data_dir(p)

    p = mk("sweep", "train recipes over a grid or a search space (Optuna) and seeds; mean +- "
                    "standard error per point, Pareto front of accuracy vs size")
    p.add_argument("recipes", nargs="+", metavar="RECIPE",
                   help="recipe YAML files or bundled recipe names (several: one more grid axis)")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=SPEC",
                   help="a recipe field to sweep: KEY=v1,v2,... or KEY=log|float|int:LOW:HIGH; "
                        "KEY1+KEY2=v1,v2 gives both fields each value (a diagonal)")
    p.add_argument("--out", required=True, help="folder for the trials, study.db and sweep.json")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a fixed override applied to every trial")
    p.add_argument("--trials", type=_positive_int, help="number of trials (default: the whole grid)")
    p.add_argument("--seeds", help="train every point at each of these seeds, e.g. 0,1,2 (sets the "
                                   "recipe's seed; results give mean and standard error)")
    p.add_argument("--objective", dest="objectives", action="append", metavar="NAME",
                   help="top1, size, or NAME:min/NAME:max from metrics.json (default: top1 and size)")
    p.add_argument("--compare", metavar="SWEEP_JSON",
                   help="another sweep's sweep.json: for each of its points, the best point of this "
                        "sweep no larger, the gap of the means +- standard error (OUT/comparison.json)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_allow_import(p, "the recipe's model.factory")
    _add_data_dir(p)

    mk("models", "list the registered models with their parameter counts")
    mk("recipes", "list the bundled recipes and the training methods")

    p = mk("report", "re-render the human report of a run from its report.json")
    p.add_argument("run", help="a run folder written by `lowbit train`")
    return parser


def cmd_train(args) -> int:
    recipe = load_recipe(args.recipe, args.overrides)
    # the folder is checked and locked first; --force replaces the old run at the new one's first write
    Trainer(recipe, Path(args.out), resume=args.resume, data_dir=args.data_dir,
            verbose=not args.quiet, device=args.device, force=args.force,
            allow_import=args.allow_import).run()
    return 0


def cmd_eval(args) -> int:
    if Path(args.target).is_file():
        print(format_eval(evaluate_file(args.target, dataset=args.dataset, data_dir=args.data_dir,
                                        limit=args.limit, executor=args.executor,
                                        allow_import=args.allow_import)))
        return 0
    run = load_run(args.target, args.data_dir, require_done=False, test_limit=args.limit,
                   allow_import=args.allow_import)
    res = evaluate(run.model, run.data.test_loader)
    print(f"{run.path}: top-1 {res['top1']:.2f}% on {res['n']} {run.recipe.data.dataset} test "
          f"images (loss {res['loss']:.4f})")
    return 0


def cmd_export(args) -> int:
    check_output_file(args.out)  # before the run is loaded and converted
    s = export_target(args.target, args.format, args.out, fold_bn=args.fold_bn, opset=args.opset,
                      int4=args.int4, int32_bias=args.int32_bias, int4_acts=args.int4_acts,
                      data_dir=args.data_dir, allow_import=args.allow_import)
    print(f"wrote {s['path']} ({args.format}, {s['file_bytes']:,} bytes; float32 weights "
          f"{s['float32_bytes']:,} bytes)")
    return 0


def cmd_models(args) -> int:
    rows = list_models()
    print(f"{'model':<20} {'params':>12}  {'dataset':<12} description")
    for r in rows:
        print(f"{r['name']:<20} {r['params']:>12,}  {r.get('dataset', ''):<12} {r['description']}")
    return 0


def cmd_recipes(args) -> int:
    root = bundled_recipes_dir()
    files = sorted(root.rglob("*.yaml"), key=lambda f: (len(f.relative_to(root).parts), f))
    names = [str(f.relative_to(root).with_suffix("")) for f in files]  # subfolder/name works too
    width = max([34] + [len(n) for n in names])
    print("bundled recipes (lowbit train NAME --out DIR):")
    for f, name in zip(files, names):
        data = yaml.safe_load(f.read_text()) or {}
        desc = " ".join(str(data.get("description", "")).split())
        first = desc.split(". ")[0].rstrip(".")
        print(f"  {name:<{width}} {first}")
    print("\ntraining methods (recipe `methods:` entries): " + ", ".join(METHODS.names() or ["none"]))
    return 0


def cmd_report(args) -> int:
    if not Path(args.run).is_dir():
        raise LowbitError(f"{args.run} is not a run folder (expected the --out folder of `lowbit train`)")
    with FolderLock(args.run, what="run folder"):  # not while a run writes there
        report = read_report(Path(args.run) / "report.json", args.run)
        write_text(Path(args.run) / "report.md", render_markdown(report))
    print(f"wrote {Path(args.run) / 'report.md'}")
    return 0


def cmd_sweep(args) -> int:
    sweep = Sweep(args.recipes, [parse_param(p) for p in args.params], Path(args.out),
                  overrides=args.overrides, objectives=args.objectives or ["top1", "size"],
                  trials=args.trials, data_dir=args.data_dir, verbose=not args.quiet,
                  seeds=parse_seeds(args.seeds) if args.seeds else None,
                  allow_import=args.allow_import)
    reference = read_trials(Path(args.compare)) if args.compare else None  # before any training
    summary = sweep.run()
    print(f"{len(summary['trials'])} runs, {len(summary['points'])} points; top-1 % (mean "
          f"± standard error over seeds):")
    print("\n".join(format_points(summary["points"])))
    print("Pareto front (size KB, top-1 %):")
    for p in summary["pareto"]:
        print(f"  {p['size'] / 1024:9.1f} KB  {p['top1']:6.2f}%  {p['label']}")
    if reference is not None:
        comparison = compare_fronts(summary["trials"], reference, x="size")
        write_json(Path(args.out) / "comparison.json", comparison)
        print(f"against {args.compare} (its points; the best point here no larger, gap ± standard error):")
        print("\n".join(format_comparison(comparison)))
    print(f"results: {Path(args.out) / 'sweep.json'}")
    return 0


COMMANDS: Dict[str, Callable] = {"sweep": cmd_sweep, "train": cmd_train, "eval": cmd_eval, "export": cmd_export,
                                 "models": cmd_models, "recipes": cmd_recipes, "report": cmd_report}


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except LowbitError as exc:
        message = " ".join(str(exc).split())  # always one line
        print(f"lowbit {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lowbit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
