"""ZBL screened nuclear repulsion: a physical short-range wall under any learned potential.

Ziegler-Biersack-Littmark universal potential, switched off smoothly (polynomial envelope,
value and two derivatives zero) at the sum of the two covalent radii, so it acts only where
atoms are closer than bonded and never competes with the learned energy near equilibrium.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from torch import nn

from .radial import PolynomialEnvelope

_COULOMB = 14.399645478425668  # e^2 / (4 pi eps0) in eV Å
_PHI_C = (0.18175, 0.50986, 0.28022, 0.02817)
_PHI_D = (3.19980, 0.94229, 0.40290, 0.20162)


class ZBLRepulsion(nn.Module):
    """Per-atom repulsion energy ``(N,)`` in eV (half of each pair on each atom)."""

    def __init__(self, p: int = 6):
        super().__init__()
        self.envelope = PolynomialEnvelope(1.0, p)
        self.register_buffer(
            "radii", torch.tensor(covalent_radii, dtype=torch.float64), persistent=False
        )

    def forward(self, atomic_numbers, edge_index, edge_length):
        sender, receiver = edge_index
        zi = atomic_numbers[receiver].to(edge_length.dtype)
        zj = atomic_numbers[sender].to(edge_length.dtype)
        a = 0.46850 / (zi**0.23 + zj**0.23)
        x = edge_length / a
        phi = sum(c * torch.exp(-d * x) for c, d in zip(_PHI_C, _PHI_D))
        pair = _COULOMB * zi * zj / edge_length * phi
        r_switch = (self.radii[atomic_numbers[receiver]] + self.radii[atomic_numbers[sender]])
        pair = pair * self.envelope(edge_length / r_switch.to(edge_length.dtype))
        n = atomic_numbers.shape[0]
        return torch.zeros(n, dtype=pair.dtype, device=pair.device).index_add(
            0, receiver, 0.5 * pair
        )
