"""ZBL screened nuclear repulsion: a physical short-range wall under any learned potential.

Ziegler-Biersack-Littmark universal potential, switched off smoothly (polynomial envelope,
value and two derivatives zero) at ``switch`` times the sum of the two covalent radii, so it
acts only where atoms are closer than bonded and never competes with the learned energy.

The switch-off must lie well below bonded distances, not at them: compressed bonds reach about
0.81-0.83 of the covalent sum in acac, 3BPA (up to 1200 K), ethanol, HfO2 and a set of oxides.
Switched off at 1.0, the wall put forces of 2.5 eV/Å RMS into the acac training frames, more
than the DFT forces themselves (1.06 eV/Å), which the network then had to learn to cancel; at
0.7 it is exactly zero on all of them and still stops atoms long before they meet.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from torch import nn

from .radial import PolynomialEnvelope

_COULOMB = 14.399645478425668  # e^2 / (4 pi eps0) in eV Å
_PHI_C = (0.18175, 0.50986, 0.28022, 0.02817)
_PHI_D = (3.19980, 0.94229, 0.40290, 0.20162)

#: Default switch-off distance as a fraction of the covalent radii sum (see the module docstring).
DEFAULT_SWITCH = 0.7
#: The switch of checkpoints before format 2, which stored ``pair_repulsion: true`` for it.
LEGACY_SWITCH = 1.0


def repulsion_switch(pair_repulsion) -> float | None:
    """``pair_repulsion`` as given (false, true or a fraction) -> the switch fraction or None."""
    if pair_repulsion is None or pair_repulsion is False:
        return None
    if pair_repulsion is True:
        return DEFAULT_SWITCH
    if isinstance(pair_repulsion, (int, float)) and 0 < float(pair_repulsion) <= 1.5:
        return float(pair_repulsion)
    raise ValueError("pair_repulsion must be false, true or the switch-off distance as a fraction "
                     f"of the covalent radii sum in (0, 1.5], got {pair_repulsion!r}")


class ZBLRepulsion(nn.Module):
    """Per-atom repulsion energy ``(N,)`` in eV (half of each pair on each atom)."""

    def __init__(self, switch: float = DEFAULT_SWITCH, p: int = 6):
        super().__init__()
        self.switch = float(switch)
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
        r_switch = self.switch * (self.radii[atomic_numbers[receiver]]
                                  + self.radii[atomic_numbers[sender]])
        pair = pair * self.envelope(edge_length / r_switch.to(edge_length.dtype))
        n = atomic_numbers.shape[0]
        return torch.zeros(n, dtype=pair.dtype, device=pair.device).index_add(
            0, receiver, 0.5 * pair
        )
