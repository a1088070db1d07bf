"""Channelwise tensor products in the spherical-channel layout ``(..., (L+1)^2, C)``.

Three interchangeable forms: ``x1 (..., (L1+1)^2, C)`` times ``x2 (..., (L2+1)^2, C or 1)`` ->
``(..., (Lout+1)^2, C)``, channel c of the output from channel c of each input ("uvu" with one
channel in x2, "uuu" with C).

- :class:`CGTensorProduct`: the Clebsch-Gordan reference, every triangle-allowed path, optional
  per-path, per-channel weights.
- :class:`GauntGridProduct` and :class:`GauntFourierProduct`: the Gaunt product, i.e. the
  pointwise product of the two functions on the sphere projected back to degree Lout. Its
  coefficients ``int Y_l1 Y_l2 Y_l3`` vanish unless l1 + l2 + l3 is even, so only even paths
  exist, and with features of parity (-1)^l it is equivariant under O(3), reflections included.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from e3nn import o3
from torch import nn

from ..kernels.cg_conv import blocked_product
from .spherical import FromGrid, S2Grid, ToGrid, degree_index, spherical_harmonics


def gaunt_coefficients(l1: int, l2: int, l3: int, dtype=torch.float64) -> torch.Tensor:
    """``G[m1, m2, m3] = int Y_l1m1 Y_l2m2 Y_l3m3 dOmega``, shape ``(2l1+1, 2l2+1, 2l3+1)``.

    Built from e3nn's unit-norm ``wigner_3j`` (the only invariant tensor of the triple, up to
    scale): ``|G| = sqrt((2l1+1)(2l2+1)(2l3+1) / 4 pi) |(l1 l2 l3; 0 0 0)|``, and the sign makes
    the all-m=0 entry positive (it is an integral of products of the zonal harmonics).
    """
    shape = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    if (l1 + l2 + l3) % 2 or not abs(l1 - l2) <= l3 <= l1 + l2:
        return torch.zeros(shape, dtype=dtype)
    j = (l1 + l2 + l3) // 2
    lf = math.lgamma
    # |(l1 l2 l3; 0 0 0)| for even l1 + l2 + l3 = 2j.
    log_3j = 0.5 * (sum(lf(2 * j - 2 * l + 1) for l in (l1, l2, l3)) - lf(2 * j + 2))
    log_3j += lf(j + 1) - sum(lf(j - l + 1) for l in (l1, l2, l3))
    norm = math.sqrt(shape[0] * shape[1] * shape[2] / (4 * math.pi)) * math.exp(log_3j)
    w = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    return (w * norm * torch.sign(w[l1, l2, l3])).to(dtype)


def _weighted(x, weights, deg):
    """Per-degree input weights ``(..., L+1, C)`` applied to coefficients ``(..., K, C)``."""
    return x if weights is None else x * weights[..., deg, :]


class CGTensorProduct(nn.Module):
    """Channelwise Clebsch-Gordan product over every path allowed by the triangle rule.

    ``out[l3] += w[p] * sqrt(2 l3 + 1) * W3j(l1, l2, l3) x1[l1] x2[l2]`` for each path
    ``p = (l1, l2, l3)`` (in ``self.paths`` order: l1, then l2, then l3 ascending), with e3nn's
    unit-norm ``wigner_3j`` (e3nn's "component" normalisation, no path normalisation) and
    optional weights ``(..., n_paths, C)``.

    Parity: with e3nn's parities for spherical-harmonic coefficients, (-1)^l, a path with
    l1 + l2 + l3 odd yields a pseudo-tensor of degree l3. With ``paths="all"`` (default) those
    are summed into the same output rows as the true tensors, so the product is equivariant
    under rotations (SO(3)) but not under reflections. ``paths="even"`` keeps only the paths
    with l1 + l2 + l3 even: the output then has parity (-1)^l and the product is O(3)
    equivariant, with the same paths as the Gaunt products.
    """

    def __init__(self, l1max: int, l2max: int, lout: int, paths: str = "all"):
        super().__init__()
        if paths not in ("all", "even"):
            raise ValueError(f"paths must be 'all' or 'even', got {paths!r}")
        self.l1max, self.l2max, self.lout, self.parity_paths = l1max, l2max, lout, paths
        keep = (lambda s: True) if paths == "all" else (lambda s: s % 2 == 0)
        self.paths = [(l1, l2, l3) for l1 in range(l1max + 1) for l2 in range(l2max + 1)
                      for l3 in range(abs(l1 - l2), min(l1 + l2, lout) + 1) if keep(l1 + l2 + l3)]
        self.num_paths = len(self.paths)
        # One block per (l1, l2): every l3 of the pair in one matmul, rows of the output range
        # [lo^2, (hi+1)^2) contiguous; missing (odd) l3 rows are zero.
        self.pairs = []
        for l1 in range(l1max + 1):
            for l2 in range(l2max + 1):
                ps = [(p, l3) for p, (a, b, l3) in enumerate(self.paths) if (a, b) == (l1, l2)]
                if not ps:
                    continue
                lo, hi = ps[0][1], ps[-1][1]
                block = torch.zeros((hi + 1) ** 2 - lo**2, 2 * l1 + 1, 2 * l2 + 1,
                                    dtype=torch.float64)
                slot = torch.full(((hi + 1) ** 2 - lo**2,), ps[0][0], dtype=torch.long)
                for p, l3 in ps:
                    rows = slice(l3 * l3 - lo * lo, (l3 + 1) ** 2 - lo * lo)
                    w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)
                    block[rows] = w3j.permute(2, 0, 1)
                    slot[rows] = p
                i = len(self.pairs)
                self.register_buffer(f"block_{i}", block.flatten(1), persistent=False)
                self.register_buffer(f"slot_{i}", slot, persistent=False)
                self.pairs.append((l1, l2, lo, hi))

    def coupling_table(self) -> tuple[torch.Tensor, ...]:
        """The product as a sparse table (path, m1, m2, m3, coeff), the form the fused
        ``mlip.kernels.cg_conv`` takes: ``out[m3] += coeff * x1[m1] * x2[m2] * w[path]``."""
        cols = [[], [], [], [], []]
        for i, (l1, l2, lo, _) in enumerate(self.pairs):
            block = getattr(self, f"block_{i}").reshape(-1, 2 * l1 + 1, 2 * l2 + 1)
            slot = getattr(self, f"slot_{i}")
            for row, a, b in (block.abs() > 1e-12).nonzero().tolist():
                for col, v in zip(cols, (int(slot[row]), l1 * l1 + a, l2 * l2 + b,
                                         lo * lo + row, float(block[row, a, b]))):
                    col.append(v)
        ints = [torch.tensor(c, dtype=torch.long) for c in cols[:4]]
        return (*ints, torch.tensor(cols[4], dtype=torch.float64))

    def blocks(self) -> list[tuple]:
        """``(l1, l2, lo, hi, block, slot)`` per degree pair: the form the torch path of
        ``mlip.kernels.cg_conv`` takes (:func:`~mlip.kernels.cg_conv.blocked_product`)."""
        return [(*pair, getattr(self, f"block_{i}"), getattr(self, f"slot_{i}"))
                for i, pair in enumerate(self.pairs)]

    def forward(self, x1, x2, weights=None):
        return blocked_product(x1, x2, self.blocks(), (self.lout + 1) ** 2, weights)


class GauntGridProduct(nn.Module):
    """Gaunt product by quadrature: both inputs on one S2 grid, multiplied, projected back.

    The grid is the smallest exact for degree L1 + L2 + Lout (the integrand of the projection),
    so the result equals the coefficient form to rounding. Only paths with l1 + l2 + l3 even
    exist (Gaunt coefficients vanish otherwise); O(3) equivariant for parity (-1)^l features.
    Optional per-degree weights ``(..., L+1, C)`` scale an input's degrees first; with a
    one-channel x2 (edge harmonics) and ``weights2`` the channels are made on the grid, per
    degree, which avoids lifting x2 to C channels before projecting.
    """

    def __init__(self, l1max: int, l2max: int, lout: int, dtype=torch.float64):
        super().__init__()
        self.l1max, self.l2max, self.lout = l1max, l2max, lout
        self.grid = S2Grid(l1max + l2max + lout)
        self.to_grid1 = ToGrid(l1max, self.grid, dtype)
        self.to_grid2 = ToGrid(l2max, self.grid, dtype)
        self.from_grid = FromGrid(lout, self.grid, dtype)
        deg2 = degree_index(l2max)
        self.register_buffer("deg1", degree_index(l1max), persistent=False)
        self.register_buffer("deg2", deg2, persistent=False)
        self.register_buffer("onehot2", nn.functional.one_hot(deg2).to(dtype), persistent=False)

    def forward(self, x1, x2, weights1=None, weights2=None):
        g1 = self.to_grid1(_weighted(x1, weights1, self.deg1))
        if weights2 is not None and x2.shape[-1] == 1:
            # (.., G, L2+1) per-degree pieces of x2 on the grid, then channels per degree.
            pieces = self.to_grid2(x2 * self.onehot2.to(x2.dtype))
            g2 = pieces @ weights2
        else:
            g2 = self.to_grid2(_weighted(x2, weights2, self.deg2))
        return self.from_grid(g1 * g2)


def _fourier_of_harmonics(lmax: int) -> np.ndarray:
    """Y_lm(t, p) = sum_{u,v} A[lm, u+L, v+L] exp(i(u t + v p)), t extended to [0, 2 pi).

    Y_lm is a trigonometric polynomial of degree <= l in t and in p (cos^a t sin^m t and
    exp(+-i m p)), so a (2L+1)^2 uniform DFT gives the coefficients exactly.
    """
    n = 2 * lmax + 1
    ang = 2 * np.pi * np.arange(n) / n
    t, p = np.meshgrid(ang, ang, indexing="ij")
    vec = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1)
    y = spherical_harmonics(lmax, torch.from_numpy(vec), normalize=False).numpy()  # (n, n, K)
    coeff = np.fft.fftshift(np.fft.fft2(y, axes=(0, 1)), axes=(0, 1)) / n**2
    return np.moveaxis(coeff, -1, 0)  # (K, n, n), index u + L, v + L


def _sin_integral(n: np.ndarray) -> np.ndarray:
    """int_0^pi exp(i n t) sin t dt for integer n."""
    n = n.astype(np.float64)
    real = np.where(np.abs(n) == 1, 0.0, (1 + np.cos(np.pi * n)) / np.where(n**2 == 1, 1, 1 - n**2))
    imag = np.where(np.abs(n) == 1, np.sign(n) * np.pi / 2, 0.0)
    return real + 1j * imag


class GauntFourierProduct(nn.Module):
    """Gaunt product in the 2D Fourier basis (Luo et al. 2024): an FFT convolution.

    Each input becomes coefficients of exp(i(u t + v p)) over |u|, |v| <= L (exact change of
    basis, precomputed in float64), the product of the functions is the 2D convolution of the
    coefficients (``torch.fft``, zero-padded so the circular convolution is linear), and the
    result returns to harmonics of degree Lout through the exact integrals
    ``int exp(i(u t + v p)) Y_lm sin t dt dp``. Same result, paths (only l1 + l2 + l3 even) and
    parity behaviour as :class:`GauntGridProduct`; same optional per-degree weights.
    """

    def __init__(self, l1max: int, l2max: int, lout: int, dtype=torch.float64):
        super().__init__()
        self.l1max, self.l2max, self.lout = l1max, l2max, lout
        s = l1max + l2max
        self.size = 2 * s + 1  # linear convolution length; any larger size works too
        a1, a2 = _fourier_of_harmonics(l1max), _fourier_of_harmonics(l2max)
        # Back-projection over the product's u in [-s, s] and v in [-lout, lout] (others vanish).
        ay = _fourier_of_harmonics(lout)  # (K3, 2 lout + 1, 2 lout + 1) over (u', v')
        u = np.arange(-s, s + 1)
        up = np.arange(-lout, lout + 1)
        integral = _sin_integral(u[:, None] + up[None, :])  # (u, u')
        # B[k, u, v] = 2 pi sum_u' A_k[u', -v] I(u + u')
        back = 2 * np.pi * np.einsum("uw,kwv->kuv", integral, ay[:, :, ::-1])
        # Complex matrices are stored as (real, imag) pairs: Module.to(float dtype) would
        # otherwise cast complex buffers to real and silently drop their imaginary parts.
        def pairs(m):
            return torch.view_as_real(torch.from_numpy(m.copy()).to(torch.complex128)).to(dtype)

        self.register_buffer("to_fourier1", pairs(a1.reshape(a1.shape[0], -1).T),
                             persistent=False)  # (n1*n1, K1, 2)
        self.register_buffer("to_fourier2", pairs(a2.reshape(a2.shape[0], -1).T),
                             persistent=False)
        self.register_buffer("back", pairs(back.reshape(back.shape[0], -1)),
                             persistent=False)  # (K3, (2s+1)(2 lout+1), 2)
        self.register_buffer("deg1", degree_index(l1max), persistent=False)
        self.register_buffer("deg2", degree_index(l2max), persistent=False)

    def _fourier(self, x, matrix, lmax):
        f = matrix.to(torch.promote_types(x.dtype, torch.complex64)) @ x.to(matrix.dtype)
        return f.unflatten(-2, (2 * lmax + 1, 2 * lmax + 1))  # (..., u, v, C)

    def forward(self, x1, x2, weights1=None, weights2=None):
        cdtype = torch.complex128 if x1.dtype == torch.float64 else torch.complex64

        def complex_(m):
            return torch.view_as_complex(m.to(x1.dtype).contiguous()).to(cdtype)

        f1 = self._fourier(_weighted(x1, weights1, self.deg1), complex_(self.to_fourier1),
                           self.l1max)
        f2 = self._fourier(_weighted(x2, weights2, self.deg2), complex_(self.to_fourier2),
                           self.l2max)
        n = (self.size, self.size)
        conv = torch.fft.ifft2(torch.fft.fft2(f1, s=n, dim=(-3, -2))
                               * torch.fft.fft2(f2, s=n, dim=(-3, -2)), dim=(-3, -2))
        # Index i along an axis is frequency i - s; keep |v| <= lout.
        s = self.l1max + self.l2max
        conv = conv[..., :, s - self.lout : s + self.lout + 1, :].flatten(-3, -2)
        return (complex_(self.back) @ conv).real
