"""QGT reproduction (the QGT paper, Table 2 pattern): float, PTQ and QGT at 4 and 2 bits, lambda sweep.

    python -m benchmarks.qgt_table                                  # resnet20-cifar10
    python -m benchmarks.qgt_table --models resnet20-cifar10 mobilenet_v2-cifar10 mobilenet_v1-imagenette
    python -m benchmarks.qgt_table --lams 0.1 1 10 --table-only     # rewrite the table from runs/

For each model NAME the float baseline (``baselines/NAME.safetensors``, trained with
``python -m benchmarks.run_recipes --promote``) is quantized by ``NAME-ptq-w4``/``-w2`` (lambda 0, no
training) and fine-tuned by ``NAME-qgt-w4``/``-w2``; ``--lams`` adds a lambda sweep of the 2-bit
QGT recipe (``lowbit sweep NAME-qgt-w2 --param methods.0.args.lam=...``). Weights per-channel
asymmetric, activations and biases float, batch norm folded before evaluation and sizing, sizes
from packed weights. Writes ``benchmarks/results/qgt-table.json`` and a results.md section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
from benchmarks.results_md import update_section  # noqa: E402
from benchmarks.run_recipes import train  # noqa: E402

KB = 1024


def lam_sweep(name: str, lams: list, runs: Path) -> list:
    out = runs / "qgt-lam" / name
    cmd = [sys.executable, "-m", "lowbit", "sweep", f"{name}-qgt-w2", "--out", str(out), "--quiet",
           "--param", "methods.0.args.lam=" + ",".join(map(str, lams))]
    if lams:
        subprocess.run(cmd, cwd=REPO, check=True)
    if not (out / "sweep.json").is_file():
        return []
    return [(f"QGT λ={t['params']['methods.0.args.lam']:g}", 2, Path(t["run"]))
            for t in json.loads((out / "sweep.json").read_text())["trials"]]


def rows_for(name: str, runs: Path, lams: list, table_only: bool) -> list:
    plan = [("PTQ", 4, f"{name}-ptq-w4"), ("QGT", 4, f"{name}-qgt-w4"),
            ("PTQ", 2, f"{name}-ptq-w2"), ("QGT", 2, f"{name}-qgt-w2")]
    if not table_only:
        for _, _, recipe in plan:
            train(recipe, runs / recipe, [])
    found = [(m, b, runs / r) for m, b, r in plan] + lam_sweep(name, [] if table_only else lams, runs)
    base = json.loads((REPO / "baselines" / f"{name}.json").read_text())
    done = [(meth, bits, run, json.loads((run / "metrics.json").read_text()))
            for meth, bits, run in found if (run / "metrics.json").is_file()]
    # the float row is the model the runs started from (their top1_fp32), which need not be
    # the baseline shipped now; its epochs are known only when it is
    float_top1 = next((m["top1_fp32"] for *_, m in done if "top1_fp32" in m), base["top1"])
    rows = [{"model": name, "method": "float", "bits": 32, "top1": float_top1, "delta": 0.0,
             "epochs": base["epochs"] if float_top1 == base["top1"] else "earlier baseline",
             "kb": base["metrics"]["float32_bytes"] / KB, "reduction": 1.0}]
    for method, bits, run, m in done:
        rows.append({"model": name, "method": method, "bits": bits, "top1": m["top1"],
                     "epochs": m["epochs"],
                     "delta": m["top1"] - float_top1, "kb": m["size_bytes_packed"] / KB,
                     "reduction": m["float32_bytes"] / m["size_bytes_packed"], "run": str(run)})
    return rows


def table(rows: list, cmd: str) -> str:
    lines = ["## QGT vs PTQ (the QGT paper, Table 2 layout)", "",
             f"Command: `{cmd}`. Per-channel asymmetric weights, activations and biases float, batch "
             "norm folded; KB = packed weights + scales + float biases; reduction vs float32. "
             "epochs: training epochs of that row (float: the baseline's, recorded with its "
             "command in baselines/NAME.json; QGT: fine-tuning from it, where fewer than the "
             "recipe's 5 the run used `--set phases.0.epochs=N`; PTQ: none). λ rows: `lowbit "
             "sweep NAME-qgt-w2 --param methods.0.args.lam=0.1,10 --out runs/qgt-lam/NAME` (run "
             "for the models that show them).", "",
             "| model | method | W bits | top-1 % | Δ vs float | KB | reduction | epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        epochs = f"{r['epochs']:g}" if isinstance(r["epochs"], (int, float)) else r["epochs"]
        lines.append(f"| {r['model']} | {r['method']} | {r['bits']} | {r['top1']:.2f} | {r['delta']:+.2f} "
                     f"| {r['kb']:.1f} | {r['reduction']:.1f}x | {epochs} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet20-cifar10"])
    ap.add_argument("--lams", nargs="*", type=float, default=[0.1, 10.0])
    ap.add_argument("--runs", default=str(REPO / "runs"))
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    runs, rows = Path(args.runs), []
    for name in args.models:
        if not (REPO / "baselines" / f"{name}.json").is_file():
            print(f"[{name}] no baseline: run `python -m benchmarks.run_recipes --recipes {name} --promote`")
            continue
        rows += rows_for(name, runs, args.lams, args.table_only)
    out = REPO / "benchmarks" / "results" / "qgt-table.json"
    out.write_text(json.dumps({"benchmark": "qgt_table", "rows": rows}, indent=2) + "\n")
    cmd = "python -m benchmarks.qgt_table --models " + " ".join(args.models)
    update_section("qgt-table", table(rows, cmd))
    print(table(rows, cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
