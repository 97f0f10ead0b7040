"""Fuzz the packed-file loader: >= 10,000 mutated files, each must load (and run) or raise the
documented FormatError/ConfigError within a per-file time limit.

Two base files: a small CNN (learned per-channel bit-widths, asymmetric activations, a
quantized bias, BNs kept) and ResNet-8 W4A4 (BNs folded, residual adds quantized). Mutations
(see :mod:`lowbit.export.fuzz`): bit flips, truncation, trailing bytes, header bytes, a wrong
header length, and manifest edits re-signed with a valid checksum; half the files are loaded
with checksum verification, half without (so that every mutation reaches the deeper checks).
Writes ``benchmarks/results/fuzz_packed.json``; exits 1 on any crash or time-out.

    python benchmarks/fuzz_packed.py --files 10000 --time-limit 5
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from export_common import RESULTS, machine, write

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.export import exportable
from lowbit.export.fuzz import KINDS, check, mutate
from lowbit.export.packed import to_packed_bytes
from lowbit.models import create_model


class TimeLimit(Exception):
    pass


def _alarm(signum, frame):
    raise TimeLimit()


def bases() -> Dict[str, tuple]:
    torch.manual_seed(0)
    small = create_model("cnn", widths=[4, 4, 8], hidden=8, input_size=8)
    small = prepare(small, QuantSpec(
        weight=QuantizerConfig(kind="learned_range", bits=3, granularity="channel"),
        act=QuantizerConfig(kind="uniform", bits=5, symmetric=False), bias=QuantizerConfig(kind="uniform")))
    xs = torch.randn(2, 3, 8, 8)
    calibrate(small, [xs])
    r8 = prepare(create_model("resnet8"), QuantSpec(
        weight=QuantizerConfig(bits=4, granularity="channel"), act=QuantizerConfig(bits=4), residual=True))
    xr = torch.randn(2, 3, 32, 32)
    calibrate(r8, [xr])
    return {"cnn_small": (to_packed_bytes(exportable(small.eval(), fold_bn=False))[0], xs),
            "resnet8_w4a4": (to_packed_bytes(exportable(r8.eval()))[0], xr)}


def run(args) -> Dict[str, object]:
    files = bases()
    names = list(files)
    outcomes = collections.Counter()
    per_kind = collections.defaultdict(collections.Counter)
    failures: List[Dict[str, object]] = []
    times = []
    signal.signal(signal.SIGALRM, _alarm)
    for i in range(args.files):
        name, kind, verify = names[i % 2], KINDS[(i // 2) % len(KINDS)], (i // (2 * len(KINDS))) % 2 == 0
        blob, x = files[name]
        rng = np.random.default_rng([args.seed, i])
        _, bad = mutate(blob, rng, kinds=(kind,))
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.time_limit)
        try:
            outcome = check(bad, verify, x)
        except TimeLimit:
            outcome = "TIMEOUT"
            failures.append({"file": i, "base": name, "kind": kind, "verify": verify, "error": "time limit"})
        except Exception as exc:  # anything but the documented errors is a bug
            outcome = f"CRASH {type(exc).__name__}"
            failures.append({"file": i, "base": name, "kind": kind, "verify": verify,
                             "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                             "where": traceback.format_exc().strip().splitlines()[-3:]})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        times.append(time.perf_counter() - start)
        outcomes[outcome] += 1
        per_kind[f"{kind} verify={verify}"][outcome] += 1
        if args.progress and (i + 1) % args.progress == 0:
            print(f"{i + 1}/{args.files} files, {len(failures)} failures", file=sys.stderr, flush=True)
    t = np.array(times)
    return {"files": args.files, "time_limit_s": args.time_limit, "seed": args.seed,
            "outcomes": dict(outcomes), "by_mutation": {k: dict(v) for k, v in sorted(per_kind.items())},
            "seconds_per_file": {"mean": round(float(t.mean()), 4), "p99": round(float(np.quantile(t, 0.99)), 4),
                                 "max": round(float(t.max()), 4)},
            "failures": failures[:50], "failure_count": len(failures)}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--time-limit", type=float, default=5.0, help="seconds per file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", type=int, default=1000, help="report every N files (0: never)")
    p.add_argument("--out", type=Path, default=RESULTS / "fuzz_packed.json")
    args = p.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(args)
    write(args.out, {"benchmark": "fuzz_packed", "machine": machine(), **result})
    return 1 if result["failure_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
