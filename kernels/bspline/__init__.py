"""Cubic B-spline radial functions: a table lookup in place of a radial MLP.

``bspline_radial(r, table, cutoff, backend="auto" | "torch" | "triton" | "compile")``.
"""

from __future__ import annotations

import torch

from .._dispatch import compiled, select_backend
from . import reference

__all__ = ["bspline_radial"]


def bspline_radial(r: torch.Tensor, table: torch.Tensor, cutoff: float, *,
                   backend: str = "auto") -> torch.Tensor:
    """``R_o(r) = sum_k table[k, o] B_k(r)``: ``r (E,)``, ``table (num_knots, num_out)`` ->
    ``(E, num_out)`` in r's dtype, on uniform knots ``h = cutoff / num_knots``; C^2 and exactly
    zero from the cutoff on. Differentiable twice (and more) in r and the table."""
    which = select_backend("bspline_radial", backend, r.device)
    if which == "triton":
        from . import ops  # on first use: @triton.jit reads TRITON_INTERPRET when it runs

        return ops.bspline_radial_triton(r, table, cutoff)
    fn = compiled(reference.bspline_radial) if which == "compile" else reference.bspline_radial
    return fn(r, table, float(cutoff))
