"""Pure-torch reference of the Gaunt-grid convolution: the oracle for the Triton kernel.

For every edge (sender j -> receiver i) the filter is the band-limited function on the sphere
``f_ij(n) = sum_l w_ij[l] * (2l+1)/(4 pi) * P_l(rhat_ij . n)``, i.e. the spherical harmonics
of the edge direction weighted per degree (addition theorem, orthonormal harmonics). The
message is the pointwise product of the sender's features on the S2 grid with that filter,
summed into the receiver on the grid:

    out[i, g, c] = sum_{j -> i} x[j, g, c] * f_ij(n_g)[c]

Projecting ``out`` back to spherical harmonics with a quadrature exact for the summed degree
gives the Gaunt tensor product of x_j with the filter: only paths with l1 + l2 + l3 even.
"""

from __future__ import annotations

import math

import torch


def legendre(cos: torch.Tensor, lmax: int) -> torch.Tensor:
    """P_0..P_lmax at ``cos``, stacked on a new last axis (Bonnet's recursion)."""
    p = [torch.ones_like(cos), cos]
    for l in range(1, lmax):
        p.append(((2 * l + 1) * cos * p[l] - l * p[l - 1]) / (l + 1))
    return torch.stack(p[: lmax + 1], dim=-1)


def edge_filter(edge_dir: torch.Tensor, radial: torch.Tensor, grid_dirs: torch.Tensor):
    """Filter values ``(E, G, C)`` from unit edge vectors, per-degree weights ``(E, L+1, C)``."""
    lmax = radial.shape[1] - 1
    cos = edge_dir @ grid_dirs.transpose(0, 1)
    norm = torch.arange(lmax + 1, device=cos.device, dtype=cos.dtype) * 2 + 1
    basis = legendre(cos, lmax) * (norm / (4 * math.pi))
    return torch.einsum("egl,elc->egc", basis, radial)


def gaunt_grid_conv(
    x_grid: torch.Tensor,
    edge_dir: torch.Tensor,
    radial: torch.Tensor,
    grid_dirs: torch.Tensor,
    sender: torch.Tensor,
    receiver: torch.Tensor,
) -> torch.Tensor:
    """``x_grid (N, G, C)``, ``edge_dir (E, 3)`` unit vectors, ``radial (E, L+1, C)``,
    ``grid_dirs (G, 3)`` unit vectors, ``sender``/``receiver (E,)`` -> ``(N, G, C)``."""
    messages = x_grid[sender] * edge_filter(edge_dir, radial, grid_dirs)
    return torch.zeros_like(x_grid).index_add(0, receiver, messages)
