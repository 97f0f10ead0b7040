"""The ablation of Zhuang, Shen, Tan, Liu, Reid (Towards Effective Low-bitwidth Convolutional
Neural Networks, CVPR 2018, Tables 4/5) at small scale on ResNet-20 / CIFAR-10, and its
learning-from-scratch vs fine-tuning comparison (Fig. 2) on ResNet-8.

    python benchmarks/lowbitwidth.py               # train what is missing (resumable), then tables
    python benchmarks/lowbitwidth.py --table-only  # only rewrite the results from the runs

Every step is one ``lowbit sweep`` over the recipes in ``recipes/lowbitwidth/`` (a finished run
is reused, an interrupted one resumes), in an order that gives answers early: the 2-bit
baseline at two seeds (the run-to-run noise), every row at 2 bits (seed 0), every row at 4 bits
(seed 0), every 2-bit row at a second seed, the scratch vs fine-tuning pair, then TS+Guided with
a fixed twin (the paper's Fig. 3c). The study scale
(``--set data.train_limit=...``) is the same for every row; each row trains 6 such epochs.
Results: ``benchmarks/results/lowbitwidth-{w2,w4,scratch,fixed-twin}.json`` (the sweeps' summaries),
``benchmarks/results/lowbitwidth-scratch.png`` and the section ``lowbitwidth`` of results.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from results_md import update_section  # noqa: E402

RECIPES = "recipes/lowbitwidth"
# the study scale, the same for every row: 10,000 training images per epoch, no float evaluation
# at the start (the baseline's 87.62% is recorded in baselines/resnet20-cifar10.json)
SCALE = ["data.train_limit=10000", "eval_fp32=false"]
ROWS = [("baseline", "Baseline"), ("ts", "TS"), ("pq", "PQ"), ("guided", "Guided"), ("pq-ts", "PQ+TS"),
        ("ts-guided", "TS+Guided"), ("pq-ts-guided", "PQ+TS+Guided"),
        ("pq-ts-guided-float-ends", "PQ+TS+Guided**")]


def steps() -> list:
    """(name, recipes, extra sweep arguments) in the order they run."""
    w = lambda b: [f"{RECIPES}/resnet20-w{b}-{row}.yaml" for row, _ in ROWS]  # noqa: E731
    return [("w2", [f"{RECIPES}/resnet20-w2-baseline.yaml"], ["--seeds", "0,1"]),
            ("w2", w(2), ["--seeds", "0"]),
            ("w4", w(4), ["--seeds", "0"]),
            ("w2", w(2), ["--seeds", "0,1"]),
            ("scratch", [f"{RECIPES}/resnet8-w4-ts-scratch.yaml", f"{RECIPES}/resnet8-w4-ts.yaml"], []),
            # Fig. 3c: the same guided run with the twin fixed (no joint training)
            ("fixed-twin", [f"{RECIPES}/resnet20-w2-ts-guided.yaml"],
             ["--seeds", "0,1", "--set", "methods.0.args.joint=false"])]


def command(name: str, recipes: list, extra: list, runs: Path) -> list:
    sets = [a for s in SCALE for a in ("--set", s)]
    out = runs / name
    out = out.relative_to(REPO) if out.is_absolute() and out.is_relative_to(REPO) else out
    return ["lowbit", "sweep", *recipes, *extra, *sets, "--out", str(out), "--quiet"]


def run(runs: Path, only: list) -> None:
    for name, recipes, extra in steps():
        if only and name not in only:
            continue
        cmd = command(name, recipes, extra, runs)
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run([sys.executable, "-m", "lowbit", *cmd[1:]], cwd=REPO, check=True)


def _cell(p, key="top1") -> str:
    """``mean ± s.e. (seed values)`` of one point, or the single value."""
    if p is None or key not in p["mean"]:
        return ""
    se = p["se"].get(key)
    seeds = "" if p["n"] < 2 else " (" + ", ".join(f"{v:.2f}" for v in p["values"][key]) + ")"
    return f"{p['mean'][key]:.2f}" + (f" ± {se:.2f}" if se is not None else "") + seeds


def _points(summary: dict) -> dict:
    """{row: point} of a sweep over the lowbitwidth recipes, with each seed's ``values``."""
    out = {}
    for p in summary.get("points", []):
        runs = [t for t in summary["trials"] if t["recipe"] == p["recipe"]]
        p["values"] = {k: [t["metrics"].get(k) for t in runs] for k in ("top1", "twin_top1")}
        out[p["recipe"].split("-", 2)[2]] = p  # resnet20-w2-pq-ts -> pq-ts
    return out


def pooled_sd(points: dict) -> tuple:
    """Run-to-run standard deviation of top-1 pooled over the rows with two or more seeds
    (sample variances averaged), and how many rows it pools."""
    variances = []
    for p in points.values():
        v = [x for x in p["values"]["top1"] if x is not None]
        if len(v) >= 2:
            m = sum(v) / len(v)
            variances.append(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    return ((sum(variances) / len(variances)) ** 0.5 if variances else None), len(variances)


def table(w4: dict, w2: dict) -> list:
    lines = ["| method | W4A4 top-1 % | W2A2 top-1 % (mean ± s.e. (seeds)) | W2A2 vs Baseline | twin top-1 % (W4A4 / W2A2) |",
             "|---|---|---|---|---|"]
    base = w2.get("baseline")
    for row, label in ROWS:
        p4, p2 = w4.get(row), w2.get(row)
        delta = ""
        if p2 is not None and base is not None and p2 is not base:
            d = p2["mean"]["top1"] - base["mean"]["top1"]
            ses = [x["se"].get("top1") for x in (p2, base)]
            err = (sum(s * s for s in ses) ** 0.5) if all(s is not None for s in ses) else None
            delta = f"{d:+.2f}" + (f" ± {err:.2f}" if err is not None else "")
        twin = " / ".join(_cell(p, "twin_top1") or "-" for p in (p4, p2)) if "guided" in row else ""
        lines.append(f"| {label} | {_cell(p4)} | {_cell(p2)} | {delta} | {twin} |")
    return lines


def scratch_lines(summary: dict) -> list:
    lines = []
    for p in summary.get("points", []):
        curve = ", ".join(f"{v:.1f}" for v in p["curves"].get("top1", []))
        what = "from scratch" if p["recipe"].endswith("scratch") else "fine-tuned from the float baseline"
        lines.append(f"- `{p['recipe']}` ({what}): final {p['mean']['top1']:.2f}%; test top-1 per "
                     f"epoch: {curve}")
    return lines


def write_results(runs: Path) -> None:
    results = REPO / "benchmarks" / "results"
    summaries = {}
    for name in ("w2", "w4", "scratch", "fixed-twin"):
        src = runs / name / "sweep.json"
        if src.is_file():  # run folders relative to the repository
            text = src.read_text().replace(f"{REPO}/", "")
            (results / f"lowbitwidth-{name}.json").write_text(text)
        dst = results / f"lowbitwidth-{name}.json"
        summaries[name] = json.loads(dst.read_text()) if dst.is_file() else {}
    if (runs / "scratch" / "curves.png").is_file():
        shutil.copyfile(runs / "scratch" / "curves.png", results / "lowbitwidth-scratch.png")
    sweeps = ["  " + " ".join(command(n, [r if len(rs) == 1 else f"{RECIPES}/resnet20-{n}-*.yaml"
                                          for r in rs[:1]], e, Path("runs/lowbitwidth"))) for n, rs, e in steps()]
    text = ["## Low-bitwidth ablation: TS, PQ, Guided (ResNet-20 / CIFAR-10)", "",
            "Command: `python benchmarks/lowbitwidth.py`, which runs these sweeps in order (each "
            "resumable; the recipe globs expand to the rows below, in their order):", "", "```",
            *sweeps, "```", "",
            "Rows are the recipes in `recipes/lowbitwidth/` (Zhuang, Shen, Tan, Liu, Reid: Towards "
            "Effective Low-bitwidth Convolutional Neural Networks, Tables 4/5): DoReFa weights and "
            "activations on every layer, the network input at 8 bits, the scalar layer, fine-tuned "
            "from `baselines/resnet20-cifar10.safetensors` (87.62%). Every row trains 6 epochs of "
            f"{int(SCALE[0].split('=')[1]):,} training images (SGD, lr 0.05, a cosine per phase) and is "
            "tested on the 10,000 test images. PQ goes 8 -> 4 (-> 2) bits; TS quantizes the weights, "
            "then the activations too; PQ+TS runs both stages progressively; Guided adds the "
            "full-precision twin (lambda and points in the recipes); ** keeps the first conv and "
            "last FC weights in float. W2A2: mean ± standard error over seeds 0 and 1 (each seed "
            "in brackets); W4A4: seed 0. One CPU thread per run.", ""]
    w2 = _points(summaries["w2"])
    text += table(_points(summaries["w4"]), w2)
    sd, rows = pooled_sd(w2)
    if sd is not None:
        text += ["", f"Run-to-run noise at W2A2: a standard deviation of {sd:.2f} points between seeds, "
                 f"pooled over {rows} row(s); a difference of two 2-seed means has a standard error of "
                 f"about {sd:.2f}."]
    fixed = _points(summaries["fixed-twin"]) if summaries["fixed-twin"] else {}
    if "ts-guided" in fixed:
        text += ["", f"TS+Guided with the twin fixed (`joint: false`, the paper's Fig. 3c ablation): "
                 f"W2A2 {_cell(fixed['ts-guided'])}; twin {_cell(fixed['ts-guided'], 'twin_top1')}."]
    if summaries["scratch"]:
        text += ["", "### Learning from scratch vs fine-tuning (Fig. 2), ResNet-8 W4A4 TS", "",
                 "![scratch vs fine-tuning](results/lowbitwidth-scratch.png)", ""] + scratch_lines(summaries["scratch"])
    update_section("lowbitwidth", "\n".join(text))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(REPO / "runs" / "lowbitwidth"), help="where the sweeps go")
    ap.add_argument("--table-only", action="store_true", help="only rewrite the results")
    ap.add_argument("--only", nargs="*", default=[], choices=["w2", "w4", "scratch", "fixed-twin"],
                    help="run only these steps (e.g. to run w4 in a second process)")
    args = ap.parse_args()
    if not args.table_only:
        run(Path(args.runs), args.only)
    write_results(Path(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
