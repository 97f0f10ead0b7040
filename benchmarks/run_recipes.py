"""Run the bundled recipes and write their results table into benchmarks/results.md.

    python -m benchmarks.run_recipes                          # every bundled recipe
    python -m benchmarks.run_recipes --recipes mlp-mnist resnet20-cifar10 --promote
    python -m benchmarks.run_recipes --table-only             # rewrite the table from runs/

Each recipe trains into ``runs/NAME`` with ``lowbit train`` (a finished run is skipped, an
interrupted one resumes). ``--promote`` copies float runs' weights to ``baselines/NAME.safetensors``
with a JSON record of the recipe, accuracy and command, so QAT recipes can fine-tune from them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
from benchmarks.results_md import section_rows, update_section  # noqa: E402

KB = 1024


def bundled() -> list:
    return sorted(p.stem for p in (REPO / "recipes").glob("*.yaml"))


def train(name: str, out: Path, extra: list) -> int:
    """``lowbit train NAME --out OUT EXTRA...``: skipped when OUT finished, resumed when it has a
    checkpoint; returns the exit code."""
    if (out / "metrics.json").is_file():
        print(f"[{name}] finished earlier: {out}")
        return 0
    cmd = [sys.executable, "-m", "lowbit", "train", name, "--out", str(out)] + extra
    if (out / "checkpoint.pt").is_file():
        cmd.append("--resume")
    print("$ " + " ".join(cmd[1:]), flush=True)
    return subprocess.call(cmd, cwd=REPO)


def promote(name: str, runs: Path, extra: list = ()) -> None:
    out = runs / name
    metrics = json.loads((out / "metrics.json").read_text())
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    if recipe.get("quant") is not None:
        return
    dest = REPO / "baselines"
    dest.mkdir(exist_ok=True)
    shutil.copyfile(out / "model.safetensors", dest / f"{name}.safetensors")
    record = {"recipe": f"recipes/{name}.yaml", "top1": metrics["top1"], "epochs": metrics["epochs"],
              "seconds": metrics["seconds"],
              "command": " ".join([f"lowbit train {name} --out runs/{name}", *extra]),
              "date": dt.date.today().isoformat(), "metrics": metrics}
    (dest / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"[{name}] promoted to baselines/{name}.safetensors (top-1 {metrics['top1']:.2f}%)")


def schedule_changes(name: str, run: Path) -> list:
    """``phases.I.epochs=N`` for every phase whose length in the run differs from the bundled
    recipe (the run's resolved recipe.yaml against recipes/NAME.yaml), to flag shortened runs."""
    bundled_phases = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text()).get("phases", [])
    ran = run / "recipe.yaml"
    if not ran.is_file():
        return []
    run_phases = yaml.safe_load(ran.read_text()).get("phases", [])
    changes = []
    for i, (want, got) in enumerate(zip(bundled_phases, run_phases)):
        if float(want.get("epochs", 1)) != float(got.get("epochs", 1)):
            changes.append(f"phases.{i}.epochs={float(got.get('epochs', 1)):g}")
    return changes


def table(runs: Path) -> str:
    rows = ["| recipe | top-1 % | float top-1 % | delta | packed KB | float32 KB | compression "
            "| act. bits (sum) | epochs | wall time | train img/s |", "|" + "---|" * 11]
    earlier = section_rows("recipes")  # rows of runs that are not in this runs/ folder
    for name in bundled():
        f = runs / name / "metrics.json"
        if not f.is_file():
            if name in earlier:
                rows.append(earlier[name])
            continue
        m = json.loads(f.read_text())
        changes = schedule_changes(name, runs / name)
        label = name + "".join(f" (`--set {c}`)" for c in changes)
        fp = m.get("top1_fp32")
        delta = f"{m['top1'] - fp:+.2f}" if fp is not None else ""
        rows.append(f"| {label} | {m['top1']:.2f} | {'' if fp is None else f'{fp:.2f}'} | {delta} "
                    f"| {m['size_bytes_packed'] / KB:.1f} | {m['float32_bytes'] / KB:.1f} "
                    f"| {m['compression']:.1f}x | {m['act_bits_total']:,} | {m['epochs']:g} "
                    f"| {m['seconds'] / 60:.0f} min | {m['train_images_per_second']:.0f} |")
    return "\n".join(rows)


def write_table(runs: Path) -> None:
    text = ["## Bundled recipes", "",
            "Command: `python -m benchmarks.run_recipes` (each row: `lowbit train NAME --out runs/NAME`;"
            " the QAT rows fine-tune from `baselines/`). Sizes are packed weights with batch norm "
            "folded (report.json has the per-layer breakdown); activation bits are the summed "
            "feature maps entering every layer for one image. Wall time includes evaluation "
            "after every epoch; runs used one CPU thread each unless noted. A `--set` after a "
            "name means the run differed from the bundled recipe there; `resnet20-cifar10` with "
            "`phases.0.epochs=0` is the recipe's second cycle run from the first cycle's weights "
            "(baselines/resnet20-cifar10.json has the whole history), and `resnet20-cifar10-swa` with "
            "phases 0-2 at 0 epochs is its SWA phase run from the smoothed cycle's weights "
            "(baselines/resnet20-cifar10-swa.json has the chain). The float top-1 is the model the "
            "run started from: the plain QAT rows start from the SWA baseline, the others from "
            "earlier baselines.", "", table(runs)]
    update_section("recipes", "\n".join(text))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="*", help="recipe names (default: all bundled recipes)")
    ap.add_argument("--runs", default=str(REPO / "runs"), help="where runs go (default: runs/)")
    ap.add_argument("--promote", action="store_true", help="copy float runs into baselines/")
    ap.add_argument("--table-only", action="store_true", help="only rewrite the results table")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="passed to lowbit train")
    args = ap.parse_args()
    runs = Path(args.runs)
    failed = []
    if not args.table_only:
        for name in args.recipes or bundled():
            extra = [a for s in args.overrides for a in ("--set", s)]
            if train(name, runs / name, extra) != 0:
                failed.append(name)
                continue
            if args.promote:
                promote(name, runs, extra)
            write_table(runs)
    write_table(runs)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
