"""Gradient-scaling study (Schaefer et al., Figure 4): rounding-gradient estimators for weights and
activations, compared on the same mixed-precision recipe over several seeds.

    python -m benchmarks.grad_scaling                                   # mlp-mnist-mp, 3 seeds
    python -m benchmarks.grad_scaling --recipe resnet20-cifar10-mp --seeds 0 1 2
    python -m benchmarks.grad_scaling --pairs ste:ste ewgs:invtanh acos:tanh --seeds 0 1

Each (weight estimator, activation estimator, seed) trains ``lowbit train RECIPE --set
quant.weight.estimator=W --set quant.act.estimator=A --set seed=S`` into
``runs/grad-scaling/RECIPE/W-A-sS`` (finished runs are reused, interrupted ones resume). The
result is the mean and spread (sample standard deviation, min, max) of top-1 and of the final
size per pair, in ``benchmarks/results/grad_scaling-RECIPE.json`` and a results.md section.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
from benchmarks.results_md import update_section  # noqa: E402

DEFAULT_PAIRS = ["ste:ste", "ewgs:ste", "ste:invtanh", "ewgs:invtanh"]


def run_one(recipe: str, w: str, a: str, seed: int, runs: Path, extra: list) -> dict:
    out = runs / f"{w}-{a}-s{seed}"
    if not (out / "metrics.json").is_file():
        cmd = [sys.executable, "-m", "lowbit", "train", recipe, "--out", str(out), "--quiet",
               "--set", f"quant.weight.estimator={w}", "--set", f"quant.act.estimator={a}",
               "--set", f"seed={seed}", *extra]
        if (out / "checkpoint.pt").is_file():
            cmd.append("--resume")
        print("$ " + " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, cwd=REPO, check=True)
    m = json.loads((out / "metrics.json").read_text())
    print(f"  {w:>7}/{a:<8} seed {seed}: top-1 {m['top1']:.2f}%  {m['size_bytes_packed'] / 1024:.1f} KB",
          flush=True)
    return m


def spread(values: list) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def table(recipe: str, results: dict, seeds: list) -> str:
    rows = [f"## Gradient scaling study: {recipe}", "",
            f"Command: `python -m benchmarks.grad_scaling --recipe {recipe} --seeds "
            f"{' '.join(map(str, seeds))}`. Rounding-gradient estimator for weights / activations; "
            "top-1 is mean ± sample std over the seeds (min..max); size is packed weights after "
            "the budget phase.", "",
            "| weights | activations | top-1 % (mean ± std) | min..max | weight bits (mean) | KB |",
            "|---|---|---|---|---|---|"]
    for key, r in results.items():
        t, kb = r["top1"], r["size_kb"]["mean"]
        rows.append(f"| {r['weights']} | {r['acts']} | {t['mean']:.2f} ± {t['std']:.2f} "
                    f"| {t['min']:.2f}..{t['max']:.2f} | {r['weight_avg_bits']['mean']:.2f} | {kb:.1f} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="mlp-mnist-mp")
    ap.add_argument("--pairs", nargs="+", default=DEFAULT_PAIRS, help="WEIGHT:ACT estimator pairs")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--runs", default=str(REPO / "runs" / "grad-scaling"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="passed to lowbit train")
    args = ap.parse_args()
    runs = Path(args.runs) / args.recipe
    extra = [a for s in args.overrides for a in ("--set", s)]
    results = {}
    for pair in args.pairs:
        w, _, a = pair.partition(":")
        ms = [run_one(args.recipe, w, a, s, runs, extra) for s in args.seeds]
        results[pair] = {"weights": w, "acts": a, "seeds": args.seeds,
                         "top1": spread([m["top1"] for m in ms]),
                         "size_kb": spread([m["size_bytes_packed"] / 1024 for m in ms]),
                         "weight_avg_bits": spread([m["weight_avg_bits"] for m in ms]),
                         "runs": [m["top1"] for m in ms]}
    out = REPO / "benchmarks" / "results" / f"grad_scaling-{args.recipe}.json"
    out.write_text(json.dumps({"benchmark": "grad_scaling", "recipe": args.recipe,
                               "overrides": args.overrides, "results": results}, indent=2) + "\n")
    update_section(f"grad-scaling-{args.recipe}", table(args.recipe, results, args.seeds))
    print(f"wrote {out} and benchmarks/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
