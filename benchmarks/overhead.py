"""Benchmark the training-step overhead of lowbit's fake quantization on ResNet-20.

One training step (forward + cross-entropy + backward + SGD step, plus
``lowbit.nn.project_quantizers`` for the quantized models, as the training loop does) of
``create_model("resnet20")`` on CIFAR-sized input (3x32x32, ``--batch`` 128, channels_last), for:

* ``float``: the float model;
* ``w4a4_lsq``: per-channel 4-bit LSQ weights, per-tensor 4-bit LSQ activations
  (``prepare`` + ``calibrate`` on one random batch);
* ``w4a4_lsq_exact``: the same, with scale gradients bit-identical to eager (``LOWBIT_EXACT_GRAD=1``);
* ``w4a4_learned_range``: the learned step/range quantizer (Schaefer et al.), per-channel weights and
  per-tensor activations, 4-bit initial width;
* ``brevitas_w4a4`` (when ``brevitas`` imports): the same ResNet-20 with Brevitas
  ``QuantConv2d``/``QuantLinear`` (4-bit per-channel weights) and ``QuantReLU`` (4-bit).

All configurations live in one process and are timed interleaved: ``--rounds`` round-robin
rounds of ``--steps`` steps each, after ``--warmup`` untimed steps per configuration (this is
where ``torch.compile`` of the fast kernels happens). The JSON reports the median step time,
its ratio to float and the quartiles.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` during the timed steps minus the
memory allocated before them (model, optimizer state, input). On CPU no allocator statistics
exist (tracemalloc does not see torch's allocations), so each configuration runs again in a
fresh subprocess that builds the model, runs warm-up steps at batch 2 (compilation, gradient and
momentum buffers), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), and reports
the growth of the peak resident set size (``VmHWM``) over the resident size before the
full-batch steps. That is the transient memory of a training step (saved activations and
temporaries) as the OS sees it, allocator caching included; it is not an exact tensor count.

    python -m benchmarks.overhead --out benchmarks/results/overhead.json

``--many-shapes`` measures instead what compiling costs on a model with many distinct layer
shapes (:mod:`many_shapes`, EfficientNet-B0-like): calibration, first-step and steady-state
times and the total over the first ``--first-steps`` (50) steps, each configuration in a fresh
process: eager; the fast kernels with their default policy (compile a signature once its
eager calls have paid for it), inductor's on-disk cache cold and then warm; and compiling at
the first call (``LOWBIT_COMPILE_BREAKEVEN=0``). Eager runs first and last (its spread is
the noise)::

    python -m benchmarks.overhead --many-shapes --out benchmarks/results/overhead-many-shapes.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

import lowbit
from lowbit.models import create_model
from lowbit.nn import project_quantizers
from lowbit.ops import set_compile_breakeven, set_exact_gradients

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "overhead.json"
# w4a4_lsq_exact: the same model with scale gradients bit-identical to eager autograd
# (LOWBIT_EXACT_GRAD=1), to show what that exactness costs
CONFIGS = ("float", "w4a4_lsq", "w4a4_lsq_exact", "w4a4_learned_range", "brevitas_w4a4")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    p.add_argument("--steps", type=int, default=5, help="timed steps per config per round")
    p.add_argument("--rounds", type=int, default=4, help="round-robin rounds")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per config first")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", type=int, choices=(0, 1), default=1,
                   help="lowbit fast kernels (torch.compile) on/off")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's); on a shared CPU, fewer "
                        "threads than free cores avoids OpenMP oversubscription")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--note", default="", help="free text stored in the JSON (e.g. machine load)")
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal
    p.add_argument("--many-shapes", action="store_true",
                   help="compiled vs eager over the first steps of a model with many layer shapes")
    p.add_argument("--first-steps", type=int, default=50, help="steps per --many-shapes run")
    args = p.parse_args(argv)
    if args.many_shapes and args.out == DEFAULT_OUT:
        args.out = DEFAULT_OUT.with_name("overhead-many-shapes.json")
    return args


# ----- the models --------------------------------------------------------------------------------
def _resnet20(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20").to(device)


def _lowbit_model(kind: str, device: torch.device, calib: torch.Tensor) -> nn.Module:
    spec = lowbit.QuantSpec(
        weight=lowbit.QuantizerConfig(kind=kind, bits=4, granularity="channel"),
        act=lowbit.QuantizerConfig(kind=kind, bits=4))
    model = lowbit.prepare(_resnet20(device), spec)
    lowbit.calibrate(model, [calib])
    return model


def brevitas_status() -> Tuple[bool, str]:
    """(available, why not) for the optional Brevitas comparison."""
    try:
        import brevitas  # noqa: F401
        import brevitas.nn  # noqa: F401
    except Exception as exc:  # not installed, or built for another torch
        return False, f"brevitas cannot be imported ({exc!r:.200}); pip install 'lowbit[bench]'"
    return True, ""


def _brevitas_model(device: torch.device) -> nn.Module:
    """ResNet-20 with every Conv2d/Linear/ReLU swapped for its Brevitas 4-bit counterpart."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerChannelFloat, Uint8ActPerTensorFloat

    model = _resnet20(torch.device("cpu"))

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                new = qnn.QuantConv2d(child.in_channels, child.out_channels, child.kernel_size,
                                      child.stride, child.padding, child.dilation, child.groups,
                                      bias=child.bias is not None,
                                      weight_quant=Int8WeightPerChannelFloat, weight_bit_width=4)
                new.load_state_dict(child.state_dict())
            elif isinstance(child, nn.Linear):
                new = qnn.QuantLinear(child.in_features, child.out_features,
                                      bias=child.bias is not None,
                                      weight_quant=Int8WeightPerChannelFloat, weight_bit_width=4)
                new.load_state_dict(child.state_dict())
            elif isinstance(child, nn.ReLU):
                new = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4)
            else:
                swap(child)
                continue
            setattr(parent, name, new)

    swap(model)
    return model.to(device)


def build(config: str, device: torch.device, calib: torch.Tensor) -> nn.Module:
    if config == "float":
        model = _resnet20(device)
    elif config in ("w4a4_lsq", "w4a4_lsq_exact"):
        model = _lowbit_model("lsq", device, calib)
    elif config == "w4a4_learned_range":
        model = _lowbit_model("learned_range", device, calib)
    elif config == "brevitas_w4a4":
        model = _brevitas_model(device)
    else:
        raise ValueError(config)
    return model.to(memory_format=torch.channels_last).train()


def make_step(config: str, model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    project = config.startswith("w4a4")
    exact = config.endswith("_exact")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        set_exact_gradients(True if exact else None)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if project:
            project_quantizers(model)
        set_exact_gradients(None)

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch(n: int, device: torch.device, seed: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (n,), generator=gen).to(device)
    return x, y


# ----- timing ------------------------------------------------------------------------------------
def time_configs(configs: List[str], args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    device = torch.device(args.device)
    x, y = batch(args.batch, device)
    steps = {}
    for config in configs:
        steps[config] = make_step(config, build(config, device, x))
        start = time.perf_counter()
        for _ in range(args.warmup):
            steps[config](x, y)
        _sync(device)
        print(f"  {config}: built, {args.warmup} warm-up steps in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
    times: Dict[str, List[float]] = {c: [] for c in configs}
    for r in range(args.rounds):
        order = configs if r % 2 == 0 else configs[::-1]  # alternate to cancel drift
        for config in order:
            for _ in range(args.steps):
                _sync(device)
                start = time.perf_counter()
                steps[config](x, y)
                _sync(device)
                times[config].append(time.perf_counter() - start)
    out = {}
    for config, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        out[config] = {"median_step_ms": 1e3 * statistics.median(ts), "q1_ms": 1e3 * q[0],
                       "q3_ms": 1e3 * q[2], "min_ms": 1e3 * min(ts), "steps_timed": len(ts)}
    base = out.get("float", {}).get("median_step_ms")
    for config in out:
        out[config]["ratio_to_float"] = out[config]["median_step_ms"] / base if base else None
    return out


# ----- memory ------------------------------------------------------------------------------------
def _proc_status_kib(field: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_probe(config: str, args: argparse.Namespace) -> Dict[str, object]:
    """Peak memory growth of full-batch training steps of ``config`` (runs in this process)."""
    device = torch.device(args.device)
    x, y = batch(args.batch, device)
    step = make_step(config, build(config, device, x))
    xs, ys = batch(2, device, seed=2)
    for _ in range(2):  # compile, allocate grads and momentum at a tiny batch
        step(xs, ys)
    _sync(device)
    steps = max(2, min(args.steps, 3))
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(steps):
            step(x, y)
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"method": "torch.cuda.max_memory_allocated - memory_allocated before the steps",
                "peak_mb": peak / 2**20, "growth_mb": (peak - base) / 2**20}
    reset = _reset_peak_rss()
    base = _proc_status_kib("VmRSS")
    for _ in range(steps):
        step(x, y)
    peak = _proc_status_kib("VmHWM")
    if base is None or peak is None:
        import resource

        return {"method": "ru_maxrss (no /proc): whole-process peak", "growth_mb": None,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return {"method": "fresh subprocess: VmHWM growth over VmRSS before the full-batch steps"
                      + ("" if reset else " (peak mark could not be reset: includes warm-up)"),
            "peak_mb": peak / 1024, "growth_mb": (peak - base) / 1024}


def measure_memory(config: str, args: argparse.Namespace) -> Dict[str, object]:
    cmd = [sys.executable, __file__, "--memory-probe", config, "--batch", str(args.batch),
           "--device", args.device, "--compile", str(args.compile), "--steps", str(args.steps)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, LOWBIT_COMPILE=str(args.compile))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----- main --------------------------------------------------------------------------------------
def table(results: Dict[str, Dict[str, object]]) -> str:
    lines = [f"{'config':<20} {'median ms':>10} {'x float':>8} {'peak growth MB':>15}"]
    for config, r in results.items():
        mem = r.get("memory", {}).get("growth_mb")
        ratio = r.get("ratio_to_float")
        lines.append(f"{config:<20} {r['median_step_ms']:>10.1f} "
                     f"{'-' if ratio is None else format(ratio, '.3f'):>8} "
                     f"{'-' if mem is None else format(mem, '.1f'):>15}")
    return "\n".join(lines)


# ----- compile cost on many layer shapes ----------------------------------------------------------
MANY_SHAPES_RUNS = (  # (name, LOWBIT_COMPILE, LOWBIT_COMPILE_BREAKEVEN, inductor cache)
    ("eager", "0", None, None), ("compiled_cold_cache", "1", None, "fresh"),
    ("compiled_warm_cache", "1", None, "reuse"), ("compile_at_first_call", "1", "0", "reuse"),
    ("eager_again", "0", None, None))


def _first_steps_run(compile_flag: str, breakeven: Optional[str], cache: str,
                     args: argparse.Namespace) -> Dict[str, object]:
    cmd = [sys.executable, str(Path(__file__).with_name("many_shapes.py")),
           "--steps", str(args.first_steps)] + (["--threads", str(args.threads)] if args.threads else [])
    env = dict(os.environ, LOWBIT_COMPILE=compile_flag, TORCHINDUCTOR_CACHE_DIR=cache)
    env.pop("LOWBIT_COMPILE_BREAKEVEN", None)
    if breakeven is not None:
        env["LOWBIT_COMPILE_BREAKEVEN"] = breakeven
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1:])
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    steps = raw["step_s"]
    return {"calibrate_s": raw["calibrate_s"], "first_step_s": steps[0],
            "steady_step_ms": 1e3 * statistics.median(steps[10:]),
            "total_s": raw["calibrate_s"] + sum(steps), "compile": raw["compile"],
            "quantized_layers": raw["quantized_layers"],
            "distinct_weight_shapes": raw["distinct_weight_shapes"]}


def many_shapes(args: argparse.Namespace) -> Dict[str, object]:
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory(prefix="lowbit-inductor-") as cache:
        for name, flag, breakeven, how in MANY_SHAPES_RUNS:
            path = os.path.join(cache, "inductor")  # created by the cold run, reused by the warm
            results[name] = _first_steps_run(flag, breakeven, path, args)
            print(f"  {name}: {results[name]['total_s']:.1f} s", file=sys.stderr, flush=True)
    eager = [results["eager"]["total_s"], results["eager_again"]["total_s"]]
    mean = statistics.mean(eager)
    for r in results.values():
        r["total_vs_eager"] = r["total_s"] / mean
    default = ("compiled_cold_cache", "compiled_warm_cache")
    return {"benchmark": "overhead_many_shapes", "model": "many_shapes (EfficientNet-B0-like)",
            "input": [32, 3, 64, 64], "spec": "LSQ W4A4, per-channel weights",
            "steps": args.first_steps, "eager_total_s": eager,
            "target": f"default fast-kernel policy no slower than eager over the first "
                      f"{args.first_steps} steps (calibration included; eager spread = noise)",
            "target_met": all(results[n]["total_s"] <= max(eager) for n in default),
            "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads or torch.get_num_threads(),
                        "torch": torch.__version__, "load_average_1m": round(os.getloadavg()[0], 2)},
            "note": args.note, "results": results}


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.many_shapes:
        info = many_shapes(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps(info, indent=2))
        return info
    lowbit.set_fast_kernels(bool(args.compile))
    set_compile_breakeven(0)  # steady state: every signature compiled in warm-up
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args)))
        return {}
    configs = list(args.configs)
    skipped = {}
    if "brevitas_w4a4" in configs:
        ok, why = brevitas_status()
        if not ok:
            configs.remove("brevitas_w4a4")
            skipped["brevitas_w4a4"] = why
    print(f"timing {configs} on {args.device} (batch {args.batch}, fast kernels "
          f"{'on' if args.compile else 'off'})", file=sys.stderr, flush=True)
    results: Dict[str, Dict[str, object]] = time_configs(configs, args)
    if not args.no_memory:
        for config in configs:
            results[config]["memory"] = measure_memory(config, args)
    info = {
        "benchmark": "overhead",
        "model": "resnet20", "input": [args.batch, 3, 32, 32], "channels_last": True,
        "device": args.device, "fast_kernels": bool(args.compile),
        "rounds": args.rounds, "steps_per_round": args.steps, "warmup": args.warmup,
        "target": "w4a4_lsq median step <= 1.25 x float",
        "target_met": (results.get("w4a4_lsq", {}).get("ratio_to_float") or 99) <= 1.25,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "note": args.note, "skipped": skipped, "results": results,
    }
    if "brevitas_w4a4" in results:
        import brevitas

        info["brevitas_version"] = brevitas.__version__
    text = json.dumps(info, indent=2)
    print(text)
    print(table(results), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return info


if __name__ == "__main__":
    main()
