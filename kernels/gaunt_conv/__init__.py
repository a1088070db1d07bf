"""Gaunt-grid convolution: gather, filter on the S2 grid, product, scatter.

``gaunt_grid_conv(..., backend="auto" | "torch" | "triton" | "compile")``; see
``mlip.kernels._dispatch`` for how the backend is chosen.
"""

from __future__ import annotations

import torch

from .._dispatch import compiled, select_backend
from . import reference
from .reference import edge_filter, legendre

__all__ = ["edge_filter", "gaunt_grid_conv", "legendre"]


def gaunt_grid_conv(
    x_grid: torch.Tensor,
    edge_dir: torch.Tensor,
    radial: torch.Tensor,
    grid_dirs: torch.Tensor,
    sender: torch.Tensor,
    receiver: torch.Tensor,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """``out[i, g, c] = sum_{j->i} x_grid[j, g, c] * f_ij(n_g)[c]`` with the per-edge filter
    ``f_ij(n) = sum_l radial[e, l, c] (2l+1)/(4 pi) P_l(edge_dir_e . n)``.

    ``x_grid (N, G, C)``, ``edge_dir (E, 3)`` unit vectors, ``radial (E, L+1, C)``,
    ``grid_dirs (G, 3)``, ``sender``/``receiver (E,)`` -> ``(N, G, C)``. Differentiable twice
    (and more) in every floating input on every backend.
    """
    which = select_backend("gaunt_grid_conv", backend, x_grid.device)
    if which == "triton":
        from . import ops  # on first use: @triton.jit reads TRITON_INTERPRET when it runs

        return ops.gaunt_grid_conv_triton(x_grid, edge_dir, radial, grid_dirs, sender, receiver)
    fn = compiled(reference.gaunt_grid_conv) if which == "compile" else reference.gaunt_grid_conv
    return fn(x_grid, edge_dir, radial, grid_dirs, sender, receiver)
