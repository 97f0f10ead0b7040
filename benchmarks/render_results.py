"""Render the benchmarks' JSON (benchmarks/results/*.json: overhead, data_loading, export_*,
fuzz_packed, fuzz_cli) as results.md sections. Run after any of those benchmarks:

    python -m benchmarks.render_results
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
from benchmarks.results_md import update_section  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
KB = 1024


def _load(name: str):
    f = RESULTS / f"{name}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def _source(model: dict) -> str:
    return f"{model.get('spec', '')}; {model.get('source', '')}"


def sizes(data: dict) -> str:
    rows = ["## Export: file sizes", "", "Command: `python -m benchmarks.export_sizes`. Bytes on disk; "
            "the packed file's data equals the accounted packed size exactly; entropy = the "
            "zero-order entropy of the weight codes per layer (a lower bound for coding them "
            "independently).", "",
            "| model | float32 file | packed file (header) | accounted | ONNX QDQ | QONNX | entropy of codes / packed | vs float32 |",
            "|---|---|---|---|---|---|---|---|"]
    for label, r in data["results"].items():
        s, c = r["sizes"], r["weight_codes"]["total"]
        rows.append(f"| {label} ({_source(r['model'])}) | {s['float32_safetensors_bytes'] / KB:.1f} KB "
                    f"| {s['packed_file_bytes'] / KB:.1f} KB ({s['packed_header_bytes'] / KB:.1f}) "
                    f"| {s['accounted_packed_bytes'] / KB:.1f} KB | {s['onnx_qdq_bytes'] / KB:.1f} KB "
                    f"| {s['qonnx_bytes'] / KB:.1f} KB | {c['entropy_over_packed']:.3f} "
                    f"| {s['compression_vs_float32_file']:.2f}x |")
    return "\n".join(rows)


def latency(data: dict) -> str:
    rows = ["## Export: onnxruntime latency", "",
            f"Command: `python -m benchmarks.export_latency` (onnxruntime {data['onnxruntime']}, "
            f"{data['threads']} threads, CPU; load average {data['machine']['load_average_1m']} "
            "during the run). Median ms per call and ratio to the float model.", "",
            "| model | variant | file KB | batch 1 ms | vs float | batch 32 ms | vs float |",
            "|---|---|---|---|---|---|---|"]
    for label, r in data["results"].items():
        for variant, v in r.items():
            if variant == "model":
                continue
            rows.append(f"| {label} | {variant} | {v['file_bytes'] / KB:.1f} | {v['batch1']['median_ms']:.2f} "
                        f"| {v['batch1']['vs_float']:.2f}x | {v['batch32']['median_ms']:.1f} "
                        f"| {v['batch32']['vs_float']:.2f}x |")
    return "\n".join(rows)


def parity(data: dict) -> str:
    rows = ["## Export: parity with the fake-quant model", "",
            f"Command: `python -m benchmarks.export_parity {data.get('args', '')}`; "
            f"{data['test_images']} CIFAR-10 test images. Agreement = same top-1 class as the "
            "fake-quant model; logit diff = per-image max |difference|.", "",
            "| model | runner | top-1 % | agreement % | disagreements | logit diff median | p99 | max |",
            "|---|---|---|---|---|---|---|---|"]
    for label, r in data["results"].items():
        for runner, s in r["runners"].items():
            rows.append(f"| {label} | {runner} | {s['top1']:.2f} | {s['agreement_pct']:.2f} "
                        f"| {s['disagreements']} | {s['logit_diff_median']:.2g} "
                        f"| {s['logit_diff_p99']:.2g} | {s['logit_diff_max']:.2g} |")
    rows += ["", "Models:"] + [f"- `{label}`: {_source(r['model'])}" for label, r in data["results"].items()]
    rows += ["", "Runners: `integer_executor` and `fake_quant_from_file` run the packed file alone; "
             "`onnxruntime_default` is onnxruntime with its default graph optimisations (QDQ "
             "fused into integer kernels, float biases rounded to int32 on s_x * s_w by the "
             "runtime); `onnxruntime_literal_qdq` executes Q/DQ as written "
             "(`session.disable_quant_qdq`)."]
    return "\n".join(rows)


def fuzz(data: dict) -> str:
    out = ", ".join(f"{k}: {v}" for k, v in data["outcomes"].items())
    rows = ["## Export: fuzzed packed loader", "",
            f"Command: `python -m benchmarks.fuzz_packed`. {data['files']:,} mutated files "
            f"(bit flips, truncation, extension, header and manifest edits, with and without "
            f"checksum verification): {out}; unexpected failures: {data['failure_count']}; "
            f"seconds per file: mean {data['seconds_per_file']['mean']:.3f}, "
            f"max {data['seconds_per_file']['max']:.2f} (limit {data['time_limit_s']} s)."]
    bombs, imports = data.get("bombs"), data.get("imports")
    if bombs:
        rows += ["", f"Size bombs: {bombs['cases']} files, each loaded in a forked process; peak "
                 f"resident memory above its start vs the bound 4 x file size + {bombs['fixed_mb']} MiB "
                 f"(decoded-size cap {bombs['cap_mb']} MiB in this run; the default is 1 GiB). "
                 f"Bound exceeded, crashes or time-outs: {bombs['failure_count']}.", "",
                 "| kind | outcomes | largest file MB | peak MB (max) | max of peak - 4 x file, MB | max s |",
                 "|---|---|---|---|---|---|"]
        for kind, r in bombs["by_kind"].items():
            outs = ", ".join(f"{k} {v}" for k, v in r["outcomes"].items())
            rows.append(f"| {kind} | {outs} | {r['max_file_mb']:.2f} | {r['max_peak_mb']:.1f} "
                        f"| {r['max_peak_minus_4x_file_mb']:.1f} | {r['max_seconds']:.2f} |")
        rows += ["", "bomb_arch: valid 1-bit MLPs re-signed with an architecture their tensors do not "
                 "fit (refused before decoding); bomb_cap / bomb_valid: the same files under a cap "
                 "below / above their decoded codes (8x the file at 1 bit); bomb_header: up to 1.5 MB "
                 "of nested empty JSON lists in the header."]
    if imports:
        per = ", ".join(f"{k}: " + ", ".join(f"{o} {n}" for o, n in r["outcomes"].items())
                        for k, r in imports["by_kind"].items())
        imported = sum(r["imported"] for r in imports["by_kind"].values())
        rows += ["", f"Import cases: {imports['cases']} files naming the module `lowbit_fuzz_canary` "
                 f"(on `sys.path`, it leaves a marker when imported) as a packed model class, a "
                 f"registry name, or a QONNX / ONNX node domain, loaded and run without "
                 f"`allow_import` ({per}): imported {imported} times."]
    return "\n".join(rows)


def fuzz_cli(data: dict) -> str:
    codes = ", ".join(f"exit {k}: {v}" for k, v in data["exit_codes"].items())
    cmds = "; ".join(f"{c} " + ", ".join(f"{k}: {v}" for k, v in r.items()) for c, r in data["by_command"].items())
    errors = "; ".join(f"{re.sub(r'/tmp/lowbit-fuzz-cli-[^/ ]+', 'TMP', k)}... ({v})"
                       for k, v in list(data["common_errors"].items())[:6])
    return "\n".join([
        "## Command-line fuzz", "",
        f"Command: `{data['command']}`. {data['cases']:,} command lines in-process from a grammar of "
        f"valid and invalid recipe fields and values (`--set`), raw recipe files (binary, YAML "
        f"tags, lists), output locations (new, an earlier run, a file, under a file, "
        f"unwritable, `dir/`), devices, `--force`/`--resume`, and eval/export/report/sweep "
        f"options on a tiny MNIST MLP recipe. {codes} ({cmds}); tracebacks: {data['tracebacks']}; "
        f"other exit codes: {data['other_exit_codes']}; earlier run folders changed: "
        f"{data['changed_folders']} of {data['pool_runs']} watched (hashed before and after every "
        f"case; only `--force` may replace one; cases with an earlier run as `--out`: "
        f"{', '.join(f'{k} {v}' for k, v in data.get('cases_on_earlier_runs', {}).items())}). "
        f"{data['seconds']['total']:.0f} s in all, "
        f"max {data['seconds']['max']:.1f} s a case. Most frequent errors: {errors}."])


def overhead(data: dict) -> str:
    rows = ["## Training-step overhead vs float", "",
            f"Command: `python -m benchmarks.overhead`. One training step of {data['model']} at input "
            f"{data['input']} on {data['device']} ({data['machine']['torch_threads']} thread(s)); "
            f"target: {data['target']} (met: {data['target_met']}). {data.get('note', '')}", "",
            "| variant | median step ms | ratio to float | peak memory MB |", "|---|---|---|---|"]
    for name, r in data["results"].items():
        rows.append(f"| {name} | {r['median_step_ms']:.0f} | {r['ratio_to_float']:.3f}x "
                    f"| {r['memory']['peak_mb']:.0f} |")
    return "\n".join(rows)


def overhead_many_shapes(data: dict) -> str:
    r0 = next(iter(data["results"].values()))
    rows = ["## Compiled fast kernels on a model with many layer shapes", "",
            f"Command: `python -m benchmarks.overhead --many-shapes --threads 1`. {data['model']}: "
            f"{r0['quantized_layers']} quantized layers of {r0['distinct_weight_shapes']} distinct "
            f"weight shapes, input {data['input']}, {data['spec']}; each row a fresh process "
            f"({data['machine']['torch_threads']} thread): `lowbit.calibrate` on one batch, then "
            f"{data['steps']} training steps. Steady state: median of steps 11..{data['steps']}. "
            f"Target: {data['target']} (met: {data['target_met']}). {data.get('note', '')}", "",
            "| run | calibrate s | first step s | steady step ms | total s | vs eager | "
            "signatures compiled | compile s |", "|---|---|---|---|---|---|---|---|"]
    for name, r in data["results"].items():
        c = r["compile"]
        rows.append(f"| {name} | {r['calibrate_s']:.2f} | {r['first_step_s']:.2f} | "
                    f"{r['steady_step_ms']:.0f} | {r['total_s']:.1f} | {r['total_vs_eager']:.2f}x | "
                    f"{c['signatures']} | {c['compile_seconds']:.1f} |")
    return "\n".join(rows)


def data_loading(data: dict) -> str:
    rows = ["## Data loading", "",
            "Command: `python -m benchmarks.data_loading`. One epoch of loading, batching and "
            "augmenting (no model), compared with a training epoch: ResNet-20 trains ~175 img/s "
            "on one thread here (~285 s per CIFAR-10 epoch), so loading is under 1% of it.", "",
            "| dataset | images | first load s | cached load s | epoch s (mean) | images/s |",
            "|---|---|---|---|---|---|"]
    for name, r in data["results"].items():
        rows.append(f"| {name} | {r['images']:,} | {r['first_load_s']:.2f} | {r['cached_load_s']:.2f} "
                    f"| {r['epoch_s']:.2f} | {r['images_per_s']:,.0f} |")
    return "\n".join(rows)


def main() -> int:
    for name, render in (("overhead", overhead), ("overhead-many-shapes", overhead_many_shapes),
                         ("data_loading", data_loading), ("export_sizes", sizes), ("export_latency", latency),
                         ("export_parity", parity), ("fuzz_packed", fuzz), ("fuzz_cli", fuzz_cli)):
        data = _load(name)
        if data is not None:
            update_section(name, render(data))
            print(f"rendered {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
