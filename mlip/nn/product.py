"""Many-body (ACE/MACE-style) symmetric products as powers of the node function on the sphere."""

from __future__ import annotations

import torch
from torch import nn

from .spherical import FromGrid, S2Grid, ToGrid


class SymmetricGridProduct(nn.Module):
    """``B = P_L[sum_{nu=1..correlation} w_nu * f^nu]`` per channel, with ``f = to_grid(x)``.

    ``x (..., (L+1)^2, C) -> (..., (L+1)^2, C)``. Each power f^nu is the nu-fold Gaunt product of
    the node feature function with itself, a band-limited function of degree nu*L. The grid is
    the smallest exact for degree ``correlation * L + L`` (the power times a harmonic of degree
    L), so the projection P_L is exact and the layer is exactly equivariant, under reflections
    too for features of parity (-1)^l (only parity-even couplings exist). A coarser grid would
    alias and break equivariance; none is offered. Weights ``(correlation, C)`` start at the
    identity plus small many-body terms.

    With ``num_species`` the weights are ``(num_species, correlation, C)`` and each node uses its
    own element's row (``forward(x, species)``; shared weights ignore ``species``), as MACE's
    element-dependent product weights: the same neighbourhood then contributes differently
    around a C and an O atom before any nonlinearity. The weights are invariant, so
    equivariance is unchanged.
    """

    def __init__(self, lmax: int, channels: int, correlation: int, dtype=torch.float64,
                 num_species: int | None = None):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        self.lmax, self.channels, self.correlation = lmax, channels, int(correlation)
        self.grid = S2Grid(self.correlation * lmax + lmax)
        self.to_grid = ToGrid(lmax, self.grid, dtype)
        self.from_grid = FromGrid(lmax, self.grid, dtype)
        self.num_species = None if num_species is None else int(num_species)
        weights = 0.1 * torch.randn(self.correlation, channels)
        weights[0] = 1.0
        if self.num_species is not None:
            weights = weights.expand(self.num_species, -1, -1).clone()
        self.weights = nn.Parameter(weights)

    def forward(self, x: torch.Tensor, species: torch.Tensor | None = None) -> torch.Tensor:
        f = self.to_grid(x)
        w = self.weights.to(x.dtype)
        if self.num_species is not None:
            if species is None:
                raise ValueError("this product has per-element weights: pass the species")
            w = w[species].unsqueeze(-2).movedim(1, 0)  # (correlation, N, 1, C)
        power, total = f, w[0] * f
        for nu in range(1, self.correlation):
            power = power * f
            total = total + w[nu] * power
        return self.from_grid(total)
