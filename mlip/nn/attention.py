"""Neighbourhood attention for the Transformer: each atom attends over its neighbours and itself.

The neighbour graph (``edge_index``: row 0 sender j, row 1 receiver i) is turned into padded
per-atom neighbourhoods ``(N, K+1, ...)``, with K the largest neighbour count in the batch and
slot 0 the atom itself. Attention runs through ``torch.nn.functional.scaled_dot_product_attention``
so fused kernels are used where the hardware has them.

Smoothness at the cutoff: the logit of neighbour j carries ``log u(r_ij)``, u the cutoff envelope,
so its softmax weight is ``u_ij exp(s_ij) / Z`` and goes to zero (with its derivatives) as j leaves
the cutoff. The self slot is always present, so Z never vanishes: an atom without neighbours
attends to itself only, and no row of the softmax is fully masked (no NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Logits are log(max(u, tiny)): below this the neighbour's weight is < 1e-30 relative.
_LOG_FLOOR = 1e-30


@dataclass(frozen=True)
class Neighbourhoods:
    """Where each edge sits in its receiver's padded row: ``receiver[e]``, ``slot[e]`` in 1..K."""

    receiver: torch.Tensor  # (E,)
    slot: torch.Tensor  # (E,), 1-based: slot 0 is the atom itself
    num_nodes: int
    width: int  # K + 1

    @classmethod
    def from_receivers(cls, receiver: torch.Tensor, num_nodes: int) -> Neighbourhoods:
        n_edges = receiver.shape[0]
        counts = torch.bincount(receiver, minlength=num_nodes)
        start = torch.cumsum(counts, 0) - counts
        order = torch.argsort(receiver, stable=True)
        slot = torch.empty_like(receiver)
        slot[order] = torch.arange(n_edges, device=receiver.device) - start[receiver[order]]
        k = int(counts.max()) if n_edges else 0
        return cls(receiver, slot + 1, num_nodes, k + 1)

    def pad(self, self_values: torch.Tensor, edge_values: torch.Tensor, fill=0.0) -> torch.Tensor:
        """``(N, K+1, ...)``: the atom's own value in slot 0, its neighbours' after, ``fill``
        in the padding. Differentiable in both inputs."""
        out = self_values.new_full((self.num_nodes, self.width, *self_values.shape[1:]), fill)
        out = out.index_put((torch.arange(self.num_nodes, device=out.device),
                             torch.zeros(self.num_nodes, dtype=torch.long, device=out.device)),
                            self_values)
        return out.index_put((self.receiver, self.slot), edge_values.to(out.dtype))


def neighbourhood_sdpa(q, k, v, bias, double_backward: bool = False) -> torch.Tensor:
    """SDPA with a float bias ``(N, H, 1, K+1)`` (``-inf`` on padding).

    Fused CUDA kernels have no double backward, which conservative force training needs
    (the loss on forces differentiates the attention twice): there the math kernel is used.
    """
    if double_backward and q.is_cuda:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


class NeighbourhoodAttention(nn.Module):
    """Multi-head attention of each atom (query) over [itself, its neighbours] (keys, values).

    Keys and values of neighbour j read ``[h_j, e_ij]`` (e_ij: edge features, which may carry
    the raw Cartesian edge vector: nothing here assumes invariance). The logit bias per head is
    ``u_ij * b(e_ij) + log u_ij``; the self slot has a learned bias and a learned edge feature.
    Input ``(N, dim)``, output ``(N, dim)``.
    """

    def __init__(self, dim: int, edge_dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.dim, self.edge_dim, self.num_heads = dim, edge_dim, num_heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim + edge_dim, 2 * dim)
        self.edge_bias = nn.Linear(edge_dim, num_heads)
        self.self_edge = nn.Parameter(torch.zeros(edge_dim))
        self.self_bias = nn.Parameter(torch.zeros(num_heads))
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        h: torch.Tensor,
        edge_feat: torch.Tensor,
        envelope: torch.Tensor,
        sender: torch.Tensor,
        hoods: Neighbourhoods,
        double_backward: bool = False,
    ) -> torch.Tensor:
        n, heads, dh = h.shape[0], self.num_heads, self.dim // self.num_heads
        self_tokens = torch.cat([h, self.self_edge.to(h.dtype).expand(n, -1)], -1)
        edge_tokens = torch.cat([h[sender], edge_feat], -1)
        kv = hoods.pad(self.key_value(self_tokens), self.key_value(edge_tokens))
        k, v = kv.view(n, hoods.width, 2, heads, dh).permute(2, 0, 3, 1, 4)  # (N, H, K+1, dh)
        q = self.query(h).view(n, heads, 1, dh)
        log_u = torch.log(envelope.clamp_min(_LOG_FLOOR))[:, None]
        edge_logit = self.edge_bias(edge_feat) * envelope[:, None] + log_u
        self_logit = self.self_bias.to(h.dtype).expand(n, -1)
        bias = hoods.pad(self_logit, edge_logit, fill=-math.inf)  # (N, K+1, H)
        bias = bias.permute(0, 2, 1)[:, :, None, :]
        out = neighbourhood_sdpa(q, k, v, bias, double_backward)
        return self.out(out.reshape(n, self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, edge_dim={self.edge_dim}, num_heads={self.num_heads}"
