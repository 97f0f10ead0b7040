"""Sweeps and studies: every run is a ``lowbit train`` run; grids, Optuna searches, seeds.

A sweep trains one or more recipes (files or bundled names) over recipe fields (the ``--set``
paths), each with a grid of values or a range::

    methods.0.args.weight_avg_bits=2,3,4        grid
    optim.lr=log:1e-3:1e-1                       log-uniform float
    optim.weight_decay=float:0:1e-3              uniform float
    quant.weight.bits=int:2:8                    integer

Grid (every parameter a list of values, no ``--trials``): every recipe x every combination runs,
in order, in ``OUT/<recipe>+<key>=<value>...`` (``<recipe>``: the file's stem). With
``seeds`` each point runs once per seed (``...+seed=<s>``, the recipe's ``seed`` field set), all
points at the first seed before any at the next, so a complete first table exists early. A run
folder that holds ``metrics.json`` is done; one with a checkpoint resumes: rerunning the same
command (or one with more seeds or values) continues an interrupted sweep.

Search (a range, or ``--trials``): Optuna's TPE (one objective) or NSGA-II (several) proposes
``--trials`` points (several recipes become one more categorical parameter, ``recipe``); with
seeds a trial trains every seed and its objective is the mean. The study lives in
``OUT/study.db``; rerunning continues it.

Objectives: ``top1`` (maximise), ``size`` (minimise the total memory: packed weights plus the
activation feature maps, the cost of Schaefer et al.'s mixed-precision paper), or
``NAME:max`` / ``NAME:min`` for any metrics.json number. ``OUT/sweep.json`` lists every run
(``trials``) and every point with the mean and standard error of each metric over its seeds
(``points``); ``OUT/pareto.png`` plots accuracy against size, ``OUT/curves.png`` each point's
mean test top-1 per epoch. ``--compare OTHER/sweep.json`` sets each point of another sweep (say
uniform precision) against the best point of this one no larger, with the gap of the means, its
standard error and the gap at each seed (:func:`lowbit.report.fronts.compare_fronts`), in
``OUT/comparison.json``.

>>> parse_param("optim.lr=log:1e-3:1e-1").log, parse_param("seed=1,2,3").values
(True, [1, 2, 3])
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from .errors import ConfigError
from .files import check_output_folder
from .models.user import check_import_allowed
from .plotting import save_curves_plot
from .report.aggregate import aggregate_points, history_curves
from .report.pareto import pareto_front, save_pareto_plot  # noqa: F401 (pareto_front: public here too)
from .train.folder import FolderLock
from .train.loop import Trainer
from .train.outputs import write_json
from .train.recipe import load_recipe

RANGE_KINDS = ("log", "float", "int")


@dataclass(frozen=True)
class SweepParam:
    key: str
    values: Optional[List[Any]] = None
    kind: Optional[str] = None
    low: float = 0.0
    high: float = 0.0

    @property
    def log(self) -> bool:
        return self.kind == "log"

    @property
    def keys(self) -> List[str]:
        """The recipe fields this parameter sets: ``a+b`` ties a and b to one value."""
        return self.key.split("+")

    def sets(self, value: Any) -> List[str]:
        """``--set`` overrides for one value of this parameter."""
        return [f"{k}={json.dumps(value)}" for k in self.keys]


def parse_param(text: str) -> SweepParam:
    """``key=v1,v2`` (grid) or ``key=log|float|int:low:high`` (range); ``k1+k2=...`` gives
    both fields the same value in every trial (a diagonal, e.g. W2A2, W4A4 instead of a grid).

    >>> parse_param("quant.weight.bits+quant.act.bits=2,4").sets(2)
    ['quant.weight.bits=2', 'quant.act.bits=2']
    """
    key, sep, spec = text.partition("=")
    if not sep or not key or not spec:
        raise ConfigError(f"--param expects KEY=VALUES or KEY=log:LOW:HIGH, got {text!r}")
    if any(not k for k in key.split("+")):
        raise ConfigError(f"--param {key}: tie fields as KEY1+KEY2=VALUES, got an empty field")
    head = spec.split(":")[0]
    if head in RANGE_KINDS:
        parts = spec.split(":")
        if len(parts) != 3:
            raise ConfigError(f"--param {key}: a range is {head}:LOW:HIGH, got {spec!r}")
        try:
            low, high = float(parts[1]), float(parts[2])
        except ValueError:
            raise ConfigError(f"--param {key}: range bounds must be numbers, got {spec!r}") from None
        if not low < high or (head == "log" and low <= 0):
            raise ConfigError(f"--param {key}: need 0 < low < high for log, low < high otherwise")
        return SweepParam(key, kind=head, low=low, high=high)
    values = [yaml.safe_load(v) for v in spec.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"--param {key}: no values")
    return SweepParam(key, values=values)


def parse_seeds(text: str) -> List[int]:
    """``0,1,2`` -> [0, 1, 2] (distinct whole numbers).

    >>> parse_seeds("0, 1")
    [0, 1]
    """
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects whole numbers separated by commas, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs distinct seeds, got {text!r}")
    return seeds


def run_name(recipe: Optional[str], params: Dict[str, Any], seed: Optional[int]) -> str:
    """The run folder of a grid point: ``recipe+key=value+...+seed=s`` (one path component).

    >>> run_name("w2-ts", {"optim.lr": 0.05}, 1), run_name("mlp", {"quant.weight.bits": 2}, None)
    ('w2-ts+optim.lr=0.05+seed=1', 'mlp+quant.weight.bits=2')
    """
    parts = ([recipe] if recipe else []) + [f"{k}={json.dumps(v)}" for k, v in params.items()]
    parts += [f"seed={seed}"] if seed is not None else []
    return re.sub(r"[^A-Za-z0-9._=+,-]", "_", "+".join(parts) or "run")


def parse_objective(text: str) -> Tuple[str, str]:
    """``top1`` -> (top1, maximize); ``size`` -> (size, minimize); ``NAME:min|max``."""
    if text == "top1":
        return "top1", "maximize"
    if text == "size":
        return "size", "minimize"
    name, sep, direction = text.partition(":")
    if not sep or direction not in ("min", "max"):
        raise ConfigError(f"objective must be top1, size or NAME:min / NAME:max, got {text!r}")
    return name, "minimize" if direction == "min" else "maximize"


def total_size_bytes(metrics: Dict[str, Any]) -> float:
    """Weights (as packed) plus the summed activation feature maps (Schaefer et al.'s memory cost)."""
    return metrics["size_bytes_packed"] + metrics["act_bits_total"] / 8


def point(run: str, params: Dict[str, Any], metrics: Dict[str, Any]) -> Dict[str, Any]:
    """One run as a point of accuracy vs size (a row of sweep.json)."""
    return {"run": run, "params": params, "top1": metrics["top1"], "size": total_size_bytes(metrics),
            "size_bytes_packed": metrics["size_bytes_packed"],
            "act_bits_total": metrics["act_bits_total"], "seconds": metrics["seconds"]}


def read_run(run_dir: Path, label: Optional[str], values: Dict[str, Any], seed: Optional[int]) -> Dict[str, Any]:
    """The sweep row of a finished run folder (metrics.json and report.json)."""
    metrics = _read_metrics(run_dir / "metrics.json")
    report = json.loads((run_dir / "report.json").read_text())
    return {"run": str(run_dir), "recipe": label, "params": values, "seed": seed,
            **point(str(run_dir), values, metrics),
            "metrics": {**metrics, "size": total_size_bytes(metrics)},
            "curves": history_curves(report.get("history", []))}


def objective_value(metrics: Dict[str, Any], name: str) -> float:
    if name == "size":
        return total_size_bytes(metrics)
    if name not in metrics:
        raise ConfigError(f"objective {name!r} is not in metrics.json; available: {', '.join(metrics)}")
    return float(metrics[name])


def _read_metrics(path: Path) -> Dict[str, Any]:
    """A trial's metrics.json; a damaged one is a one-line error naming the trial folder."""
    try:
        metrics = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is damaged ({str(exc)[:80]}); delete {path.parent} to rerun "
                          "that trial") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("top1"), (int, float)):
        raise ConfigError(f"{path} is not a lowbit metrics.json; delete {path.parent} to rerun that trial")
    return metrics


@dataclass
class Sweep:
    """A sweep over one or more recipes; :meth:`run` trains the runs and writes sweep.json."""

    recipe: Union[str, Sequence[str]]
    params: List[SweepParam]
    out: Path
    overrides: List[str] = field(default_factory=list)
    objectives: List[str] = field(default_factory=lambda: ["top1", "size"])
    trials: Optional[int] = None
    data_dir: Optional[str] = None
    verbose: bool = True
    seed: int = 0
    seeds: Optional[List[int]] = None
    allow_import: bool = False  # a recipe's model.factory imports your code

    def __post_init__(self):
        self.out = Path(self.out)
        self.recipes = [self.recipe] if isinstance(self.recipe, str) else list(self.recipe)
        if not self.recipes:
            raise ConfigError("a sweep needs at least one recipe")
        labels = [Path(r).stem if r.endswith((".yaml", ".yml")) else Path(r).name for r in self.recipes]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"the recipes of a sweep need distinct names (they name the run "
                              f"folders), got {', '.join(labels)}")
        self.labels = dict(zip(labels, self.recipes))
        if not self.params and len(self.recipes) == 1 and not self.seeds:
            raise ConfigError("a sweep needs at least one --param, several recipes or --seeds")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError(f"seeds must be distinct, got {self.seeds}")
        if not self.is_grid and self.trials is None:
            raise ConfigError("a sweep with a range parameter (log:, float:, int:) needs --trials")
        self._objs = [parse_objective(o) for o in self.objectives]
        for r in self.recipes:
            recipe = self._load(r, [s for p in self.params for s in self._example_override(p)])
            if recipe.model.factory is not None:  # refuse before any run exists
                check_import_allowed(recipe.model.factory, self.allow_import, "model factory")

    def _load(self, recipe: str, sets: List[str]):
        return load_recipe(recipe, self.overrides + sets)

    @staticmethod
    def _example_override(p: SweepParam) -> List[str]:
        value = p.values[0] if p.values is not None else (int(p.low) if p.kind == "int" else p.low)
        return p.sets(value)

    @property
    def is_grid(self) -> bool:
        return self.trials is None and all(p.values is not None for p in self.params)

    def _sets(self, values: Dict[str, Any], seed: Optional[int]) -> List[str]:
        by_key = {p.key: p for p in self.params}
        sets = [s for k, v in values.items() for s in by_key[k].sets(v)]
        return sets + ([f"seed={seed}"] if seed is not None else [])

    def _train(self, label: str, values: Dict[str, Any], seed: Optional[int], run_dir: Path) -> Dict[str, Any]:
        """Train (or resume, or reuse) one run; its sweep row."""
        recipe = self._load(self.labels[label], self._sets(values, seed))
        if (run_dir / "metrics.json").is_file():
            if load_recipe(str(run_dir / "recipe.yaml")).to_dict() != recipe.to_dict():
                raise ConfigError(f"{run_dir} holds a finished run of a different recipe; use "
                                  "another --out or remove that folder")
        else:
            Trainer(recipe, run_dir, resume=(run_dir / "checkpoint.pt").is_file(),
                    data_dir=self.data_dir, verbose=self.verbose, allow_import=self.allow_import).run()
        return read_run(run_dir, label, values, seed)

    def _say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)

    def run(self) -> Dict[str, Any]:
        check_output_folder(self.out)  # before any run trains
        self.out.mkdir(parents=True, exist_ok=True)
        with FolderLock(self.out):  # one sweep per folder at a time
            rows = self._run_grid() if self.is_grid else self._run_search()
            return self.summarize(rows)

    def plan(self) -> List[Tuple[Optional[int], str, Dict[str, Any], str]]:
        """The grid's runs in training order: (seed, recipe label, values, run folder name)."""
        combos = list(itertools.product(*[p.values for p in self.params]))
        plan = [(seed, label, dict(zip([p.key for p in self.params], combo)))
                for seed in (self.seeds or [None]) for label in self.labels for combo in combos]
        names = [run_name(label, values, seed) for seed, label, values in plan]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"two sweep points share the run folder {name!r}; make the values distinct")
        return [(*entry, name) for entry, name in zip(plan, names)]

    def _run_grid(self) -> List[Dict[str, Any]]:
        plan = self.plan()
        rows = []
        for i, (seed, label, values, name) in enumerate(plan):
            self._say(f"[sweep {i + 1}/{len(plan)}] {name}")
            rows.append({"trial": i, **self._train(label, values, seed, self.out / name)})
        return rows

    def finished(self) -> Tuple[List[Dict[str, Any]], List[str]]:
        """The sweep rows of the grid's finished runs, read without training or writing anything,
        and the run folder names not finished yet (a partial table while a sweep still runs)."""
        rows, missing = [], []
        for i, (seed, label, values, name) in enumerate(self.plan()):
            if (self.out / name / "metrics.json").is_file():
                rows.append({"trial": i, **read_run(self.out / name, label, values, seed)})
            else:
                missing.append(name)
        return rows, missing

    def _sampler(self):
        import optuna  # optional (the sweep extra): only a sweep needs it

        if len(self._objs) > 1:
            return optuna.samplers.NSGAIISampler(seed=self.seed)
        return optuna.samplers.TPESampler(seed=self.seed)

    def _suggest(self, trial) -> Tuple[str, Dict[str, Any]]:
        out = {}
        for p in self.params:
            if p.values is not None:
                out[p.key] = trial.suggest_categorical(p.key, p.values)
            elif p.kind == "int":
                out[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high))
            else:
                out[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log)
        labels = list(self.labels)
        return (trial.suggest_categorical("recipe", labels) if len(labels) > 1 else labels[0]), out

    def _run_trial(self, trial) -> Any:
        label, values = self._suggest(trial)
        rows = []
        for seed in self.seeds or [None]:
            name = f"trial-{trial.number:03d}" + (f"+seed={seed}" if seed is not None else "")
            rows.append(self._train(label, values, seed, self.out / name))
        trial.set_user_attr("rows", rows)
        result = [sum(objective_value(r["metrics"], n) for r in rows) / len(rows) for n, _ in self._objs]
        return result[0] if len(result) == 1 else result

    def _run_search(self) -> List[Dict[str, Any]]:
        import optuna  # optional (the sweep extra)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name="lowbit", storage=f"sqlite:///{self.out / 'study.db'}",
                                    sampler=self._sampler(), load_if_exists=True,
                                    directions=[d for _, d in self._objs])
        done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
        if self.trials - done > 0:
            study.optimize(self._run_trial, n_trials=self.trials - done)
        return [{"trial": t.number, **r} for t in study.trials
                if t.state == optuna.trial.TrialState.COMPLETE for r in t.user_attrs["rows"]]

    def summary(self, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The contents of sweep.json: runs, points with mean and standard error, Pareto front."""
        points = aggregate_points(rows)
        for p in points:
            p["top1"], p["size"] = p["mean"]["top1"], p["mean"]["size"]
            p["label"] = point_label(p, several=len(self.labels) > 1)
        return {"recipe": self.recipes[0], "recipes": self.recipes, "objectives": self.objectives,
                "overrides": self.overrides, "seeds": self.seeds, "trials": rows,
                "points": points, "pareto": pareto_front(points)}

    def summarize(self, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Write sweep.json (:meth:`summary`) and the plots."""
        summary = self.summary(rows)
        points = summary["points"]
        write_json(self.out / "sweep.json", summary)  # atomic: a reader never sees half a file
        save_pareto_plot({"sweep": points}, self.out / "pareto.png")
        save_curves_plot({p["label"]: p["curves"].get("top1", []) for p in points}, self.out / "curves.png",
                         title="test top-1 per epoch" + (" (mean over seeds)" if self.seeds else ""))
        return summary


def point_label(p: Dict[str, Any], several: bool = True) -> str:
    """``recipe key=value ...`` (the recipe only when the sweep has several)."""
    parts = ([p["recipe"]] if several else []) + [f"{k}={v}" for k, v in p["params"].items()]
    return " ".join(parts) or str(p["recipe"])


def read_trials(path: Path) -> List[Dict[str, Any]]:
    """The runs (``trials``) of a sweep.json; a missing or foreign file is a one-line error."""
    try:
        trials = json.loads(Path(path).read_text())["trials"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a readable sweep.json ({str(exc)[:80]})") from None
    return trials


def format_comparison(comparison: List[Dict[str, Any]]) -> List[str]:
    """One line per reference point: its top-1, the best point no larger, gap ± standard error."""
    lines = []
    for c in comparison:
        ref, best = c["reference"], c["best"]
        left = f"  {ref['size'] / 1024:9.1f} KB  {ref['top1']:6.2f}%  {point_label(ref, False):<28}"
        if best is None:
            lines.append(left + " | none this small")
            continue
        se = "" if c["se"] is None else f" ± {c['se']:.2f}"
        lines.append(left + f" | {best['size'] / 1024:9.1f} KB  {best['top1']:6.2f}%  "
                     f"{point_label(best)}  gap {c['gap']:+.2f}{se}")
    return lines


def format_points(points: List[Dict[str, Any]], metric: str = "top1") -> List[str]:
    """One line per point: ``mean ± standard error (n runs)  label``."""
    lines = []
    for p in points:
        mean, se = p["mean"].get(metric), p["se"].get(metric)
        spread = f" ± {se:.2f}" if se is not None else ""
        lines.append(f"  {mean:7.2f}{spread:<8} (n={p['n']})  {p['label']}")
    return lines
