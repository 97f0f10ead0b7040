"""Hyperparameter and Pareto sweeps on Optuna: every trial is a ``lowbit train`` run.

Parameters are recipe fields (the ``--set`` paths) with a grid of values or a range::

    methods.0.args.weight_avg_bits=2,3,4        grid
    optim.lr=log:1e-3:1e-1                       log-uniform float
    optim.weight_decay=float:0:1e-3              uniform float
    quant.weight.bits=int:2:8                    integer

Objectives: ``top1`` (maximise), ``size`` (minimise the total memory: packed weights plus the
activation feature maps, Schaefer et al.'s cost), or ``NAME:max`` / ``NAME:min`` for any metrics.json
number. With a grid and no ``--trials`` every combination runs once; otherwise Optuna's TPE
(one objective) or NSGA-II (several) proposes ``--trials`` points. The study lives in
``OUT/study.db``: rerunning the same command continues an interrupted sweep, and a trial whose
run was cut off resumes from its checkpoint.

>>> parse_param("optim.lr=log:1e-3:1e-1").log, parse_param("seed=1,2,3").values
(True, [1, 2, 3])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .errors import ConfigError
from .files import check_output_folder, write_text
from .models.user import check_import_allowed
from .report.pareto import pareto_front, save_pareto_plot
from .train import Trainer, load_recipe
from .train.folder import FolderLock

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
    """A sweep over a recipe; :meth:`run` trains the trials and writes sweep.json."""

    recipe: str
    params: List[SweepParam]
    out: Path
    overrides: List[str] = field(default_factory=list)
    objectives: List[str] = field(default_factory=lambda: ["top1", "size"])
    trials: Optional[int] = None
    data_dir: Optional[str] = None
    verbose: bool = True
    seed: int = 0
    allow_import: bool = False  # a recipe's model.factory imports your code

    def __post_init__(self):
        self.out = Path(self.out)
        if not self.params:
            raise ConfigError("a sweep needs at least one --param")
        self._objs = [parse_objective(o) for o in self.objectives]
        recipe = load_recipe(self.recipe, self.overrides + [s for p in self.params
                                                            for s in self._example_override(p)])
        if recipe.model.factory is not None:  # refuse before the study exists
            check_import_allowed(recipe.model.factory, self.allow_import, "model factory")

    @staticmethod
    def _example_override(p: SweepParam) -> List[str]:
        value = p.values[0] if p.values is not None else (int(p.low) if p.kind == "int" else p.low)
        return p.sets(value)

    def _sampler(self):
        import optuna  # optional (the sweep extra): only a sweep needs it

        if self.trials is None and all(p.values is not None for p in self.params):
            return optuna.samplers.GridSampler({p.key: p.values for p in self.params}, seed=self.seed)
        if len(self._objs) > 1:
            return optuna.samplers.NSGAIISampler(seed=self.seed)
        return optuna.samplers.TPESampler(seed=self.seed)

    def _suggest(self, trial) -> Dict[str, Any]:
        out = {}
        for p in self.params:
            if p.values is not None:
                out[p.key] = trial.suggest_categorical(p.key, p.values)
            elif p.kind == "int":
                out[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high))
            else:
                out[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log)
        return out

    def _run_trial(self, trial) -> Any:
        values = self._suggest(trial)
        run_dir = self.out / f"trial-{trial.number:03d}"
        by_key = {p.key: p for p in self.params}
        sets = self.overrides + [s for k, v in values.items() for s in by_key[k].sets(v)]
        recipe = load_recipe(self.recipe, sets)
        done = (run_dir / "metrics.json").is_file()
        if not done:
            resume = (run_dir / "checkpoint.pt").is_file()
            Trainer(recipe, run_dir, resume=resume, data_dir=self.data_dir, verbose=self.verbose,
                    allow_import=self.allow_import).run()
        metrics = _read_metrics(run_dir / "metrics.json")
        trial.set_user_attr("run", str(run_dir))
        trial.set_user_attr("metrics", metrics)
        result = [objective_value(metrics, name) for name, _ in self._objs]
        return result[0] if len(result) == 1 else result

    def run(self) -> Dict[str, Any]:
        check_output_folder(self.out)  # before any trial trains
        self.out.mkdir(parents=True, exist_ok=True)
        with FolderLock(self.out):  # one sweep per folder at a time
            return self._run()

    def _run(self) -> Dict[str, Any]:
        import optuna  # optional (the sweep extra)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name="lowbit", storage=f"sqlite:///{self.out / 'study.db'}",
                                    sampler=self._sampler(), load_if_exists=True,
                                    directions=[d for _, d in self._objs])
        done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
        total = self.trials if self.trials is not None else math.prod(len(p.values) for p in self.params)
        if total - done > 0:
            study.optimize(self._run_trial, n_trials=total - done)
        return self.summarize(study)

    def summarize(self, study) -> Dict[str, Any]:
        import optuna  # optional (the sweep extra)

        rows = []
        for t in study.trials:
            if t.state == optuna.trial.TrialState.COMPLETE:
                rows.append({"trial": t.number, **point(t.user_attrs["run"], t.params,
                                                        t.user_attrs["metrics"])})
        summary = {"recipe": self.recipe, "objectives": self.objectives, "overrides": self.overrides,
                   "trials": rows, "pareto": pareto_front(rows)}
        write_text(self.out / "sweep.json", json.dumps(summary, indent=2) + "\n")
        save_pareto_plot({"sweep": rows}, self.out / "pareto.png")
        return summary
