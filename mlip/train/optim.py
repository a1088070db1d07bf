"""Optimizers (AdamW, AMSGrad) and learning-rate schedules with a linear warm-up.

The schedule is one small object that sets the learning rate from its own counters, so its
whole state is three numbers and a resume restores it exactly.
"""

from __future__ import annotations

import math

import torch

from ..nn.mixing import EquivariantLinear
from .config import OptimConfig


def lr_scales(model: torch.nn.Module, kind: str) -> dict[int, float]:
    """Per-parameter learning-rate factors, keyed by ``id(param)``.

    Adam's step is about ``lr`` in every weight whatever its size, so in layers initialised at
    ``1/sqrt(fan_in)`` (torch's Linear, our EquivariantLinear) a step moves a weight by
    ``lr * sqrt(fan_in)`` of its own scale, while unit-scale tables (embeddings, spline
    coefficients, product weights) move by ``lr``. ``"fan_in"`` divides the matrices' lr by
    ``sqrt(fan_in)``: every weight then moves by the same fraction of its scale, as in e3nn's
    and MACE's parametrisation (unit weights, 1/sqrt(fan_in) in the forward pass), for which
    their lr 0.01 is tuned. Biases keep the base lr: they add to unit-scale activations.
    """
    scales: dict[int, float] = {}
    if kind == "none":
        return scales
    if kind != "fan_in":
        raise ValueError(f"lr_scaling must be 'none' or 'fan_in', got {kind!r}")
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            scales[id(module.weight)] = 1.0 / math.sqrt(max(module.in_features, 1))
        elif isinstance(module, EquivariantLinear):
            for w in module.weights:
                scales[id(w)] = 1.0 / math.sqrt(max(w.shape[0], 1))
    return scales


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """AdamW or AMSGrad; weight decay on matrices only (not on biases, norms or scalars).

    Each group carries an ``lr_scale`` (``lr_scales``) that the schedule multiplies in."""
    scales = lr_scales(model, config.lr_scaling)
    groups: dict[tuple[float, bool], list] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((scales.get(id(p), 1.0), p.ndim >= 2), []).append(p)
    param_groups = [
        {"params": params, "lr_scale": scale,
         "weight_decay": config.weight_decay if matrix else 0.0}
        for (scale, matrix), params in groups.items()
    ]
    return torch.optim.AdamW(
        param_groups, lr=config.lr, amsgrad=config.optimizer == "amsgrad",
        # foreach=False: the same arithmetic order whatever the parameter count (exact resumes).
        foreach=False,
    )


class Schedule:
    """Learning rate = lr · warm-up(step) · (cosine(step) | plateau factor | 1).

    ``step()`` after every optimizer step; ``epoch_end(loss)`` after each validation.
    """

    def __init__(self, optimizer, config: OptimConfig, total_steps: int):
        self.optimizer, self.config = optimizer, config
        self.total_steps = max(int(total_steps), 1)
        self.steps = 0
        self.factor = 1.0  # plateau reductions so far
        self.best = math.inf
        self.bad_epochs = 0
        self._apply()

    def lr(self) -> float:
        c = self.config
        lr = c.lr
        if c.warmup_steps and self.steps < c.warmup_steps:
            lr *= (self.steps + 1) / c.warmup_steps
        if c.schedule == "cosine":
            span = max(self.total_steps - c.warmup_steps, 1)
            t = min(max(self.steps - c.warmup_steps, 0) / span, 1.0)
            lr *= c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        elif c.schedule == "plateau":
            lr *= self.factor
        return lr

    def _apply(self) -> None:
        lr = self.lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def epoch_end(self, loss: float) -> None:
        if self.config.schedule != "plateau":
            return
        if loss < self.best:
            self.best, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.config.plateau_patience:
                self.factor *= self.config.plateau_factor
                self.bad_epochs = 0
        self._apply()

    def state_dict(self) -> dict:
        return {"steps": self.steps, "factor": self.factor, "best": self.best,
                "bad_epochs": self.bad_epochs, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.factor = int(state["steps"]), float(state["factor"])
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.total_steps = int(state["total_steps"])
        self._apply()
