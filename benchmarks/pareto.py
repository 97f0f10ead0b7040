"""Pareto front of learned mixed precision vs uniform-precision QAT (Schaefer et al., Figure 1).

    python benchmarks/pareto.py                       # MNIST MLP (minutes on a CPU)
    python benchmarks/pareto.py --scale resnet20      # ResNet-20 on CIFAR-10 (hours on a CPU)
    python benchmarks/pareto.py --scale mlp --match   # also mixed precision at each uniform size
    python benchmarks/pareto.py --scale resnet20 --part uniform & \
        python benchmarks/pareto.py --scale resnet20 --part mixed     # the two halves on two cores
    python benchmarks/pareto.py --scale resnet20 --points W8A8         # one uniform point and its mixed run
    python benchmarks/pareto.py --scale resnet20 --recorded           # table and plot from the records
    python benchmarks/pareto.py --scale resnet20-res8   # the same with integer residual adds (8-bit start)
    python benchmarks/pareto.py --scale resnet20-res8-mse  # and mixed runs calibrated by MSE, like uniform
    python benchmarks/pareto.py --scale resnet20-res8-mse-kd     # + distillation on both sides
    python benchmarks/pareto.py --scale resnet20-res8-mse-total  # mixed runs: one total_kb target
    python benchmarks/pareto.py --scale resnet20-res8 --points W4A4 \
        --ablation quantlr002 phases.1.quant_lr=0.02  # a mixed run with extra settings, recorded apart
    python benchmarks/pareto.py --scale resnet20-res8-mse --seeds 0,1 --points W4A4  # two seeds a point

Two ``lowbit sweep`` runs on the same model, data and epochs: the mixed-precision recipe over
weight budgets (average bits), and plain LSQ QAT over uniform bit-widths (for ResNet-20 the
diagonal W8A8, W4A4, W3A3, W2A2, with the first and last layer at 8 bits). ``--match`` (the
default for ResNet-20) adds one mixed-precision run per uniform point whose budget is exactly
that point's weight and activation sizes (``weight_kb``, ``act_kb``): the direct test of "at
equal size, is learned mixed precision at least as accurate?". Each point is a trained
run; its size is the total memory of Schaefer et al. (packed weights + summed activation feature maps,
in KB). Writes ``benchmarks/results/pareto-SCALE.png`` and ``.json`` and a
results.md section comparing, for every uniform point, the best mixed-precision point that is
no larger.

ResNet-20 trains every point as its own run (not a sweep) and records each finished one in
``benchmarks/results/pareto-resnet20/NAME.json`` (its --set list and metrics.json): a recorded
point is not trained again, so the 8 runs (hours) can be spread over sessions or machines by
committing the records, and the table is rebuilt from them. ``--retrain`` ignores the records.

One run a point is noisy by about half a point of top-1 on ResNet-20. ``--seeds 0,1,2`` trains
every point with each seed (seed s > 0 appends ``--set seed=s`` and records as
``NAME-seed{s}.json``; seed 0 is the single-seed front) and writes the section, JSON and plot
``pareto-SCALE-seeds0-1-2`` with means, per-seed top-1 and paired deltas (benchmarks/pareto_seeds.py).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from pareto_seeds import aggregate, parse_seeds, seed_sets, seed_suffix, seeds_table  # noqa: E402
from results_md import update_section  # noqa: E402
from run_recipes import train  # noqa: E402

KB = 1024
# First and last layer at 8 bits (what the uniform recipe already sets), as a --set value.
_FIRST_LAST = '{pattern: "@first", weight: {bits: 8}, act: {bits: 8}}, {pattern: "@last", weight: {bits: 8}, act: {bits: 8}}'
SCALES = {
    "mlp": {"mp": "mlp-mnist-mp", "mp_params": ["methods.0.args.weight_avg_bits=2,3,4",
                                                  "methods.0.args.act_avg_bits=2,4"],
            "uniform": "mlp-mnist-qat", "uniform_params": ["quant.weight.bits=2,3,4,8",
                                                           "quant.act.bits=2,3,4,8"]},
    # 5 epochs a run on both sides (the recipes train 10: the mp recipe 2 + 4 + 4), ~30 min on
    # one core; mixed precision only at the uniform points' sizes (--match): 8 runs, ~4 h.
    # The mp fine-tuning keeps learning the steps at the learned bits (learn_bits: false)
    # instead of freezing every quantizer parameter: +0.6 top-1 on mlp-mnist-mp (docs/methods.md).
    # quant_lr 0.08, not the recipe's 0.02: with phi = 20 a 2-epoch precision phase updates
    # the ranges 39 times, and at 0.02 the bits fell from 6 only to ~4 (154.7 KB of weights
    # for a 66.9 KB target); log2(q+/d) moves about 3 x quant_lr per update.
    # Each mixed run starts from its uniform point's allocation (pre-training at that point's
    # bits, first and last layer at 8, so it starts exactly at the budget) and learns how to
    # reallocate it. Pre-training at 6 bits instead and descending to W2A2's size in 2 epochs
    # fell to 56.6% at the end of the precision phase (ablation-matched-W2A2-pretrain6.json).
    # margin 0.001, not 1%: at W2A2's size every layer but the first and last is at bits_min,
    # so aiming 1% under the budget could only take bits from the input image and the first
    # and last layers (the input fell to 2 bits and top-1 to 16% mid-precision-phase).
    # init: both sides fine-tune from the 87.62% two-cycle baseline the fronts were recorded
    # with (the plain QAT recipes now start from the 88.30% SWA one).
    # fill_levels on both sides: without it the penalty's straight-through gradient leaves learned
    # grids with codes unused (n = 2 of 3 at 2 bits); with it the mixed runs gained 0.4-0.8 top-1.
    "resnet20": {"mp": "resnet20-cifar10-mp", "mp_params": [], "mp_start_at_point": True,
                 "mp_sets": ["phases.0.epochs=1", "phases.1.epochs=2", "phases.2.epochs=2",
                             "phases.2.freeze_quantizers=false", "phases.2.learn_bits=false",
                             "optim.quant_lr=0.08", "methods.0.args.margin=0.001",
                             "quant.weight.fill_levels=true", "quant.act.fill_levels=true",
                             f'quant.overrides=[{_FIRST_LAST}]'],
                 "uniform": "resnet20-cifar10-w4a4", "uniform_sets": ["phases.0.epochs=5"],
                 "uniform_params": ["quant.weight.bits+quant.act.bits=2,3,4,8"], "match": True,
                 "per_point": True, "init": "baselines/resnet20-cifar10.safetensors"},
}
# Integer residual adds on both sides: the inputs of every residual add quantized, starting at
# 8 bits (uniform keeps them at 8; mixed precision learns their bits like any other activation).
# The resnet20 front keeps them in float, which is 672 of W2A2's 726 KB of activations that
# neither side can change; an integer-only deployment has to quantize them anyway.
# quant_sets: the uniform side's quantizer settings, used by its runs and by the 0-epoch run
# that measures its size (the mixed run's budget); the mixed side gets them in mp_sets.
_RES8 = ["quant.residual=true", f'quant.overrides=[{_FIRST_LAST}, {{pattern: "*.add", act: {{bits: 8}}}}]']
SCALES["resnet20-res8"] = {
    **SCALES["resnet20"],
    "mp_sets": [s for s in SCALES["resnet20"]["mp_sets"] if not s.startswith("quant.overrides=")] + _RES8,
    "quant_sets": _RES8}
# The same front with the mixed runs' weights calibrated by MSE, as the uniform LSQ points are
# (the paper's Gaussian rule clips at mean +- 3 sigma whatever the bit-width), and gentler
# quantizer learning rates (0.02 while bits are learned, 0.01 otherwise). mp_after_sets come
# after the point's bits, so these records are the resnet20-res8 ablations of that name.
SCALES["resnet20-res8-mse"] = {
    **SCALES["resnet20-res8"],
    "mp_after_sets": ["quant.weight.observer=mse", "phases.1.quant_lr=0.02", "phases.0.quant_lr=0.01",
                      "phases.2.quant_lr=0.01"]}
# The res8-mse front with knowledge distillation from the float model on both sides (Schaefer et al.,
# Table 1; soft labels at T = 1 and alpha = 1: the student learns the teacher's predictions).
# methods.N one past the end appends: the uniform recipe has no method, the mixed one has budget.
_KD = "{name: distill, args: {mode: soft, alpha: 1.0, temperature: 1.0}}"
SCALES["resnet20-res8-mse-kd"] = {
    **SCALES["resnet20-res8-mse"],
    "uniform_sets": SCALES["resnet20-res8-mse"]["uniform_sets"] + [f"methods.0={_KD}"],
    "mp_after_sets": SCALES["resnet20-res8-mse"]["mp_after_sets"] + [f"methods.1={_KD}"]}
# The res8-mse front with one target for the total (total_kb = the uniform point's weights +
# activations) instead of one for each: mixed precision may trade weight bits for activation
# bits, and is held only to the total the front plots.
# Its uniform side is res8-mse's, so the uniform and sizes records are read from (and written to) there.
SCALES["resnet20-res8-mse-total"] = {**SCALES["resnet20-res8-mse"], "total_budget": True,
                                     "uniform_records": "pareto-resnet20-res8-mse"}
RECORDS = REPO / "benchmarks" / "results"


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
    flat = {k: v for key, v in params.items() for k in key.split("+")}  # tied fields: a+b
    return " ".join(f"{short[k]}{v}" if k in short else f"{k.split('.')[-1]}={v}"
                    for k, v in flat.items())


def uniform_points(cfg: dict) -> list:
    """The uniform sweep's grid as (params, --set overrides) pairs, in order."""
    from lowbit.sweep import parse_param

    params = [parse_param(t) for t in cfg["uniform_params"]]
    return [(dict(zip((p.key for p in params), combo)),
             [s for p, v in zip(params, combo) for s in p.sets(v)])
            for combo in itertools.product(*(p.values for p in params))]


def lowbit_train(recipe: str, run: Path, sets: list, record: Path = None, train_missing: bool = True,
                 init: str = None):
    """run_recipes.train (skip if finished, resume if interrupted), quiet; the run's metrics.

    With ``record``: a point recorded there with the same recipe, ``init`` and --set list is
    returned without training; a newly finished run is recorded there. The run folder then gets
    a suffix from the settings, so changed settings never pick up (or resume) a stale run.
    With ``train_missing=False`` an unrecorded point is None (not trained). ``init`` (float
    weights) pins ``model.init`` whatever the recipe names, so a front keeps its records when a
    recipe moves to a newer baseline."""
    pinned = [f"model.init={init}"] if init else []
    if record is not None:
        run = run.with_name(f"{run.name}-{settings_hash(recipe, pinned + sets)}")
    if record is not None and record.is_file():
        rec = json.loads(record.read_text())
        if rec["recipe"] == recipe and rec["sets"] == sets and rec.get("init") == init:
            print(f"[{recipe}] recorded earlier: {record.relative_to(REPO)}")
            return rec["metrics"]
    if not train_missing:
        return None
    if train(recipe, run, ["--quiet"] + [a for s in pinned + sets for a in ("--set", s)]) != 0:
        raise SystemExit(f"lowbit train {recipe} failed (run {run})")
    metrics = json.loads((run / "metrics.json").read_text())
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"recipe": recipe, **({"init": init} if init else {}), "sets": sets,
                                      "run": str(run.relative_to(REPO)), "metrics": metrics}, indent=2) + "\n")
    return metrics


def settings_hash(recipe: str, sets: list) -> str:
    """8 hex digits naming a recipe and --set list (``W2A2-1a2b3c4d``)."""
    return hashlib.sha256(json.dumps([recipe, sets]).encode()).hexdigest()[:8]


def uniform_records(cfg: dict, records: Path = None, name: str = ""):
    """Where a scale's uniform and sizes records (or the one called ``name``) are: its own
    folder, or another scale's (``uniform_records``) when the two share their uniform side;
    None: no records."""
    if records is None:
        return None
    return (RECORDS / cfg["uniform_records"] if cfg.get("uniform_records") else records) / name


def uniform_run(cfg: dict, params: dict, sets: list, out: Path, records: Path = None,
                train_missing: bool = True, seed: int = 0):
    """One uniform point as its own run (what ``--param`` would sweep); None if not trained."""
    from lowbit.sweep import point

    name = label(params).replace(" ", "") + seed_suffix(seed)
    run = out / name
    m = lowbit_train(cfg["uniform"], run, sets + cfg.get("uniform_sets", []) + cfg.get("quant_sets", []) +
                     seed_sets(seed), uniform_records(cfg, records, f"uniform-{name}.json"),
                     train_missing, cfg.get("init"))
    return None if m is None else {**point(str(run), params, m), "seed": seed}


def matched_run(cfg: dict, params: dict, sets: list, out: Path, records: Path = None,
                train_missing: bool = True, ablation: tuple = (), seed: int = 0):
    """A mixed-precision run whose budget is the uniform point's weight and activation sizes
    in KB (the same counts the budget penalty uses; their sum as ``total_kb`` when the scale sets
    ``total_budget``); None if not trained.

    ``ablation=(tag, extra_sets)`` appends ``extra_sets`` to the run's --set list and records
    it as ``ablation-matched-NAME-TAG.json`` instead of the front's ``matched-NAME.json``.

    The sizes come from the uniform recipe run for 0 epochs: packed weight bits and activation
    bits are fixed by the bit-widths, so they equal the trained run's (minutes, not hours, and
    these runs need not wait for the uniform ones). ``seed`` s > 0 appends ``seed=s`` last and
    ``-seed{s}`` to the record's name; the sizes run is the same for every seed."""
    from lowbit.sweep import point

    name = label(params).replace(" ", "")
    m = lowbit_train(cfg["uniform"], out / "sizes" / name, sets + cfg.get("quant_sets", []) + ["phases.0.epochs=0"],
                     uniform_records(cfg, records, f"sizes-{name}.json"), train_missing, cfg.get("init"))
    if m is None:
        return None
    w_kb, a_kb = m["weight_bits_total"] / 8 / KB, m["act_bits_total"] / 8 / KB  # exact KB: bits / 8192
    targets = {"total_kb": w_kb + a_kb} if cfg.get("total_budget") else {"weight_kb": w_kb, "act_kb": a_kb}
    budget = ["methods.0.args.weight_avg_bits=null", "methods.0.args.act_avg_bits=null"] + [
        f"methods.0.args.{k}={v!r}" for k, v in targets.items()]
    tag, extra = ablation or ("", [])
    stem = (f"{name}-{tag}" if tag else name) + seed_suffix(seed)
    record = f"ablation-matched-{stem}.json" if tag else f"matched-{stem}.json"
    run = out / f"at-{stem}"
    m = lowbit_train(cfg["mp"], run, budget + cfg.get("mp_sets", []) +
                     (sets if cfg.get("mp_start_at_point") else []) + cfg.get("mp_after_sets", []) + list(extra) +
                     seed_sets(seed), records and records / record, train_missing, cfg.get("init"))
    return None if m is None else {**point(str(run), {"budget": "size of " + label(params)}, m), "seed": seed}


def compare(mp: list, uniform: list) -> list:
    """For each uniform point: the most accurate mixed-precision point of no larger total size."""
    rows = []
    for u in sorted(uniform, key=lambda p: p["size"]):
        smaller = [p for p in mp if p["size"] <= u["size"]]
        best = max(smaller, key=lambda p: p["top1"]) if smaller else None
        rows.append({"uniform": u, "mixed": best,
                     "delta": None if best is None else best["top1"] - u["top1"]})
    return rows


def table(scale: str, rows: list, cfg: dict, missing: list = (), seeds: tuple = (0,)) -> str:
    title = f"## Pareto front: mixed precision vs uniform ({scale}" + (
        f", seeds {','.join(map(str, seeds))})" if list(seeds) != [0] else ")")
    seeds_arg = f" --seeds {','.join(map(str, seeds))}" if list(seeds) != [0] else ""
    budget_of = ("total KB, weights + activations as one `total_kb`" if cfg.get("total_budget")
                 else "weight and activation KB")
    intro = (f"Command: `python benchmarks/pareto.py --scale {scale}{seeds_arg}` ("
             f"{'runs' if cfg.get('per_point') else 'sweeps'} of `{cfg['mp']}` over "
             f"{', '.join(cfg['mp_params']) or 'the uniform sizes'} and `{cfg['uniform']}` over "
             f"{', '.join(cfg['uniform_params'])}"
             + (f"; both from `{cfg['init']}`" if cfg.get("init") else "") + "). Total size = packed weights + summed activation "
             "feature maps of one image. For each uniform point, the best mixed-precision point of "
             "no larger total size" + ("; `budget=size of Wx Ay` points are mixed-precision runs whose budget is that "
                                       f"uniform point's {budget_of} (`--match`)" if cfg.get("match") else "") +
             "".join(f"; `{cfg[k]}` runs with `--set {' '.join(v)}`"
                     for k, v in (("uniform", cfg.get("uniform_sets", []) + cfg.get("quant_sets", [])),
                                  ("mp", cfg.get("mp_sets", []))) if v) +
             (" and the uniform point's bits (it starts from that allocation)"
              if cfg.get("mp_start_at_point") else "") +
             (f", then `--set {' '.join(cfg['mp_after_sets'])}`" if cfg.get("mp_after_sets") else "") +
             (f". Seed s > 0 adds `--set seed=s` to both sides; top-1 is the mean over the seeds recorded for the point (sN: seed N), "
              "KB the largest, ± the standard error of the difference of means (unpaired: a rerun at the same seed "
              "can move top-1 by 0.3), and the paired deltas compare the two sides seed by seed"
              if seeds_arg else "") +
             f". Plot: [results/pareto-{scale}{_seeds_suffix(seeds)}.png]"
             f"(results/pareto-{scale}{_seeds_suffix(seeds)}.png)." +
             (f" Incomplete (the uniform or the mixed run not trained yet): {', '.join(missing)};"
              " rerun the command to add them." if missing else ""))
    if seeds_arg:
        return seeds_table(title, intro, rows, label)
    lines = [title, "", intro, "",
             "| uniform | KB | top-1 % | best mixed precision ≤ that size | KB | top-1 % | delta |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        u, m = r["uniform"], r["mixed"]
        right = "| (none this small) | | | |" if m is None else (
            f"| {label(m['params'])} | {m['size'] / KB:.1f} | {m['top1']:.2f} | {r['delta']:+.2f} |")
        lines.append(f"| {label(u['params'])} | {u['size'] / KB:.1f} | {u['top1']:.2f} " + right)
    return "\n".join(lines)


def _seeds_suffix(seeds) -> str:
    """Output names of a multi-seed front: ``pareto-SCALE-seeds0-1``; seed 0 alone adds nothing."""
    return "" if list(seeds) == [0] else "-seeds" + "-".join(map(str, seeds))


def ablate(ap, args, cfg: dict, out: Path, records: Path) -> int:
    """--ablation TAG SET...: the mixed runs of --points with extra settings; prints their top-1."""
    names = {label(p).replace(" ", ""): (p, sets) for p, sets in uniform_points(cfg)}
    wanted = [n for n in args.points.split(",") if n]
    if not cfg.get("per_point") or not wanted or set(wanted) - set(names):
        ap.error(f"--ablation needs a per-point scale and --points from {','.join(names)}")
    tag, extra = args.ablation[0], args.ablation[1:]
    for seed in args.seeds:
        for name in wanted:
            m = matched_run(cfg, *names[name], out / "ablation", records, ablation=(tag, extra), seed=seed)
            print(f"mixed at the size of {name}, {tag}, seed {seed}: top-1 {m['top1']:.2f}%, "
                  f"{m['size'] / KB:.1f} KB")
    return 0


def _seeds_arg(text: str) -> list:
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="mlp")
    ap.add_argument("--match", action="store_true",
                    help="also train mixed precision at each uniform point's size (default for resnet20)")
    ap.add_argument("--part", choices=("all", "uniform", "mixed"), default="all",
                    help="train only the uniform or only the mixed-precision runs (run both parts "
                         "at once on two cores or machines, then once more with 'all' for the table)")
    ap.add_argument("--points", default="",
                    help="per-point scales: only these uniform points and their mixed runs, e.g. W2A2,W3A3")
    ap.add_argument("--recorded", action="store_true",
                    help="per-point scales: train nothing, build the table and plot from the records")
    ap.add_argument("--ablation", nargs="+", metavar=("TAG", "SET"),
                    help="per-point scales: train only the mixed runs of --points with these extra "
                         "--set values, recorded as ablation-matched-NAME-TAG.json (front untouched)")
    ap.add_argument("--seeds", default="0", type=_seeds_arg,
                    help="per-point scales: train every point with these seeds (e.g. 0,1,2; seed 0 is "
                         "the recipes' own) and report means, per-seed top-1 and paired deltas")
    ap.add_argument("--retrain", action="store_true",
                    help="train every point even when benchmarks/results/pareto-SCALE/ records it")
    args = ap.parse_args()
    cfg, out = SCALES[args.scale], REPO / "runs" / f"pareto-{args.scale}"
    if args.seeds != [0] and not cfg.get("per_point"):
        per_point = ", ".join(k for k, v in SCALES.items() if v.get("per_point"))
        ap.error(f"--seeds needs a per-point scale ({per_point})")
    records = None if args.retrain or not cfg.get("per_point") else RECORDS / f"pareto-{args.scale}"
    missing = []
    if args.ablation:
        return ablate(ap, args, cfg, out, records)
    if cfg.get("per_point"):  # smallest sizes first: uniform W2A2, then mixed at its size, ...
        uniform, mp = [], []
        names = {label(p).replace(" ", ""): (p, sets) for p, sets in uniform_points(cfg)}
        wanted = [n for n in args.points.split(",") if n]
        if set(wanted) - set(names):
            ap.error(f"--points: unknown {sorted(set(wanted) - set(names))}; valid: {','.join(names)}")
        for seed, (name, (params, sets)) in itertools.product(args.seeds, names.items()):
            train_missing = not args.recorded and (not wanted or name in wanted)
            u = m = None
            if args.part != "mixed":
                u = uniform_run(cfg, params, sets, out / "uniform", records, train_missing, seed)
                uniform += [u] if u else []
            if args.part != "uniform":
                m = matched_run(cfg, params, sets, out / "matched", records, train_missing, seed=seed)
                mp += [m] if m else []
            if u is None or m is None:
                missing.append(label(params) + (f" seed {seed}" if args.seeds != [0] else ""))
    else:
        if args.part != "mixed":
            uniform = sweep(cfg["uniform"], cfg["uniform_params"], out / "uniform")["trials"]
        if args.part != "uniform":
            mp = sweep(cfg["mp"], cfg["mp_params"], out / "mixed")["trials"] if cfg["mp_params"] else []
            if args.match or cfg.get("match"):
                mp += [matched_run(cfg, params, sets, out / "matched") for params, sets in uniform_points(cfg)]
    if args.part != "all":
        then = "--recorded" if cfg.get("per_point") else "--part all"
        print(f"trained the {args.part} runs; rerun with {then} for the table and plot")
        return 0
    from lowbit.report.pareto import save_pareto_plot

    for p in mp + uniform:
        p["label"] = label(p["params"])
    if args.seeds != [0]:
        mp, uniform = aggregate(mp), aggregate(uniform)
    name = f"pareto-{args.scale}{_seeds_suffix(args.seeds)}"
    plot = RECORDS / f"{name}.png"
    save_pareto_plot({"learned mixed precision": mp, "uniform QAT": uniform}, plot,
                     title=f"{args.scale}: accuracy vs total memory")
    rows = compare(mp, uniform)
    result = REPO / "benchmarks" / "results" / f"{name}.json"
    result.write_text(json.dumps({"benchmark": "pareto", "scale": args.scale, "seeds": args.seeds,
                                  "mixed": mp, "uniform": uniform, "comparison": rows}, indent=2) + "\n")
    update_section(name, table(args.scale, rows, cfg, missing, args.seeds))
    print(f"wrote {result}, {plot} and benchmarks/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
