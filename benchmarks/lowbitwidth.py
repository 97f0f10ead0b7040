"""The ablation of Zhuang, Shen, Tan, Liu, Reid (Towards Effective Low-bitwidth Convolutional
Neural Networks, CVPR 2018, Tables 4/5) at small scale on ResNet-20 / CIFAR-10, and its
learning-from-scratch vs fine-tuning comparison (Fig. 2) on ResNet-8.

    python -m benchmarks.lowbitwidth               # train what is missing (resumable), then tables
    python -m benchmarks.lowbitwidth --table-only  # only render the results from the finished runs
    python -m benchmarks.lowbitwidth --only w4     # run only the steps writing runs/lowbitwidth/w4

Every step is one ``lowbit sweep`` over the recipes in ``recipes/lowbitwidth/`` (a finished run is
reused, an interrupted one resumes), in an order that gives answers early: every row at 2 bits
(seed 0); Baseline and PQ+TS+Guided at a second seed (the 2-bit target and its noise); the scratch
vs fine-tuning pair; every row at 4 bits (seed 0); every 2-bit row at the second seed; then
TS+Guided with a fixed twin (the paper's Fig. 3c); last, the joint twin at a tenth of the learning
rate. Every row trains 6 epochs at the same study scale (``--set data.train_limit=...``).
``--table-only`` reads the run folders without writing to them, so it renders a partial table while
the sweeps still run (rows without a finished run say "not run"). Results:
``benchmarks/results/lowbitwidth-{w2,w4,scratch,fixed-twin,twin-lr}.json`` (finished runs, points
with mean and standard error, runs still missing), ``benchmarks/results/lowbitwidth-scratch.png``
and the section ``lowbitwidth`` of results.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from benchmarks.results_md import update_section  # noqa: E402

from lowbit.plotting import save_curves_plot  # noqa: E402
from lowbit.sweep import Sweep  # noqa: E402

RECIPES = "recipes/lowbitwidth"
RESULTS = REPO / "benchmarks" / "results"
# the study scale, the same for every row: 10,000 training images per epoch, no float evaluation
# at the start (the baseline's 87.62% is recorded in baselines/resnet20-cifar10.json)
SCALE = ["data.train_limit=10000", "eval_fp32=false"]
ROWS = [("baseline", "Baseline"), ("ts", "TS"), ("pq", "PQ"), ("guided", "Guided"), ("pq-ts", "PQ+TS"),
        ("ts-guided", "TS+Guided"), ("pq-ts-guided", "PQ+TS+Guided"),
        ("pq-ts-guided-float-ends", "PQ+TS+Guided**")]
NAMES = ("w2", "w4", "scratch", "fixed-twin", "twin-lr")
TWIN_LR = "methods.0.args.optim={lr: 0.005}"  # a tenth of the recipes' lr, for the twin only


def _rows(bits: int, rows=None) -> list:
    return [f"{RECIPES}/resnet20-w{bits}-{r}.yaml" for r in rows or [r for r, _ in ROWS]]


def steps() -> list:
    """(out folder name, recipes, extra sweep arguments) in the order they run."""
    return [("w2", _rows(2), ["--seeds", "0"]),
            ("w2", _rows(2, ["baseline", "pq-ts-guided"]), ["--seeds", "0,1"]),
            ("scratch", [f"{RECIPES}/resnet8-w4-ts-scratch.yaml", f"{RECIPES}/resnet8-w4-ts.yaml"], []),
            ("w4", _rows(4), ["--seeds", "0"]),
            ("w2", _rows(2), ["--seeds", "0,1"]),
            # Fig. 3c: the same guided run with the twin fixed (no joint training)
            ("fixed-twin", _rows(2, ["ts-guided"]), ["--seeds", "0,1", "--set", "methods.0.args.joint=false"]),
            # the joint twin at a tenth of the learning rate (the recipe's 0.05 is for low-bit training)
            ("twin-lr", _rows(2, ["ts-guided"]), ["--seeds", "0", "--set", TWIN_LR])]


def _short(recipes: list) -> list:
    """Recipe paths as the shell would take them: ``.../resnet20-w2-{baseline,ts,...}.yaml``."""
    if len(recipes) < 3:
        return recipes
    prefix = recipes[0][:recipes[0].rindex("-w") + 4]  # recipes/lowbitwidth/resnet20-w2-
    return [prefix + "{" + ",".join(r[len(prefix):-len(".yaml")] for r in recipes) + "}.yaml"]


def command(name: str, recipes: list, extra: list, runs: Path, short: bool = False) -> list:
    sets = [a for s in SCALE for a in ("--set", s)]
    out = runs / name
    out = out.relative_to(REPO) if out.is_absolute() and out.is_relative_to(REPO) else out
    extra = [f"'{a}'" if short and " " in a else a for a in extra]  # as a shell would take it
    return ["lowbit", "sweep", *(_short(recipes) if short else recipes), *extra, *sets,
            "--out", str(out), "--quiet"]


def run(runs: Path, only: list) -> None:
    for name, recipes, extra in steps():
        if only and name not in only:
            continue
        cmd = command(name, recipes, extra, runs)
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run([sys.executable, "-m", "lowbit", *cmd[1:]], cwd=REPO, check=True)


def _sweep(name: str, recipes: list, extra: list, runs: Path) -> Sweep:
    """The step as a :class:`Sweep` object (the same run folders ``lowbit sweep`` trains)."""
    seeds = [int(s) for s in extra[extra.index("--seeds") + 1].split(",")] if "--seeds" in extra else None
    sets = [extra[i + 1] for i, a in enumerate(extra) if a == "--set"]
    return Sweep([str(REPO / r) for r in recipes], [], runs / name, overrides=SCALE + sets,
                 verbose=False, seeds=seeds)


def collect(name: str, runs: Path) -> dict:
    """The summary of every finished run of the steps writing ``runs/name`` (read-only), with
    the run folders still missing."""
    rows, missing, sweep = {}, [], None
    for step in [s for s in steps() if s[0] == name]:
        sweep = _sweep(*step, runs)
        done, todo = sweep.finished()
        for r in done:
            r["run"] = str(Path(r["run"]).relative_to(REPO)) if Path(r["run"]).is_relative_to(REPO) else r["run"]
            rows.setdefault(r["run"], r)
        missing += [m for m in todo if m not in missing]
    finished = {Path(r).name for r in rows}
    summary = sweep.summary(list(rows.values()))
    summary["recipes"] = [str(Path(r).relative_to(REPO)) for r in summary["recipes"]]
    summary["recipe"] = summary["recipes"][0]
    summary["missing"] = [m for m in missing if m not in finished]
    summary["commands"] = [" ".join(command(*s, Path("runs/lowbitwidth"), short=True)) for s in steps() if s[0] == name]
    return summary


def _cell(p, key="top1") -> str:
    """``mean ± s.e. (seed values)`` of one point, the single value, or "not run"."""
    if p is None:
        return "not run"
    if key not in p["mean"]:
        return "-"
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


def versus(p: dict, base: dict, sd) -> tuple:
    """Difference of two rows' mean top-1 and its standard error from the pooled run-to-run
    standard deviation (None without one): sd * sqrt(1/n + 1/n_base)."""
    d = p["mean"]["top1"] - base["mean"]["top1"]
    return d, (sd * (1 / p["n"] + 1 / base["n"]) ** 0.5 if sd is not None else None)


def table(w4: dict, w2: dict, sd) -> list:
    lines = ["| method | W4A4 top-1 % (seed 0) | W2A2 top-1 % (mean ± s.e. (seeds)) | W2A2 vs Baseline "
             "(± s.e.) | twin top-1 % (W4A4 / W2A2) |", "|---|---|---|---|---|"]
    base = w2.get("baseline")
    for row, label in ROWS:
        p4, p2 = w4.get(row), w2.get(row)
        delta = "not run" if p2 is None or base is None else "(reference)"
        if p2 is not None and base is not None and p2 is not base:
            d, err = versus(p2, base, sd)
            delta = f"{d:+.2f}" + (f" ± {err:.2f}" if err is not None else "")
        twin = " / ".join(_cell(p, "twin_top1") for p in (p4, p2)) if "guided" in row else ""
        lines.append(f"| {label} | {_cell(p4)} | {_cell(p2)} | {delta} | {twin} |")
    return lines


def target_line(w2: dict, sd) -> str:
    """The 2-bit target: PQ+TS+Guided at least 1.0 point above Baseline (mean over seeds)."""
    full, base = w2.get("pq-ts-guided"), w2.get("baseline")
    if full is None or base is None:
        return "Target (W2A2 PQ+TS+Guided at least 1.0 point above Baseline): not run yet."
    d, err = versus(full, base, sd)
    verdict = "met" if d >= 1.0 else "not met"
    noise = "" if err is None else (f" ± {err:.2f} (s.e.), " + ("more" if abs(d) > 2 * err else "less")
                                    + " than two standard errors from zero")
    return (f"Target (W2A2 PQ+TS+Guided at least 1.0 point above Baseline, mean over seeds): {verdict}: "
            f"{d:+.2f}{noise}; PQ+TS+Guided over {full['n']} seed(s), Baseline over {base['n']}.")


def scratch_lines(summary: dict) -> list:
    lines = []
    points = {p["recipe"]: p for p in summary.get("points", [])}
    for recipe, what in (("resnet8-w4-ts-scratch", "from scratch (random weights, scalar layer 0.01)"),
                         ("resnet8-w4-ts", "fine-tuned from `baselines/resnet8-cifar10.safetensors`")):
        p = points.get(recipe)
        if p is None:
            lines.append(f"- `{recipe}`, {what}: not run")
            continue
        curve = ", ".join(f"{v:.1f}" for v in p["curves"].get("top1", []))
        lines.append(f"- `{recipe}`, {what}: final {p['mean']['top1']:.2f}%; test top-1 per epoch: {curve}")
    return lines


def _missing_line(summaries: dict) -> list:
    """One sentence naming the runs not finished yet, grouped by table column and seed."""
    labels = {**dict(ROWS), "resnet8-w4-ts-scratch": "from scratch", "resnet8-w4-ts": "fine-tuned"}
    groups: dict = {}
    for name, summary in summaries.items():
        for run in summary["missing"]:
            recipe, _, seed = run.partition("+seed=")
            row = recipe.split("-", 2)[2] if recipe.startswith("resnet20-") else recipe
            column = {"w2": "W2A2", "w4": "W4A4", "fixed-twin": "fixed twin (W2A2)",
                      "twin-lr": "twin lr 0.005 (W2A2)", "scratch": "ResNet-8 W4A4"}[name]
            groups.setdefault(f"{column}" + (f" seed {seed}" if seed else ""), []).append(labels.get(row, row))
    if not groups:
        return []
    parts = [f"{k}: " + ("every row" if len(v) == len(ROWS) else ", ".join(v)) for k, v in groups.items()]
    return ["", "Not run yet, for CPU time (each run trains on one core: about 6 minutes per ResNet-20 "
            "row, about twice that with the twin; rerunning the command resumes the sweeps): "
            + "; ".join(parts) + "."]


def write_results(runs: Path) -> None:
    summaries = {}
    for name in NAMES:
        summaries[name] = collect(name, runs)
        (RESULTS / f"lowbitwidth-{name}.json").write_text(json.dumps(summaries[name], indent=1) + "\n")
    scratch = {("from scratch" if p["recipe"].endswith("scratch") else "fine-tuned"): p["curves"].get("top1", [])
               for p in summaries["scratch"]["points"]}
    (RESULTS / "lowbitwidth-scratch.png").unlink(missing_ok=True)  # never a plot of older runs
    plot = save_curves_plot(scratch, RESULTS / "lowbitwidth-scratch.png",
                            title="ResNet-8 W4A4 TS on CIFAR-10: test top-1 per epoch")
    w2, w4 = _points(summaries["w2"]), _points(summaries["w4"])
    sd, pooled = pooled_sd(w2)
    text = ["## Low-bitwidth ablation: TS, PQ, Guided (ResNet-20 / CIFAR-10)", "",
            "Command: `python -m benchmarks.lowbitwidth` (`--table-only` renders this section from "
            "the finished runs), which runs these sweeps in order, each resumable:", "", "```",
            *[" ".join(command(*s, Path("runs/lowbitwidth"), short=True)) for s in steps()], "```", "",
            "Rows are the recipes in `recipes/lowbitwidth/` (Zhuang, Shen, Tan, Liu, Reid: Towards "
            "Effective Low-bitwidth Convolutional Neural Networks, Tables 4/5): DoReFa weights and "
            "activations on every layer, the network input at 8 bits, the scalar layer, fine-tuned "
            "from `baselines/resnet20-cifar10.safetensors` (87.62%). Every row trains 6 epochs of "
            f"{int(SCALE[0].split('=')[1]):,} training images (SGD, lr 0.05, a cosine per phase) and is "
            "tested on the 10,000 test images. PQ goes 8 -> 4 (-> 2) bits; TS quantizes the weights, "
            "then the activations too; PQ+TS runs both stages progressively; Guided adds the "
            "full-precision twin (lambda 5e-3, the recipes' default points); ** keeps the first conv and "
            "last FC weights in float. W2A2: mean ± standard error over the seeds that finished (each "
            "seed in brackets); W4A4: seed 0; the twin column is the full-precision twin's final top-1. "
            "The difference to Baseline has the standard error of the pooled run-to-run noise. One CPU "
            "thread per run.", ""]
    text += table(w4, w2, sd)
    if sd is not None:
        text += ["", f"Run-to-run noise at W2A2: a standard deviation of {sd:.2f} points between seeds, "
                 f"pooled over {pooled} row(s) with two seeds."]
    text += ["", target_line(w2, sd)]
    fixed = _points(summaries["fixed-twin"]).get("ts-guided")
    text += ["", "TS+Guided with the twin fixed (`joint: false`, the paper's Fig. 3c ablation): W2A2 "
             f"{_cell(fixed)}; twin {_cell(fixed, 'twin_top1')}."]
    slow = _points(summaries["twin-lr"]).get("ts-guided")
    text += ["", "TS+Guided with the joint twin at a tenth of the learning rate (`optim: {lr: 0.005}` for "
             f"the twin only): W2A2 {_cell(slow)}; twin {_cell(slow, 'twin_top1')}."]
    text += ["", "### Learning from scratch vs fine-tuning (Fig. 2), ResNet-8 W4A4 TS", "",
             "Both train 10 epochs (5 of 4-bit weights, then 5 with 4-bit activations too) at the "
             "same scale."]
    if plot is not None:
        text += ["", "![scratch vs fine-tuning](results/lowbitwidth-scratch.png)"]
    text += [""] + scratch_lines(summaries["scratch"]) + _missing_line(summaries)
    update_section("lowbitwidth", "\n".join(text))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(REPO / "runs" / "lowbitwidth"), help="where the sweeps go")
    ap.add_argument("--table-only", action="store_true",
                    help="only render the results from the finished runs (reads the runs, writes nothing there)")
    ap.add_argument("--only", nargs="*", default=[], choices=list(NAMES),
                    help="run only the steps writing these folders (e.g. w4 in a second process)")
    args = ap.parse_args()
    if not args.table_only:
        run(Path(args.runs).resolve(), args.only)
    write_results(Path(args.runs).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
