"""Render report.json as Markdown (report.md); every number comes from the JSON.

>>> md = render_markdown({"recipe": {"name": "demo"}, "metrics": {"top1": 91.2, "size_bytes_packed": 2048,
...                       "float32_bytes": 8192, "compression": 4.0}, "layers": [], "history": []})
>>> md.splitlines()[0]
'# lowbit report: demo'
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

KB = 1024


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, list):
        if len(v) > 6:
            return f"{min(v)}..{max(v)} ({len(v)} values)" if all(isinstance(x, (int, float)) for x in v) \
                else f"[{len(v)} items]"
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def table(rows: List[Dict[str, Any]], columns: Iterable[str]) -> List[str]:
    """A Markdown table of ``rows`` restricted to ``columns``."""
    cols = list(columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return out


def _summary(m: Dict[str, Any]) -> List[str]:
    lines = ["| metric | value |", "|---|---|"]
    if "top1" in m:
        lines.append(f"| top-1 accuracy | {m['top1']:.2f}% |")
    if m.get("top1_fp32") is not None:
        lines.append(f"| float baseline top-1 | {m['top1_fp32']:.2f}% "
                     f"(delta {m['top1'] - m['top1_fp32']:+.2f}) |")
    for key in sorted(k for k in m if k.endswith("_top1")):
        lines.append(f"| {key[:-5]} top-1 | {m[key]:.2f}% |")  # e.g. the guided twin's
    if "size_bytes_packed" in m:
        lines.append(f"| packed size | {m['size_bytes_packed'] / KB:.2f} KB "
                     f"({m['size_bytes_packed']:,} bytes) |")
    if "float32_bytes" in m:
        lines.append(f"| float32 size | {m['float32_bytes'] / KB:.2f} KB |")
    if "compression" in m:
        lines.append(f"| compression | {m['compression']:.2f}x |")
    for key in ("weight_bits_total", "act_bits_total", "act_bits_max", "epochs", "seconds",
                "train_images_per_second"):
        if key in m:
            lines.append(f"| {key} | {_fmt(m[key])} |")
    return lines


def _methods(methods: Dict[str, Any]) -> List[str]:
    out: List[str] = []
    for name, section in methods.items():
        out += ["", f"## Method: {name}", ""]
        for key, value in section.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                out += [f"**{key}**", ""] + table(value, value[0].keys()) + [""]
            elif key == "images":
                out += [f"![{name} {k}]({v})" for k, v in value.items()] + [""]
            else:
                out.append(f"- {key}: {_fmt(value)}")
    return out


def render_markdown(report: Dict[str, Any]) -> str:
    """The human report of a run."""
    name = report.get("recipe", {}).get("name", "run")
    out = [f"# lowbit report: {name}", ""]
    desc = report.get("recipe", {}).get("description")
    if desc:
        out += [desc, ""]
    out += ["## Summary", ""] + _summary(report.get("metrics", {}))
    layers = report.get("layers", [])
    if layers:
        cols = ["name", "op", "params", "bits", "weight_bytes", "overhead_bytes", "bias_bytes",
                "act_bits_each", "total_bytes"]
        out += ["", "## Layers", "", "Bytes as stored in the packed file; `bits` per slice "
                "(32 = float).", ""] + table(layers, cols)
    floats = report.get("float_modules", [])
    if floats:
        out += ["", "## Left in float", "", "Modules whose parameters stay float32 (counted in "
                "the packed size at 32 bits).", ""] + table(floats, ["name", "type", "params", "reason"])
    hist = report.get("history", [])
    if hist:
        more = sorted({k for h in hist for k in h if k.endswith("_top1")})  # e.g. twin_top1
        out += ["", "## Training", ""] + table(hist, ["phase", "epoch", "step", "top1", *more, "test_loss",
                                                      "seconds"])
    out += _methods(report.get("methods", {}))
    env = report.get("environment")  # reports written before it existed have none
    if env:
        out += ["", f"Trained with torch {env['torch']} on {env['device']} ({env['cpu_capability']}, "
                f"{env['threads']} threads), Python {env['python']}, {env['platform']}."]
    return "\n".join(out) + "\n"
