"""Learning rotational equivariance: the pieces a training loop calls, chosen by configuration.

- :func:`augment`: rotate each structure of a batch (positions, cell, forces, stress) by its
  own random rotation; the plain data-augmentation baseline.
- :class:`EmbeddingTransform` and :func:`transip_loss`: TransIP (Elhag et al. 2025). A small
  network phi maps the pooled embedding of a structure and a rotation R to the embedding of the
  rotated structure; the auxiliary loss is MSE(phi(z(x), R), z(x R^T)).
- :func:`equivariance_regularizer`: rotate the input, rotate the predicted forces back and
  penalise their difference from the forces on the unrotated input (and the energy difference).

Rotations act on row vectors: a rotated structure has positions ``x @ R.T`` and cell
``cell @ R.T``; forces become ``F @ R.T`` and stress ``R @ sigma @ R.T``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import keys as K

ROTATION_REPRESENTATIONS = ("matrix", "6d")


def random_rotations(n: int, generator: torch.Generator | None = None, reflect: bool = False,
                     dtype=torch.float64, device=None) -> torch.Tensor:
    """``n`` Haar-random rotations ``(n, 3, 3)`` (QR of a Gaussian with the sign fixed); with
    ``reflect`` each is composed with the inversion with probability 1/2."""
    a = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q = q * torch.sign(torch.linalg.det(q))[:, None, None]  # proper rotations
    if reflect:
        flip = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        q = torch.where(flip[:, None, None], -q, q)
    return q.to(dtype=dtype, device=device)


def rotate_graph(graph: dict[str, torch.Tensor], rotations: torch.Tensor) -> dict:
    """The batch with structure b rotated by ``rotations[b]``: positions, cell, forces and
    stress move; edge_index and edge_shift (in cell units) stay valid as they are."""
    batch = graph[K.BATCH]
    out = dict(graph)
    pos = graph[K.POSITIONS]
    rot = rotations.to(device=pos.device)
    out[K.POSITIONS] = torch.einsum("nj,nij->ni", pos, rot.to(pos.dtype)[batch])
    cell = graph[K.CELL]
    out[K.CELL] = torch.einsum("bkj,bij->bki", cell, rot.to(cell.dtype))
    if K.FORCES in graph:
        f = graph[K.FORCES]
        out[K.FORCES] = torch.einsum("nj,nij->ni", f, rot.to(f.dtype)[batch])
    if K.STRESS in graph:
        s = graph[K.STRESS]
        r = rot.to(s.dtype)
        out[K.STRESS] = r @ s @ r.transpose(1, 2)
    return out


def augment(graph, generator: torch.Generator | None = None, reflect: bool = False):
    """Rotate every structure of a batch by its own random rotation: ``(graph, rotations)``."""
    rotations = random_rotations(graph[K.CELL].shape[0], generator, reflect,
                                 dtype=torch.float64, device=graph[K.CELL].device)
    return rotate_graph(graph, rotations), rotations


def rotation_features(rotations: torch.Tensor, representation: str = "6d") -> torch.Tensor:
    """A rotation as network input: its 9 entries, or the continuous 6D representation (its
    first two columns, Zhou et al. 2019)."""
    if representation == "matrix":
        return rotations.reshape(-1, 9)
    if representation == "6d":
        return rotations[..., :2].transpose(-1, -2).reshape(-1, 6)
    raise ValueError(f"representation must be one of {ROTATION_REPRESENTATIONS}")


class EmbeddingTransform(nn.Module):
    """TransIP's phi: (embedding z, rotation R) -> predicted embedding of the rotated structure.

    z + MLP([z, rep(R)]); the last layer starts at zero, so phi starts as the identity (the
    right map for an invariant embedding) and learns how the embedding moves under rotation.
    """

    def __init__(self, dim: int, hidden: int = 128, representation: str = "6d",
                 dtype=torch.float64):
        super().__init__()
        if representation not in ROTATION_REPRESENTATIONS:
            raise ValueError(f"representation must be one of {ROTATION_REPRESENTATIONS}")
        self.representation = representation
        n_rot = 9 if representation == "matrix" else 6
        self.net = nn.Sequential(
            nn.Linear(dim + n_rot, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, dim),
        ).to(dtype)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        rot = rotation_features(rotations.to(z.dtype), self.representation)
        return z + self.net(torch.cat([z, rot], -1))


def transip_loss(model, transform: EmbeddingTransform, graph, rotations=None,
                 generator: torch.Generator | None = None, detach_target: bool = False):
    """TransIP's alignment loss MSE(phi(z(x), R), z(x R^T)) for a batch; differentiable in the
    model's and phi's parameters. ``model`` needs ``embed(graph) -> (B, dim)``. With
    ``detach_target`` the rotated embedding is a fixed target (gradient through the prediction
    only); by default both sides are trained, the energy and force losses keeping the embedding
    from collapsing. Returns ``(loss, rotations)``."""
    if rotations is None:
        rotations = random_rotations(graph[K.CELL].shape[0], generator,
                                     device=graph[K.CELL].device)
    z = model.embed(graph)
    target = model.embed(rotate_graph(graph, rotations))
    if detach_target:
        target = target.detach()
    return torch.mean((transform(z, rotations) - target) ** 2), rotations


def equivariance_regularizer(model, graph, rotations=None,
                             generator: torch.Generator | None = None, reference=None,
                             energy_weight: float = 1.0, forces_weight: float = 1.0,
                             reflect: bool = False):
    """Penalty for non-equivariant outputs: mean over atoms of |F(x R^T) R - F(x)|^2 (eV/Å)^2
    plus mean over structures of ((E(x R^T) - E(x)) / n_atoms)^2 (eV/atom)^2.

    ``reference`` reuses the training step's predictions on the unrotated batch; they must keep
    the graph (``create_graph=True`` for conservative forces) for the penalty to train on them.
    Returns ``(loss, rotations)``.
    """
    if rotations is None:
        rotations = random_rotations(graph[K.CELL].shape[0], generator, reflect,
                                     device=graph[K.CELL].device)
    if reference is None:
        reference = model(graph, compute_forces=True, create_graph=True)
    rotated = model(rotate_graph(graph, rotations), compute_forces=True, create_graph=True)
    batch = graph[K.BATCH]
    f_rot = rotated[K.FORCES]
    back = torch.einsum("ni,nij->nj", f_rot, rotations.to(f_rot.dtype)[batch])
    force_term = torch.mean(torch.sum((back - reference[K.FORCES]) ** 2, -1))
    n_atoms = graph[K.NUM_ATOMS].to(torch.float64)
    energy_term = torch.mean(((rotated[K.ENERGY] - reference[K.ENERGY]) / n_atoms) ** 2)
    return energy_weight * energy_term + forces_weight * force_term.to(torch.float64), rotations
