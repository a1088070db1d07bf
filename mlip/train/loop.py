"""The training loop: :func:`train` does what ``mlip train config.yaml`` does.

A run directory holds ``config.yaml`` (the resolved configuration), ``best.pt`` (EMA weights
with the lowest validation loss), ``last.pt`` (everything needed to continue), ``metrics.csv``,
``train.log`` and, at the end, ``test_metrics.json``. A run whose directory already has
``last.pt`` continues from it: weights, optimizer, schedule, EMA, RNG states and the position
in the epoch are restored, and the per-epoch data order comes from ``seed`` and the epoch, so
the result equals that of a run that never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._malloc import tune_malloc
from ..data import keys as K
from ..data.graph import to
from ..data.loader import GraphDataset, collate_targets
from ..metrics import TERMS, Metrics, format_mev
from ..models.registry import load_model, model_from_checkpoint
from . import distributed
from .checkpoint import (
    atomic_write_text,
    check_resumable,
    load_train_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .compiled import CompiledPotential
from .config import ConfigError, TrainConfig, as_config, save_config
from .ema import EMA
from .equivariance import SymmetryObjective
from .logger import RunLogger
from .losses import WeightedLoss
from .optim import Schedule, build_optimizer
from .prepare import finetune_model, new_model, split_data
from .progress import Progress, TimeBudget

log = logging.getLogger("mlip.train")

class StopTraining(Exception):
    """Raised by a callback to end training at once, as if the process were killed."""


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # "finished", "early stopping", "time limit", "already finished"
    epochs: int
    steps: int
    best_epoch: int | None = None
    best_valid: dict = field(default_factory=dict)
    test: dict | None = None


def _loader(dataset, sampler, workers: int):
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate_targets, num_workers=workers,
        persistent_workers=workers > 0,
    )


class Trainer:
    def __init__(self, config: TrainConfig, ctx: distributed.Context,
                 callbacks: Sequence[Callable] = ()):
        self.config, self.ctx, self.callbacks = config, ctx, list(callbacks)
        self.run_dir = Path(config.run.run_dir)
        self.loss = WeightedLoss(config.loss)
        self.progress = Progress(epoch_limit=config.run.epochs)  # what callbacks read

    # ---- set-up --------------------------------------------------------------------------
    def setup(self) -> None:
        c, ctx = self.config, self.ctx
        last = self.run_dir / "last.pt"
        resume = last.exists()
        if resume and (self.run_dir / "config.yaml").exists():
            check_resumable(c, self.run_dir / "config.yaml")
        torch.manual_seed(c.run.seed)
        np.random.seed(c.run.seed % 2**32)
        import random

        random.seed(c.run.seed)
        train, valid, self.test_frames = split_data(c)
        if resume:
            ckpt, state = load_train_state(last)
            model = model_from_checkpoint(ckpt, dtype=c.run.dtype)
            model.load_state_dict(state["raw_weights"])
            self.prep = dict(ckpt.get("training", {}).get("data", {}))
        elif c.finetune.checkpoint is not None:
            model, self.prep = finetune_model(c, train)
        else:
            model, self.prep = new_model(c, train)
        self.model = model.to(ctx.device)
        self.model.set_kernel_backend(c.run.kernels)
        # The training forward, traced and compiled on first use (validation stays eager).
        self.forward = CompiledPotential(self.model) if c.run.compile else self.model
        self.symmetry = SymmetryObjective(c.equivariance, self.model,
                                          c.run.seed).to(ctx.device)
        # Everything the optimizer updates: the potential, then TransIP's phi when it is used.
        self.trainable = torch.nn.ModuleList([self.model, self.symmetry])
        distributed.broadcast_parameters(self.trainable, ctx)
        d = c.data
        supported = self.model.elements.tolist()
        self.train_set = GraphDataset(train, self.model.cutoff, d.neighbors, supported=supported)
        self.valid_set = (None if valid is None else
                          GraphDataset(valid, self.model.cutoff, d.neighbors, supported=supported))
        self.sampler = self._sampler(self.train_set, shuffle=True)
        self.train_loader = _loader(self.train_set, self.sampler, d.workers)
        if self.valid_set is not None:
            self.valid_sampler = self._sampler(self.valid_set, shuffle=False)
            self.valid_loader = _loader(self.valid_set, self.valid_sampler, d.workers)
        self.optimizer = build_optimizer(self.trainable, c.optim)
        steps_per_epoch = len(self.sampler.batches())
        if steps_per_epoch == 0:
            raise ConfigError("no training batch: fewer structures than processes?")
        self.steps_per_epoch = steps_per_epoch
        self.schedule = Schedule(self.optimizer, c.optim, c.run.epochs * steps_per_epoch)
        self.ema = EMA(self.model, c.optim.ema_decay) if c.optim.ema_decay > 0 else None
        if resume:
            self._restore(state)
        elif ctx.main:
            save_config(c, self.run_dir / "config.yaml")
        p = self.progress
        self.logger = RunLogger(self.run_dir, ctx.main, c.run.tensorboard, p.epoch)
        if resume:
            log.info("resuming %s at epoch %d, step %d", self.run_dir, p.epoch + 1,
                     p.step_in_epoch)

    def _sampler(self, dataset, shuffle: bool):
        d = self.config.data
        return distributed.BalancedBatchSampler(
            dataset.num_atoms, d.max_atoms,
            num_edges=dataset.num_edges() if d.max_edges is not None else None,
            max_edges=d.max_edges, max_graphs=d.batch_size, rank=self.ctx.rank,
            world=self.ctx.world, shuffle=shuffle, seed=self.config.run.seed,
            drop_small=shuffle,
        )

    # ---- state ---------------------------------------------------------------------------
    @property
    def eval_model(self):
        return self.ema.module if self.ema is not None else self.model

    def _train_state(self) -> dict:
        return {
            "raw_weights": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "symmetry": {k: v.detach().cpu() for k, v in self.symmetry.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(), "symmetry_rng": self.symmetry.rng_state(),
            **self.progress.state_dict(),
        }

    def _restore(self, s: dict) -> None:
        self.symmetry.load_state_dict(s.get("symmetry", {}))
        self.symmetry.set_rng_state(s.get("symmetry_rng"))
        self.optimizer.load_state_dict(s["optimizer"])
        self.schedule.load_state_dict(s["schedule"])
        if self.ema is not None:
            if s["ema"] is None:
                raise ConfigError("the checkpoint has no EMA state but optim.ema_decay > 0")
            self.ema.load_state_dict(s["ema"])
        set_rng_state(s["rng"])
        self.progress.load_state_dict(s)

    def _summary(self, valid: dict | None = None) -> dict:
        p = self.progress
        return {"config": self.config.to_dict(), "data": self.prep, "epoch": p.epoch,
                "step": p.global_step, "best_epoch": p.best_epoch,
                "valid": {k: v for k, v in (valid or p.best_valid).items()
                          if k != "per_element"},
                "status": p.status}

    def save_last(self) -> None:
        if self.ctx.main:
            save_checkpoint(self.run_dir / "last.pt", self.eval_model, self._summary(),
                            self._train_state())

    # ---- steps ---------------------------------------------------------------------------
    def _autocast(self):
        if self.config.run.bf16:
            if self.ctx.device.type != "cuda":
                raise ConfigError("run.bf16 needs a GPU; this run is on the CPU")
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _wants_stress(self, graph) -> bool:
        return (self.loss.wants_stress() and K.STRESS in graph
                and bool(graph[K.PBC].all(dim=1).any()))

    def train_step(self, batch) -> float:
        graph = self.symmetry.prepare(to(batch, self.ctx.device))
        self.model.train()
        with self._autocast():
            pred = self.forward(graph, compute_forces=True,
                                compute_stress=self._wants_stress(graph))
        terms = self.loss.terms(pred, graph)
        counts = torch.tensor([float(terms[t][1]) if t in terms else 0.0 for t in TERMS],
                              dtype=torch.float64)
        self.ctx.all_reduce(counts)
        loss = self.loss.combine(terms, dict(zip(TERMS, counts.tolist())), self.ctx.world)
        # Auxiliary losses are means over this process's batch: the gradient average over
        # processes makes them means over the global batch, so no factor of world here.
        for value in self.symmetry.auxiliary(self.model, graph, pred).values():
            loss = loss + value
        # The model's own penalties (a canonicalizer's frame conditioning), means likewise.
        for value in getattr(self.model, "auxiliary_losses", lambda _: {})(pred).values():
            loss = loss + value
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.trainable, self.ctx)
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable.parameters(),
                                           self.config.optim.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return float(loss.detach()) / self.ctx.world

    def validate(self) -> tuple[float, dict]:
        model = self.eval_model.eval()
        metrics = Metrics()
        sums = torch.zeros(len(TERMS), 2, dtype=torch.float64)
        for batch in self.valid_loader:
            graph = to(batch, self.ctx.device)
            with self._autocast():
                pred = model(graph, compute_forces=True, compute_stress=self._wants_stress(graph))
            pred = {k: v.detach() for k, v in pred.items()}
            metrics.update(pred, graph)
            terms = self.loss.terms(pred, graph)
            for i, term in enumerate(TERMS):
                if term in terms:
                    sums[i] += torch.stack([terms[term][0].cpu(), terms[term][1].cpu()])
        metrics.all_reduce(self.ctx.all_reduce)
        self.ctx.all_reduce(sums)
        terms = {t: (sums[i, 0], sums[i, 1]) for i, t in enumerate(TERMS) if sums[i, 1] > 0}
        return float(self.loss.combine(terms)), metrics.compute()

    # ---- the loop ------------------------------------------------------------------------
    def run(self, max_time: float | None) -> TrainResult:
        c, ctx, p = self.config, self.ctx, self.progress
        budget = TimeBudget(max_time, fit=c.run.fit_to_time and not p.fitted, elapsed=p.elapsed,
                            ctx=ctx)
        if p.epoch >= p.epoch_limit or p.status == "early stopping":
            log.info("%s has already finished (%s)", self.run_dir, p.status)
            return self._result("already finished")
        p.status = "finished"
        tty = ctx.main and sys.stderr.isatty()
        while p.epoch < p.epoch_limit:
            budget.epoch_starts(p.epoch, p.step_in_epoch)
            self.sampler.set_epoch(p.epoch, p.step_in_epoch)
            n_steps = len(self.sampler.batches())
            bar = None
            if tty:
                from tqdm import tqdm

                bar = tqdm(total=n_steps, initial=p.step_in_epoch, leave=False,
                           desc=f"epoch {p.epoch + 1}/{p.epoch_limit}")
            stop = False
            for batch in self.train_loader:
                loss = self.last_loss = self.train_step(batch)
                p.loss_sum += loss
                p.loss_steps += 1
                p.step_in_epoch += 1
                p.global_step += 1
                p.elapsed = budget.elapsed()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}")
                elif ctx.main and p.global_step % c.run.log_every == 0:
                    log.info("epoch %d step %d/%d loss %.5g lr %.3g", p.epoch + 1,
                             p.step_in_epoch, n_steps, loss, self.schedule.lr())
                every = c.run.checkpoint_every
                if every and p.global_step % every == 0 and p.step_in_epoch < n_steps:
                    self.save_last()
                for callback in self.callbacks:
                    callback(self)
                if budget.spent():
                    stop = True
                    break
            if bar is not None:
                bar.close()
            if stop:
                p.status = "time limit"
                log.info("time limit of %.0f s reached at epoch %d step %d; resume to continue",
                         max_time, p.epoch + 1, p.step_in_epoch)
                self.save_last()
                break
            if self.end_epoch(budget):
                break
        self.logger.close()
        return self._result(p.status)

    def end_epoch(self, budget: TimeBudget | None = None) -> bool:
        """Validate, (fit the budget,) log, checkpoint; True when early stopping ends the run."""
        c, p = self.config, self.progress
        # Each process's step losses add up to the global step loss (see train_step).
        train_loss = self.ctx.all_reduce(torch.tensor([p.loss_sum], dtype=torch.float64))
        train_loss = float(train_loss[0]) / max(p.loss_steps, 1)
        if self.valid_set is not None:
            valid_loss, valid = self.validate()
        else:
            valid_loss, valid = train_loss, {}
        p.epoch += 1
        p.step_in_epoch, p.loss_sum, p.loss_steps = 0, 0.0, 0
        # After validation, which the epoch time must include; the schedule follows the fit.
        if budget is not None and budget.fit(p, c.run.epochs):
            self.schedule.total_steps = p.epoch_limit * self.steps_per_epoch
        improved = valid_loss < p.best_loss
        if improved:
            p.best_loss, p.best_epoch, p.best_valid = valid_loss, p.epoch, valid
            p.bad_epochs = 0
        else:
            p.bad_epochs += 1
        self.schedule.epoch_end(valid_loss)
        row = {"epoch": p.epoch, "step": p.global_step, "time_s": round(p.elapsed, 2),
               "lr": self.schedule.lr(), "train_loss": train_loss, "valid_loss": valid_loss}
        row.update({f"valid_{k}_mev": 1000 * v for k, v in valid.items()})
        self.logger.epoch(row)
        log.info("epoch %d/%d train loss %.5g valid loss %.5g%s %s", p.epoch, p.epoch_limit,
                 train_loss, valid_loss, " (best)" if improved else "", format_mev(valid))
        stop = c.run.patience is not None and p.bad_epochs >= c.run.patience
        if stop:
            p.status = "early stopping"
            log.info("early stopping: no better validation loss in %d epochs", c.run.patience)
        if improved and self.ctx.main:
            save_checkpoint(self.run_dir / "best.pt", self.eval_model, self._summary(valid))
        self.save_last()
        return stop

    def _result(self, status: str) -> TrainResult:
        test = None
        if status != "time limit" and self.test_frames is not None and self.ctx.main:
            test = self.evaluate_test()
        p = self.progress
        return TrainResult(self.run_dir, status, p.epoch, p.global_step, p.best_epoch,
                           p.best_valid, test)

    def evaluate_test(self) -> dict:
        from ..evaluate import evaluate

        path = self.run_dir / ("best.pt" if (self.run_dir / "best.pt").exists() else "last.pt")
        model = load_model(path, device=self.ctx.device)
        metrics = evaluate(model, self.test_frames, max_atoms=self.config.data.max_atoms)
        atomic_write_text(self.run_dir / "test_metrics.json", json.dumps(metrics, indent=2))
        log.info("test (%s): %s", path.name, format_mev(metrics))
        return metrics


def train(config, overrides: list[str] | None = None, *, resume=None,
          max_time: float | None = None, callbacks: Sequence[Callable] = ()) -> TrainResult:
    """Train as ``mlip train`` does.

    ``config``: a YAML path, a mapping or a :class:`TrainConfig`; ``overrides``: ``--set``
    strings (``"optim.lr=1e-3"``); ``resume``: a run directory to continue (a run directory
    with ``last.pt`` is continued anyway); ``max_time``: seconds for this invocation (overrides
    ``run.max_time``); ``callbacks``: functions called with the trainer after every step
    (where the run stands is ``trainer.progress``, a :class:`~mlip.train.progress.Progress`).
    """
    if max_time is not None:  # validated with the rest (run.fit_to_time needs it)
        overrides = [*(overrides or []), f"run.max_time={float(max_time)!r}"]
    cfg = as_config(config, overrides)
    tune_malloc()  # 1.2x faster CPU steps on glibc, more under load (mlip/_malloc.py)
    if resume is not None:
        if not (Path(resume) / "last.pt").exists():
            raise ConfigError(f"cannot resume: {resume} has no last.pt")
        cfg = cfg.replace(run=dataclasses.replace(cfg.run, run_dir=str(resume)))
    ctx = distributed.setup(cfg.run.device)
    level = log.level
    if not ctx.main:  # one voice: the other processes only warn
        log.setLevel(logging.WARNING)
    try:
        trainer = Trainer(cfg, ctx, callbacks)
        trainer.setup()
        try:
            return trainer.run(cfg.run.max_time)
        finally:
            trainer.logger.close()
    finally:
        log.setLevel(level)
        distributed.cleanup(ctx)
