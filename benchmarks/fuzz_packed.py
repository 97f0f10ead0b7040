"""Fuzz the packed-file loader: >= 10,000 mutated files, each must load (and run) or raise the
documented FormatError/ConfigError within a per-file time limit; then size bombs (peak memory
under 4x the file size plus a fixed bound) and files that name code (nothing imported).

Two base files: a small CNN (learned per-channel bit-widths, asymmetric activations, a
quantized bias, BNs kept) and ResNet-8 W4A4 (BNs folded, residual adds quantized). Mutations
(see :mod:`lowbit.export.fuzz`): bit flips, truncation, trailing bytes, header bytes, a wrong
header length, and manifest edits re-signed with a valid checksum; half the files are loaded
with checksum verification, half without (so that every mutation reaches the deeper checks).
Size bombs (:data:`lowbit.export.fuzz.BOMB_KINDS`): valid 1-bit MLPs of 0.1-4 MB (8x their
size as int8 codes), re-signed with an architecture they do not fit, loaded under a decoded-size
cap below or above their codes, or with up to 1.5 MB of nested JSON lists in the header. Each
loads in a forked child whose peak resident memory (``VmHWM`` after a reset) above its start is
compared with ``4 x file size + --fixed-mb``. Import cases (:data:`lowbit.export.fuzz.IMPORT_KINDS`): a
packed file naming a module class or registry model ``lowbit_fuzz_canary``, and QONNX/ONNX files
with a node of that operator domain; the canary module lies on ``sys.path`` and leaves a marker
when imported; loading and running without ``allow_import`` must not import it.

Writes ``benchmarks/results/fuzz_packed.json``; exits 1 on any crash, time-out, bound exceeded
or import.

    python -m benchmarks.fuzz_packed --files 10000 --time-limit 5 --bombs 200 --imports 100
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from benchmarks.export_common import RESULTS, machine, write

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.errors import ConfigError, FormatError
from lowbit.export import exportable
from lowbit.export.fuzz import (BOMB_KINDS, CANARY, IMPORT_KINDS, KINDS, check, check_import,
                                import_file, mutate, one_bit_mlp, size_bomb)
from lowbit.export.packed import from_packed_bytes, to_packed_bytes
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


MB = 1 << 20
BOMB_HIDDEN = (1000, 5000, 20000, 40000)  # 1-bit MLPs of 0.1, 0.5, 2.1 and 4.3 MB


def _memory() -> Dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def in_child(fn, time_limit: float) -> Dict[str, object]:
    """Run ``fn()`` in a forked child: its result, seconds and peak memory above its start."""
    read, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: reset the peak, run, report, exit without cleanup
        os.close(read)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS
            start, t0 = _memory()["VmRSS"], time.perf_counter()
            signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                outcome = fn()
            except TimeLimit:
                outcome = "TIMEOUT"
            except Exception as exc:  # anything but the documented errors is a bug
                outcome = f"CRASH {type(exc).__name__}: {str(exc)[:200]}"
            signal.setitimer(signal.ITIMER_REAL, 0)
            res = {"outcome": outcome, "seconds": round(time.perf_counter() - t0, 4),
                   "peak_bytes": _memory()["VmHWM"] - start, "imported": CANARY in sys.modules}
            os.write(write_end, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"outcome": "CRASH child died", "seconds": 0.0,
                                          "peak_bytes": 0, "imported": False}


def run_bombs(args) -> Dict[str, object]:
    rng = np.random.default_rng([args.seed, 1])
    bases = {h: one_bit_mlp(h) for h in BOMB_HIDDEN}
    cap = args.cap_mb * MB
    rows, failures = [], []
    for i in range(args.bombs):
        kind, hidden = BOMB_KINDS[i % len(BOMB_KINDS)], BOMB_HIDDEN[(i // len(BOMB_KINDS)) % len(BOMB_HIDDEN)]
        blob = size_bomb(kind, bases[hidden], rng)
        limit = (784 * hidden) // 2 if kind == "bomb_cap" else cap  # below / above the codes

        def load(blob=blob, verify=bool(i % 2), limit=limit):
            try:
                from_packed_bytes(blob, verify=verify, max_decoded_bytes=limit)
            except (FormatError, ConfigError) as exc:
                return type(exc).__name__
            return "ok"

        r = in_child(load, args.time_limit)
        r.update(kind=kind, file_bytes=len(blob))
        r["bound_bytes"] = 4 * len(blob) + args.fixed_mb * MB
        if r["outcome"].startswith(("CRASH", "TIMEOUT")) or r["peak_bytes"] > r["bound_bytes"]:
            failures.append(r)
        rows.append(r)
    return _summarize(rows, failures, lambda r: {
        "max_peak_mb": round(max(x["peak_bytes"] for x in r) / MB, 1),
        "max_file_mb": round(max(x["file_bytes"] for x in r) / MB, 2),
        "max_peak_minus_4x_file_mb": round(max(x["peak_bytes"] - 4 * x["file_bytes"] for x in r) / MB, 1)},
        extra={"fixed_mb": args.fixed_mb, "cap_mb": args.cap_mb})


def run_imports(args, base: bytes, x: torch.Tensor) -> Dict[str, object]:
    from lowbit.export.onnx_export import export_onnx, export_qonnx

    ex = from_packed_bytes(base)
    onnx_bytes = {"import_qonnx": export_qonnx(ex, example_input=x).SerializeToString(),
                  "import_onnx": export_onnx(ex, example_input=x).SerializeToString()}
    folder = Path(tempfile.mkdtemp(prefix="lowbit-canary-"))
    marker = folder / "IMPORTED"
    (folder / f"{CANARY}.py").write_text(  # importing it would leave a marker and a class
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
        "import torch\nNet = torch.nn.Module\n")
    sys.path.insert(0, str(folder))
    rows, failures = [], []
    try:
        for i in range(args.imports):
            kind = IMPORT_KINDS[i % len(IMPORT_KINDS)]
            blob = import_file(kind, base, onnx_bytes.get(kind, b""))
            path = folder / f"case.{'lowbit' if 'onnx' not in kind else 'onnx'}"
            r = in_child(lambda: check_import(kind, blob, path, x), args.time_limit)
            r.update(kind=kind, file_bytes=len(blob))
            r["imported"] = bool(r["imported"] or marker.exists())
            if r["imported"] or r["outcome"].startswith(("CRASH", "TIMEOUT")):
                failures.append(r)
            rows.append(r)
    finally:
        sys.path.remove(str(folder))
    return _summarize(rows, failures, lambda r: {"imported": sum(bool(x["imported"]) for x in r)})


def _summarize(rows, failures, stats, extra=None) -> Dict[str, object]:
    by_kind = collections.defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    return {"cases": len(rows), **(extra or {}),
            "by_kind": {k: {"outcomes": dict(collections.Counter(x["outcome"] for x in v)), **stats(v),
                            "max_seconds": max(x["seconds"] for x in v)} for k, v in by_kind.items()},
            "failures": failures[:20], "failure_count": len(failures)}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--time-limit", type=float, default=5.0, help="seconds per file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", type=int, default=1000, help="report every N files (0: never)")
    p.add_argument("--bombs", type=int, default=200, help="size-bomb files (forked, measured)")
    p.add_argument("--imports", type=int, default=100, help="files that name a module")
    p.add_argument("--cap-mb", type=int, default=32, help="max_decoded_bytes for the bombs (MiB)")
    p.add_argument("--fixed-mb", type=int, default=128,
                   help="the fixed part of the memory bound 4 x file + FIXED (MiB)")
    p.add_argument("--out", type=Path, default=RESULTS / "fuzz_packed.json")
    args = p.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(args)
        result["bombs"] = run_bombs(args)
        result["imports"] = run_imports(args, bases()["cnn_small"][0], torch.randn(1, 3, 8, 8))
    write(args.out, {"benchmark": "fuzz_packed", "machine": machine(), **result})
    bad = result["failure_count"] + result["bombs"]["failure_count"] + result["imports"]["failure_count"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
