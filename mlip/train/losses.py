"""Losses on energy per atom, forces and stress.

Each term is returned as a (sum, count) pair rather than a mean, so that under DDP every
process can divide by the *global* count: the gradient then equals the one-process gradient of
the same global batch. Targets missing from a structure are NaN (see :func:`collate_targets`)
and are left out of the sums and counts; stress counts only for periodic structures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import keys as K
from ..data.loader import collate
from .config import LossConfig, element_map

TERMS = ("energy", "forces", "stress")


def collate_targets(graphs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """:func:`mlip.data.loader.collate`, after giving NaN targets to structures without them,
    so one batch may mix frames with and without forces or stress."""
    for key in K.TARGETS:
        if any(key in g for g in graphs) and not all(key in g for g in graphs):
            field = K.FIELDS[key]  # fill NaN: an unknown target
            for g in graphs:
                if key not in g:
                    rows = 1 if field.level == "structure" else len(g[K.POSITIONS])
                    g[key] = torch.full((rows, *field.shape), field.fill, dtype=torch.float64)
    return collate(graphs)


def errors(pred: dict, graph: dict, include_fixed: bool = False) -> dict[str, torch.Tensor]:
    """Per-item errors in float64: energy per atom ``(B',)``, forces ``(N', 3)``, stress
    ``(B'', 3, 3)``, each over the items that have a target; forces keep their atoms'
    element numbers in ``"forces_z"``, and energies and forces the index of their structure
    in ``"energy_structure"`` and ``"forces_structure"``. Atoms held fixed (``fixed``, OC20's
    subsurface) are left out of the forces unless ``include_fixed``: their reference forces are
    real, but no relaxation or MD will ever use the model's."""
    out = {}
    n_atoms = graph[K.NUM_ATOMS].to(torch.float64)
    if K.ENERGY in graph and K.ENERGY in pred:
        ref = graph[K.ENERGY].to(torch.float64)
        ok = torch.isfinite(ref)
        out["energy"] = ((pred[K.ENERGY].to(torch.float64) - ref) / n_atoms)[ok]
        out["energy_structure"] = torch.nonzero(ok).flatten()
    if K.FORCES in graph and K.FORCES in pred:
        ref = graph[K.FORCES].to(torch.float64)
        ok = torch.isfinite(ref).all(dim=1)
        if K.FIXED in graph and not include_fixed:
            ok = ok & ~graph[K.FIXED]
        out["forces"] = (pred[K.FORCES].to(torch.float64) - ref)[ok]
        out["forces_z"] = graph[K.ATOMIC_NUMBERS][ok]
        if K.TAGS in graph:
            out["forces_tag"] = graph[K.TAGS][ok]
        if K.BATCH in graph:
            out["forces_structure"] = graph[K.BATCH][ok]
    if K.STRESS in graph and K.STRESS in pred:
        ref = graph[K.STRESS].to(torch.float64)
        ok = torch.isfinite(ref).flatten(1).all(dim=1) & graph[K.PBC].all(dim=1)
        out["stress"] = (pred[K.STRESS].to(torch.float64) - ref)[ok]
    return out


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
