"""Errors and metrics, shared by training and evaluation: per-item errors (:func:`errors`), and
MAE and RMSE of energy per atom, forces and stress, overall, per element and per (charge,
multiplicity) state of the structures that give them (:class:`Metrics`).

Sums are accumulated in float64 and reduced across processes by summing, so the metrics of a
sharded validation set equal those of one process. Values are in eV units; :func:`format_mev`
shows them in meV (meV/atom, meV/Å, meV/Å³).
"""

from __future__ import annotations

import math

import torch
from ase.data import chemical_symbols

from .data import keys as K

TERMS = ("energy", "forces", "stress")

UNITS_MEV = {"energy": "meV/atom", "forces": "meV/Å", "stress": "meV/Å³"}
# The (charge, multiplicity) table: charges -MAX_CHARGE..MAX_CHARGE, multiplicities 1..MAX_SPIN
# (a fixed shape, so processes can sum it); states outside it are counted at its edges.
MAX_CHARGE, MAX_SPIN = 20, 21


def state_label(charge: int, spin: int) -> str:
    """``"+1/2"``: charge, then multiplicity."""
    return f"{charge:+d}/{spin}" if charge else f"0/{spin}"


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


class Metrics:
    """Accumulates absolute and squared errors; :meth:`compute` gives MAE and RMSE."""

    def __init__(self, per_element: bool = False):
        self.per_element = per_element
        # [sum |e|, sum e^2, count] per term, and per element for forces
        self.sums = torch.zeros(len(TERMS), 3, dtype=torch.float64)
        self.element_sums = torch.zeros(119, 3, dtype=torch.float64)
        # [energy, forces] x [sum |e|, sum e^2, count] per (charge, multiplicity)
        self.state_sums = torch.zeros(2 * MAX_CHARGE + 1, MAX_SPIN, 2, 3, dtype=torch.float64)

    def update(self, pred: dict, graph: dict) -> None:
        err = errors(pred, graph)
        for i, term in enumerate(TERMS):
            if term in err and err[term].numel():
                e = err[term].detach().cpu()
                self.sums[i] += torch.stack([e.abs().sum(), e.square().sum(),
                                             torch.tensor(float(e.numel()), dtype=e.dtype)])
        if self.per_element and "forces" in err:
            e = err["forces"].detach().cpu()
            z = err["forces_z"].cpu()
            self.element_sums[:, 0].index_add_(0, z, e.abs().sum(dim=1))
            self.element_sums[:, 1].index_add_(0, z, e.square().sum(dim=1))
            self.element_sums[:, 2].index_add_(0, z, torch.full((len(z),), 3.0,
                                                                 dtype=torch.float64))
        if self.per_element and K.CHARGE in graph and K.SPIN in graph:
            self._update_states(err, graph)

    def _update_states(self, err, graph) -> None:
        charge = graph[K.CHARGE].cpu().round().long().clamp(-MAX_CHARGE, MAX_CHARGE) + MAX_CHARGE
        spin = graph[K.SPIN].cpu().round().long().clamp(1, MAX_SPIN) - 1
        flat = self.state_sums.view(-1, 2, 3)
        for t, (term, where) in enumerate((("energy", "energy_structure"),
                                           ("forces", "forces_structure"))):
            if term not in err or where not in err or not err[term].numel():
                continue
            e = err[term].detach().cpu().reshape(len(err[where]), -1)
            b = err[where].cpu()
            cell = charge[b] * MAX_SPIN + spin[b]
            rows = torch.stack([e.abs().sum(1), e.square().sum(1),
                                torch.full((len(b),), float(e.shape[1]), dtype=e.dtype)], -1)
            flat[:, t].index_add_(0, cell, rows)

    def all_reduce(self, reduce) -> None:
        """Sum the accumulators over processes with ``reduce(tensor)`` (in place)."""
        reduce(self.sums)
        reduce(self.element_sums)
        reduce(self.state_sums)

    def compute(self) -> dict:
        out = {}
        for i, term in enumerate(TERMS):
            abs_sum, sq_sum, n = self.sums[i].tolist()
            if n > 0:
                out[f"{term}_mae"] = abs_sum / n
                out[f"{term}_rmse"] = math.sqrt(sq_sum / n)
        if self.per_element:
            per = {}
            for z in torch.nonzero(self.element_sums[:, 2] > 0).flatten().tolist():
                abs_sum, sq_sum, n = self.element_sums[z].tolist()
                per[chemical_symbols[z]] = {"forces_mae": abs_sum / n,
                                            "forces_rmse": math.sqrt(sq_sum / n),
                                            "n_atoms": int(n // 3)}
            out["per_element"] = per
            states = {}
            for q, s in torch.nonzero(self.state_sums[:, :, :, 2].sum(-1) > 0).tolist():
                row = {}
                for t, term in enumerate(("energy", "forces")):
                    abs_sum, sq_sum, n = self.state_sums[q, s, t].tolist()
                    if n > 0:
                        row[f"{term}_mae"] = abs_sum / n
                        row[f"{term}_rmse"] = math.sqrt(sq_sum / n)
                        if term == "energy":
                            row["n_structures"] = int(n)
                states[state_label(q - MAX_CHARGE, s + 1)] = row
            if states:
                out["per_state"] = states
        return out


def format_mev(metrics: dict, prefix: str = "") -> str:
    """``energy MAE 1.23 RMSE 2.34 meV/atom | forces ...`` for the terms present."""
    parts = []
    for term in TERMS:
        if f"{term}_mae" in metrics:
            parts.append(
                f"{prefix}{term} MAE {1000 * metrics[f'{term}_mae']:.2f} "
                f"RMSE {1000 * metrics[f'{term}_rmse']:.2f} {UNITS_MEV[term]}"
            )
    return " | ".join(parts)
