"""Learned quantization of Chinbat 2025 ("Learned Quantization Schemes for Data-centric ML
Pipelines"): Pareto fronts of the nested quantizer by lambda against uniform PTQ, the scale
learning-rate and coefficient study, the loss-term comparison and the per-layer-type lambda
guidance, on MNIST (MLP), CIFAR-10 (CNN) and Imagenette (half-width ResNet-18).

    python -m benchmarks.nested_fronts list                    # every study and its command
    python -m benchmarks.nested_fronts run mnist               # all studies of one dataset
    python -m benchmarks.nested_fronts run cifar10 --only ptq lambda
    python -m benchmarks.nested_fronts render                  # plots and tables from the records

Every study is one ``lowbit sweep`` (grid, SQLite study, resumable) into
``runs/nested/DATASET-STUDY``. ``run`` records its ``sweep.json``, with each trial's metrics
and the packed bytes of its conv and dense layers, as
``benchmarks/results/nested/DATASET-STUDY.json``; ``render`` rebuilds the plots
(``benchmarks/results/nested-DATASET.png``) and the results.md sections from the records alone.
Sizes are ``size_bytes_packed``: packed weights and biases with their scales (activations float).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from benchmarks.nested_studies import OUTS, STUDIES  # noqa: E402

RECORDS = REPO / "benchmarks" / "results" / "nested"
OBJECTIVES = ["--objective", "top1", "--objective", "size_bytes_packed:min"]


def out_dir(dataset: str, study: str) -> str:
    return OUTS.get(f"{dataset}-{study}", f"runs/nested/{dataset}-{study}")


def command(dataset: str, study: str) -> list:
    recipe, *args = STUDIES[dataset][study]
    quoted = [a if " " not in a else f"'{a}'" for a in args]
    return ["lowbit", "sweep", recipe, *quoted, *OBJECTIVES, "--out", out_dir(dataset, study)]


def _layer_bytes(run: Path) -> dict:
    """Packed bytes of the conv and the dense (linear) layers of one run (report.json)."""
    report = json.loads((run / "report.json").read_text())
    out = {"conv": 0, "linear": 0}
    for layer in report["layers"]:
        out["conv" if layer["op"].startswith("conv") else "linear"] += layer["total_bytes"]
    return out


def record(dataset: str, study: str) -> Path:
    """Copy a finished sweep's summary, enriched with per-trial metrics, into RECORDS."""
    summary = json.loads((REPO / out_dir(dataset, study) / "sweep.json").read_text())
    for row in summary["trials"]:
        run = REPO / row["run"] if not Path(row["run"]).is_absolute() else Path(row["run"])
        metrics = json.loads((run / "metrics.json").read_text())
        row["weight_avg_bits"] = metrics.get("weight_avg_bits")
        row["top1_fp32"] = metrics.get("top1_fp32")
        row["bytes_by_type"] = _layer_bytes(run)
        row["run"] = str(Path(row["run"]).relative_to(REPO)) if Path(row["run"]).is_absolute() else row["run"]
    summary["command"] = " ".join(command(dataset, study))
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{dataset}-{study}.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    return path


def run(dataset: str, only) -> None:
    for study in STUDIES[dataset]:
        if only and study not in only:
            continue
        recipe, *args = STUDIES[dataset][study]
        print("$ " + " ".join(command(dataset, study)), flush=True)
        rc = subprocess.call([sys.executable, "-m", "lowbit", "sweep", recipe, *args, *OBJECTIVES,
                              "--out", out_dir(dataset, study), "--quiet"], cwd=REPO)
        if rc != 0:
            sys.exit(rc)
        print(f"recorded {record(dataset, study)}", flush=True)


def load(dataset: str, study: str):
    path = RECORDS / f"{dataset}-{study}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    r = sub.add_parser("run")
    r.add_argument("dataset", choices=sorted(STUDIES))
    r.add_argument("--only", nargs="*", default=[])
    sub.add_parser("render")
    args = ap.parse_args()
    if args.cmd == "list":
        for dataset in STUDIES:
            for study in STUDIES[dataset]:
                print(" ".join(command(dataset, study)))
    elif args.cmd == "run":
        run(args.dataset, args.only)
    else:
        from benchmarks.nested_render import render

        render(load, command)


if __name__ == "__main__":
    main()
