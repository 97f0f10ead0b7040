"""Several seeds per Pareto point (``pareto.py --seeds 0,1,2``): names, means, and the table.

Seed 0 is the recipes' own seed, so its runs and records are the single-seed front's; seed s
appends ``--set seed=s`` to a run's settings and ``-seed{s}`` to its record's name. A point's
accuracy is the mean over its seeds; its size is the largest over them (a mixed run's size
can differ a little from seed to seed, and "no larger than the uniform point" must hold for
every one of them). The delta is paired: mixed minus uniform for each seed both sides have.
The delta of means comes with its standard error, unpaired (Welch): one seed does not pin a
run's noise, since training amplifies rounding differences (a 5-epoch ResNet-20 point rerun at
its seed on code changed only in ways not meant to change any number moved by 0.28 top-1;
docs/experiments.md).

>>> seed_sets(0), seed_sets(2), seed_suffix(2)
([], ['seed=2'], '-seed2')
>>> parse_seeds("0,1")
[0, 1]
"""

from __future__ import annotations

import math
import statistics
from typing import Dict, List, Optional

KB = 1024


def parse_seeds(text: str) -> List[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ValueError names a bad or repeated entry."""
    seeds = []
    for part in (t.strip() for t in text.split(",")):
        if not part.isdigit():
            raise ValueError(f"--seeds takes non-negative integers like 0,1,2; got {part!r}")
        if int(part) in seeds:
            raise ValueError(f"--seeds: seed {part} is given twice")
        seeds.append(int(part))
    return seeds


def seed_sets(seed: int) -> List[str]:
    return [] if seed == 0 else [f"seed={seed}"]


def seed_suffix(seed: int) -> str:
    return "" if seed == 0 else f"-seed{seed}"


def aggregate(points: List[Dict]) -> List[Dict]:
    """Points of several seeds (each with ``seed``) -> one point per label, in first-seen order:
    ``top1`` the mean, ``top1_by_seed``, ``spread`` (max - min), ``size`` the largest."""
    groups: Dict[str, List[Dict]] = {}
    for p in points:
        groups.setdefault(p["label"], []).append(p)
    out = []
    for label, group in groups.items():
        accs = [p["top1"] for p in group]
        out.append({**group[0], "label": label, "top1": statistics.fmean(accs),
                    "top1_by_seed": {str(p["seed"]): p["top1"] for p in group},
                    "spread": max(accs) - min(accs), "size": max(p["size"] for p in group),
                    "sizes_by_seed": {str(p["seed"]): p["size"] for p in group}})
    return out


def paired_deltas(mixed: Dict, uniform: Dict) -> Dict[str, float]:
    """Mixed minus uniform top-1 for each seed that both points have."""
    mine, theirs = mixed["top1_by_seed"], uniform["top1_by_seed"]
    return {s: mine[s] - theirs[s] for s in mine if s in theirs}


def delta_se(mixed: Dict, uniform: Dict) -> Optional[float]:
    """Standard error of mean(mixed) - mean(uniform) over their seeds, unpaired:
    ``sqrt(var_m / n_m + var_u / n_u)`` with sample variances; None under 2 seeds a side.

    >>> round(delta_se({"top1_by_seed": {"0": 87.0, "1": 86.0}}, {"top1_by_seed": {"0": 87.0, "1": 87.0}}), 3)
    0.5
    """
    m, u = list(mixed["top1_by_seed"].values()), list(uniform["top1_by_seed"].values())
    if len(m) < 2 or len(u) < 2:
        return None
    return math.sqrt(statistics.variance(m) / len(m) + statistics.variance(u) / len(u))


def _acc(p: Dict) -> str:
    seeds = ", ".join(f"s{k} {v:.2f}" for k, v in p["top1_by_seed"].items())
    return f"{p['top1']:.2f} ({seeds})"


def seeds_table(title: str, intro: str, rows: List[Dict], label) -> str:
    """Markdown: per uniform point, its mean and per-seed top-1, the mixed point's, and the
    difference of the means (± its standard error) with each seed's delta."""
    lines = [title, "", intro, "",
             "| uniform | KB | top-1 % mean (by seed) | best mixed precision ≤ that size | KB (max) "
             "| top-1 % mean (by seed) | delta of means (± SE) | paired deltas by seed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u, m = r["uniform"], r["mixed"]
        left = f"| {label(u['params'])} | {u['size'] / KB:.1f} | {_acc(u)} "
        if m is None:
            lines.append(left + "| (none this small) | | | | |")
            continue
        pairs, se = paired_deltas(m, u), delta_se(m, u)
        delta = f"{r['delta']:+.2f}" + ("" if se is None else f" ± {se:.2f}")
        lines.append(left + f"| {label(m['params'])} | {m['size'] / KB:.1f} | {_acc(m)} | "
                     f"{delta} | {', '.join(f's{s} {d:+.2f}' for s, d in pairs.items())} |")
    return "\n".join(lines)
