"""Pareto fronts of learned mixed precision vs uniform-precision QAT (Schaefer et al., Figure 1).

    python -m benchmarks.pareto list --scale resnet20-res8-mse    # the lowbit sweep commands
    python -m benchmarks.pareto run --scale mlp                   # MNIST MLP (minutes on a CPU)
    python -m benchmarks.pareto run --scale resnet20-res8-mse --seeds 0,1,2 --points W4A4
    python -m benchmarks.pareto render                            # results.md from the records

Every run is a ``lowbit sweep`` run (a finished run is reused, an interrupted one resumes). The
MLP scale is two grid sweeps. A ResNet-20 scale (5 epochs a run, both sides from the 87.62%
baseline) is three kinds of sweep: uniform LSQ QAT over the diagonal W2A2 ... W8A8 (first and
last layer at 8 bits); the same for 0 epochs, which measures each point's packed weight and
activation sizes (fixed by the bit-widths); and, for each point, learned mixed precision whose
budget is exactly that point's sizes and which starts from its allocation: "at equal size, is
learned mixed precision at least as accurate?". The scales differ only in their ``--set`` lists
(``SCALES``); why each setting is there is in docs/experiments.md. ``run`` records each sweep's
runs in ``benchmarks/results/pareto-SCALE.json`` (``uniform``, ``sizes``, ``mixed``: sweep.json
rows, every seed), so a front spans sessions and machines; ``render`` rebuilds the plots and the
results.md sections (``pareto-SCALE``, and ``pareto-SCALE-seedsS`` when several seeds are
recorded) from the records alone, with :func:`lowbit.report.fronts.compare_fronts` (the
comparison ``lowbit sweep --compare`` prints).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List

from benchmarks.results_md import update_section
from lowbit.report.fronts import compare_fronts, seed_points
from lowbit.report.pareto import save_pareto_plot
from lowbit.sweep import parse_seeds

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "benchmarks" / "results"
KB = 1024
BITS = [2, 3, 4, 8]
INIT = "model.init=baselines/resnet20-cifar10.safetensors"  # pinned: the records' baseline
_ENDS = ('{pattern: "@first", weight: {bits: 8}, act: {bits: 8}}, '
         '{pattern: "@last", weight: {bits: 8}, act: {bits: 8}}')
# integer residual adds: every add's inputs quantized, from 8 bits (docs/experiments.md)
RES8 = ["quant.residual=true", f'quant.overrides=[{_ENDS}, {{pattern: "*.add", act: {{bits: 8}}}}]']
# the mixed runs: pre-train 1 epoch at the point's bits, learn bits 2, fine-tune 2 (steps still learned)
MIXED = ["phases.0.epochs=1", "phases.1.epochs=2", "phases.2.epochs=2", "phases.2.freeze_quantizers=false",
         "phases.2.learn_bits=false", "optim.quant_lr=0.08", "methods.0.args.margin=0.001",
         "quant.weight.fill_levels=true", "quant.act.fill_levels=true"]
MSE = ["quant.weight.observer=mse", "phases.1.quant_lr=0.02", "phases.0.quant_lr=0.01", "phases.2.quant_lr=0.01"]
KD = "{name: distill, args: {mode: soft, alpha: 1.0, temperature: 1.0}}"


@dataclass(frozen=True)
class Scale:
    quant: List[str]  # --set of both sides and of the sizes sweep
    uniform: List[str]  # --set of the uniform sweep only
    mixed: List[str]  # --set of the mixed runs only (besides their point's bits and budget)
    total: bool = False  # one total_kb target (weights + activations) instead of weight_kb and act_kb
    uniform_of: str = ""  # another scale whose uniform and sizes runs are this one's


U5 = [INIT, "phases.0.epochs=5"]
SCALES = {"resnet20": Scale([], U5, [INIT, *MIXED, f"quant.overrides=[{_ENDS}]"]),
          "resnet20-res8": Scale(RES8, U5, [INIT, *MIXED]),
          "resnet20-res8-mse": Scale(RES8, U5, [INIT, *MIXED, *MSE]),
          "resnet20-res8-mse-kd": Scale(RES8, U5 + [f"methods.0={KD}"], [INIT, *MIXED, *MSE, f"methods.1={KD}"]),
          "resnet20-res8-mse-total": Scale(RES8, U5, [INIT, *MIXED, *MSE], True, "resnet20-res8-mse")}
MLP = {"uniform": ["mlp-mnist-qat", "--param", "quant.weight.bits=2,3,4,8", "--param", "quant.act.bits=2,3,4,8"],
       "mixed": ["mlp-mnist-mp", "--param", "methods.0.args.weight_avg_bits=2,3,4",
                 "--param", "methods.0.args.act_avg_bits=2,4"]}
DIAGONAL = "quant.weight.bits+quant.act.bits"


def name(bits: int) -> str:
    return f"W{bits} A{bits}"


def _sets(sets: list) -> list:
    return [a for s in sets for a in ("--set", s)]


def _seeds(seeds: list) -> list:
    return ["--seeds", ",".join(map(str, seeds))] if seeds != [0] else []


def budget(scale: str, bits: int) -> list:
    """The mixed run's targets: the uniform point's sizes in KB from the recorded sizes sweep.
    ``run`` records that sweep before any mixed one; until then (``list`` on a fresh scale) the
    targets read ``W2A2_WEIGHT_KB`` and the like, which lowbit would refuse as numbers."""
    rows = [r for r in load(SCALES[scale].uniform_of or scale).get("sizes", []) if r["label"] == name(bits)]
    if rows:
        w, a = (rows[0]["metrics"][k] / 8 / KB for k in ("weight_bits_total", "act_bits_total"))
        kb = {"weight_kb": repr(w), "act_kb": repr(a), "total_kb": repr(w + a)}
    else:
        kb = {k: f"W{bits}A{bits}_{k.upper()}" for k in ("weight_kb", "act_kb", "total_kb")}
    keys = ["total_kb"] if SCALES[scale].total else ["weight_kb", "act_kb"]
    return ["methods.0.args.weight_avg_bits=null", "methods.0.args.act_avg_bits=null"] + [
        f"methods.0.args.{k}={kb[k]}" for k in keys]


def commands(scale: str, seeds: list, bits: list) -> list:
    """(side, label or None, ``lowbit sweep`` arguments) in the order they run."""
    out = f"runs/pareto-{scale}"
    if scale == "mlp":
        return [("uniform", None, ["sweep", *MLP["uniform"], "--out", f"{out}/uniform"]),
                ("mixed", None, ["sweep", *MLP["mixed"], "--compare", f"{out}/uniform/sweep.json",
                                 "--out", f"{out}/mixed"])]
    s = SCALES[scale]
    grid = ["resnet20-cifar10-w4a4", "--param", f"{DIAGONAL}={','.join(map(str, bits))}"]
    u_out = f"runs/pareto-{s.uniform_of or scale}"
    steps = [] if s.uniform_of else [
        ("uniform", None, ["sweep", *grid, *_seeds(seeds), *_sets(s.uniform + s.quant), "--out", f"{u_out}/uniform"]),
        ("sizes", None, ["sweep", *grid, *_sets([INIT, *s.quant, "phases.0.epochs=0"]), "--out", f"{u_out}/sizes"])]
    for b in bits:
        point = [f"quant.weight.bits={b}", f"quant.act.bits={b}"]
        steps.append(("mixed", name(b), ["sweep", "resnet20-cifar10-mp", "--seeds", ",".join(map(str, seeds)),
                                         *_sets(s.mixed + s.quant + point + budget(scale, b)),
                                         "--out", f"{out}/mixed-W{b}A{b}"]))
    return steps


def load(scale: str) -> dict:
    path = RECORDS / f"pareto-{scale}.json"
    return json.loads(path.read_text()) if path.is_file() else {"benchmark": "pareto", "scale": scale}


def label(params: dict) -> str:
    """``{quant.weight.bits: 2}`` -> ``W2``, ``{quant.act.bits: 4}`` -> ``A4``, else the last key part."""
    short = {"quant.weight.bits": "W", "quant.act.bits": "A"}
    flat = {k: v for key, v in params.items() for k in key.split("+")}  # tied fields: a+b
    return " ".join(f"{short[k]}{v}" if k in short else f"{k.split('.')[-1]}={v}" for k, v in flat.items())


def record(scale: str, side: str, point, argv: list) -> None:
    """Add the runs of a finished sweep to the scale's record (a rerun replaces its rows)."""
    summary = json.loads((REPO / argv[argv.index("--out") + 1] / "sweep.json").read_text())
    rows = []
    for t in summary["trials"]:
        params = {"budget": f"size of {point}"} if point else t["params"]
        run = Path(t["run"]).resolve()
        rows.append({"run": str(run.relative_to(REPO) if run.is_relative_to(REPO) else run), "params": params,
                     "seed": t["seed"] or 0, "top1": t["top1"], "size": t["size"], "label": label(params),
                     "metrics": t["metrics"]})
    rec = load(scale)
    keys = {(r["label"], r["seed"]) for r in rows}
    rec[side] = [r for r in rec.get(side, []) if (r["label"], r["seed"]) not in keys] + rows
    rec.setdefault("commands", {})[side if point is None else f"{side} {point}"] = "lowbit " + " ".join(argv)
    (RECORDS / f"pareto-{scale}.json").write_text(json.dumps(rec, indent=2) + "\n")


def shell(argv: list) -> str:
    """A sweep as one copyable command line."""
    return "`lowbit " + " ".join(f"'{a}'" if " " in a or "{" in a else a for a in argv) + "`"


def run(scale: str, seeds: list, bits: list) -> None:
    for i in range(len(commands(scale, seeds, bits))):
        side, point, argv = commands(scale, seeds, bits)[i]  # anew: a mixed run's budget needs the sizes
        print("$ lowbit " + " ".join(argv), flush=True)
        subprocess.run([sys.executable, "-m", "lowbit", *argv, "--quiet"], cwd=REPO, check=True)
        record(scale, side, point, argv)


def _acc(p: dict, seeds: bool) -> str:
    by_seed = ", ".join(f"s{k} {v:.2f}" for k, v in p["by_seed"].items())
    return f"{p['top1']:.2f} ({by_seed})" if seeds else f"{p['top1']:.2f}"


def table(rows: list, seeds: bool) -> List[str]:
    """Markdown rows: each uniform point, the best mixed point no larger (at every seed), the gap."""
    head = ("| uniform | KB | top-1 % mean (by seed) | best mixed precision ≤ that size | KB (max) "
            "| top-1 % mean (by seed) | delta of means (± SE) | paired deltas by seed |" if seeds else
            "| uniform | KB | top-1 % | best mixed precision ≤ that size | KB | top-1 % | delta |")
    lines = [head, "|---" * head.count(" | ") + "|---|"]
    for c in rows:
        u, m = c["reference"], c["best"]
        left = f"| {u['label']} | {u['size'] / KB:.1f} | {_acc(u, seeds)} "
        if m is None:
            lines.append(left + "| (none this small) | | | |" + (" |" if seeds else ""))
            continue
        delta = f"{c['gap']:+.2f}" + (f" ± {c['se']:.2f}" if seeds and c["se"] is not None else "")
        paired = f" | {', '.join(f's{s} {d:+.2f}' for s, d in c['paired'].items())}" if seeds else ""
        lines.append(left + f"| {m['label']} | {m['size'] / KB:.1f} | {_acc(m, seeds)} | {delta}{paired} |")
    return lines


def intro(scale: str, seeds: list, missing: list, plot: str) -> str:
    seeds_arg = f" --seeds {','.join(map(str, seeds))}" if len(seeds) > 1 else ""
    steps = [shell(argv) for _, _, argv in commands(scale, seeds, BITS)]
    if scale == "mlp":
        what = f"two `lowbit sweep` grids: {steps[0]} and {steps[1]}"
    else:
        grids = [shell(argv) for _, _, argv in commands(SCALES[scale].uniform_of or scale, seeds, BITS)[:2]]
        what = (f"`lowbit sweep` runs: uniform LSQ QAT {grids[0]}, its 0-epoch twin {grids[1]} for each "
                "point's sizes" + (f" (those of `--scale {SCALES[scale].uniform_of}`)" if SCALES[scale].uniform_of
                                   else "") + ", and for each point learned mixed precision that starts at its "
                "bits with its sizes as the budget" + (" (one `total_kb`)" if SCALES[scale].total else "")
                + f", e.g. at W2A2's size {steps[-len(BITS)]}")
    return (f"Command: `python -m benchmarks.pareto run --scale {scale}{seeds_arg}`, which runs {what}. "
            "Total size = packed weights + summed activation feature maps of one image. For each uniform "
            "point, the best mixed-precision point of no larger total size at every seed"
            + ("; top-1 is the mean over the seeds recorded for the point (sN: seed N), KB the largest, ± the "
               "standard error of the difference of means (unpaired: a rerun at the same seed can move top-1 "
               "by 0.3), and the paired deltas compare the two sides seed by seed" if seeds_arg else "")
            + f". Plot: [results/{plot}](results/{plot})."
            + (f" Incomplete (the uniform or the mixed run not trained yet): {', '.join(missing)}; "
               "rerun the command to add them." if missing else ""))


def render_section(scale: str, seeds: list) -> None:
    rec = load(scale)
    uniform = load(SCALES[scale].uniform_of).get("uniform", []) if scale in SCALES and SCALES[scale].uniform_of \
        else rec.get("uniform", [])
    uniform, mixed = ([r for r in rows if r.get("seed", 0) in seeds] for rows in (uniform, rec.get("mixed", [])))
    missing = [] if scale == "mlp" else [
        name(b) + (f" seed {s}" if len(seeds) > 1 else "") for s in seeds for b in BITS
        if not any(r["label"] == name(b) and r["seed"] == s for r in uniform)
        or not any(r["label"] == f"budget=size of {name(b)}" and r["seed"] == s for r in mixed)]
    section = f"pareto-{scale}" + ("-seeds" + "-".join(map(str, seeds)) if len(seeds) > 1 else "")
    save_pareto_plot({"learned mixed precision": seed_points(mixed, "size"),
                      "uniform QAT": seed_points(uniform, "size")}, RECORDS / f"{section}.png",
                     title=f"{scale}: accuracy vs total memory")
    title = f"## Pareto front: mixed precision vs uniform ({scale}" + (
        f", seeds {','.join(map(str, seeds))})" if len(seeds) > 1 else ")")
    rows = table(compare_fronts(mixed, uniform, x="size"), len(seeds) > 1)
    update_section(section, "\n".join([title, "", intro(scale, seeds, missing, f"{section}.png"), "", *rows]))


def render(scales: list) -> None:
    for scale in scales:
        rec = load(scale)
        seeds = sorted({r.get("seed", 0) for r in rec.get("mixed", [])})
        for chosen in [[0]] + ([seeds] if len(seeds) > 1 else []):
            render_section(scale, chosen)
        print(f"rendered pareto-{scale} in benchmarks/results.md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("list", "run", "render"))
    ap.add_argument("--scale", choices=["mlp", *SCALES], default="mlp")
    ap.add_argument("--seeds", default="0", help="train every point at these seeds, e.g. 0,1,2")
    ap.add_argument("--points", default="", help="ResNet-20 scales: only these points, e.g. W2A2,W4A4")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    bits = [b for b in BITS if not args.points or f"W{b}A{b}" in args.points.split(",")]
    if args.action == "list":
        for _, _, argv in commands(args.scale, seeds, bits):
            print(shell(argv).strip("`"))
    elif args.action == "run":
        run(args.scale, seeds, bits)
    if args.action != "list":
        render(["mlp", *SCALES] if args.action == "render" else [args.scale])
    return 0


if __name__ == "__main__":
    sys.exit(main())
