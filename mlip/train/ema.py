"""Exponential moving average of the weights.

The EMA is a full copy of the model, so validation and the saved checkpoints use it directly.
Buffers (E0, scale, ...) are copied, not averaged: they are set, not learned.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    The effective decay starts low, ``min(decay, (1 + n) / (10 + n))`` after n updates, so the
    early shadow is not dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for shadow, p in zip(self.module.parameters(), model.parameters()):
            shadow.lerp_(p.detach(), 1 - d)
        for shadow, b in zip(self.module.buffers(), model.buffers()):
            shadow.copy_(b)

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "weights": {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.module.load_state_dict(state["weights"])
