"""Exact rotational symmetry on demand: frame averaging over PCA frames of the positions.

``FrameAveraged(model)`` evaluates ``model`` on the structure expressed in a set of canonical
frames and averages: E(x) = sum_g w_g E_model(x R_g(x)). The frames come from the covariance of
the positions about their (mass-free) centroid, C = V diag(lambda) V^T. Under a rotation Q of the
input, V -> Q V up to the signs of its columns, so averaging over the sign choices makes the set
of frames, and hence the energy, exactly invariant; forces are -dE/dx (the frame's dependence on
x included), hence exactly equivariant. ``group="O3"`` (default) averages over all 8 sign
choices and is also invariant to reflections; ``"SO3"`` over the 4 proper ones.

Degenerate spectra (eigenvalues equal within ``degenerate_tol`` relative to the largest) have no
unique frame; we fall back to an explicit frame set, and guarantee only what it gives:

- *axial* (two equal eigenvalues: linear molecules, symmetric tops, planar rings): the unique
  axis e is kept, and the frame is averaged over ``axial_frames`` uniform rotations about e
  (times the sign choices of e). The in-plane reference is taken from the world axis least
  aligned with e. Exact for linear structures (every in-plane frame sees the same coordinates up
  to a translation); otherwise invariant to rotations about e only up to the error of an
  ``axial_frames``-point quadrature of the circle average, which is measured, not asserted.
- *isotropic* (three equal eigenvalues: cubic cells, tetrahedral or octahedral molecules, a lone
  atom): the frame set is the cube's rotation group in the world frame (24 rotations; 48 with
  reflections for O3). Exactly invariant to those rotations; to other rotations only
  approximately.

The switch between frame sets as a spectrum crosses the tolerance is a discontinuity of the
energy, and forces grow like 1/(eigenvalue gap) near a crossing: frame averaging is for
evaluation with exact symmetry, not a smooth potential for MD through such configurations.
For periodic systems the centroid and covariance depend on how atoms are wrapped into the cell,
so the result is exactly invariant to rotating the whole system but not to re-wrapping atoms.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ..data import keys as K
from ..nn.derivatives import energy_derivatives, strain_inputs
from .base import Potential
from .registry import register_model

GROUPS = ("O3", "SO3")
# Labels and predictions: everything in the field table a model does not take as input.
_TARGETS = tuple(k for k, f in K.FIELDS.items() if f.role in ("target", "output", "reader"))


class _DegenerateSafeEigh(torch.autograd.Function):
    """``eigh`` whose backward drops the 1/(lambda_j - lambda_i) terms of degenerate pairs.

    Exact whenever the loss does not depend on the basis chosen inside a degenerate eigenspace,
    which is how the frames below use the eigenvectors (``torch.linalg.eigh`` would give NaN).
    """

    # forward and setup_context apart: the form torch.func transforms need (run.compile
    # takes the forces by torch.func.grad).
    @staticmethod
    def forward(c, tol):
        return torch.linalg.eigh(c)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*output)
        ctx.tol = inputs[1]

    @staticmethod
    def backward(ctx, g_values, g_vectors):
        values, vectors = ctx.saved_tensors
        inner = torch.zeros_like(vectors)
        if g_vectors is not None:
            gap = values[..., None, :] - values[..., :, None]
            floor = ctx.tol * values.abs().amax(-1)[..., None, None] + 1e-12
            safe = gap.abs() > floor
            inv = torch.where(safe, 1.0 / torch.where(safe, gap, torch.ones_like(gap)), 0.0)
            inner = vectors.transpose(-1, -2) @ g_vectors * inv
        if g_values is not None:
            inner = inner + torch.diag_embed(g_values)
        grad = vectors @ inner @ vectors.transpose(-1, -2)
        return 0.5 * (grad + grad.transpose(-1, -2)), None  # the input is symmetric


def _sign_matrices(group: str, axial: bool) -> list[list[float]]:
    if axial:  # with rotations about z already averaged over, these complete O(2) x Z2
        signs = [(1, 1, 1), (1, -1, -1)] + ([(1, 1, -1), (1, -1, 1)] if group == "O3" else [])
    else:
        signs = [s for s in itertools.product((1, -1), repeat=3)
                 if group == "O3" or math.prod(s) == 1]
    return signs


def cube_group(reflections: bool) -> torch.Tensor:
    """The 24 rotations of the cube (48 with reflections) as signed permutation matrices."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.zeros(3, 3, dtype=torch.float64)
            m[range(3), perm] = torch.tensor(signs, dtype=torch.float64)
            if reflections or torch.linalg.det(m) > 0:
                mats.append(m)
    return torch.stack(mats)


def _rot_z(angles: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angles), torch.sin(angles)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(-1, 3, 3)


def covariance(positions: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """Covariance of the positions about their mass-free centroid, per structure ``(B, 3, 3)``."""
    count = torch.bincount(batch, minlength=n_structures).clamp_min(1).to(positions.dtype)
    centroid = positions.new_zeros(n_structures, 3).index_add(0, batch, positions) / count[:, None]
    x = positions - centroid[batch]
    outer = x[:, :, None] * x[:, None, :]
    return positions.new_zeros(n_structures, 3, 3).index_add(0, batch, outer) / count[:, None, None]


def canonical_frames(positions, batch, n_structures, group="O3", degenerate_tol=1e-4,
                     axial_frames=12):
    """Frames ``(B, G, 3, 3)`` (columns are axes; a structure is seen as ``x @ R``), weights
    ``(B, G)`` summing to one per structure (zero on padding), and each structure's kind:
    ``"generic"``, ``"axial"`` or ``"isotropic"``."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    dtype, device = positions.dtype, positions.device
    values, vectors = _DegenerateSafeEigh.apply(
        covariance(positions, batch, n_structures), degenerate_tol
    )
    # eigh may return a reflection; a proper V makes "product of signs = +1" mean SO(3).
    det = torch.linalg.det(vectors.detach())
    vectors = torch.cat([vectors[..., :2], vectors[..., 2:] * det[:, None, None]], -1)
    lam = values.detach().tolist()
    per_structure, kinds = [], []
    for b in range(n_structures):
        l1, l2, l3 = lam[b]
        floor = degenerate_tol * abs(l3) + 1e-10
        low, high = l2 - l1 <= floor, l3 - l2 <= floor
        if low and high:
            kinds.append("isotropic")
            frames = cube_group(group == "O3").to(dtype=dtype, device=device)
        elif not low and not high:
            kinds.append("generic")
            signs = torch.tensor(_sign_matrices(group, False), dtype=dtype, device=device)
            frames = vectors[b][None] * signs[:, None, :]
        else:
            kinds.append("axial")
            axis = vectors[b][:, 2] if low else vectors[b][:, 0]
            ref = torch.zeros(3, dtype=dtype, device=device)
            ref[int(torch.argmin(axis.detach().abs()))] = 1.0
            p = ref - (ref @ axis) * axis
            p = p / torch.linalg.norm(p)
            base = torch.stack([p, torch.linalg.cross(axis, p), axis], -1)
            angles = torch.arange(axial_frames, dtype=dtype, device=device) * (
                2 * math.pi / axial_frames)
            signs = torch.tensor(_sign_matrices(group, True), dtype=dtype, device=device)
            turns = _rot_z(angles)[:, None] * signs[None, :, None, :]
            frames = (base @ turns).reshape(-1, 3, 3)
        per_structure.append(frames)
    width = max(f.shape[0] for f in per_structure)
    eye = torch.eye(3, dtype=dtype, device=device)
    out, weights = [], torch.zeros(n_structures, width, dtype=torch.float64, device=device)
    for b, frames in enumerate(per_structure):
        g = frames.shape[0]
        out.append(torch.cat([frames, eye.expand(width - g, 3, 3)], 0))
        weights[b, :g] = 1.0 / g
    return torch.stack(out), weights, kinds


@register_model("frame-averaged")
class FrameAveraged(Potential):
    """A Potential averaged over canonical frames: exactly invariant energy, equivariant forces.

    ``FrameAveraged(model)`` wraps an instance; ``build_model("frame-averaged",
    model="transformer-s", **hyperparameters)`` builds and wraps, which is also how a saved
    wrapper is loaded back. E0, scale, cutoff and elements are the wrapped model's.
    """

    def __init__(self, model="transformer", group: str = "O3", degenerate_tol: float = 1e-4,
                 axial_frames: int = 12, **hyperparameters):
        nn.Module.__init__(self)  # no buffers of its own: everything physical is the inner's
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        if isinstance(model, str):
            from .registry import build_model

            model = build_model(model, **hyperparameters)
        elif hyperparameters:
            raise TypeError("hyperparameters are for a model given by name, not an instance")
        if isinstance(model, FrameAveraged):
            raise TypeError("the model is already frame-averaged")
        self.inner = model
        self.group, self.degenerate_tol = group, float(degenerate_tol)
        self.axial_frames = int(axial_frames)
        if hasattr(model, "model_name"):  # so that a wrapped instance can be saved and loaded
            self.model_name, self.preset = "frame-averaged", None
            self.hyperparameters = {"model": model.model_name, "group": group,
                                    "degenerate_tol": self.degenerate_tol,
                                    "axial_frames": self.axial_frames, **model.hyperparameters}

    # The wrapped model's physical settings, read and written through.
    cutoff = property(lambda self: self.inner.cutoff)
    elements = property(lambda self: self.inner.elements)
    element_index = property(lambda self: self.inner.element_index)
    dtype_name = property(lambda self: self.inner.dtype_name)
    conservative = property(lambda self: self.inner.conservative)
    uses_charge_spin = property(lambda self: self.inner.uses_charge_spin)
    repulsion = property(lambda self: self.inner.repulsion)
    e0 = property(lambda self: self.inner.e0,
                  lambda self, value: setattr(self.inner, "e0", value))
    scale = property(lambda self: self.inner.scale,
                     lambda self, value: setattr(self.inner, "scale", value))

    def frames(self, positions, batch, n_structures):
        return canonical_frames(positions, batch, n_structures, self.group, self.degenerate_tol,
                                self.axial_frames)

    @staticmethod
    def _replicated(graph, positions, cell, frames):
        """One batch holding every structure in every frame, frame-major: structure b in frame
        g is structure g * B + b. One forward of the wrapped model serves all frames."""
        batch = graph[K.BATCH]
        n_frames, n_atoms, n_structures = frames.shape[1], positions.shape[0], cell.shape[0]
        rot = frames.transpose(0, 1)  # (G, B, 3, 3)
        out = {}
        for key, value in graph.items():
            if key in _TARGETS:
                continue  # labels are not inputs, and would need rotating
            if key == K.EDGE_INDEX:
                offset = torch.arange(n_frames, device=value.device) * n_atoms
                value = (value[:, None, :] + offset[None, :, None]).reshape(2, -1)
            elif key == K.BATCH:
                offset = torch.arange(n_frames, device=value.device) * n_structures
                value = (value[None, :] + offset[:, None]).reshape(-1)
            else:
                value = torch.cat([value] * n_frames)
            out[key] = value
        out[K.POSITIONS] = torch.einsum("ni,gnij->gnj", positions, rot[:, batch]).reshape(-1, 3)
        out[K.CELL] = torch.einsum("bki,gbij->gbkj", cell, rot).reshape(-1, 3, 3)
        return out

    def forward(self, graph, compute_forces=True, compute_stress=False, create_graph=None):
        dtype, batch = self.dtype, graph[K.BATCH]
        pos_leaf = graph[K.POSITIONS].to(dtype)
        cell = graph[K.CELL].to(dtype)
        n_structures, n_atoms = cell.shape[0], pos_leaf.shape[0]
        conservative = self.conservative
        needs_grad = conservative and (compute_forces or compute_stress)
        pos_leaf, positions, cell, strain = strain_inputs(
            pos_leaf, cell, batch, needs_grad, compute_stress and conservative
        )
        frames, weights, _ = self.frames(positions, batch, n_structures)
        n_frames = frames.shape[1]
        out = self.inner(self._replicated(graph, positions, cell, frames),
                         compute_forces=compute_forces and not conservative)
        w = weights.T  # (G, B)
        energy = (w * out[K.ENERGY].view(n_frames, n_structures)).sum(0)
        node_energy = (w[:, batch] * out[K.NODE_ENERGY].view(n_frames, n_atoms)).sum(0)
        result = {K.ENERGY: energy, K.NODE_ENERGY: node_energy}
        if create_graph is None:
            create_graph = self.training
        if needs_grad:
            grads = energy_derivatives(energy, pos_leaf, strain, graph[K.CELL].to(dtype),
                                       compute_forces, create_graph)
            result.update(grads)
        elif compute_forces:  # direct forces back from each frame, F R^T, then averaged
            f = out[K.FORCES].view(n_frames, n_atoms, 3)
            back = torch.einsum("gnj,gnij->gni", f, frames.transpose(0, 1)[:, batch])
            result[K.FORCES] = (w[:, batch, None].to(dtype) * back).sum(0)
        return result

    def embed(self, graph):
        """The frame average of the wrapped model's ``embed``: an exactly invariant embedding."""
        positions = graph[K.POSITIONS].to(self.dtype)
        cell = graph[K.CELL].to(self.dtype)
        n_structures = cell.shape[0]
        frames, weights, _ = self.frames(positions, graph[K.BATCH], n_structures)
        z = self.inner.embed(self._replicated(graph, positions, cell, frames))
        z = z.view(frames.shape[1], n_structures, -1)
        return (weights.T[:, :, None].to(z.dtype) * z).sum(0)

    def extra_repr(self) -> str:
        return f"group={self.group}, degenerate_tol={self.degenerate_tol}, " \
               f"axial_frames={self.axial_frames}"
