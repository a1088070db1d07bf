"""Neighbourhood attention for the Transformer: each atom attends over its neighbours and itself.

The attention runs on the edge list itself (``edge_index``: row 0 sender j, row 1 receiver i):
one logit per edge and head, a softmax over each receiver's edges plus its own self token, and
the weighted values summed back with ``index_add``. Nothing is padded to the largest
neighbourhood, so memory is O(edges) even where coordination varies (a slab's surface and bulk),
and every size is a size of an input, so the model traces into one graph with symbolic sizes
(``run.compile``). A padded ``(N, K+1)`` layout for ``scaled_dot_product_attention`` needs K,
the largest neighbour count, which is a value of the data, not a size.

Smoothness at the cutoff: the logit of neighbour j carries ``log u(r_ij)``, u the cutoff envelope,
so its softmax weight is ``u_ij exp(s_ij) / Z`` and goes to zero (with its derivatives) as j leaves
the cutoff. The self token is always present, so Z never vanishes: an atom without neighbours
attends to itself only (no NaN).
"""

from __future__ import annotations

import torch
from torch import nn

# Logits are log(max(u, tiny)): below this the neighbour's weight is < 1e-30 relative.
_LOG_FLOOR = 1e-30


def segment_attention(q, k_self, v_self, k_edge, v_edge, self_bias, edge_bias, receiver):
    """Softmax attention of each atom over [itself, the edges it receives].

    ``q``, ``k_self``, ``v_self``: ``(N, H, d)``; ``k_edge``, ``v_edge``: ``(E, H, d)``;
    ``self_bias`` ``(N, H)`` and ``edge_bias`` ``(E, H)`` are added to the scaled dot products
    ``q.k / sqrt(d)``. Returns ``(N, H, d)``. Differentiable twice (force training).
    """
    scale = q.shape[-1] ** -0.5
    s_self = (q * k_self).sum(-1) * scale + self_bias
    s_edge = (q[receiver] * k_edge).sum(-1) * scale + edge_bias
    # Each row's largest logit, subtracted for range only: the softmax does not depend on it,
    # so it carries no gradient.
    top = s_self.detach().scatter_reduce(
        0, receiver[:, None].expand_as(s_edge), s_edge.detach(), "amax", include_self=True)
    w_self = torch.exp(s_self - top)
    w_edge = torch.exp(s_edge - top[receiver])
    z = w_self.index_add(0, receiver, w_edge)
    out = (w_self[..., None] * v_self).index_add(0, receiver, w_edge[..., None] * v_edge)
    return out / z[..., None]


class NeighbourhoodAttention(nn.Module):
    """Multi-head attention of each atom (query) over [itself, its neighbours] (keys, values).

    Keys and values of neighbour j read ``[h_j, e_ij]`` (e_ij: edge features, which may carry
    the raw Cartesian edge vector: nothing here assumes invariance). The logit bias per head is
    ``u_ij * b(e_ij) + log u_ij``; the self token has a learned bias and a learned edge feature.
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
        receiver: torch.Tensor,
    ) -> torch.Tensor:
        n, heads, dh = h.shape[0], self.num_heads, self.dim // self.num_heads
        self_tokens = torch.cat([h, self.self_edge.to(h.dtype).expand(n, -1)], -1)
        edge_tokens = torch.cat([h[sender], edge_feat], -1)
        k_self, v_self = self.key_value(self_tokens).view(n, 2, heads, dh).unbind(1)
        k_edge, v_edge = self.key_value(edge_tokens).view(-1, 2, heads, dh).unbind(1)
        q = self.query(h).view(n, heads, dh)
        log_u = torch.log(envelope.clamp_min(_LOG_FLOOR))[:, None]
        edge_bias = self.edge_bias(edge_feat) * envelope[:, None] + log_u
        self_bias = self.self_bias.to(h.dtype).expand(n, -1)
        out = segment_attention(q, k_self, v_self, k_edge, v_edge, self_bias, edge_bias,
                                receiver)
        return self.out(out.reshape(n, self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, edge_dim={self.edge_dim}, num_heads={self.num_heads}"
