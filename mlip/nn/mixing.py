"""Channel mixing in the spherical-channel layout: equivariant linear layers, gates, grid mixing.

Ragged features are stored padded as ``(N, (L+1)^2, C_max)``: degree l has ``channels[l]``
meaningful channels and the rest are exactly zero. Every module here keeps that padding zero.
Parity: all of them act on each degree separately (or pointwise on the sphere), so features
of parity (-1)^l keep it, and they are O(3) equivariant; GridMixing only approximately (below).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..kernels.grid_mixing import grid_mlp
from .spherical import GRID_KINDS, FromGrid, S2Grid, ToGrid, lebedev_degrees


def per_degree(channels, lmax: int) -> tuple[int, ...]:
    """An int or a per-degree sequence of channel counts -> a tuple of length lmax + 1."""
    if isinstance(channels, int):
        return (channels,) * (lmax + 1)
    channels = tuple(int(c) for c in channels)
    if len(channels) != lmax + 1:
        raise ValueError(f"channels {channels} must give one count per degree 0..{lmax}")
    return channels


class EquivariantLinear(nn.Module):
    """One weight matrix ``(C_l_in, C_l_out)`` per degree, a bias on l = 0 only.

    ``(N, (L+1)^2, >= max C_in) -> (N, (L+1)^2, max C_out)``; extra input channels beyond
    ``C_l_in`` are ignored and output channels beyond ``C_l_out`` are exactly zero.
    """

    def __init__(self, lmax: int, channels_in, channels_out, bias: bool = True):
        super().__init__()
        self.lmax = lmax
        self.channels_in = per_degree(channels_in, lmax)
        self.channels_out = per_degree(channels_out, lmax)
        self.width_out = max(self.channels_out)
        # Unit-variance init: each output is a sum of C_in unit-variance terms.
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(ci, co) / math.sqrt(max(ci, 1)))
            for ci, co in zip(self.channels_in, self.channels_out)
        )
        self.bias = nn.Parameter(torch.zeros(self.channels_out[0])) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = []
        for l, w in enumerate(self.weights):
            ci, co = w.shape
            block = x[..., l * l : (l + 1) ** 2, :ci] @ w.to(x.dtype)
            if l == 0 and self.bias is not None:
                block = block + self.bias.to(x.dtype)
            blocks.append(nn.functional.pad(block, (0, self.width_out - co)))
        return torch.cat(blocks, dim=-2)


class Gate(nn.Module):
    """Gated nonlinearity: SiLU on the scalars, degree l > 0 scaled by sigmoid(gate scalars).

    Input: l = 0 row carries ``channels[0]`` scalars followed by one gate per channel of every
    l > 0 (``input_channels(channels)`` gives the layout an EquivariantLinear should produce);
    output ``(N, (L+1)^2, max(channels))``. Gates are invariant, so parity is kept.
    """

    def __init__(self, lmax: int, channels):
        super().__init__()
        self.lmax = lmax
        self.channels = per_degree(channels, lmax)

    @staticmethod
    def input_channels(channels) -> tuple[int, ...]:
        channels = tuple(channels)
        return (channels[0] + sum(channels[1:]),) + channels[1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = max(self.channels)
        c0 = self.channels[0]
        scalars = x[..., 0:1, :c0]
        gates = torch.sigmoid(x[..., 0:1, c0 : c0 + sum(self.channels[1:])])
        blocks = [nn.functional.pad(nn.functional.silu(scalars), (0, width - c0))]
        start = 0
        for l in range(1, self.lmax + 1):
            cl = self.channels[l]
            block = x[..., l * l : (l + 1) ** 2, :cl] * gates[..., start : start + cl]
            blocks.append(nn.functional.pad(block, (0, width - cl)))
            start += cl
        return torch.cat(blocks, dim=-2)


# Smallest grid degree with relative equivariance error < 1e-5 at initialisation, a 10x margin
# under the 1e-4 target (scripts/grid_mixing_error.py, table in docs/nn.md). lmax 6 never got
# under 1e-5 up to degree 56 (it levels off near 2e-5); 52 gives 2.1e-5. Beyond 6: extrapolated.
_MEASURED_RESOLUTION = {0: 0, 1: 8, 2: 16, 3: 24, 4: 32, 5: 44, 6: 52}


def default_grid_resolution(lmax: int) -> int:
    """The grid degree GridMixing trains on unless told otherwise (measured; docs/nn.md)."""
    return _MEASURED_RESOLUTION.get(lmax, 8 * lmax + 4)


# Trained weights alias far more than initial ones: facet-s trained on acac had a force error
# over rotation orbits of 3.9 meV/Å at degree 16, 0.54 at 24 and 0.08 at 32, with the same test
# error at all three (docs/nn.md). Evaluation therefore uses a finer grid than training, 8
# degrees finer. A Lebedev rule needs about 2/3 of a Gauss grid's points for the same degree,
# and the first one (with positive weights) past that Gauss degree aliases less than it: for
# lmax 2, degree 29 has 302 points against 325 at Gauss 24 and 25% less rotation error on
# scaled-up weights (docs/nn.md). New models evaluate on it; checkpoints before format 4 keep
# the Gauss grid they were saved with.
EVAL_RESOLUTION_MARGIN = 8
EVAL_GRID_KIND = "lebedev"


def default_eval_grid_resolution(lmax: int, kind: str = "gauss") -> int:
    """The grid degree GridMixing evaluates on (``model.eval()``) unless told otherwise."""
    if lmax == 0:
        return 0
    degree = default_grid_resolution(lmax) + EVAL_RESOLUTION_MARGIN
    if kind == "lebedev":
        return min(n for n in lebedev_degrees() if n > degree)
    return degree


class GridMixing(nn.Module):
    """Facet's self-connection: a channel MLP at every point of an S2 grid.

    Lift every degree to ``hidden`` channels (EquivariantLinear), sample on the grid, apply
    ``Linear -> SiLU -> Linear`` over channels at each point, project back to degree L, append
    the input scalars to the l = 0 channels, and finish with an EquivariantLinear to
    ``channels_out``. The pointwise SiLU makes the function band-unlimited, so the projection
    aliases and equivariance is approximate; the error falls with the grid's exact degree
    (at least 2L) and is measured in docs/nn.md. Training (``module.train()``) uses the grid of
    degree ``grid_resolution`` (``grid_kind``, Gauss by default); evaluation uses the finer
    ``eval_grid_resolution`` (``eval_grid_kind``, Lebedev by default: fewer points for the same
    aliasing): the weights do not depend on the grid, and trained weights need the finer one
    to keep the rotation error of forces under a meV/Å. Both grids are buffers outside the
    state_dict; a Lebedev degree is rounded up to the next rule with positive weights.
    """

    def __init__(self, lmax: int, channels_in, channels_out, hidden: int | None = None,
                 grid_resolution: int | None = None, eval_grid_resolution: int | None = None,
                 dtype=torch.float64, grid_kind: str = "gauss",
                 eval_grid_kind: str = EVAL_GRID_KIND):
        super().__init__()
        self.lmax = lmax
        c_in = per_degree(channels_in, lmax)
        hidden = int(hidden or max(c_in))
        self.c0 = c_in[0]
        for key, kind in (("grid_kind", grid_kind), ("eval_grid_kind", eval_grid_kind)):
            if kind not in GRID_KINDS:
                raise ValueError(f"{key} must be one of {GRID_KINDS}, got {kind!r}")
        self.grid_resolution = int(grid_resolution or default_grid_resolution(lmax))
        if self.grid_resolution < 2 * lmax:
            raise ValueError(f"grid_resolution must be >= 2 * lmax = {2 * lmax}")
        if not eval_grid_resolution:  # never coarser than the training grid
            eval_grid_resolution = max(default_eval_grid_resolution(lmax, eval_grid_kind),
                                       self.grid_resolution)
        if int(eval_grid_resolution) < 2 * lmax:
            raise ValueError(f"eval_grid_resolution must be >= 2 * lmax = {2 * lmax}")
        grid = S2Grid(self.grid_resolution, grid_kind)
        self.grid_resolution, self.grid_kind = grid.degree, grid_kind
        self.lift = EquivariantLinear(lmax, c_in, hidden, bias=False)
        self.to_grid, self.from_grid = ToGrid(lmax, grid, dtype), FromGrid(lmax, grid, dtype)
        self.to_fine, self.from_fine = self.to_grid, self.from_grid
        fine = S2Grid(int(eval_grid_resolution), eval_grid_kind)
        self.eval_grid_resolution, self.eval_grid_kind = fine.degree, eval_grid_kind
        if (fine.degree, eval_grid_kind) != (grid.degree, grid_kind):
            self.to_fine, self.from_fine = ToGrid(lmax, fine, dtype), FromGrid(lmax, fine, dtype)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.out = EquivariantLinear(lmax, (hidden + self.c0,) + (hidden,) * lmax, channels_out)
        self.backend = "auto"  # kernel backend; not a parameter, so never in the state_dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lin1, lin2 = self.mlp[0], self.mlp[2]
        to_grid, from_grid = ((self.to_grid, self.from_grid) if self.training
                              else (self.to_fine, self.from_fine))
        args = (self.lift(x), to_grid.matrix.to(x.dtype), from_grid.matrix.to(x.dtype),
                lin1.weight.T, lin1.bias, lin2.weight.T, lin2.bias)
        # Inference is lean: no (N, G, H) grid tensor kept for the force call (mlip.kernels).
        f = grid_mlp(*args, backend=self.backend, lean=not self.training)
        scalars = torch.cat([f[..., :1, :], x[..., :1, : self.c0]], dim=-1)
        rest = nn.functional.pad(f[..., 1:, :], (0, self.c0))
        return self.out(torch.cat([scalars, rest], dim=-2))
