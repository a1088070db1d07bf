"""Pure-torch reference of the channelwise Clebsch-Gordan convolution: oracle and CPU path.

For every edge (sender j -> receiver i) and every entry (p, m1, m2, m3, coeff) of a sparse
coupling table (the caller builds it from Wigner 3j symbols; kernels/ never imports e3nn):

    out[i, m3, c] += coeff * x[j, m1, c] * sh[e, m2] * weights[e, p, c]

the "uvu" tensor product of the sender's features with the edge's spherical harmonics, one
learned weight per path and channel, summed into the receiver.
"""

from __future__ import annotations

import torch


def cg_conv(
    x: torch.Tensor,
    sh: torch.Tensor,
    weights: torch.Tensor,
    cg_table,
    sender: torch.Tensor,
    receiver: torch.Tensor,
    k_out: int,
) -> torch.Tensor:
    """``x (N, K1, C)``, ``sh (E, K2)``, ``weights (E, P, C)``, ``cg_table`` = (path, m1, m2, m3,
    coeff) tensors of length T, ``sender``/``receiver (E,)`` -> ``(N, k_out, C)``."""
    path, m1, m2, m3, coeff = cg_table
    E, C = sh.shape[0], x.shape[-1]
    # (E, T, C): every coupling term of every edge; fine for a reference, the kernel never
    # stores it.
    terms = x[sender][:, m1] * (sh[:, m2] * coeff.to(sh.dtype))[..., None] * weights[:, path]
    messages = terms.new_zeros(E, k_out, C).index_add(1, m3, terms)
    return x.new_zeros(x.shape[0], k_out, C).index_add(0, receiver, messages)
