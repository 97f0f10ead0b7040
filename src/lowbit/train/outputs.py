"""The end of a run: finalize methods, evaluate, account, and write the run folder.

Files (DESIGN.md contract): ``metrics.json`` (top1, top1_fp32 when a float baseline is part of
the recipe, weight_bits_total, act_bits_total, size_bytes_packed, epochs, seconds, ...),
``report.json``, ``report.md``, ``recipe.yaml`` (the resolved recipe), ``checkpoint.pt`` and
``model.safetensors`` (the trained weights; for float recipes, a baseline to fine-tune from).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import torch
import yaml
from safetensors.torch import save

from ..accounting import account
from ..evaluate import evaluate
from ..files import write_bytes, write_text
from .markdown import render_markdown
from .record import build_report

KB = 1024


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """model.safetensors: every tensor of the state dict (quantizer flags go in the metadata)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if isinstance(v, torch.Tensor)}
    extra = {k: v for k, v in model.state_dict().items() if not isinstance(v, torch.Tensor)}
    write_bytes(path, save(state, metadata={"lowbit_extra_state": json.dumps(extra)}))


def collect_metrics(t, final: Dict[str, float], cost) -> Dict[str, Any]:
    s = t.state
    weight_params = sum(layer.params for layer in cost.layers)
    metrics: Dict[str, Any] = {"recipe": t.recipe.name, "top1": final["top1"], "test_loss": final["loss"]}
    if s.top1_fp32 is not None:
        metrics["top1_fp32"] = s.top1_fp32
    metrics.update({
        "weight_bits_total": cost.weight_bits_total, "act_bits_total": cost.act_bits_total,
        "act_bits_max": cost.act_bits_max, "size_bytes_packed": cost.size_bytes_packed,
        "weight_params": weight_params,
        "weight_avg_bits": round(cost.weight_bits_total / max(weight_params, 1), 4),
        "float32_bytes": cost.float32_bytes, "compression": cost.compression,
        "epochs": t.recipe.total_epochs, "steps": s.step, "seconds": round(s.seconds, 1),
        "train_images_per_second": round(s.train_images / max(s.train_seconds, 1e-9), 1),
    })
    return metrics


def finish_run(t) -> Dict[str, Any]:
    """Finalize methods, evaluate, account and write every output of trainer ``t``."""
    for m in t.methods:
        m.finalize(t.ctx)
    final = evaluate(t.model, t.data.test_loader, t.device)
    cost = account(t.model, t.example.to(t.device), fold_bn=t.recipe.fold_bn)
    metrics = collect_metrics(t, final, cost)
    metrics.update(_companion_metrics(t))
    if t.dist.is_main:
        write_outputs(t, metrics, cost)
    t.save(done=True)
    t._say(summary_text(metrics, t.out))
    return metrics


def _companion_metrics(t) -> Dict[str, Any]:
    """e.g. ``twin_top1``: the last epoch's numbers (finalize changes only the low-bit model, so
    the companions are as that epoch evaluated them); a run without epochs evaluates them now."""
    last, names = (t.state.history or [{}])[-1], t.companions.metric_names()
    if all(k in last for k in names):
        return {k: last[k] for k in names}
    return t.companions.evaluate(t.data.test_loader, t.device)


def write_outputs(t, metrics: Dict[str, Any], cost) -> None:
    """metrics.json, report.json (+ plots), report.md, recipe.yaml and model.safetensors."""
    out = t.out
    with t.folder.writing():  # a 0-epoch (PTQ) run writes here first
        report = build_report(recipe=t.recipe.to_dict(), metrics=metrics, cost=cost, model=t.model,
                              history=t.state.history,
                              methods={m.name: m.report(t.ctx) for m in t.methods}, device=t.device)
        write_json(out / "metrics.json", metrics)
        write_json(out / "report.json", report)
        write_text(out / "report.md", render_markdown(report))
        write_text(out / "recipe.yaml", yaml.safe_dump(t.recipe.to_dict(), sort_keys=False))
        save_weights(out / "model.safetensors", t.model)


def summary_text(m: Dict[str, Any], out: Path) -> str:
    lines = [f"done: {m['recipe']}", f"  top-1      {m['top1']:.2f}%"]
    if "top1_fp32" in m:
        lines.append(f"  float      {m['top1_fp32']:.2f}% (delta {m['top1'] - m['top1_fp32']:+.2f})")
    lines += [f"  size       {m['size_bytes_packed'] / KB:.1f} KB packed vs "
              f"{m['float32_bytes'] / KB:.1f} KB float32 ({m['compression']:.1f}x)",
              f"  weights    {m['weight_bits_total']:,} bits; activations {m['act_bits_total']:,} bits (sum)",
              f"  time       {m['seconds']:.0f} s, {m['train_images_per_second']:.0f} img/s training",
              f"  report     {out / 'report.md'} (JSON: {out / 'report.json'})"]
    return "\n".join(lines)
