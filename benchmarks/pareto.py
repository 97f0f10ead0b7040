"""Pareto front of learned mixed precision vs uniform-precision QAT (seed 001, Figure 1).

    python benchmarks/pareto.py                       # MNIST MLP (minutes on a CPU)
    python benchmarks/pareto.py --scale resnet20      # ResNet-20 on CIFAR-10 (hours on a CPU)

Two ``lowbit sweep`` runs on the same model, data and epochs: the mixed-precision recipe over
weight budgets (average bits), and plain LSQ QAT over uniform bit-widths. Each point is a trained
run; its size is the total memory of seed 001 (packed weights + summed activation feature maps,
in KB). Writes ``runs/pareto-SCALE/pareto.png``, ``benchmarks/results/pareto-SCALE.json`` and a
results.md section comparing, for every uniform point, the best mixed-precision point that is
no larger.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from results_md import update_section  # noqa: E402

KB = 1024
SCALES = {
    "mlp": {"mp": "mlp-mnist-mp", "mp_params": ["methods.0.args.weight_avg_bits=2,3,4",
                                                  "methods.0.args.act_avg_bits=2,4"],
            "uniform": "mlp-mnist-qat", "uniform_params": ["quant.weight.bits=2,3,4,8",
                                                           "quant.act.bits=2,3,4,8"]},
    "resnet20": {"mp": "resnet20-cifar10-mp", "mp_params": ["methods.0.args.weight_avg_bits=2,3,4"],
                 "uniform": "resnet20-cifar10-w4a4",
                 "uniform_params": ["quant.weight.bits=2,3,4,8", "quant.act.bits=2,3,4,8"]},
}


def sweep(recipe: str, params: list, out: Path) -> dict:
    cmd = [sys.executable, "-m", "lowbit", "sweep", recipe, "--out", str(out), "--quiet"]
    for p in params:
        cmd += ["--param", p]
    print("$ lowbit " + " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)
    return json.loads((out / "sweep.json").read_text())


def label(params: dict) -> str:
    """``quant.weight.bits=2`` -> ``W2``, ``quant.act.bits=4`` -> ``A4``, else the last key part."""
    short = {"quant.weight.bits": "W", "quant.act.bits": "A"}
    return " ".join(f"{short[k]}{v}" if k in short else f"{k.split('.')[-1]}={v}"
                    for k, v in params.items())


def compare(mp: list, uniform: list) -> list:
    """For each uniform point: the most accurate mixed-precision point of no larger total size."""
    rows = []
    for u in sorted(uniform, key=lambda p: p["size"]):
        smaller = [p for p in mp if p["size"] <= u["size"]]
        best = max(smaller, key=lambda p: p["top1"]) if smaller else None
        rows.append({"uniform": u, "mixed": best,
                     "delta": None if best is None else best["top1"] - u["top1"]})
    return rows


def table(scale: str, rows: list, cfg: dict) -> str:
    lines = [f"## Pareto front: mixed precision vs uniform ({scale})", "",
             f"Command: `python benchmarks/pareto.py --scale {scale}` (sweeps of `{cfg['mp']}` over "
             f"{', '.join(cfg['mp_params'])} and `{cfg['uniform']}` over "
             f"{', '.join(cfg['uniform_params'])}). Total size = packed weights + summed activation "
             "feature maps of one image. For each uniform point, the best mixed-precision point of "
             "no larger total size. Plot: `runs/pareto-" + scale + "/pareto.png`.", "",
             "| uniform | KB | top-1 % | best mixed precision ≤ that size | KB | top-1 % | delta |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        u, m = r["uniform"], r["mixed"]
        right = "| (none this small) | | | |" if m is None else (
            f"| {label(m['params'])} | {m['size'] / KB:.1f} | {m['top1']:.2f} | {r['delta']:+.2f} |")
        lines.append(f"| {label(u['params'])} | {u['size'] / KB:.1f} | {u['top1']:.2f} " + right)
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="mlp")
    args = ap.parse_args()
    cfg, out = SCALES[args.scale], REPO / "runs" / f"pareto-{args.scale}"
    mp = sweep(cfg["mp"], cfg["mp_params"], out / "mixed")["trials"]
    uniform = sweep(cfg["uniform"], cfg["uniform_params"], out / "uniform")["trials"]
    from lowbit.report.pareto import save_pareto_plot

    for p in mp + uniform:
        p["label"] = label(p["params"])
    save_pareto_plot({"learned mixed precision": mp, "uniform QAT": uniform}, out / "pareto.png",
                     title=f"{args.scale}: accuracy vs total memory")
    rows = compare(mp, uniform)
    result = REPO / "benchmarks" / "results" / f"pareto-{args.scale}.json"
    result.write_text(json.dumps({"benchmark": "pareto", "scale": args.scale, "mixed": mp,
                                  "uniform": uniform, "comparison": rows}, indent=2) + "\n")
    update_section(f"pareto-{args.scale}", table(args.scale, rows, cfg))
    print(f"wrote {result}, {out / 'pareto.png'} and benchmarks/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
