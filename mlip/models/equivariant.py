"""The equivariant family: message passing in the spherical-channel layout, blocks by configuration.

Node features are ``(N, (L+1)^2, C_max)`` with ``channels[l]`` meaningful channels per degree
(the rest exactly zero); degree l has parity (-1)^l, like the spherical harmonics, so every
product keeps only paths with l1 + l2 + l3 even (the others would make pseudo-tensors).

The layers (``mlip.nn.interaction``) pass messages and update the features; each layer's
scalars are read out, and the energy is the sum of the read-outs of all layers (MACE-style).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import keys as K
from ..nn.charge_spin import build_electronic
from ..nn.interaction import (
    INTERACTIONS,
    MESSAGE_NORMS,
    PRODUCTS,
    RADIALS,
    SELF_CONNECTIONS,
    EdgeProductInteraction,
    Layer,
)
from ..nn.mixing import EVAL_GRID_KIND, per_degree
from ..nn.spherical import spherical_harmonics
from .base import Potential
from .registry import register_model, register_preset


@register_model("equivariant")
class EquivariantPotential(Potential):
    """E(3)-equivariant message passing with swappable interaction, radial and self-connection."""

    def __init__(
        self,
        cutoff: float = 5.0,
        elements=(1, 6, 7, 8),
        dtype="float64",
        lmax: int = 2,
        channels=64,
        conv_channels: int | None = None,
        num_layers: int = 2,
        interaction: str = "gaunt-grid",
        radial: str = "spline",
        self_connection: str = "gate",
        correlation: int = 1,
        element_product: bool = False,
        product: str = "grid",
        num_basis: int = 8,
        num_knots: int = 16,
        radial_hidden: int = 64,
        readout_hidden: int = 16,
        grid_resolution: int | None = None,
        eval_grid_resolution: int | None = None,
        grid_kind: str = "gauss",
        eval_grid_kind: str | None = None,
        avg_num_neighbors: float = 10.0,
        message_norm: str = "component",
        pair_repulsion: bool = False,
        charge_spin: bool | str = False,
    ):
        super().__init__(cutoff, list(elements), dtype, pair_repulsion)
        for key, value, allowed in [("interaction", interaction, INTERACTIONS),
                                    ("message_norm", message_norm, MESSAGE_NORMS),
                                    ("product", product, PRODUCTS),
                                    ("radial", radial, RADIALS),
                                    ("self_connection", self_connection, SELF_CONNECTIONS)]:
            if value not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
        if element_product and int(correlation) < 2:
            raise ValueError("element_product weights the many-body product: it needs "
                             f"correlation >= 2, got {correlation}")
        if product != "grid" and int(correlation) < 2:
            raise ValueError(f"product {product!r} is the many-body product: it needs "
                             f"correlation >= 2, got {correlation}")
        # Checkpoints before format 4 evaluated grid mixing on Gauss grids (the registry says
        # so when it loads them); new models on Lebedev rules, saved resolved.
        eval_grid_kind = eval_grid_kind or EVAL_GRID_KIND
        self.resolved_defaults = {"message_norm": message_norm, "eval_grid_kind": eval_grid_kind}
        self.lmax = int(lmax)
        self.channels = per_degree(channels, self.lmax)
        conv = int(conv_channels or max(self.channels))
        hp = {
            "interaction": interaction, "self_connection": self_connection,
            "correlation": int(correlation), "grid_resolution": grid_resolution,
            "element_product": bool(element_product), "product": product,
            "num_species": len(self.elements),
            "eval_grid_resolution": eval_grid_resolution, "message_norm": message_norm,
            "grid_kind": grid_kind, "eval_grid_kind": eval_grid_kind,
            "radial": {"kind": radial, "cutoff": cutoff, "num_basis": num_basis,
                       "num_knots": num_knots, "hidden": radial_hidden},
        }
        self.embedding = nn.Embedding(len(self.elements), self.channels[0])
        self.electronic = build_electronic(
            charge_spin, len(self.elements), self.channels[0], cutoff)
        scalars_only = (self.channels[0],) + (0,) * self.lmax
        self.layers = nn.ModuleList(
            Layer(self.lmax, scalars_only if t == 0 else self.channels, self.channels, conv, hp)
            for t in range(num_layers)
        )
        c0 = self.channels[0]
        self.readouts = nn.ModuleList(nn.Linear(c0, 1, bias=False) for _ in range(num_layers - 1))
        self.readouts.append(
            nn.Sequential(nn.Linear(c0, readout_hidden), nn.SiLU(), nn.Linear(readout_hidden, 1))
        )
        self.register_buffer("inv_avg_num_neighbors", torch.tensor(1.0 / float(avg_num_neighbors)))

    def atomic_output(self, graph, edge_vec):
        sender, receiver = graph[K.EDGE_INDEX]
        n = graph[K.ATOMIC_NUMBERS].shape[0]
        r = torch.linalg.norm(edge_vec, dim=-1)
        # Only the per-edge products read the harmonics; the Gaunt grid builds its filter
        # from the direction, and (E, (L+1)^2) with its recursion is not free at 10^5 atoms.
        sh = (spherical_harmonics(self.lmax, edge_vec)
              if any(isinstance(layer.interaction, EdgeProductInteraction)
                     for layer in self.layers) else None)
        h = edge_vec.new_zeros(n, (self.lmax + 1) ** 2, self.channels[0])
        species = self.species(graph)
        h[:, 0, :] = self.embedding(species).to(edge_vec.dtype)
        if self.electronic is not None:  # scalars: charge and spin cannot break equivariance
            h[:, 0, :] += self.electronic.node_features(
                graph, species, r, sender, receiver, h.dtype)
        out = edge_vec.new_zeros(n)
        inv_avg = self.inv_avg_num_neighbors.to(h.dtype)
        for layer, readout in zip(self.layers, self.readouts):
            h = layer(h, edge_vec, r, sh, sender, receiver, inv_avg, species)
            out = out + readout(h[:, 0, : self.channels[0]]).squeeze(-1)
        return out


register_preset(
    "nequip-like", "equivariant", interaction="cg", radial="mlp", self_connection="gate",
    lmax=2, channels=32, num_layers=3,
)
register_preset(
    "facet-s", "equivariant", cutoff=5.0, interaction="gaunt-grid", radial="spline",
    self_connection="grid", lmax=2, channels=(128, 64, 32), conv_channels=64, num_layers=2,
)
register_preset(
    "gaunt", "equivariant", interaction="gaunt-grid", radial="spline", self_connection="gate",
    lmax=4, channels=64, num_layers=2, correlation=2,
)
# The molecules recipe (docs/presets.md): facet-s with MACE's many-body product (a weight per
# coupling path, channel, body order and element, correlation 3), Bessel-MLP radial functions
# and a ZBL wall; 9.55 meV/Å on acac test_MD_300K in 2 hours of this project's 2-core CPU.
register_preset(
    "facet-acc", "equivariant", cutoff=5.0, interaction="gaunt-grid", radial="mlp",
    self_connection="grid", lmax=2, channels=(128, 64, 32), conv_channels=64, num_layers=2,
    correlation=3, element_product=True, product="cg", pair_repulsion=True,
)
