"""One readable training loop that runs every recipe: phases x methods.

    for phase in recipe.phases:
        apply the phase (what is quantized, bits, frozen quantizers, method arguments)
        for epoch in phase:
            for x, y in train_loader:
                loss = cross_entropy(model(x), y) + sum(method.loss(...))
                backward; method.before_step; optimizer.step; project quantizers; method.after_step
            evaluate; save checkpoint (atomic)
    method.finalize; evaluate; account; write metrics.json, report.json, report.md

Resume (``--resume``) restores model, optimizer, RNG, method state and position from the last
checkpoint and ends with the same metrics as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from ..calibrate import calibrate
from ..errors import CheckpointError, LowbitError
from ..evaluate import evaluate
from ..methods import TrainContext
from ..models.user import check_import_allowed
from ..nn.control import project_quantizers, set_quant_state
from .build import build_data, build_float_model, build_methods, example_input, quantize_model
from .checkpoint import (ENTRY_DAMAGE, RUN_KEYS, load_checkpoint, restoring, rng_state, save_checkpoint,
                         seed_everything, set_rng_state)
from .companions import Companions
from .distributed import barrier, init_distributed
from .folder import RunFolder
from .optim import build_optimizer, set_lr
from .outputs import finish_run
from .progress import Progress
from .recipe import PhaseConfig, Recipe, recipe_from_dict
from .schedule import lr_at

CHECKPOINT = "checkpoint.pt"


class TrainingDiverged(LowbitError):
    """The loss became NaN or infinite."""


@dataclass
class RunState:
    phase: int = 0
    epoch_in_phase: int = 0
    global_epoch: int = 0
    step: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    train_images: int = 0
    top1_fp32: Optional[float] = None
    history: List[Dict[str, Any]] = field(default_factory=list)


def run_state(entry: Dict[str, Any]) -> RunState:
    """The checkpoint's ``state`` entry as a :class:`RunState`; a TypeError names a field of the
    wrong type (the counters must be integers, the clocks numbers)."""
    state = RunState(**entry)
    for name in ("phase", "epoch_in_phase", "global_epoch", "step", "train_images"):
        value = getattr(state, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"{name} must be a count, got {value!r}")
    for name in ("seconds", "train_seconds"):
        if isinstance(getattr(state, name), bool) or not isinstance(getattr(state, name), (int, float)):
            raise TypeError(f"{name} must be a number, got {getattr(state, name)!r}")
    if not isinstance(state.history, list) or not all(isinstance(h, dict) for h in state.history):
        raise TypeError("history must be a list of per-epoch records")
    return state


def _stored_recipe(ckpt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The recipe a checkpoint was written with, read through today's recipe schema (fields an
    older lowbit wrote and since retired are dropped, defaults filled in), so a run started
    before an upgrade still resumes; None when it no longer reads as a recipe."""
    try:
        return recipe_from_dict(ckpt.get("recipe")).to_dict()
    except (LowbitError, *ENTRY_DAMAGE):
        return None


class Trainer:
    """``Trainer(recipe, out_dir).run()`` -> metrics dict."""

    def __init__(self, recipe: Recipe, out_dir, *, resume: bool = False,
                 data_dir: Optional[str] = None, verbose: bool = True, device: Optional[str] = None,
                 force: bool = False, allow_import: bool = False):
        self.recipe, self.out = recipe, Path(out_dir)
        self.allow_import = allow_import  # a recipe's model.factory imports your code
        if recipe.model.factory is not None:  # refuse before loading data or writing anything
            check_import_allowed(recipe.model.factory, allow_import, "model factory")
        self.resume, self.data_dir, self.verbose = resume, data_dir, verbose
        torch.set_flush_denormal(True)  # denormal floats can slow CPU kernels several-fold
        self.dist = init_distributed(device)
        self.device = self.dist.device
        # one writer per folder; with force, the old run is replaced at the first write
        self.folder = RunFolder(self.out, resume=resume, force=force, enabled=self.dist.is_main)
        self.state = RunState()

    # ----- setup -----------------------------------------------------------------------------
    def setup(self) -> None:
        r = self.recipe
        seed_everything(r.seed)
        self.data = build_data(r, self.dist, self.data_dir)
        self.example = example_input(self.data)
        self.float_model = build_float_model(r, self.data, self.allow_import).to(self.device)
        self.model = quantize_model(r, self.float_model, self.example).to(self.device)
        if r.model.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        ckpt = load_checkpoint(self.out / CHECKPOINT, RUN_KEYS) if self.resume else None
        if ckpt is None:
            self._fresh_start()
        self.methods = build_methods(r)
        self.ctx = TrainContext(model=self.model, device=self.device, example_input=self.example,
                                train_loader=self.data.train_loader, test_loader=self.data.test_loader,
                                float_model=self.float_model if r.model.init else None,
                                out_dir=self.out,
                                steps_per_epoch=len(self.data.train_loader))
        for m in self.methods:
            m.setup(self.ctx)
        self.companions = Companions([c for m in self.methods for c in m.companions()], self.dist)
        if ckpt is not None:
            self._restore(ckpt)

    def _fresh_start(self) -> None:
        r = self.recipe
        if r.quant is not None and r.eval_fp32 and r.model.init:
            self.state.top1_fp32 = evaluate(self.float_model, self.data.test_loader, self.device)["top1"]
            self._say(f"float model: top-1 {self.state.top1_fp32:.2f}%")
        if r.quant is not None:
            calibrate(self.model, self.data.calib_loader, r.data.calib_batches, device=self.device)

    def _restore(self, ckpt: Dict[str, Any]) -> None:
        path = self.out / CHECKPOINT
        if _stored_recipe(ckpt) != self.recipe.to_dict():
            raise CheckpointError(f"{path} was written by a different recipe; "
                                  "resume with the same recipe and --set options, or use a new --out")
        if ckpt.get("done"):
            raise CheckpointError(f"the run in {self.out} has already finished; see metrics.json")
        with restoring(path, "state"):
            self.state = run_state(ckpt["state"])
        self.ctx.step = self.state.step
        for i in range(min(self.state.phase, len(self.recipe.phases) - 1) + 1):
            self._apply_phase(i, first_time=False)
        try:
            self.model.load_state_dict(ckpt["model"])
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint does not match the model: {str(exc).splitlines()[0]}") from None
        with restoring(path, "methods"):
            if not isinstance(ckpt["methods"], dict):
                raise TypeError("expected a dict of method states")
            for m in self.methods:
                m.load_state_dict(ckpt["methods"].get(m.name, {}))
        with restoring(path, "companions"):
            self.companions.load_state_dict(ckpt.get("companions", {}))
        with restoring(path, "rng"):
            set_rng_state(ckpt["rng"])
        self._pending_optimizer = ckpt["optimizer"]
        self._say(f"resuming {self.out} at phase {self.state.phase + 1}, "
                  f"epoch {self.state.epoch_in_phase + 1} (step {self.state.step})")

    # ----- phases ------------------------------------------------------------------------------
    def _apply_phase(self, index: int, first_time: bool) -> None:
        p: PhaseConfig = self.recipe.phases[index]
        if self.recipe.quant is not None:
            set_quant_state(self.model, weights=p.quantize_weights, acts=p.quantize_acts,
                            weight_bits=p.weight_bits, act_bits=p.act_bits,
                            freeze=p.freeze_quantizers, learn_bits=p.learn_bits)
            if p.calibrate and first_time:
                calibrate(self.model, self.data.calib_loader, self.recipe.data.calib_batches,
                          device=self.device)
        self.ctx.phase_index = index
        for m in self.methods:
            m.active = m.name not in p.disable_methods
            m.on_phase_start(self.ctx, p, p.methods.get(m.name, {}))

    def run(self) -> Dict[str, Any]:
        with self.folder:  # checked and locked before any data is loaded
            return self._run()

    def _run(self) -> Dict[str, Any]:
        start = time.time()
        self.setup()
        prior = self.state.seconds
        for index in range(self.state.phase, len(self.recipe.phases)):
            resumed = getattr(self, "_pending_optimizer", None) is not None
            if not resumed:
                self._apply_phase(index, first_time=True)
            self._run_phase(index, start, prior)
        self.state.seconds = prior + time.time() - start
        return finish_run(self)

    def _phase_lengths(self, p: PhaseConfig):
        spe = len(self.data.train_loader)
        total = round(p.epochs * spe) if p.epochs > 0 else 0
        if p.epochs > 0:
            total = max(total, 1)
        return spe, total, math.ceil(total / spe)

    def _run_phase(self, index: int, start: float, prior: float) -> None:
        p = self.recipe.phases[index]
        spe, total, n_epochs = self._phase_lengths(p)
        base_lr = p.lr or self.recipe.optim.lr
        extra = [q for m in self.methods for q in m.parameters()]
        optim_cfg = self.recipe.optim if p.quant_lr is None else replace(self.recipe.optim, quant_lr=p.quant_lr)
        self.optimizer = build_optimizer(self.model, optim_cfg, base_lr, extra)
        self.ctx.optimizer = self.optimizer
        if getattr(self, "_pending_optimizer", None) is not None:
            with restoring(self.out / CHECKPOINT, "optimizer"):
                self.optimizer.load_state_dict(self._pending_optimizer)
            self._pending_optimizer = None
        with restoring(self.out / CHECKPOINT, "companions"):
            self.companions.build_optimizers(optim_cfg, base_lr)
        self.ctx.phase_steps = total
        self.label_smoothing = (self.recipe.optim.label_smoothing if p.label_smoothing is None
                                else p.label_smoothing)
        train_model = self._wrap_model()
        for epoch in range(self.state.epoch_in_phase, n_epochs):
            steps = min(spe, total - epoch * spe)
            self.ctx.phase_step = epoch * spe
            self._train_epoch(train_model, p, epoch, n_epochs, steps, total, base_lr)
            self._end_epoch(index, epoch, start, prior)
        self.state.phase, self.state.epoch_in_phase = index + 1, 0

    def _wrap_model(self):
        model = self.model
        if self.dist.enabled:
            model = DDP(model, find_unused_parameters=self.recipe.quant is not None)
        if self.recipe.model.compile:
            model = torch.compile(model)
        return model

    # ----- steps -------------------------------------------------------------------------------
    def _train_epoch(self, model, p, epoch, n_epochs, steps, total, base_lr) -> None:
        loader = self.data.train_loader
        loader.set_epoch(self.state.global_epoch)
        bar = Progress(steps, f"[{p.name} {epoch + 1}/{n_epochs}]", every=self.recipe.log_every,
                       enabled=self.verbose and self.dist.is_main)
        model.train()
        t0 = time.time()
        for i, (x, y) in enumerate(loader):
            if i >= steps:
                break
            lr = lr_at(self.ctx.phase_step, total, len(loader), base_lr, p.schedule)
            loss, acc = self._step(model, x.to(self.device), y.to(self.device), lr)
            bar.update(x.shape[0] * self.dist.world_size, loss=loss, acc=acc, lr=lr, **self.ctx.log)
        bar.close()
        self.state.train_seconds += time.time() - t0
        self.state.train_images += steps * loader.batch_size * self.dist.world_size

    def _step(self, model, x, y, lr: float):
        self.ctx.lr = lr
        set_lr(self.optimizer, lr)
        self.companions.set_lr(lr)
        logits = model(x)
        task = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        weight = 1.0
        for m in self.methods:
            weight *= m.task_weight if m.active else 1.0
        loss = task * weight
        for m in self.methods:
            if m.active:
                term = m.loss(self.ctx, x, y, logits)
                loss = loss if term is None else loss + term
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the loss became {float(loss)} at step {self.ctx.step}; lower the "
                                   "learning rate (optim.lr) or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        self.companions.zero_grad()
        loss.backward()
        for m in self.methods:
            if m.active:
                m.before_step(self.ctx)
        if self.recipe.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.optim.grad_clip)
        self.optimizer.step()
        self.companions.step()
        project_quantizers(self.model)
        for m in self.methods:
            if m.active:
                m.after_step(self.ctx)
        self.ctx.step += 1
        self.ctx.phase_step += 1
        self.state.step = self.ctx.step
        acc = float((logits.argmax(dim=1) == y).float().mean()) * 100
        return loss.item(), acc

    def _end_epoch(self, index: int, epoch: int, start: float, prior: float) -> None:
        ev = evaluate(self.model, self.data.test_loader, self.device)
        self.state.global_epoch += 1
        self.state.epoch_in_phase = epoch + 1
        self.state.seconds = prior + time.time() - start
        extra: Dict[str, Any] = self.companions.evaluate(self.data.test_loader, self.device)
        for m in self.methods:  # before the checkpoint, so a resumed run sees the same state
            if m.active:
                extra.update(m.on_epoch_end(self.ctx))
        entry = {"phase": self.recipe.phases[index].name, "epoch": self.state.global_epoch,
                 "step": self.state.step, "top1": ev["top1"], "test_loss": ev["loss"],
                 "seconds": round(self.state.seconds, 1), **self.ctx.log, **extra}
        self.state.history.append(entry)
        more = "".join(f", {k} {v:.2f}" if isinstance(v, float) else f", {k} {v}" for k, v in extra.items())
        self._say(f"epoch {self.state.global_epoch}: top-1 {ev['top1']:.2f}% (test loss {ev['loss']:.4f}{more})")
        self.save()

    def checkpoint_state(self, done: bool = False) -> Dict[str, Any]:
        return {"recipe": self.recipe.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "state": vars(self.state).copy(),
                "methods": {m.name: m.state_dict() for m in self.methods}, "rng": rng_state(),
                "companions": self.companions.state_dict(),
                "structure": {"folded_bn": getattr(self.model, "lowbit_folded_pairs", [])},
                "done": done}

    def save(self, done: bool = False) -> None:
        if self.dist.is_main:
            with self.folder.writing():
                save_checkpoint(self.out / CHECKPOINT, self.checkpoint_state(done))
        barrier(self.dist)

    def _say(self, text: str) -> None:
        if self.verbose and self.dist.is_main:
            print(text, flush=True)
