"""Learned canonicalization (Kaba et al. 2023): exact O(3) symmetry for the Transformer in one pass.

A small equivariant network predicts, for every atom i, vectors v_1, v_2, v_3 from its
neighbourhood; Gram-Schmidt (no SVD, no eigendecomposition) turns them into an orthonormal
frame E_i, and the Transformer reads each edge vector r_ij in the frame of its receiver,
r_ij @ E_i. Under any rotation or reflection Q of the input, v -> Q v, so E_i -> Q E_i and the
coordinates the backbone sees are unchanged: the energy is exactly invariant, and forces, taken
as -dE/dr through the canonicalizer, are exactly equivariant and conservative.

*Per atom, not per structure.* Each atom's frame depends on its own neighbourhood only, so the
model stays local (receptive field: one cutoff more than the backbone's) and extensive, and it
is defined for periodic cells, where a global frame (the centroid and covariance that
``FrameAveraged`` uses) depends on how atoms are wrapped into the cell. The backbone already
works per receiver: an edge's features enter only its receiver's attention, so expressing
every edge in its receiver's frame is all it takes (Lippmann et al. 2025 build local frames
the same way).

*Reflections.* ``group="O3"`` (default) predicts three true vectors and orthonormalises all
three: the frame has det +-1 and follows reflections as well as rotations. ``"SO3"`` predicts
two and completes the frame with the cross product e_1 x e_2, a pseudovector: exact under
rotations only, but the third axis needs no third independent vector.

*Degeneracy.* No frame can be a continuous function of the structure everywhere (Dym et al.
2024): an atom whose neighbourhood has a symmetry has equivariant vectors confined to the
symmetry's fixed space (zero at a centre of inversion or of a cubic site: fcc, the C of CH4 and
CO2; one axis on a C3 or C-infinity axis: the H of CH4, the O of CO2; a plane under a mirror),
and the frame rotates ever faster as such a configuration is approached. Each Gram-Schmidt
residual norm rho_k (dimensionless: the vectors are bounded by construction, so their size
cannot be inflated) measures the conditioning of axis k. Axis k is used with weight
G_k = s(rho_1) ... s(rho_k), where s is a C2 smooth step from 0 at ``threshold[0]`` to 1 at
``threshold[1]``: the backbone's coordinate k is G_k (r_ij . e_k). Where an axis is ill
conditioned, its coordinate goes continuously to exactly zero and the backbone falls back to
what needs no frame (distances, order parameters, the other axes). The fallback is invariant,
costs nothing, and removes nothing that the symmetry does not already make ambiguous (on a
C-infinity axis, e.g., every neighbour lies on the axis, which is kept). Energies are twice
differentiable everywhere (the frame's derivatives are bounded, ~1/threshold[0], wherever its
weight is nonzero), so forces are continuous along any path, including through degenerate
configurations. The weights G are also backbone inputs, so it can tell "unknown" from "zero".
The share of atoms with G_3 < 1 is the fallback share, reported with every prediction.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..nn.radial import BesselBasis

GROUPS = ("O3", "SO3")
#: per-atom outputs of a canonicalized model (besides the Potential contract's)
FRAME_CONDITIONING = "frame_conditioning"  # (N,) min_k rho_k, dimensionless
FRAME_WEIGHT = "frame_weight"  # (N, 3) G_k per axis: 1 used, 0 fallen back
FRAME_PENALTY = "frame_penalty"  # (N,) the training penalty's per-atom term (with grad)


def smooth_step(t: torch.Tensor) -> torch.Tensor:
    """6t^5 - 15t^4 + 10t^3 on [0, 1], 0 below and 1 above: value, slope and curvature are
    continuous, so a gated coordinate keeps the energy twice differentiable."""
    t = t.clamp(0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def fallback_share(weight: torch.Tensor, axis: int = -1) -> float:
    """The share of atoms whose frame is not fully used: G < 1 on ``axis`` (the last by
    default, whose weight is the product of all axes'), from ``(N, 3)`` axis weights."""
    return float((weight[:, axis] < 1.0).double().mean()) if weight.numel() else 0.0


class FrameVectors(nn.Module):
    """Equivariant per-atom vectors ``(N, 3, K)`` (columns), each of norm <= 1.

    Per channel c, the envelope-weighted moments of degree 1 and 2 of the neighbour
    directions, v = sum_j w1 rhat / n and Q = sum_j w2 (rhat rhat^T - I/3) / n with
    n = 1 + sum_j u_ij and w_l = u_ij tanh(MLP(Bessel(r_ij), species of i and j)); the
    vectors are unit-norm combinations of v, Q v and Q^2 v (tanh-bounded weights). Every
    factor is bounded, so the conditioning thresholds are on a scale training cannot inflate.

    These are the l = 1, 2 spherical harmonics and the (2, 1 -> 1) tensor product path in
    Cartesian form (rhat is Y_1, rhat rhat^T - I/3 is Y_2, up to constants; tested against
    :func:`mlip.nn.spherical_harmonics` and :class:`mlip.nn.CGTensorProduct`). The Cartesian
    form takes a fifth of the operations, and operations are what the canonicalizer's cost is
    made of at these widths. All paths are even: O(3) equivariant.
    """

    def __init__(
        self,
        cutoff: float,
        num_species: int,
        num_vectors: int,
        channels: int = 8,
        num_basis: int = 8,
        hidden: int = 32,
        species_dim: int = 8,
    ):
        super().__init__()
        self.channels = int(channels)
        self.basis = BesselBasis(cutoff, num_basis)
        self.species = nn.Embedding(num_species, species_dim)
        self.radial = nn.Sequential(
            nn.Linear(num_basis + 2 * species_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 3 * self.channels),
        )
        self.product_weights = nn.Parameter(torch.randn(2, self.channels))
        self.mix = nn.Parameter(torch.randn(3 * self.channels, int(num_vectors)))
        # The degree of each of the 13 moments: 1, rhat (3), rhat rhat^T (9).
        self.register_buffer("degree", torch.tensor([0] + [1] * 3 + [2] * 9), persistent=False)

    def moments(self, species, edge_vec, r, envelope, receiver, sender, num_nodes):
        """s ``(N, C)``, v ``(N, 3, C)`` and Q ``(N, 3, 3, C)``."""
        c, n_edges = self.channels, edge_vec.shape[0]
        emb = self.species(species).to(edge_vec.dtype)
        w = torch.tanh(self.radial(torch.cat([self.basis(r), emb[receiver], emb[sender]], -1)))
        w = (w * envelope[:, None]).view(n_edges, 3, c)[:, self.degree]  # (E, 13, C)
        unit = edge_vec / r[:, None]
        outer = (unit[:, :, None] * unit[:, None, :]).reshape(n_edges, 9)
        basis = torch.cat([torch.ones_like(r)[:, None], unit, outer], -1)  # (E, 13)
        acc = edge_vec.new_zeros(num_nodes, 13, c).index_add(0, receiver, basis[:, :, None] * w)
        a = acc / envelope.new_ones(num_nodes).index_add(0, receiver, envelope)[:, None, None]
        return a[:, 0], a[:, 1:4], a[:, 4:].reshape(num_nodes, 3, 3, c)

    def forward(self, species, edge_vec, r, envelope, sender, receiver, num_nodes):
        s, v, q = self.moments(species, edge_vec, r, envelope, receiver, sender, num_nodes)
        # The traceless part (l = 2 alone): its trace would only add multiples of v.
        eye = torch.eye(3, dtype=q.dtype, device=q.device)[None, :, :, None]
        q = q - eye * torch.einsum("niic->nc", q)[:, None, None, :] / 3
        w = torch.tanh(self.product_weights).to(v.dtype)
        qv = torch.einsum("nijc,njc->nic", q, v)
        qqv = torch.einsum("nijc,njc->nic", q, qv)
        # v, Q v, Q^2 v: a Krylov sequence, three independent directions for a generic
        # neighbourhood even where the radial weights of all channels agree.
        feats = torch.cat([v, qv * w[0], qqv * w[1]], -1)  # (N, 3, 3C)
        mix = self.mix.to(v.dtype)
        return feats @ (mix / torch.linalg.vector_norm(mix, dim=0, keepdim=True))


class Canonicalizer(nn.Module):
    """Per-atom frames from :class:`FrameVectors`, and edge vectors in their receiver's frame.

    ``threshold = (low, high)``: an axis whose Gram-Schmidt residual norm is below ``low`` is
    not used, above ``high`` fully used, smoothly in between. The window sets how steep the
    energy can be where an axis blends in (slopes ~1/low, ~1/(high - low)): the default
    (3e-3, 3e-2) gives a stable 10 ps NVE of acac, where (5e-4, 2.5e-3) drifted and was stopped
    after 1.3 ps (docs/transformer.md). ``penalty``: the weight of the
    training penalty mean_i relu(1 - rho_min,i^2 / high^2)^2 (dimensionless, in [0, 1]),
    which pushes the conditioning above ``high`` on the training data.
    """

    def __init__(
        self,
        cutoff: float,
        num_species: int,
        group: str = "O3",
        channels: int = 8,
        num_basis: int = 8,
        hidden: int = 32,
        threshold=(3e-3, 3e-2),
        penalty: float = 0.0,
    ):
        super().__init__()
        if group not in GROUPS:
            raise ValueError(f"canonical group must be one of {GROUPS}, got {group!r}")
        low, high = (float(x) for x in threshold)
        if not 0.0 < low < high:
            raise ValueError(f"canonical threshold must be 0 < low < high, got {threshold!r}")
        if penalty < 0:
            raise ValueError(f"canonical penalty must be >= 0, got {penalty!r}")
        self.group, self.low, self.high, self.penalty = group, low, high, float(penalty)
        self.num_axes = 3 if group == "O3" else 2  # predicted vectors; SO3 crosses the third
        self.options = {
            "group": group,
            "channels": int(channels),
            "num_basis": int(num_basis),
            "hidden": int(hidden),
            "threshold": [low, high],
            "penalty": self.penalty,
        }
        self.vectors = FrameVectors(cutoff, num_species, self.num_axes, channels, num_basis, hidden)
        self._records: list | None = None

    def frames(self, vectors: torch.Tensor):
        """Gram-Schmidt of ``(N, 3, K)``: frames ``(N, 3, 3)`` whose columns are the axes
        times their weights G_k, the residual norms ``(N, K)``, their squares (with grad) and
        the axis weights ``(N, 3)``."""
        # Guards the divisions only: residuals above 1e-3 low are exact (reported), and
        # derivatives stay finite in float32 where the weight (and its slope) is 0.
        floor = (1e-3 * self.low) ** 2
        axes, squares = [], []
        for k in range(self.num_axes):
            res = vectors[..., k]
            for e in axes:
                res = res - (res * e).sum(-1, keepdim=True) * e
            q = (res * res).sum(-1, keepdim=True)
            axes.append(res / q.clamp_min(floor).sqrt())
            squares.append(q)
        q = torch.cat(squares, -1)
        rho = q.clamp_min(floor).sqrt()
        gates = torch.cumprod(smooth_step((rho - self.low) / (self.high - self.low)), -1)
        if self.group == "SO3":
            axes.append(torch.linalg.cross(axes[0], axes[1]))
            gates = torch.cat([gates, gates[:, 1:]], -1)
        frame = torch.stack(axes, -1) * gates[:, None, :]
        return frame, q.detach().clamp_min(0).sqrt(), q, gates

    def forward(self, species, edge_vec, r, envelope, sender, receiver, num_nodes):
        """Edge vectors in their receiver's (weighted) frame ``(E, 3)`` and the receiver's
        axis weights ``(E, 3)``, both invariant."""
        if edge_vec.shape[0] == 0:  # no neighbours anywhere (the lone-atom reference): no frame
            if self._records is not None:
                self._records.append(
                    {
                        FRAME_CONDITIONING: edge_vec.new_zeros(num_nodes),
                        FRAME_WEIGHT: edge_vec.new_zeros(num_nodes, 3),
                    }
                )
            return edge_vec, edge_vec.new_zeros(0, 3)
        vectors = self.vectors(species, edge_vec, r, envelope, sender, receiver, num_nodes)
        frame, rho, q, gates = self.frames(vectors)
        if self._records is not None:
            record = {
                FRAME_CONDITIONING: rho.amin(-1) if rho.shape[0] else rho.new_zeros(0),
                FRAME_WEIGHT: gates.detach(),
            }
            if self.penalty > 0:
                low = q.amin(-1) if q.shape[0] else q.new_zeros(0)
                record[FRAME_PENALTY] = torch.relu(1.0 - low / self.high**2).square()
            self._records.append(record)
        coords = torch.einsum("ej,ejk->ek", edge_vec, frame[receiver])
        return coords, gates[receiver]

    @contextlib.contextmanager
    def recording(self):
        """Collect the frame report of each call inside the block (a list of dicts)."""
        self._records = records = []
        try:
            yield records
        finally:
            self._records = None

    def loss(self, pred: dict) -> dict[str, torch.Tensor]:
        """The weighted conditioning penalty of a training step's predictions."""
        if self.penalty == 0 or FRAME_PENALTY not in pred or pred[FRAME_PENALTY].numel() == 0:
            return {}
        return {"frame": self.penalty * pred[FRAME_PENALTY].mean().to(torch.float64)}

    def extra_repr(self) -> str:
        return f"group={self.group}, threshold=({self.low}, {self.high}), penalty={self.penalty}"


def frame_report(model, structures) -> list[dict]:
    """Per ASE structure, one forward of a canonicalized ``model``: its atoms, the smallest
    frame conditioning, the fallback share (atoms whose full frame has weight < 1), the same
    per axis (axis k has weight G_1 ... G_k) and the mean weight of the full frame."""
    from ..data.graph import atoms_to_frame, frame_to_graph, to

    if getattr(model, "canonicalizer", None) is None:
        raise ValueError(f"{type(model).__name__} has no canonicalizer (symmetry='canonical')")
    device = model.elements.device
    rows = []
    for atoms in structures:
        graph = to(frame_to_graph(atoms_to_frame(atoms), model.cutoff, validate=False), device)
        with torch.no_grad():
            out = model(graph, compute_forces=False)
        weight, cond = out[FRAME_WEIGHT].double().cpu(), out[FRAME_CONDITIONING].double().cpu()
        rows.append(
            {
                "n_atoms": len(atoms),
                "conditioning_min": float(cond.min()) if cond.numel() else 0.0,
                "fallback_share": fallback_share(weight),
                "axis_fallback_share": [fallback_share(weight, k) for k in range(3)],
                "frame_weight_mean": float(weight[:, -1].mean()) if weight.numel() else 1.0,
            }
        )
    return rows
