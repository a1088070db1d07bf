"""The learned-equivariance Transformer: atoms are tokens, attention over each neighbourhood.

The architecture is deliberately *not* equivariant: the raw Cartesian edge vector r_ij / r_cut
enters the keys, values and attention bias of every layer. Rotational symmetry is learned
(augmentation, TransIP, a regularizer: :mod:`mlip.models.equivariance_training`), measured
(:mod:`mlip.testing.equivariance`) or imposed at inference (:mod:`mlip.models.frame_averaging`).
Invariant inputs are options: a Bessel basis of the distance and bond-orientational order
parameters q_l^2 of each atom's neighbourhood.

Everything that touches a neighbour is weighted by the smooth cutoff envelope, so energies and
forces are continuous as neighbours cross the cutoff (see :mod:`mlip.nn.attention`).
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from ..data import keys as K
from ..nn.attention import NeighbourhoodAttention
from ..nn.charge_spin import build_electronic
from ..nn.radial import BesselBasis, PolynomialEnvelope
from .base import Potential
from .canonical import Canonicalizer
from .registry import register_model, register_preset


class OrderParameters(nn.Module):
    """Steinhardt-like q_l^2 per atom, l = 1..lmax, from envelope-weighted spherical harmonics.

    q_lm(i) = sum_j u_ij Y_lm(rhat_ij) / (1 + sum_j u_ij) and q_l^2 = 4 pi / (2l+1) sum_m q_lm^2.
    The squares (not q_l) keep it differentiable where q_l = 0; the ``1 +`` keeps it continuous
    as the last neighbour leaves and zero for an atom without neighbours.
    """

    def __init__(self, lmax: int):
        super().__init__()
        self.lmax = int(lmax)
        self.ls = list(range(1, self.lmax + 1))

    def forward(self, edge_vec, envelope, receiver, num_nodes):
        sh = o3.spherical_harmonics(self.ls, edge_vec, normalize=True, normalization="integral")
        weighted = sh * envelope[:, None]
        acc = weighted.new_zeros(num_nodes, sh.shape[1]).index_add(0, receiver, weighted)
        norm = envelope.new_ones(num_nodes).index_add(0, receiver, envelope)
        q = acc / norm[:, None]
        out, start = [], 0
        for ell in self.ls:
            width = 2 * ell + 1
            out.append(4 * math.pi / width * q[:, start : start + width].pow(2).sum(-1))
            start += width
        return torch.stack(out, -1)


class TransformerLayer(nn.Module):
    """Pre-norm block: h + Attention(LN h), then h + FFN(LN h)."""

    def __init__(self, dim, edge_dim, num_heads, ffn_factor):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attention = NeighbourhoodAttention(dim, edge_dim, num_heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_factor * dim), nn.SiLU(), nn.Linear(ffn_factor * dim, dim)
        )

    def forward(self, h, edge_feat, envelope, sender, receiver):
        h = h + self.attention(self.norm_attn(h), edge_feat, envelope, sender, receiver)
        return h + self.ffn(self.norm_ffn(h))


class DirectForceHead(nn.Module):
    """EScAIP-style direct forces: F_i = sum_j u_ij m(h_i, h_j, e_ij) rhat_ij.

    Non-conservative (no energy has these forces as its gradient); zero for an atom without
    neighbours, and translation invariant because it reads edge vectors only.
    """

    def __init__(self, dim, edge_dim, hidden):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * dim + edge_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )

    def forward(self, h, edge_feat, edge_vec, envelope, sender, receiver):
        length = torch.linalg.norm(edge_vec, dim=-1, keepdim=True)
        magnitude = self.net(torch.cat([h[receiver], h[sender], edge_feat], -1))
        per_edge = magnitude * envelope[:, None] * edge_vec / length
        return h.new_zeros(h.shape[0], 3).index_add(0, receiver, per_edge)


@register_model("transformer")
class TransformerPotential(Potential):
    """Neighbourhood-attention Transformer with raw Cartesian edge vectors (not equivariant).

    Hyperparameters: ``dim`` token width, ``num_heads``, ``num_layers``, ``edge_dim`` width of the
    edge features, ``distance_basis`` Bessel functions of |r_ij| added to the edge input (0: off),
    ``order_parameters`` lmax of the q_l^2 node inputs (0: off), ``direct_forces`` an explicit
    non-conservative force head (EScAIP style), ``charge_spin`` total charge and multiplicity
    as inputs (:mod:`mlip.nn.charge_spin`).
    ``symmetry="canonical"`` reads every edge in its receiver's learned frame: exact O(3)
    symmetry in one pass (:mod:`mlip.models.canonical`, options in ``canonical``).
    """

    def __init__(
        self,
        cutoff: float = 5.0,
        elements=(1, 6, 7, 8),
        dtype="float64",
        dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        edge_dim: int = 32,
        ffn_factor: int = 2,
        distance_basis: int = 8,
        order_parameters: int = 0,
        readout_hidden: int = 32,
        symmetry: str = "none",
        canonical: dict | None = None,
        direct_forces: bool = False,
        pair_repulsion: bool = False,
        charge_spin: bool | str = False,
    ):
        super().__init__(cutoff, list(elements), dtype, pair_repulsion)
        self.dim, self.num_heads = int(dim), int(num_heads)
        # A direct force head is labelled on the instance: checkpoint and calculator read it.
        self.conservative = not direct_forces
        self.canonicalizer = None
        if symmetry == "canonical":
            self.canonicalizer = Canonicalizer(cutoff, len(self.elements), **(canonical or {}))
            self.resolved_defaults = {"canonical": self.canonicalizer.options}
        elif symmetry != "none" or canonical:
            raise ValueError(f"symmetry must be 'none' or 'canonical' (which the canonical "
                             f"options need), got {symmetry!r}")
        self.envelope = PolynomialEnvelope(cutoff)
        self.distance = BesselBasis(cutoff, distance_basis) if distance_basis else None
        edge_in = 3 + (int(distance_basis) if distance_basis else 0)
        if self.canonicalizer is not None:
            edge_in += 3  # the receiver's axis weights: an unknown axis is not a zero one
        self.edge_mlp = nn.Sequential(
            nn.Linear(edge_in, edge_dim), nn.SiLU(), nn.Linear(edge_dim, edge_dim)
        )
        self.embedding = nn.Embedding(len(self.elements), self.dim)
        self.electronic = build_electronic(charge_spin, len(self.elements), self.dim, cutoff)
        self.order = OrderParameters(order_parameters) if order_parameters else None
        self.order_in = nn.Linear(order_parameters, self.dim, bias=False) if order_parameters \
            else None
        self.layers = nn.ModuleList(
            TransformerLayer(self.dim, edge_dim, self.num_heads, ffn_factor)
            for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(self.dim)
        self.readout = nn.Sequential(
            nn.Linear(self.dim, readout_hidden), nn.SiLU(), nn.Linear(readout_hidden, 1)
        )
        self.force_head = DirectForceHead(self.dim, edge_dim, readout_hidden) if direct_forces \
            else None

    def _edge_features(self, edge_vec, r, axis_weights=None):
        parts = [edge_vec / self.cutoff]  # the raw Cartesian vector: the non-equivariant input
        if self.distance is not None:
            parts.append(self.distance(r))
        if axis_weights is not None:
            parts.append(axis_weights)
        return self.edge_mlp(torch.cat(parts, -1))

    def node_features(self, graph, edge_vec):
        """Final token states ``(N, dim)`` (before the output norm) and what the heads reuse."""
        sender, receiver = graph[K.EDGE_INDEX]
        n = graph[K.ATOMIC_NUMBERS].shape[0]
        r = torch.linalg.norm(edge_vec, dim=-1)
        envelope = self.envelope(r)
        coords, axis_weights = edge_vec, None
        if self.canonicalizer is not None:  # each edge in its receiver's frame: invariant
            coords, axis_weights = self.canonicalizer(
                self.species(graph), edge_vec, r, envelope, sender, receiver, n)
        edge_feat = self._edge_features(coords, r, axis_weights)
        species = self.species(graph)
        h = self.embedding(species).to(edge_vec.dtype)
        if self.electronic is not None:
            h = h + self.electronic.node_features(graph, species, r, sender, receiver, h.dtype)
        if self.order is not None:
            h = h + self.order_in(self.order(edge_vec, envelope, receiver, n))
        for layer in self.layers:
            h = layer(h, edge_feat, envelope, sender, receiver)
        return h, edge_feat, envelope

    def atomic_output(self, graph, edge_vec):
        h, edge_feat, envelope = self.node_features(graph, edge_vec)
        out = self.readout(self.norm_out(h)).squeeze(-1)
        if self.force_head is None:
            return out
        sender, receiver = graph[K.EDGE_INDEX]
        forces = self.force_head(h, edge_feat, edge_vec, envelope, sender, receiver)
        return out, forces

    def forward(self, graph, *args, **kwargs):
        """The Potential contract; a canonicalized model adds its per-atom frame report
        (``frame_conditioning``, ``frame_weight``, ``frame_penalty``: mlip.models.canonical)."""
        if self.canonicalizer is None:
            return super().forward(graph, *args, **kwargs)
        with self.canonicalizer.recording() as records:
            result = super().forward(graph, *args, **kwargs)
        return {**result, **records[0]}  # the graph's own call comes before the lone atoms'

    def auxiliary_losses(self, pred: dict) -> dict[str, torch.Tensor]:
        """The model's own training penalties, which the trainer adds to the loss."""
        return {} if self.canonicalizer is None else self.canonicalizer.loss(pred)

    def embed(self, graph: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embedding of each structure ``(B, dim)``: the mean of its final token states.

        TransIP's alignment loss is taken on it. Differentiable in the parameters (and in the
        positions, should a caller make them require grad).
        """
        positions = graph[K.POSITIONS].to(self.dtype)
        cell = graph[K.CELL].to(self.dtype)
        h, _, _ = self.node_features(graph, self.edge_vectors(graph, positions, cell))
        h = self.norm_out(h)
        batch = graph[K.BATCH]
        n_structures = cell.shape[0]
        total = h.new_zeros(n_structures, h.shape[1]).index_add(0, batch, h)
        count = torch.bincount(batch, minlength=n_structures).clamp_min(1).to(h.dtype)
        return total / count[:, None]


register_preset(
    "transformer-s", "transformer", cutoff=5.0, dim=64, num_heads=4, num_layers=2, edge_dim=32,
    distance_basis=8, order_parameters=0,
)
register_preset(
    "transformer-m", "transformer", cutoff=5.0, dim=128, num_heads=8, num_layers=4, edge_dim=64,
    distance_basis=8, order_parameters=6, readout_hidden=64,
)

# The frame-averaging wrapper is registered with the family it was made for.
from . import frame_averaging  # noqa: E402, F401
