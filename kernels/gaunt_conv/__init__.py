"""Gaunt-grid convolution: gather, filter on the S2 grid, product, scatter.

``gaunt_grid_conv(..., backend="auto" | "torch" | "triton" | "compile", lean=...)``; see
``mlip.kernels._dispatch`` for how the backend is chosen.
"""

from __future__ import annotations

import torch

from .._dispatch import compiled, select_backend
from .._recompute import scatter_messages
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
    lean: bool = False,
    radial_fn=None,
    radial_params=(),
) -> torch.Tensor:
    """``out[i, g, c] = sum_{j->i} x_grid[j, g, c] * f_ij(n_g)[c]`` with the per-edge filter
    ``f_ij(n) = sum_l radial[e, l, c] (2l+1)/(4 pi) P_l(edge_dir_e . n)``.

    ``x_grid (N, G, C)``, ``edge_dir (E, 3)`` unit vectors, ``radial (E, L+1, C)``,
    ``grid_dirs (G, 3)``, ``sender``/``receiver (E,)`` -> ``(N, G, C)``. Differentiable twice
    (and more) in every floating input on every backend.

    With ``radial_fn``, ``radial`` is the edges' input to it (their lengths ``(E,)``) and the
    weights are ``radial_fn(radial, *radial_params)``, a pure function of its tensors. ``lean``
    (inference): on the torch backend the edges go in chunks, the radial function included,
    recomputed in the backward, so no ``(E, G, C)`` or ``(E, L+1, C)`` tensor is kept for a
    force call (``mlip.kernels._recompute``; the same sums).
    """
    which = select_backend("gaunt_grid_conv", backend, x_grid.device)
    if which == "torch" and lean:
        weigh = radial_fn or (lambda w: w)

        def message(x_sender, direction, edge_in, grid_dirs, *params):
            return x_sender * edge_filter(direction, weigh(edge_in, *params), grid_dirs)

        return scatter_messages(message, x_grid, (edge_dir, radial), (grid_dirs, *radial_params),
                                sender, receiver)
    if radial_fn is not None:
        radial = radial_fn(radial, *radial_params)
    if which == "triton":
        from . import ops  # on first use: @triton.jit reads TRITON_INTERPRET when it runs

        return ops.gaunt_grid_conv_triton(x_grid, edge_dir, radial, grid_dirs, sender, receiver)
    fn = compiled(reference.gaunt_grid_conv) if which == "compile" else reference.gaunt_grid_conv
    return fn(x_grid, edge_dir, radial, grid_dirs, sender, receiver)
