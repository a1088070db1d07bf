"""Real spherical harmonics and S2 grids for the spherical-channel layout ``(..., (L+1)^2, C)``.

Conventions (identical to ``e3nn.o3.spherical_harmonics(..., normalize=True,
normalization="integral")``): l-major order with m = -l..l inside a degree, orthonormal on the
unit sphere, and e3nn's axes: the polar axis is y, m > 0 goes with cos(m phi) and m < 0 with
sin(|m| phi), where phi is the angle from z towards x. A direction is
``(sin t sin p, cos t, sin t cos p)`` for polar angle t and azimuth p.

Grids are Gauss-Legendre in cos(t) times uniform in p, or Lebedev's octahedrally symmetric rules
(about 2/3 of the points for the same degree). A grid of exact degree D integrates every
band-limited function of degree <= D exactly, so ``from_grid(to_grid(x))`` is the identity as
soon as D >= 2L, and products of band-limited functions project exactly when D covers their sum.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn


@functools.cache
def _coefficients(lmax: int) -> tuple[list, list, list]:
    """Recursion constants for the normalised associated Legendre factors (float64, Python).

    With ``Q[l][m] = c_lm * P_l^m(z) / (1 - z^2)^(m/2)`` (no Condon-Shortley phase) and
    ``c_lm = sqrt((2 - [m=0]) (2l+1)/(4 pi) (l-m)!/(l+m)!)``: ``Q[m][m] = diag[m]``,
    ``Q[l][m] = a[l][m] z Q[l-1][m] - b[l][m] Q[l-2][m]``. Folding the normalisation into the
    recursion keeps every intermediate O(1), so float32 holds up to high degree.
    """

    def log_c(l, m):
        return 0.5 * (math.log((2 - (m == 0)) * (2 * l + 1) / (4 * math.pi))
                      + math.lgamma(l - m + 1) - math.lgamma(l + m + 1))

    diag = [math.exp(log_c(m, m) + math.lgamma(2 * m + 1) - m * math.log(2) - math.lgamma(m + 1))
            for m in range(lmax + 1)]  # (2m-1)!! = (2m)! / (2^m m!)
    a = [[0.0] * (l + 1) for l in range(lmax + 1)]
    b = [[0.0] * (l + 1) for l in range(lmax + 1)]
    for l in range(1, lmax + 1):
        for m in range(l):
            a[l][m] = (2 * l - 1) / (l - m) * math.exp(log_c(l, m) - log_c(l - 1, m))
            if l - 2 >= m:
                b[l][m] = (l + m - 1) / (l - m) * math.exp(log_c(l, m) - log_c(l - 2, m))
    return diag, a, b


def spherical_harmonics(lmax: int, vec: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Orthonormal real spherical harmonics of degrees 0..lmax: ``(..., 3) -> (..., (lmax+1)^2)``.

    Polynomials in the (normalised) components, so they are smooth everywhere on the sphere,
    including the poles, and twice differentiable through autograd (force training).
    """
    if normalize:
        vec = vec / torch.linalg.vector_norm(vec, dim=-1, keepdim=True)
    x, y, z = vec.unbind(-1)
    # In the textbook frame (polar axis Z, phi from X towards Y): X = z, Y = x, Z = y.
    px, py, pz = z, x, y
    diag, a, b = _coefficients(lmax)
    # cos(m phi) sin^m(t) and sin(m phi) sin^m(t) as Re/Im of (X + iY)^m.
    cos_m, sin_m = [torch.ones_like(pz)], [torch.zeros_like(pz)]
    for _ in range(lmax):
        c, s = cos_m[-1], sin_m[-1]
        cos_m.append(px * c - py * s)
        sin_m.append(px * s + py * c)
    cos_m, sin_m = torch.stack(cos_m, -1), torch.stack(sin_m, -1)  # (..., lmax+1)

    zc = pz[..., None]
    out, prev, prev2 = [], None, None  # Q_l, Q_{l-1}, Q_{l-2} over m, as (..., l+1)
    for l in range(lmax + 1):
        tail = [torch.full_like(pz, diag[l])[..., None]]
        if l == 0:
            q = tail[0]
        else:
            an = pz.new_tensor(a[l][:l])
            body = an * zc * prev
            if l >= 2:
                bn = pz.new_tensor(b[l][: l - 1])
                body = torch.cat([body[..., : l - 1] - bn * prev2, body[..., l - 1 :]], -1)
            q = torch.cat([body] + tail, -1)
        # m = -l..-1 from sin, m = 0..l from cos.
        neg = (q[..., 1:] * sin_m[..., 1 : l + 1]).flip(-1)
        pos = q * cos_m[..., : l + 1]
        out.append(torch.cat([neg, pos], -1))
        prev2, prev = prev, q
    return torch.cat(out, -1)


def degree_index(lmax: int) -> torch.Tensor:
    """The degree l of every row of the layout: ``((lmax+1)^2,)`` long."""
    return torch.cat([torch.full((2 * l + 1,), l, dtype=torch.long) for l in range(lmax + 1)])


GRID_KINDS = ("gauss", "lebedev")


@functools.cache
def lebedev_degrees() -> tuple[int, ...]:
    """Degrees of the Lebedev rules scipy provides with all weights positive (odd, 3..131 with
    gaps; 13, 25 and 27 are left out: a negative weight amplifies what the rule aliases)."""
    rule = _lebedev_rule()
    out = []
    for n in range(3, 132, 2):
        try:
            _, w = rule(n)
        except (ValueError, NotImplementedError):
            continue
        if (w > 0).all():
            out.append(n)
    return tuple(out)


def _lebedev_rule():
    try:
        from scipy.integrate import lebedev_rule
    except ImportError as err:  # scipy < 1.15
        raise ImportError("Lebedev grids need scipy >= 1.15 (scipy.integrate.lebedev_rule); "
                          "upgrade scipy or use a 'gauss' grid") from err
    return lebedev_rule


class S2Grid:
    """A quadrature on the sphere that integrates degree <= ``degree`` exactly.

    ``kind="gauss"``: Gauss-Legendre in cos(t) times uniform in p. ``degree // 2 + 1``
    Gauss-Legendre nodes are exact for polynomials in cos(t) of degree ``degree``, and
    ``degree + 1`` uniform azimuths are exact for exp(i m p) with |m| <= degree; both counts
    are the smallest that do so: ``(degree//2+1) * (degree+1)`` points.
    ``kind="lebedev"``: the smallest Lebedev rule of degree >= ``degree`` with positive
    weights (scipy's tables; ``self.degree`` is the rule's, always odd): about
    ``(degree+1)^2 / 3`` points, 1.5-1.7x fewer for the same exact degree.
    Stored in float64 as ``directions (G, 3)`` and quadrature ``weights (G,)`` summing to 4 pi.
    """

    def __init__(self, degree: int, kind: str = "gauss"):
        if degree < 0:
            raise ValueError(f"degree must be >= 0, got {degree}")
        if kind not in GRID_KINDS:
            raise ValueError(f"grid kind must be one of {GRID_KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "lebedev":
            fits = [n for n in lebedev_degrees() if n >= degree]
            if not fits:
                raise ValueError(f"no Lebedev rule of degree >= {degree} "
                                 f"(largest {lebedev_degrees()[-1]})")
            self.degree = fits[0]
            points, weights = _lebedev_rule()(self.degree)
            self.directions = torch.from_numpy(np.ascontiguousarray(points.T, dtype=np.float64))
            self.weights = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float64))
            return
        self.degree = int(degree)
        self.n_theta, self.n_phi = self.degree // 2 + 1, self.degree + 1
        cos_t, w_t = np.polynomial.legendre.leggauss(self.n_theta)
        phi = 2 * np.pi * np.arange(self.n_phi) / self.n_phi
        sin_t = np.sqrt(1 - cos_t**2)
        dirs = np.stack(
            np.broadcast_arrays(sin_t[:, None] * np.sin(phi), cos_t[:, None],
                                sin_t[:, None] * np.cos(phi)), -1)
        self.directions = torch.from_numpy(dirs.reshape(-1, 3).copy())
        weights = w_t[:, None] * np.full(self.n_phi, 2 * np.pi / self.n_phi)
        self.weights = torch.from_numpy(weights.reshape(-1).copy())

    def __len__(self) -> int:
        return self.directions.shape[0]

    def __repr__(self) -> str:
        return f"S2Grid(degree={self.degree}, kind={self.kind!r}, points={len(self)})"

    def harmonics(self, lmax: int) -> torch.Tensor:
        """``(G, (lmax+1)^2)`` float64 harmonics at the grid points."""
        return spherical_harmonics(lmax, self.directions, normalize=False)


class ToGrid(nn.Module):
    """Coefficients ``(..., (L+1)^2, C)`` -> values on the grid ``(..., G, C)``."""

    def __init__(self, lmax: int, grid: S2Grid, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.lmax, self.grid = lmax, grid
        self.register_buffer("matrix", grid.harmonics(lmax).to(dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix.to(x.dtype) @ x


class FromGrid(nn.Module):
    """Grid values ``(..., G, C)`` -> coefficients ``(..., (L+1)^2, C)`` by quadrature.

    Exact (the orthogonal projection) for functions of degree <= ``grid.degree - lmax``.
    """

    def __init__(self, lmax: int, grid: S2Grid, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.lmax, self.grid = lmax, grid
        matrix = (grid.harmonics(lmax) * grid.weights[:, None]).T.contiguous()
        self.register_buffer("matrix", matrix.to(dtype), persistent=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.matrix.to(f.dtype) @ f


def to_grid(x: torch.Tensor, grid: S2Grid) -> torch.Tensor:
    """Functional :class:`ToGrid` (builds the basis each call; use the module in models)."""
    lmax = math.isqrt(x.shape[-2]) - 1
    return grid.harmonics(lmax).to(device=x.device, dtype=x.dtype) @ x


def from_grid(f: torch.Tensor, grid: S2Grid, lmax: int) -> torch.Tensor:
    """Functional :class:`FromGrid`."""
    matrix = (grid.harmonics(lmax) * grid.weights[:, None]).T
    return matrix.to(device=f.device, dtype=f.dtype) @ f



def wigner_D(lmax: int, rotation: torch.Tensor) -> torch.Tensor:
    """Block-diagonal ``((L+1)^2, (L+1)^2)`` action of an O(3) matrix on the layout's rows.

    ``D_l = integral over the sphere of Y_l(R n) Y_l(n)^T``, by a quadrature exact for degree
    2l, in float64: accurate to rounding for every rotation (Euler angles lose up to ~1e-9 near
    some configurations, which made equivariance tests at 1e-11 flaky) and, for reflections,
    carrying the harmonics' parity (-1)^l. So ``spherical_harmonics(L, v @ R.T) ==
    wigner_D(L, R) @ spherical_harmonics(L, v)``; the rotations agree with e3nn's Wigner D.
    """
    r = rotation.to(torch.float64)
    grid = S2Grid(2 * lmax)
    n, w = grid.directions.to(torch.float64), grid.weights.to(torch.float64)
    y, y_rot = spherical_harmonics(lmax, n), spherical_harmonics(lmax, n @ r.T)
    full = torch.einsum("gi,g,gj->ij", y_rot, w, y)
    blocks = [full[l * l : (l + 1) ** 2, l * l : (l + 1) ** 2] for l in range(lmax + 1)]
    return torch.block_diag(*blocks).to(rotation.dtype)
