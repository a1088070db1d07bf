"""Spherical-grid mixing: to the grid, a SiLU channel MLP at every point, back (Facet).

``grid_mlp(x, to_grid, from_grid, w1, b1, w2, b2, backend=..., lean=...)``.
"""

from __future__ import annotations

import torch

from .._dispatch import compiled, select_backend
from .._recompute import chunk_size, map_rows
from . import reference

__all__ = ["grid_mlp"]


def grid_mlp(
    x: torch.Tensor,
    to_grid: torch.Tensor,
    from_grid: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    *,
    backend: str = "auto",
    lean: bool = False,
) -> torch.Tensor:
    """``from_grid @ (silu((to_grid @ x) w1 + b1) w2 + b2)`` per node.

    ``x (N, K, C)``, ``to_grid (G, K)``, ``from_grid (K, G)``, ``w1 (C, H)``, ``b1 (H,)``,
    ``w2 (H, C_out)``, ``b2 (C_out,)`` -> ``(N, K, C_out)``. The weights are in ``x @ w``
    order: an ``nn.Linear``'s ``weight.T``. Differentiable twice in every input.

    ``lean`` (inference): on the torch backend the nodes go in chunks recomputed in the
    backward, so no ``(N, G, H)`` grid tensor is kept for a force call (the same sums).
    """
    which = select_backend("grid_mlp", backend, x.device)
    if which == "triton":
        from . import ops  # on first use: @triton.jit reads TRITON_INTERPRET when it runs

        return ops.grid_mlp_triton(x, to_grid, from_grid, w1, b1, w2, b2)
    if which == "torch" and lean:
        rows = to_grid.shape[0] * max(w1.shape[1], w2.shape[1])  # one node's largest grid tensor
        return map_rows(reference.grid_mlp, x, (to_grid, from_grid, w1, b1, w2, b2),
                        chunk=chunk_size(x.shape[0], rows))
    fn = compiled(reference.grid_mlp) if which == "compile" else reference.grid_mlp
    return fn(x, to_grid, from_grid, w1, b1, w2, b2)
