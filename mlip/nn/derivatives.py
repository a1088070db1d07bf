"""Forces and stress as derivatives of an energy: the one place every Potential takes them.

``strain_inputs`` makes the positions a leaf and, for the stress, applies a symmetric strain to
positions and cell (nequip's ``grad_output`` idea); the model computes its energy from what it
returns, and ``energy_derivatives`` turns that energy into forces ``-dE/dr`` and the stress
``(1/V) dE/d(strain)`` (ASE's sign), zero for a structure without a volume.
"""

from __future__ import annotations

import torch

from ..data import keys as K


def strain_inputs(positions, cell, batch, forces: bool, stress: bool):
    """``(leaf, positions, cell, strain)``: the leaf to differentiate for the forces (None when
    neither derivative is wanted), the strained positions and cell to build the energy from,
    and the strain (None without stress)."""
    if not (forces or stress):
        return None, positions, cell, None
    leaf = positions.detach().requires_grad_(True)
    if not stress:
        return leaf, leaf, cell, None
    strain = torch.zeros(cell.shape[0], 3, 3, dtype=cell.dtype, device=cell.device)
    strain.requires_grad_(True)
    return (leaf, *apply_strain(leaf, cell, batch, strain), strain)


def apply_strain(positions, cell, batch, strain):
    """Positions and cells under the symmetric part of ``strain (B, 3, 3)``, per structure."""
    sym = 0.5 * (strain + strain.transpose(1, 2))
    strained = positions + torch.einsum("ni,nij->nj", positions, sym[batch])
    return strained, cell + torch.bmm(cell, sym)


def stress_from_strain_derivative(d_strain, cell):
    """``(1/V) dE/d(strain)`` (ASE's sign) for the unstrained ``cell``; zero without a volume."""
    volume = torch.linalg.det(cell).abs()
    # Open structures have no volume: their stress is reported as zero, never as inf.
    ok = volume > 1e-12
    safe = torch.where(ok, volume, torch.ones_like(volume))
    stress = d_strain / safe[:, None, None]
    return torch.where(ok[:, None, None], stress, torch.zeros_like(stress))


def energy_derivatives(energy, leaf, strain, cell, forces: bool, create_graph: bool) -> dict:
    """Forces and stress (those asked for, under their schema keys) from the energy ``(B,)`` of
    :func:`strain_inputs`' outputs; ``cell`` is the unstrained cell, for the volume."""
    wrt = [leaf] + ([strain] if strain is not None else [])
    grads = torch.autograd.grad(energy.sum(), wrt, create_graph=create_graph,
                                materialize_grads=True)
    out = {}
    if forces:
        out[K.FORCES] = -grads[0]
    if strain is not None:
        out[K.STRESS] = stress_from_strain_derivative(grads[1], cell)
    return out
