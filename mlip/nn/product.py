"""Many-body (ACE/MACE-style) symmetric products: powers of the node function on the sphere
(fixed Gaunt couplings), or nested Clebsch-Gordan products with a weight per coupling path."""

from __future__ import annotations

import math

import torch
from torch import nn

from .spherical import FromGrid, S2Grid, ToGrid, degree_index
from .tensor_product import CGTensorProduct


class _Product(nn.Module):
    """What both products share: the body order, and per-element weight rows when asked."""

    def __init__(self, lmax: int, channels: int, correlation: int,
                 num_species: int | None = None):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        self.lmax, self.channels, self.correlation = lmax, channels, int(correlation)
        self.num_species = None if num_species is None else int(num_species)

    def _check_species(self, species):
        if self.num_species is not None and species is None:
            raise ValueError("this product has per-element weights: pass the species")


class SymmetricGridProduct(_Product):
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
        super().__init__(lmax, channels, correlation, num_species)
        self.grid = S2Grid(self.correlation * lmax + lmax)
        self.to_grid = ToGrid(lmax, self.grid, dtype)
        self.from_grid = FromGrid(lmax, self.grid, dtype)
        weights = 0.1 * torch.randn(self.correlation, channels)
        weights[0] = 1.0
        if self.num_species is not None:
            weights = weights.expand(self.num_species, -1, -1).clone()
        self.weights = nn.Parameter(weights)

    def forward(self, x: torch.Tensor, species: torch.Tensor | None = None) -> torch.Tensor:
        f = self.to_grid(x)
        self._check_species(species)
        w = self.weights.to(x.dtype)
        if self.num_species is not None:
            w = w[species].unsqueeze(-2).movedim(1, 0)  # (correlation, N, 1, C)
        power, total = f, w[0] * f
        for nu in range(1, self.correlation):
            power = power * f
            total = total + w[nu] * power
        return self.from_grid(total)


class CGPathProduct(_Product):
    """Many-body product with a learned weight per coupling path, as MACE's symmetric contraction.

    ``x (..., (L+1)^2, C) -> (..., (L+1)^2, C)``, channelwise::

        B = w_1 * x + sum_{nu=2..correlation} CG(C_{nu-1}, x; w_nu),
        C_1 = x,   C_k = CG(C_{k-1}, x; u_k)

    where ``CG(a, b; w)`` is the channelwise Clebsch-Gordan product over the parity-even paths
    ``(l1, l2 -> l3)`` with every degree up to L, each path weighted per channel (and per
    element with ``num_species``). :class:`SymmetricGridProduct` gives every coupling of
    degrees its fixed Gaunt weight; here each path of each body order has its own, which is
    what MACE learns. Intermediate couplings stop at degree L (MACE's run to the full degree),
    so this spans a subset of MACE's products at nested rather than cubic cost. Only even paths:
    with features of parity (-1)^l the product is O(3) equivariant.
    ``dtype`` is taken for SymmetricGridProduct's signature: the coupling tables follow the
    input's dtype.
    """

    def __init__(self, lmax: int, channels: int, correlation: int, dtype=torch.float64,
                 num_species: int | None = None):
        super().__init__(lmax, channels, correlation, num_species)
        self.register_buffer("degree", degree_index(lmax), persistent=False)
        # The product as three dense ops (couple, weight, sum into degrees) built from the CG
        # reference's table, instead of its loop over degree pairs: on a few dozen nodes the
        # loop's many small ops, three times over with the force's double backward, cost more
        # than the arithmetic.
        reference = CGTensorProduct(lmax, lmax, lmax, paths="even")
        self.paths = reference.paths  # weight rows: (l1, l2, l3) in the reference's order
        couple, path_of_row, collect = self._dense_tables(reference)
        self.register_buffer("couple", couple, persistent=False)
        self.register_buffer("path_of_row", path_of_row, persistent=False)
        self.register_buffer("collect", collect, persistent=False)
        lead = () if self.num_species is None else (self.num_species,)
        paths = len(self.paths)
        # Identity at body order 1, small higher orders (as SymmetricGridProduct), and
        # intermediate couplings scaled so their sum over the paths into a degree is unit-size.
        self.linear = nn.Parameter(torch.ones(*lead, lmax + 1, channels))
        self.out = nn.ParameterList(
            nn.Parameter(0.1 * torch.randn(paths, channels).expand(*lead, -1, -1).clone())
            for _ in range(self.correlation - 1))
        per_degree = paths / (lmax + 1)
        self.inner = nn.ParameterList(
            nn.Parameter((torch.randn(paths, channels) / math.sqrt(per_degree))
                         .expand(*lead, -1, -1).clone())
            for _ in range(max(self.correlation - 2, 0)))

    def _dense_tables(self, reference):
        """``couple (R, K*K)``: one row per (path, m3) from the outer product of two features;
        ``path_of_row (R,)``; ``collect (K, R)`` sums each row into its output component."""
        k = (self.lmax + 1) ** 2
        path, m1, m2, m3, coeff = reference.coupling_table()
        rows = sorted({(int(p), int(m)) for p, m in zip(path, m3)})
        index = {pm: r for r, pm in enumerate(rows)}
        couple = torch.zeros(len(rows), k * k, dtype=torch.float64)
        for p, a, b, m, c in zip(path.tolist(), m1.tolist(), m2.tolist(), m3.tolist(),
                                 coeff.tolist()):
            couple[index[(p, m)], a * k + b] += c
        collect = torch.zeros(k, len(rows), dtype=torch.float64)
        for r, (_, m) in enumerate(rows):
            collect[m, r] = 1.0
        return couple, torch.tensor([p for p, _ in rows]), collect

    def _couple(self, a, b, w):
        outer = (a[..., :, None, :] * b[..., None, :, :]).flatten(-3, -2)
        rows = (self.couple.to(a.dtype) @ outer) * w[..., self.path_of_row, :]
        return self.collect.to(a.dtype) @ rows

    def _rows(self, w, species):
        if self.num_species is None:
            return w
        return w[species]

    def forward(self, x: torch.Tensor, species: torch.Tensor | None = None) -> torch.Tensor:
        self._check_species(species)
        linear = self._rows(self.linear, species).to(x.dtype)
        total = x * linear[..., self.degree, :]
        chain = x
        for nu, w in enumerate(self.out):
            total = total + self._couple(chain, x, self._rows(w, species).to(x.dtype))
            if nu < len(self.inner):
                chain = self._couple(chain, x, self._rows(self.inner[nu], species).to(x.dtype))
        return total
