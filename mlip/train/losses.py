"""Losses on energy per atom, forces and stress.

Each term is returned as a (sum, count) pair rather than a mean, so that under DDP every
process can divide by the *global* count: the gradient then equals the one-process gradient of
the same global batch. Targets missing from a structure are NaN (see
:func:`mlip.data.loader.collate_targets`) and are left out of the sums and counts; stress
counts only for periodic structures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..metrics import TERMS, errors
from .config import LossConfig, element_map


class WeightedLoss:
    """Weighted MSE or Huber loss; optional per-element weights on force errors."""

    def __init__(self, config: LossConfig):
        self.config = config
        self.weights = {
            "energy": config.energy_weight,
            "forces": config.forces_weight,
            "stress": config.stress_weight,
        }
        table = torch.ones(119, dtype=torch.float64)
        for z, w in element_map(config.element_weights, "loss.element_weights").items():
            table[z] = w
        self.element_weights = table
        # OC20 tags (0 subsurface, 1 surface, 2 adsorbate): a weight per tag on force errors
        self.tag_weights = {int(t): float(w) for t, w in config.tag_weights.items()}

    def wants_stress(self) -> bool:
        return self.config.stress_weight > 0

    def _rho(self, err: torch.Tensor) -> torch.Tensor:
        if self.config.kind == "huber":
            zero = torch.zeros_like(err)
            return F.huber_loss(err, zero, reduction="none", delta=self.config.huber_delta)
        return err.square()

    def terms(self, pred: dict, graph: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{term: (sum of penalties, count)}`` for the terms that have targets and weight."""
        err = errors(pred, graph, include_fixed=self.config.include_fixed)
        out = {}
        for term in TERMS:
            if term not in err or self.weights[term] == 0:
                continue
            rho = self._rho(err[term])
            if term == "forces":
                w = self.element_weights.to(rho.device)[err["forces_z"]]
                if self.tag_weights and "forces_tag" in err:
                    tags = err["forces_tag"]
                    for tag, weight in self.tag_weights.items():
                        w = torch.where(tags == tag, w * weight, w)
                out[term] = ((rho.sum(dim=1) * w).sum(), 3 * w.sum())
            else:
                out[term] = (rho.sum(), torch.tensor(float(rho.numel()), dtype=torch.float64))
        return out

    def combine(self, terms: dict, counts: dict[str, float] | None = None, world: int = 1):
        """Total loss: Σ weight · sum / count. ``counts`` are the global counts under DDP, and
        ``world`` undoes DDP's averaging of gradients over processes."""
        total = None
        for term, (s, c) in terms.items():
            n = float(counts[term]) if counts is not None else float(c)
            if n <= 0:
                continue
            value = self.weights[term] * s * (world / n)
            total = value if total is None else total + value
        if total is None:
            raise ValueError("the batch has no target with a non-zero loss weight")
        return total
