"""Channelwise Clebsch-Gordan convolution (the nequip-like baseline's interaction).

``cg_conv(x, sh, weights, cg_table, sender, receiver, k_out, backend=..., blocks=...)``; the
coupling table (and its blocked form) is built by the caller (mlip.nn, from e3nn's Wigner 3j
symbols).
"""

from __future__ import annotations

import torch

from .._dispatch import compiled, select_backend
from . import reference
from .blocked import blocked_product, cg_conv_blocked

__all__ = ["blocked_product", "cg_conv"]


def cg_conv(
    x: torch.Tensor,
    sh: torch.Tensor,
    weights: torch.Tensor,
    cg_table,
    sender: torch.Tensor,
    receiver: torch.Tensor,
    k_out: int,
    *,
    backend: str = "auto",
    blocks=None,
) -> torch.Tensor:
    """``out[i, m3, c] = sum_{j->i} sum_T coeff x[j, m1, c] sh[e, m2] weights[e, p, c]``.

    ``x (N, K1, C)``, ``sh (E, K2)``, ``weights (E, P, C)``, ``cg_table`` a sequence of five
    tensors of length T: path, m1, m2, m3 (integer) and coeff; ``sender``/``receiver (E,)``
    -> ``(N, k_out, C)``. Differentiable twice (and more) in x, sh and the weights.
    ``blocks`` is the same coupling grouped by degree pair (:func:`blocked_product`); given,
    the torch backend uses it, which on a CPU is faster than the per-term reference.
    """
    which = select_backend("cg_conv", backend, x.device)
    if which == "triton":
        from . import ops  # on first use: @triton.jit reads TRITON_INTERPRET when it runs

        return ops.cg_conv_triton(x, sh, weights, tuple(cg_table), sender, receiver, k_out)
    if which == "torch" and blocks is not None:
        return cg_conv_blocked(x, sh, weights, blocks, sender, receiver, int(k_out))
    fn = compiled(reference.cg_conv) if which == "compile" else reference.cg_conv
    return fn(x, sh, weights, tuple(cg_table), sender, receiver, int(k_out))
