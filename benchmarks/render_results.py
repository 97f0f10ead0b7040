"""Render the benchmarks' JSON (benchmarks/results/*.json: overhead, data_loading, export_*,
fuzz_packed) as results.md sections. Run after any of those benchmarks:

    python benchmarks/render_results.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from results_md import update_section  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
KB = 1024


def _load(name: str):
    f = RESULTS / f"{name}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def _source(model: dict) -> str:
    return f"{model.get('spec', '')}; {model.get('source', '')}"


def sizes(data: dict) -> str:
    rows = ["## Export: file sizes", "", "Command: `python benchmarks/export_sizes.py`. Bytes on disk; "
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
            f"Command: `python benchmarks/export_latency.py` (onnxruntime {data['onnxruntime']}, "
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
            f"Command: `python benchmarks/export_parity.py {data.get('args', '')}`; "
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
    return "\n".join(["## Export: fuzzed packed loader", "",
                      f"Command: `python benchmarks/fuzz_packed.py`. {data['files']:,} mutated files "
                      f"(bit flips, truncation, extension, header and manifest edits, with and without "
                      f"checksum verification): {out}; unexpected failures: {data['failure_count']}; "
                      f"seconds per file: mean {data['seconds_per_file']['mean']:.3f}, "
                      f"max {data['seconds_per_file']['max']:.2f} (limit {data['time_limit_s']} s)."])


def overhead(data: dict) -> str:
    rows = ["## Training-step overhead vs float", "",
            f"Command: `python benchmarks/overhead.py`. One training step of {data['model']} at input "
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
            f"Command: `python benchmarks/overhead.py --many-shapes --threads 1`. {data['model']}: "
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
            "Command: `python benchmarks/data_loading.py`. One epoch of loading, batching and "
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
                         ("export_parity", parity), ("fuzz_packed", fuzz)):
        data = _load(name)
        if data is not None:
            update_section(name, render(data))
            print(f"rendered {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
