"""Fuzz the command line: random recipe fields and values from a grammar of valid and invalid
ones, random options and output locations, for ``lowbit train``, ``eval``, ``export``,
``report`` and ``sweep``. Every case must exit 0 or 2 without a traceback, and no output folder
of an earlier run may change unless the case replaced it on purpose (``--force``, exit 0).

Cases run in-process (``lowbit.cli.main(argv)``, ``SystemExit`` caught), on a tiny MLP recipe
(MNIST, 200 training images), so a valid case trains for real in about a second. Before and
after each case, every finished run folder of the pool (two made at the start, plus every run
a case trained) is hashed file by file. Writes ``benchmarks/results/fuzz_cli.json``; exits 1 on
any traceback, other exit code or changed folder.

    python -m benchmarks.fuzz_cli --cases 1000
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import yaml

from benchmarks.export_common import RESULTS, machine, write  # noqa: E402

BASE = {
    "name": "fuzz", "seed": 0,
    "model": {"name": "mlp", "kwargs": {"hidden": 16}},
    "data": {"dataset": "mnist", "batch_size": 50, "train_limit": 200, "test_limit": 100,
             "calib_batches": 1},
    "optim": {"name": "sgd", "lr": 0.05},
    "quant": {"weight": {"kind": "lsq", "bits": 4, "granularity": "channel"},
              "act": {"kind": "lsq", "bits": 4}},
    "phases": [{"name": "a", "epochs": 1}],
    "log_every": 1000,
}

NAN, INF = float("nan"), float("inf")
# (recipe field, values): each list mixes valid values and invalid ones (wrong type, out of
# range, unknown name) that must be a one-line error
FIELDS: List[Tuple[str, List[Any]]] = [
    ("seed", [0, 7, 2**32 - 1, -1, 2**40, 99999999999999999999, 1.5, "a", None, True]),
    ("optim.lr", [0.01, 0.1, 0, -1, NAN, INF, "fast", 1e9, None]),
    ("optim.momentum", [0, 0.5, 0.9, -1, 1, 2, "x", NAN]),
    ("optim.nesterov", [True, False, "yes", 1]),
    ("optim.name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "", 3]),
    ("optim.weight_decay", [0, 1e-4, -1, INF]),
    ("optim.grad_clip", [None, 1.0, 0.5, 0, -1, "x"]),
    ("optim.label_smoothing", [0, 0.1, 1, -0.1]),
    ("optim.quant_lr", [None, 0.01, 0, -1]),
    ("optim.quant_optimizer", ["same", "adam", "nope"]),
    ("optim.bogus", [1]),
    ("data.dataset", ["mnist", "fashion_mnist", "cifar10", "nope", 5]),
    ("data.batch_size", [1, 25, 50, 200, 1000, 10**9, 0, -3, "x", 2.5]),
    ("data.eval_batch_size", [1, 100, 0]),
    ("data.train_limit", [50, 100, 0, -1, "x"]),
    ("data.test_limit", [10, 100, 0, -5]),
    ("data.calib_batches", [1, 2, 0, -1]),
    ("data.image_size", [None, 28, 32, 7, 0, -1]),
    ("data.augment", [True, False, "yes"]),
    ("data.data_dir", ["/nonexistent", None]),
    ("model.name", ["mlp", "cnn", "resnet8", "nope", "", None]),
    ("model.num_classes", [None, 10, 100, 5, 1, 0, -1, "ten"]),
    ("model.in_channels", [None, 1, 3, 0]),
    ("model.input_size", [None, 28, 32, 0]),
    ("model.kwargs", [{"hidden": 8}, {"hidden": 0}, {"hidden": -1}, {"bogus": 1}, "x", [], None]),
    ("model.init", [None, "nonexistent.safetensors", "baselines/mlp-mnist.safetensors",
                    "baselines/resnet8-cifar10.safetensors", "README.md"]),
    ("model.fold_bn", [True, False]),
    ("model.channels_last", [True, False, "no"]),
    ("quant", [None, {}, "x", []]),
    ("quant.weight.kind", ["lsq", "uniform", "learned_range", "nested", "dorefa", "pow2", "log2", "bogus"]),
    ("quant.weight.bits", [1, 2, 3, 4, 8, 16, 0, 17, 3.5, "x", None]),
    ("quant.weight.bits_min", [1, 2, 4, 9]),
    ("quant.weight.bits_max", [2, 8, 16, 1]),
    ("quant.weight.granularity", ["tensor", "channel", "group", "row", "column", "bogus"]),
    ("quant.weight.group_size", [None, 1, 4, 16, 3, 0]),
    ("quant.weight.estimator", ["ste", "ewgs", "pbgs", "stee"]),
    ("quant.weight.symmetric", [True, False]),
    ("quant.weight.observer", ["minmax", "percentile", "mse", "gaussian", "nope"]),
    ("quant.weight.percentile", [99.9, 50, 101]),
    ("quant.act", [None, {"kind": "lsq", "bits": 8}, "x"]),
    ("quant.act.kind", ["lsq", "uniform", "learned_range", "nested", "pow2", "bogus"]),
    ("quant.act.bits", [1, 2, 4, 8, 0, 17]),
    ("quant.act.signed", [None, True, False]),
    ("quant.act.bits_min", [1, 2]),
    ("quant.act.symmetric", [True, False]),
    ("quant.bias", [None, {"kind": "uniform", "bits": 8}, {"kind": "uniform", "bits": 32}]),
    ("quant.int_bias", [True, False]),
    ("quant.residual", [True, False]),
    ("quant.exclude", [[], ["fc1"], ["nope*"]]),
    ("quant.overrides", [[], [{"pattern": "fc1", "weight": {"bits": 8}}], [{"pattern": "zz"}], "x"]),
    ("phases.0.epochs", [0, 0.5, 1, 2, -1, 1e-9, "x", None]),
    ("phases.0.lr", [None, 0.02, 0, -1]),
    ("phases.0.weight_bits", [None, 1, 2, 8, 16, 0, 17]),
    ("phases.0.act_bits", [None, 1, 4, 0]),
    ("phases.0.quantize_acts", [None, True, False, "maybe"]),
    ("phases.0.freeze_quantizers", [None, True]),
    ("phases.0.learn_bits", [None, True, False]),
    ("phases.0.calibrate", [True, False]),
    ("phases.0.label_smoothing", [None, 0.2, 1.5]),
    ("phases.0.schedule.kind", ["cosine", "step", "linear", "constant", "nope"]),
    ("phases.0.schedule.gamma", [0.1, 0.5, 0, -1, 2]),
    ("phases.0.schedule.warmup_epochs", [0, 0.5, 5, -1]),
    ("phases.0.schedule.final_lr_ratio", [0, 0.1, -1]),
    ("phases.0.schedule.milestones", [[0.5], [0.9, 0.2], [2], "x"]),
    ("phases.0.schedule.cycle_epochs", [0, 0.5, -1]),
    ("phases.0.methods", [{}, {"qgt": {"lam": 0.1}}, "x"]),
    ("phases.0.disable_methods", [[], ["qgt"], ["nope"]]),
    ("phases.1", [{"name": "b", "epochs": 0.5, "weight_bits": 2}, {"epochs": -1}, "x"]),
    ("phases", [[], "x", [{"epochs": 0}]]),
    ("methods", [[], [{"name": "qgt"}], [{"name": "budget", "args": {"weight_avg_bits": 3}}],
                 [{"name": "distill"}], [{"name": "swa"}], [{"name": "nope"}], [{"name": "qgt", "args": "x"}],
                 [{"name": "budget", "args": {"weight_avg_bits": -1}}], "x"]),
    ("eval_fp32", [True, False]),
    ("fold_bn", [True, False]),
    ("log_every", [1, 1000, 0, -1]),
    ("bogus", [1]),
]

DEVICES = ["cpu", "cpu", "cpu", "tpu", "cuda", "cuda:7", "", "meta", "cpu:0"]
RAW_RECIPES = [b"", b"\x00\x01\xff\xfe binary", b"- just\n- a list\n", b"model: [unclosed",
               b"!!python/object/apply:os.system ['echo hi']\n", b"a: &x [*x]\n",
               b"model: {name: mlp}\n"]


def set_arg(key: str, value: Any) -> str:
    """The --set text of one field (YAML flow syntax, as a user would type it)."""
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


class Fuzzer:
    """Generates cases (argv lists) and checks them; see the module docstring."""

    def __init__(self, root: Path, seed: int):
        self.root, self.seed = root, seed
        self.recipe = root / "base.yaml"
        self.recipe.write_text(yaml.safe_dump(BASE))
        self.pool: List[Path] = []  # finished runs that must not change
        self.files: Dict[str, Path] = {}
        self.counter = 0

    # ----- fixtures ---------------------------------------------------------------------------
    def setup(self) -> None:
        for i in range(2):
            out = self.root / f"pool{i}"
            code, _, err = self.run_case(["train", str(self.recipe), "--out", str(out), "--quiet"])
            assert code == 0, err
            self.pool.append(out)
        packed = self.root / "m.lowbit"
        assert self.run_case(["export", str(self.pool[0]), "--out", str(packed)])[0] == 0
        empty, garbage = self.root / "empty.lowbit", self.root / "garbage.onnx"
        empty.write_bytes(b"")
        garbage.write_bytes(os.urandom(300))
        afile = self.root / "afile"
        afile.write_text("not a folder")
        self.files = {"packed": packed, "empty": empty, "garbage": garbage, "afile": afile}
        for i, raw in enumerate(RAW_RECIPES):
            (self.root / f"raw{i}.yaml").write_bytes(raw)

    def fresh(self, prefix: str = "o") -> Path:
        self.counter += 1
        return self.root / "cases" / f"{prefix}{self.counter}"

    # ----- cases ------------------------------------------------------------------------------
    def out_for_train(self, rng) -> Tuple[str, Optional[Path]]:
        """(--out, the pool run it names or None)."""
        r = rng.random()
        if r < 0.55 or not self.pool:
            return str(self.fresh()), None
        if r < 0.8:
            run = self.pool[int(rng.integers(0, len(self.pool)))]
            return str(run), run
        choices = [str(self.files["afile"]), str(self.files["afile"] / "sub"), "/sys/lowbit-fuzz",
                   str(self.fresh()) + "/"]
        return choices[int(rng.integers(0, len(choices)))], None

    def train_case(self, rng) -> Tuple[List[str], Optional[Path]]:
        if rng.random() < 0.05:
            recipe = str(self.root / f"raw{int(rng.integers(0, len(RAW_RECIPES)))}.yaml")
        else:
            recipe = str(self.recipe) if rng.random() < 0.9 else "mlp-mnist-nope"
        argv = ["train", recipe]
        for _ in range(int(rng.integers(0, 4))):
            key, values = FIELDS[int(rng.integers(0, len(FIELDS)))]
            argv += ["--set", set_arg(key, values[int(rng.integers(0, len(values)))])]
        out, target = self.out_for_train(rng)
        argv += ["--out", out, "--quiet"]
        if rng.random() < 0.2:
            argv.append("--force")
        if rng.random() < 0.1:
            argv.append("--resume")
        if rng.random() < 0.15:
            argv += ["--device", DEVICES[int(rng.integers(0, len(DEVICES)))]]
        if rng.random() < 0.05:
            argv += ["--data-dir", "/nonexistent"]
        return argv, target

    def target_file(self, rng) -> str:
        options = [str(self.pool[int(rng.integers(0, len(self.pool)))]), str(self.files["packed"]),
                   str(self.files["empty"]), str(self.files["garbage"]), str(self.files["afile"]),
                   str(self.root / "missing"), str(self.root)]
        return options[int(rng.integers(0, len(options)))]

    def eval_case(self, rng) -> List[str]:
        argv = ["eval", self.target_file(rng)]
        if rng.random() < 0.5:
            argv += ["--limit", str([1, 10, 50, 0, -5, "x"][int(rng.integers(0, 6))])]
        if rng.random() < 0.3:
            argv += ["--executor", ["integer", "fake_quant", "both", "nope"][int(rng.integers(0, 4))]]
        if rng.random() < 0.2:
            argv += ["--dataset", ["mnist", "cifar10", "nope"][int(rng.integers(0, 3))]]
        return argv

    def export_case(self, rng) -> List[str]:
        fmt = ["packed", "onnx", "qonnx", "nope"][int(rng.integers(0, 4))]
        outs = [str(self.fresh("e")) + ".bin", str(self.root) + "/", str(self.root / "cases"),
                str(self.files["afile"] / "x.onnx"), "/sys/lowbit-fuzz.onnx"]
        argv = ["export", self.target_file(rng), "--format", fmt,
                "--out", outs[int(rng.integers(0, len(outs)))] if rng.random() < 0.4 else outs[0]]
        if rng.random() < 0.2:
            argv += ["--opset", str([13, 21, 1, 99][int(rng.integers(0, 4))])]
        for flag in ("--no-fold-bn", "--no-int4", "--int4-acts", "--int32-bias"):
            if rng.random() < 0.1:
                argv.append(flag)
        return argv

    def report_case(self, rng) -> List[str]:
        return ["report", self.target_file(rng)]

    def sweep_case(self, rng) -> List[str]:
        params = ["optim.lr=0.05,0.01", "optim.lr=log:1e-3:1e-1", "optim.lr=log:0:1", "seed=x,-1",
                  "nope=1,2", "optim.lr", "quant.weight.bits+quant.act.bits=4,8"]
        argv = ["sweep", str(self.recipe), "--param", params[int(rng.integers(0, len(params)))],
                "--out", str(self.fresh("s")), "--quiet", "--trials", str([1, 0, -1][int(rng.integers(0, 3))])]
        if rng.random() < 0.3:
            argv += ["--objective", ["top1", "size", "nope", "top1:max", "x:y"][int(rng.integers(0, 5))]]
        return argv

    def case(self, i: int) -> Tuple[List[str], Optional[Path]]:
        rng = np.random.default_rng([self.seed, i])
        r = rng.random()
        if r < 0.7:
            return self.train_case(rng)
        if r < 0.82:
            return self.eval_case(rng), None
        if r < 0.92:
            return self.export_case(rng), None
        if r < 0.97:
            return self.report_case(rng), None
        return self.sweep_case(rng), None

    # ----- running and checking ---------------------------------------------------------------
    @staticmethod
    def run_case(argv: List[str]) -> Tuple[int, str, str]:
        """(exit code, or -1 for a traceback; stdout; stderr) of ``lowbit ARGV`` in-process."""
        from lowbit.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
            except BaseException:  # noqa: BLE001 - a traceback is what we are looking for
                code = -1
                err.write(traceback.format_exc())
        return code, out.getvalue(), err.getvalue()

    @staticmethod
    def digest(folder: Path) -> Dict[str, str]:
        if not folder.is_dir():
            return {"<missing>": ""}
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.iterdir()) if p.is_file()}

    def run(self, cases: int, progress: int) -> Dict[str, Any]:
        codes, tracebacks, changed = collections.Counter(), [], []
        aimed = collections.Counter()  # cases whose --out is an earlier run: by exit code, replaced
        by_command = collections.defaultdict(collections.Counter)
        messages = collections.Counter()
        times = []
        digests = {run: self.digest(run) for run in self.pool}
        for i in range(cases):
            argv, target = self.case(i)
            start = time.perf_counter()
            code, _, err = self.run_case(argv)
            times.append(time.perf_counter() - start)
            codes[code] += 1
            by_command[argv[0]][code] += 1
            if code not in (0, 2) or "Traceback" in err:
                tracebacks.append({"case": i, "argv": argv, "code": code, "stderr": err[-1500:]})
            elif code == 2:
                last = err.strip().splitlines()[-1] if err.strip() else ""
                messages[" ".join(last.partition("error: ")[2].split()[:6])] += 1
            forced = target is not None and "--force" in argv and "--resume" not in argv
            if target is not None:
                aimed[f"exit {code}{' --force' if forced else ''}"] += 1
            for run in list(digests):
                now = self.digest(run)
                if now != digests[run]:
                    # --force replaces a run once the new one wrote its first checkpoint
                    new_run = now.get("checkpoint.pt") != digests[run].get("checkpoint.pt")
                    if run == target and forced and (code == 0 or new_run):
                        digests[run] = now
                        aimed["replaced by --force"] += 1
                    else:
                        changed.append({"case": i, "argv": argv, "code": code, "folder": str(run)})
                        digests[run] = now
            if argv[0] == "train" and code == 0 and target is None:
                out = Path(argv[argv.index("--out") + 1])
                if (out / "checkpoint.pt").is_file() and len(self.pool) < 40:
                    self.pool.append(out)
                    digests[out] = self.digest(out)
            if progress and (i + 1) % progress == 0:
                print(f"{i + 1}/{cases} cases: {dict(codes)}, {len(tracebacks)} tracebacks, "
                      f"{len(changed)} changed folders", file=sys.stderr, flush=True)
        t = np.array(times)
        return {"cases": cases, "seed": self.seed, "exit_codes": {str(k): v for k, v in sorted(codes.items())},
                "by_command": {k: {str(c): n for c, n in sorted(v.items())} for k, v in by_command.items()},
                "tracebacks": len(tracebacks), "other_exit_codes": sum(n for c, n in codes.items() if c not in (0, 2)),
                "changed_folders": len(changed), "pool_runs": len(self.pool),
                "cases_on_earlier_runs": dict(sorted(aimed.items())),
                "seconds": {"total": round(float(t.sum()), 1), "mean": round(float(t.mean()), 3),
                            "max": round(float(t.max()), 2)},
                "common_errors": dict(messages.most_common(12)),
                "failures": (tracebacks + changed)[:30]}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", type=int, default=100, help="report every N cases (0: never)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--out", type=Path, default=RESULTS / "fuzz_cli.json")
    args = p.parse_args(argv)
    os.environ.setdefault("LOWBIT_COMPILE", "0")
    repo = Path(__file__).resolve().parents[1]
    os.chdir(repo)  # recipe fields name repository files (baselines/...)
    root = Path(tempfile.mkdtemp(prefix="lowbit-fuzz-cli-"))
    try:
        fuzzer = Fuzzer(root, args.seed)
        fuzzer.setup()
        result = fuzzer.run(args.cases, args.progress)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    write(args.out, {"benchmark": "fuzz_cli", "machine": machine(),
                     "command": f"python -m benchmarks.fuzz_cli --cases {args.cases} --seed {args.seed}",
                     **result})
    return 1 if result["tracebacks"] or result["changed_folders"] or result["other_exit_codes"] else 0


if __name__ == "__main__":
    sys.exit(main())
