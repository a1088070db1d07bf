"""The torch path of the CG convolution: the coupling grouped by degree pair.

One small matrix product per pair (l1, l2) covers all of its l3 at once. On a CPU this is
several times faster than the reference's gather of every coupling term (an ``(E, T, C)``
tensor), and it computes the same sums. ``mlip.nn.CGTensorProduct`` builds the blocks from
e3nn's Wigner 3j symbols (``.blocks()``) and uses :func:`blocked_product` for its own forward.
"""

from __future__ import annotations

import torch


def blocked_product(x1: torch.Tensor, x2: torch.Tensor, blocks, k_out: int,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """``x1 (..., K1, C)`` times ``x2 (..., K2, C or 1)`` -> ``(..., k_out, C)``.

    ``blocks``: per degree pair ``(l1, l2, lo, hi, block, slot)``, ``block`` of shape
    ``((hi+1)^2 - lo^2, (2l1+1)(2l2+1))`` the pair's coupling into the output rows
    ``[lo^2, (hi+1)^2)`` and ``slot`` each row's path, the index into ``weights (..., P, C)``.
    """
    lead = torch.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    c = max(x1.shape[-1], x2.shape[-1])
    out = x1.new_zeros(*lead, k_out, c)
    for l1, l2, lo, hi, block, slot in blocks:
        a = x1[..., l1 * l1 : (l1 + 1) ** 2, None, :]
        b = x2[..., None, l2 * l2 : (l2 + 1) ** 2, :]
        outer = (a * b).flatten(-3, -2)  # (..., (2l1+1)(2l2+1), C)
        msg = block.to(x1.dtype) @ outer
        if weights is not None:
            msg = msg * weights[..., slot, :]
        out[..., lo * lo : (hi + 1) ** 2, :] += msg
    return out


def cg_conv_blocked(x, sh, weights, blocks, sender, receiver, k_out: int) -> torch.Tensor:
    """:func:`mlip.kernels.cg_conv.cg_conv` from the blocks: gather, product, scatter."""
    messages = blocked_product(x[sender], sh[:, :, None], blocks, k_out, weights)
    return x.new_zeros(x.shape[0], k_out, messages.shape[-1]).index_add(0, receiver, messages)
