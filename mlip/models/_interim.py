"""Interim building blocks until mlip.nn's spherical/mixing modules land (replaced then)."""

from __future__ import annotations

import math

import numpy as np
import torch
from e3nn import o3
from torch import nn


def spherical_harmonics(lmax: int, vec: torch.Tensor) -> torch.Tensor:
    """Orthonormal real spherical harmonics in e3nn's order, ``(E, (lmax+1)^2)``."""
    return o3.spherical_harmonics(list(range(lmax + 1)), vec, normalize=True,
                                  normalization="integral")


class S2Grid(nn.Module):
    """Gauss-Legendre in cos(theta) x uniform in phi, exact for degree ``degree`` products."""

    def __init__(self, degree: int, lmax: int):
        super().__init__()
        n_theta = degree // 2 + 1
        n_phi = degree + 1
        x, w = np.polynomial.legendre.leggauss(n_theta)
        phi = np.arange(n_phi) * 2 * np.pi / n_phi
        ct, ph = np.meshgrid(x, phi, indexing="ij")
        st = np.sqrt(1 - ct**2)
        dirs = np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3)
        weights = (w[:, None] * np.full(n_phi, 2 * np.pi / n_phi)[None]).reshape(-1)
        # e3nn's harmonics use (y, z, x) as their axes; any fixed frame works for a grid.
        d = torch.tensor(dirs, dtype=torch.float64)
        y = spherical_harmonics(lmax, d)
        self.register_buffer("directions", d, persistent=False)
        self.register_buffer("to_matrix", y, persistent=False)  # (G, K)
        self.register_buffer(
            "from_matrix", (y * torch.tensor(weights)[:, None]).T.contiguous(), persistent=False
        )  # (K, G)

    def to_grid(self, x):
        return torch.einsum("gk,nkc->ngc", self.to_matrix.to(x.dtype), x)

    def from_grid(self, f):
        return torch.einsum("kg,ngc->nkc", self.from_matrix.to(f.dtype), f)


def degrees(lmax: int) -> torch.Tensor:
    return torch.cat([torch.full((2 * l + 1,), l) for l in range(lmax + 1)])


class EquivariantLinear(nn.Module):
    """Per-degree channel mixing on ragged features ``(N, (L+1)^2, C_max)``."""

    def __init__(self, lmax, channels_in, channels_out):
        super().__init__()
        self.lmax = lmax
        self.c_in = (channels_in,) * (lmax + 1) if isinstance(channels_in, int) else channels_in
        self.c_out = (channels_out,) * (lmax + 1) if isinstance(channels_out, int) else channels_out
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(ci, co) / math.sqrt(max(ci, 1)))
            for ci, co in zip(self.c_in, self.c_out)
        )
        self.bias = nn.Parameter(torch.zeros(self.c_out[0]))

    def forward(self, x):
        out = x.new_zeros(x.shape[0], x.shape[1], max(self.c_out))
        for l, w in enumerate(self.weights):
            ci, co = w.shape
            if ci == 0 or co == 0:
                continue
            sl = slice(l * l, (l + 1) ** 2)
            out[:, sl, :co] = torch.einsum("nmc,cd->nmd", x[:, sl, :ci], w.to(x.dtype))
        out[:, 0, : self.c_out[0]] = out[:, 0, : self.c_out[0]] + self.bias.to(x.dtype)
        return out


class Gate(nn.Module):
    """SiLU on scalars; degree l > 0 channels scaled by sigmoid gates made from extra scalars."""

    def __init__(self, lmax, channels):
        super().__init__()
        self.lmax, self.channels = lmax, channels

    @staticmethod
    def input_channels(channels):
        return (channels[0] + sum(channels[1:]),) + tuple(channels[1:])

    def forward(self, x):
        c0 = self.channels[0]
        out = x.new_zeros(x.shape[0], x.shape[1], max(self.channels))
        out[:, 0, :c0] = torch.nn.functional.silu(x[:, 0, :c0])
        start = c0
        for l in range(1, self.lmax + 1):
            cl = self.channels[l]
            gates = torch.sigmoid(x[:, 0, start : start + cl])
            start += cl
            sl = slice(l * l, (l + 1) ** 2)
            out[:, sl, :cl] = x[:, sl, :cl] * gates[:, None, :]
        return out


class CGTensorProduct(nn.Module):
    """Channelwise ("uvu") Clebsch-Gordan product, even paths only (parity (-1)^l features).

    ``x1 (E, (L1+1)^2, C)`` with ``x2 (E, (L2+1)^2, 1)`` and per-path weights ``(E, P, C)``.
    Paths with l1 + l2 + l3 odd would produce pseudo-tensors and are left out.
    """

    def __init__(self, l1max, l2max, lout, channels):
        super().__init__()
        self.paths = [
            (l1, l2, l3)
            for l1 in range(l1max + 1)
            for l2 in range(l2max + 1)
            for l3 in range(abs(l1 - l2), min(l1 + l2, lout) + 1)
            if (l1 + l2 + l3) % 2 == 0
        ]
        self.lout = lout
        for p, (l1, l2, l3) in enumerate(self.paths):
            w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)
            self.register_buffer(f"w3j_{p}", w3j, persistent=False)
        self.num_paths = len(self.paths)

    def forward(self, x1, x2, weights):
        # One small dense contraction per path: the full (K1, K2, K3) table is mostly zeros.
        out = x1.new_zeros(x1.shape[0], (self.lout + 1) ** 2, x1.shape[-1])
        y = x2[..., 0]
        for p, (l1, l2, l3) in enumerate(self.paths):
            w3j = getattr(self, f"w3j_{p}").to(x1.dtype)
            t = torch.einsum("ijk,ej->eki", w3j, y[:, l2 * l2 : (l2 + 1) ** 2])
            msg = torch.bmm(t, x1[:, l1 * l1 : (l1 + 1) ** 2]) * weights[:, p, None, :]
            out[:, l3 * l3 : (l3 + 1) ** 2] += msg
        return out


class GridMixing(nn.Module):
    """Facet's self-connection: an MLP over channels at every point of an S2 grid.

    Lift every degree to ``hidden`` channels, sample on the grid, apply SiLU-MLP pointwise,
    project back, concatenate the input scalars to the scalar channels, and finish with an
    equivariant linear layer. The pointwise nonlinearity makes the output band-unlimited, so
    equivariance is approximate and improves with ``resolution`` (the grid's exact degree).
    """

    def __init__(self, lmax, channels_in, channels_out, hidden=None, resolution=None):
        super().__init__()
        c_in = (channels_in,) * (lmax + 1) if isinstance(channels_in, int) else channels_in
        hidden = int(hidden or max(c_in))
        self.lmax, self.c0 = lmax, c_in[0]
        self.resolution = int(resolution or default_mixing_resolution(lmax))
        self.lift = EquivariantLinear(lmax, c_in, hidden)
        self.grid = S2Grid(self.resolution, lmax)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.out = EquivariantLinear(lmax, (hidden + c_in[0],) + (hidden,) * lmax, channels_out)

    def forward(self, x):
        f = self.grid.from_grid(self.mlp(self.grid.to_grid(self.lift(x))))
        scalars = torch.cat([f[:, :1], x[:, :1, : self.c0]], dim=-1)
        width = scalars.shape[-1]
        f = torch.nn.functional.pad(f, (0, width - f.shape[-1]))
        f = torch.cat([scalars, f[:, 1:]], dim=1)
        return self.out(f)


def default_mixing_resolution(lmax: int) -> int:
    """Grid degree for mixing: measured in docs/nn.md (relative error < 1e-4 from here on)."""
    return 4 * lmax + 4


class SymmetricGridProduct(nn.Module):
    """ACE/MACE-style many-body features as powers of the node function on the S2 grid.

    ``B = sum_{nu=1..correlation} w_nu * from_grid(f^nu)`` with ``f = to_grid(x)``, per channel.
    The grid is exact for degree ``correlation * L + L``, so the projection is the exact
    equivariant symmetric product (Gaunt paths only: every coupled l1+...+l_nu+l parity-even).
    """

    def __init__(self, lmax, channels, correlation):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        self.lmax, self.correlation = lmax, int(correlation)
        self.grid = S2Grid((correlation + 1) * lmax, lmax)
        weights = torch.zeros(correlation, channels)
        weights[0] = 1.0  # starts as the identity plus small many-body terms
        weights[1:] = 0.1 * torch.randn(correlation - 1, channels)
        self.weights = nn.Parameter(weights)

    def forward(self, x):
        f = self.grid.to_grid(x)
        w = self.weights.to(x.dtype)
        total, power = w[0] * f, f
        for nu in range(1, self.correlation):
            power = power * f
            total = total + w[nu] * power
        return self.grid.from_grid(total)
