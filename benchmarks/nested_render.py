"""Tables and plots of benchmarks/nested_fronts.py, rebuilt from its records alone."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.nested_studies import (FLOAT, GUIDANCE, INTROS, INTROS_BY_DATASET, NOTES, SEED0, STUDIES, TITLES,
                                       VARIANTS)
from benchmarks.results_md import update_section

from lowbit.report.fronts import comparison_table, front_vs_reference, kb, smallest_within_tolerance
from lowbit.report.pareto import save_pareto_plot

REPO = Path(__file__).resolve().parents[1]
PLOTS = REPO / "benchmarks" / "results"
XLABEL = "packed weights + biases with their scales (KB)"
ANY_NESTED = "any nested run (floor or round codes; ratio rule, or STE scales with a loss term)"
PLOT_DROP = 10  # points this far below float would squash the interesting range of the plot
SHORT = {"quant.weight.threshold+quant.bias.threshold": "lambda", "optim.quant_lr": "quant_lr",
         "quant.weight.bits": "bits", "quant.weight.rounding+quant.bias.rounding": "rounding", "optim.lr": "lr",
         "methods.0.args.coef": "coef", "seed": "seed",
         "quant.overrides.0.weight.threshold+quant.overrides.0.bias.threshold": "lambda_conv",
         "quant.overrides.1.weight.threshold+quant.overrides.1.bias.threshold": "lambda_dense"}


def _params(row) -> str:
    return ", ".join(f"{SHORT.get(k, k)} {v:g}" if isinstance(v, float) else f"{SHORT.get(k, k)} {v}"
                     for k, v in row["params"].items())


def _value(row, name):
    return next(v for k, v in row["params"].items() if SHORT.get(k, k) == name)


def _rows_table(rows, fp32) -> list:
    lines = ["| setting | top-1 % | vs float | KB | avg bits | trial |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: r["size_bytes_packed"]):
        lines.append(f"| {_params(r)} | {r['top1']:.2f} | {r['top1'] - fp32:+.2f} | {kb(r['size_bytes_packed'])} "
                     f"| {r['weight_avg_bits']:.2f} | {Path(r['run']).name} |")
    return lines


def _command(rec) -> str:
    return f"`{rec['command']}`"


RATIO_STUDIES = ("lambda", "lambda-mid", "lr", "finetune", "finetune-small", "finetune-top", "finetune-long",
                 "wlr", "type-conv", "type-dense")


def _trials(load, dataset, studies):
    return [t for s in studies for t in (load(dataset, s) or {"trials": []})["trials"]]


def _verdict(rows, ref, fp32, what) -> str:
    ptq4 = next(r for r in ref if _value(r, "bits") == 4)
    best = smallest_within_tolerance(rows, fp32, 1.0)
    ok = best is not None and best["size_bytes_packed"] <= ptq4["size_bytes_packed"]
    gaps = [c["gap"] for c in front_vs_reference(rows, ref)]
    above = all(g is not None and g >= 0 for g in gaps)
    text = (f"{what}: a point within 1.0 of float no larger than PTQ at 4 bits ({kb(ptq4['size_bytes_packed'])} KB): "
            + ("**met**" if ok else "**not met**"))
    if best is not None:
        text += f" (smallest such point: {_params(best)}, {best['top1']:.2f}% at {kb(best['size_bytes_packed'])} KB)"
    return text + "; front at or above PTQ at every PTQ size: " + ("**yes**" if above else "**no**") + \
        f" (gaps {', '.join('none' if g is None else f'{g:+.2f}' for g in gaps)})."


def front_section(load, dataset: str) -> list:
    ptq = load(dataset, "ptq")
    main = next((s for s in ("lambda", "lr") if load(dataset, s)), None)
    if ptq is None or main is None:
        return []
    fp32, ref = FLOAT[dataset], ptq["trials"]
    ratio = _trials(load, dataset, [s for s in RATIO_STUDIES if s in STUDIES[dataset]])
    ste = _trials(load, dataset, [s for s in STUDIES[dataset] if s.startswith("terms-")])
    rounded = _trials(load, dataset, [s for s in STUDIES[dataset] if s.endswith("-round")])
    out = [f"### {TITLES[dataset]} (float {fp32:.2f}%)", ""] + ([NOTES[dataset], ""] if dataset in NOTES else []) + [
           f"Nested, ratio rule: {_command(load(dataset, main))}", f"Uniform PTQ: {_command(ptq)}", ""]
    out += _rows_table(load(dataset, main)["trials"], fp32) + ["", "Uniform PTQ (weights per output "
                                                               "channel, MSE range; biases 8 bits):", ""]
    out += _rows_table(ref, fp32) + ["", "Best ratio-rule run (every lambda, learning-rate and per-type "
                                     "run of this dataset) no larger than each PTQ point:", ""]
    out.append(comparison_table(ratio, ref, _params, lambda r: f"PTQ {_value(r, 'bits')} bits"))
    if rounded:
        out += ["", "The same with codes `round(P/s)` instead of the thesis's `floor(P/s)` (`codes: round`):", "",
                comparison_table(rounded, ref, _params, lambda r: f"PTQ {_value(r, 'bits')} bits")]
    out += ["", "* " + _verdict(ratio, ref, fp32, "ratio rule")]
    if rounded:
        out.append("* " + _verdict(rounded, ref, fp32, "ratio rule with round codes"))
    if ste or rounded:
        out.append("* " + _verdict(ratio + ste + rounded, ref, fp32, ANY_NESTED))
    series = {"nested, ratio rule": [{**r, "label": _params(r).replace("lambda ", "")} if r in
                                     load(dataset, main)["trials"] else r for r in ratio],
              "uniform PTQ": [{**r, "label": f"{_value(r, 'bits')}b"} for r in ref]}
    if ste:
        series["nested, STE scales + a loss term"] = ste
    if rounded:
        series["nested, ratio rule, round codes"] = rounded
    plot = PLOTS / f"nested-{dataset}.png"
    shown = {k: [r for r in v if r["top1"] >= fp32 - PLOT_DROP] for k, v in series.items()}
    save_pareto_plot(shown, plot, title=f"{TITLES[dataset]}: nested quantization vs uniform PTQ",
                     x="size_bytes_packed", xlabel=XLABEL)
    hidden = sum(len(v) for v in series.values()) - sum(len(v) for v in shown.values())
    note = f" ({hidden} points more than {PLOT_DROP} below float are in the tables only)" if hidden else ""
    return out + ["", f"![{dataset}](results/{plot.name}){note}", ""]


def study_section(load, dataset: str, study: str, intro: str) -> list:
    rec = load(dataset, study)
    if rec is None:
        return []
    return [f"**{TITLES[dataset]}**, {intro}: {_command(rec)}", ""] + _rows_table(rec["trials"], FLOAT[dataset]) + [""]


def terms_table(load) -> list:
    lines = ["| dataset | loss term | coefficient | top-1 % | vs float | KB | avg bits |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    cmds = []
    for dataset in STUDIES:
        for study in [s for s in STUDIES[dataset] if s.startswith("terms-")]:
            rec = load(dataset, study)
            if rec is None:
                continue
            name, _, variant = study[6:].partition("@")  # terms-NAME or terms-NAME@VARIANT
            term = f"{name} ({VARIANTS[variant]})" if variant else name
            cmds.append(f"* {TITLES[dataset]}, {term}: {_command(rec)}")
            for r in sorted(rec["trials"], key=lambda r: r["params"].get("methods.0.args.coef", 0)):
                coef = r["params"].get("methods.0.args.coef", 0)
                lines.append(f"| {TITLES[dataset]} | {term} | {coef:g} | {r['top1']:.2f} "
                             f"| {r['top1'] - FLOAT[dataset]:+.2f} | {kb(r['size_bytes_packed'])} "
                             f"| {r['weight_avg_bits']:.2f} |")
    missing = [TITLES[d] for d in TITLES if not any(c.startswith(f"* {TITLES[d]},") for c in cmds)]
    note = [f"Not measured on: {', '.join(missing)}.", ""] if missing else []
    return lines + [""] + cmds + [""] + note if cmds else []


def guidance_table(load) -> list:
    """Per dataset and layer type: the lambdas whose run stays within 1 point of float, and the
    packed size of that layer type at the largest such lambda."""
    lines = ["| dataset | layer type | lambda swept | within 1 point of float | smallest type size (KB) at | "
             "top-1 % there |", "| --- | --- | --- | --- | --- | ---: |"]
    cmds = []
    for dataset, study, ltype, key in GUIDANCE:
        rec = load(dataset, study)
        if rec is None:
            continue
        cmds.append(f"* {TITLES[dataset]}, {ltype}: {_command(rec)}")
        rows = sorted(rec["trials"], key=lambda r: _value(r, key))
        ok = [r for r in rows if r["top1"] >= FLOAT[dataset] - 1.0]
        swept = ", ".join(f"{_value(r, key):g}" for r in rows)
        if not ok:
            lines.append(f"| {TITLES[dataset]} | {ltype} | {swept} | none | | |")
            continue
        best = min(ok, key=lambda r: r["bytes_by_type"]["conv" if ltype == "conv" else "linear"])
        size = best["bytes_by_type"]["conv" if ltype == "conv" else "linear"]
        lam = ", ".join(f"{_value(r, key):g}" for r in ok)
        lines.append(f"| {TITLES[dataset]} | {ltype} | {swept} | {lam} | {kb(size)} KB at lambda "
                     f"{_value(best, key):g} | {best['top1']:.2f} |")
    return lines + [""] + cmds + [""] if cmds else []


def noise_line(load, dataset: str) -> list:
    rec = load(dataset, "seeds")
    if rec is None:
        return []
    rows, where = rec["trials"], ""
    if dataset in SEED0:  # seed 0 of this setting ran in another study
        study, lam = SEED0[dataset]
        base = next(r for r in load(dataset, study)["trials"] if _value(r, "lambda") == lam)
        rows = [{**base, "params": {"seed": 0}}] + rows
        where = f" (seed 0: the {study} study's lambda {lam:g} run)"
    tops = [r["top1"] for r in rows]
    se = statistics.stdev(tops) / len(tops) ** 0.5 if len(tops) > 1 else float("nan")
    return [f"* {TITLES[dataset]}: seeds {', '.join(str(_value(r, 'seed')) for r in rows)} -> "
            f"{', '.join(f'{t:.2f}' for t in tops)}% (mean {statistics.mean(tops):.2f} +- {se:.2f} s.e.), "
            f"{', '.join(kb(r['size_bytes_packed']) for r in rows)} KB{where}: {_command(rec)}"]


def render(load, command) -> None:
    text = ["## Learned quantization (Chinbat 2025): nested fronts by lambda vs uniform PTQ", "",
            "Top-1 against the packed size of weights and biases (their codes at the bit-width "
            "each slice needs, plus a float32 scale and a bit-width byte per slice; activations "
            "float), for the nested quantizer's ratio rule at several thresholds lambda, and uniform "
            "post-training quantization of the same float baseline at 2, 3, 4 and 8 bits. Every "
            "row is one `lowbit sweep` trial; `python -m benchmarks.nested_fronts render` rebuilds "
            "this section from benchmarks/results/nested/*.json.", ""]
    for dataset in STUDIES:
        text += front_section(load, dataset)
    update_section("nested-fronts", "\n".join(text))
    study = ["## Learned quantization (Chinbat 2025): scale learning rate, coefficients, noise", ""]
    for dataset in STUDIES:
        for name, intro in INTROS.items():
            study += study_section(load, dataset, name, INTROS_BY_DATASET.get((dataset, name), intro))
        for s in [s for s in STUDIES[dataset] if s.startswith("coef-")]:
            study += study_section(load, dataset, s, f"ratio rule plus {s[5:]} at several coefficients")
    study += ["Run-to-run noise (one setting, several seeds):", ""]
    for dataset in STUDIES:
        study += noise_line(load, dataset)
    update_section("nested-study", "\n".join(study))
    terms = ["## Learned quantization (Chinbat 2025): the three loss terms compared", "",
             "Each term alone on the nested quantizer with `scale_grad: ste` (the thesis's "
             "equivalent network without the ratio rule: scales follow the task loss and the "
             "term), over its coefficient.", ""] + terms_table(load)
    update_section("nested-terms", "\n".join(terms))
    guide = ["## Learned quantization (Chinbat 2025): lambda per layer type", ""] + guidance_table(load)
    update_section("nested-guidance", "\n".join(guide))
