"""The equivariant family: message passing in the spherical-channel layout, blocks by configuration.

Node features are ``(N, (L+1)^2, C_max)`` with ``channels[l]`` meaningful channels per degree
(the rest exactly zero); degree l has parity (-1)^l, like the spherical harmonics, so every
product keeps only paths with l1 + l2 + l3 even (the others would make pseudo-tensors).

Per layer: lift the node features to the convolution width, gather the sender's, take the
tensor product with the edge's spherical harmonics weighted by a radial function, sum into the
receiver, optionally take a many-body product, update through the self-connection, and read
out scalars. The energy is the sum of the read-outs of all layers (MACE-style).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data import keys as K
from ..kernels._dispatch import select_backend
from ..kernels.cg_conv import cg_conv
from ..kernels.gaunt_conv import edge_filter, gaunt_grid_conv
from ..nn.charge_spin import ElectronicEmbedding
from ..nn.mixing import EVAL_GRID_KIND, EquivariantLinear, Gate, GridMixing
from ..nn.product import CGPathProduct, SymmetricGridProduct
from ..nn.radial import BesselBasis, CubicBSplineRadial, PolynomialEnvelope
from ..nn.recompute import scatter_messages
from ..nn.spherical import FromGrid, S2Grid, ToGrid, spherical_harmonics
from ..nn.tensor_product import CGTensorProduct, GauntFourierProduct
from .base import Potential
from .registry import register_model, register_preset

INTERACTIONS = ("cg", "gaunt-grid", "gaunt-fourier")
MESSAGE_NORMS = ("component", "integral")
PRODUCTS = ("grid", "cg")
RADIALS = ("mlp", "spline")
SELF_CONNECTIONS = ("linear", "gate", "grid")


def message_gain(kind: str, norm: str) -> float:
    """The factor on an interaction's output that sets the scale of its messages.

    Our harmonics are orthonormal on the sphere ("integral"): each component is 1/sqrt(4 pi)
    of e3nn's "component" harmonics, which MACE and NequIP use so that unit-variance inputs
    give unit-variance messages. A CG product carries one harmonic factor (the edge's), the
    Gaunt product two (the edge's and the node function's on the sphere), so "component"
    restores sqrt(4 pi) and 4 pi. With "integral" (checkpoints before format 3) messages start
    10-20x smaller than the features they update, and training starts slower (measured in
    docs/benchmarks.md).
    """
    if norm not in MESSAGE_NORMS:
        raise ValueError(f"message_norm must be one of {MESSAGE_NORMS}, got {norm!r}")
    if norm == "integral":
        return 1.0
    return math.sqrt(4 * math.pi) if kind == "cg" else 4 * math.pi


def _per_l(channels, lmax) -> tuple[int, ...]:
    if isinstance(channels, int):
        return (channels,) * (lmax + 1)
    channels = tuple(int(c) for c in channels)
    if len(channels) != lmax + 1:
        raise ValueError(f"channels {channels} must give one count per degree 0..{lmax}")
    return channels


class RadialNet(nn.Module):
    """Edge length -> per-edge weights ``(E, num_weights, C)``: a Bessel MLP or a B-spline table."""

    def __init__(self, kind, cutoff, num_weights, channels, num_basis, num_knots, hidden):
        super().__init__()
        self.kind, self.shape = kind, (num_weights, channels)
        n_out = num_weights * channels
        if kind == "mlp":
            self.basis = BesselBasis(cutoff, num_basis)
            self.net = nn.Sequential(
                nn.Linear(num_basis, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                nn.Linear(hidden, n_out),
            )
            # The MLP's biases would survive at the cutoff; the envelope takes them to zero.
            self.envelope = PolynomialEnvelope(cutoff)
        elif kind == "spline":
            self.spline = CubicBSplineRadial(cutoff, n_out, num_knots, init_std=1.0)
        else:
            raise ValueError(f"radial must be one of {RADIALS}, got {kind!r}")

    def forward(self, r):
        if self.kind == "mlp":
            out = self.net(self.basis(r)) * self.envelope(r)[:, None]
        else:
            out = self.spline(r)
        return out.reshape(-1, *self.shape)


class EdgeProductInteraction(nn.Module):
    """Per-edge tensor product (CG or Gaunt-Fourier) of the sender's features with the filter
    ``R(|r_ij|) * Y(rhat_ij)``, summed into the receiver."""

    def __init__(self, kind, lmax, channels, radial_kwargs, gain=1.0):
        super().__init__()
        self.kind, self.lmax, self.gain = kind, lmax, gain
        self.backend = "auto"  # kernel backend; not a parameter, so never in the state_dict
        if kind == "cg":
            self.tp = CGTensorProduct(lmax, lmax, lmax, paths="even")
            num_weights = self.tp.num_paths
            for name, t in zip(("path", "m1", "m2", "m3", "coeff"), self.tp.coupling_table()):
                self.register_buffer(f"table_{name}", t, persistent=False)
        else:
            self.tp = GauntFourierProduct(lmax, lmax, lmax)
            num_weights = lmax + 1
        self.radial = RadialNet(num_weights=num_weights, channels=channels, **radial_kwargs)

    def forward(self, x, edge_vec, r, sh, sender, receiver):
        if sender.numel() == 0:  # MKL's FFT refuses empty batches
            return torch.zeros_like(x)
        w = self.radial(r)
        if self.kind == "cg" and select_backend("cg_conv", self.backend, x.device) != "torch":
            # The fused gather-product-scatter kernel (GPU); on the CPU the blocked product
            # below is faster than the kernel's reference and computes the same sums.
            table = [getattr(self, f"table_{n}") for n in ("path", "m1", "m2", "m3")]
            table.append(self.table_coeff.to(x.dtype))
            out = cg_conv(x, sh, w, table, sender, receiver, x.shape[1], backend=self.backend)
            return out * self.gain
        if self.kind == "cg":
            messages = self.tp(x[sender], sh[:, :, None], weights=w)
        else:
            messages = self.tp(x[sender], sh[:, :, None], weights2=w)
        return torch.zeros_like(x).index_add(0, receiver, messages) * self.gain


class GauntGridInteraction(nn.Module):
    """The Gaunt product on the S2 grid, with the projections moved to the nodes.

    ``from_grid`` is linear, so it commutes with the sum over neighbours: features go to the
    grid once per node, each edge only multiplies by its filter on the grid (computed from the
    edge direction by the addition theorem), and the sum returns to spherical harmonics once per
    receiver. Per edge this costs G*C multiplications instead of two (L+1)^2 x G projections.
    The grid is exact for degree 3*lmax, so the result equals the Gaunt product (even paths).
    """

    def __init__(self, lmax, channels, radial_kwargs, gain=1.0, backend="auto"):
        super().__init__()
        self.lmax, self.backend, self.gain = lmax, backend, gain
        grid = S2Grid(3 * lmax)
        self.to_grid, self.from_grid = ToGrid(lmax, grid), FromGrid(lmax, grid)
        self.register_buffer("grid_dirs", grid.directions, persistent=False)
        self.radial = RadialNet(num_weights=lmax + 1, channels=channels, **radial_kwargs)

    def forward(self, x, edge_vec, r, sh, sender, receiver):
        direction = edge_vec / r.clamp_min(1e-12)[:, None]
        x_grid, grid_dirs = self.to_grid(x), self.grid_dirs.to(x.dtype)
        if not self.training and select_backend("gaunt_grid_conv", self.backend,
                                                x.device) == "torch":
            # Inference: edge chunks, radial functions included, recomputed in the backward,
            # so no (E, G, C) or (E, L+1, C) tensor is kept for the force call
            # (mlip.nn.recompute); the same sums as the reference.
            names, params = zip(*self.radial.named_parameters())

            def message(x_sender, direction, r, grid_dirs, *params):
                radial = torch.func.functional_call(self.radial, dict(zip(names, params)), (r,))
                return x_sender * edge_filter(direction, radial, grid_dirs)

            out = scatter_messages(message, x_grid, (direction, r), (grid_dirs, *params),
                                   sender, receiver)
        else:
            out = gaunt_grid_conv(x_grid, direction, self.radial(r), grid_dirs, sender,
                                  receiver, backend=self.backend)
        return self.from_grid(out) * self.gain


def make_interaction(kind, lmax, channels, radial_kwargs, message_norm="component"):
    if kind not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {INTERACTIONS}, got {kind!r}")
    gain = message_gain(kind, message_norm)
    if kind == "gaunt-grid":
        return GauntGridInteraction(lmax, channels, radial_kwargs, gain)
    return EdgeProductInteraction(kind, lmax, channels, radial_kwargs, gain)


class Layer(nn.Module):
    def __init__(self, lmax, channels_in, channels, conv, hp):
        super().__init__()
        self.lift = EquivariantLinear(lmax, channels_in, conv)
        self.interaction = make_interaction(hp["interaction"], lmax, conv, hp["radial"],
                                            hp["message_norm"])
        self.product = None
        if hp["correlation"] > 1:
            product = SymmetricGridProduct if hp["product"] == "grid" else CGPathProduct
            self.product = product(
                lmax, conv, hp["correlation"],
                num_species=hp["num_species"] if hp["element_product"] else None)
        self.skip = EquivariantLinear(lmax, channels_in, channels)
        kind = hp["self_connection"]
        if kind == "linear":
            self.update = EquivariantLinear(lmax, conv, channels)
        elif kind == "gate":
            self.update = nn.Sequential(
                EquivariantLinear(lmax, conv, Gate.input_channels(channels)), Gate(lmax, channels)
            )
        elif kind == "grid":
            self.update = GridMixing(lmax, conv, channels, grid_resolution=hp["grid_resolution"],
                                     eval_grid_resolution=hp["eval_grid_resolution"],
                                     grid_kind=hp["grid_kind"],
                                     eval_grid_kind=hp["eval_grid_kind"])
        else:
            raise ValueError(f"self_connection must be one of {SELF_CONNECTIONS}, got {kind!r}")

    def forward(self, h, edge_vec, r, sh, sender, receiver, inv_avg, species):
        x = self.lift(h)
        m = self.interaction(x, edge_vec, r, sh, sender, receiver) * inv_avg
        if self.product is not None:
            m = self.product(m, species)
        return self.skip(h) + self.update(m)


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
        charge_spin: bool = False,
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
        self.channels = _per_l(channels, self.lmax)
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
        if charge_spin:
            self.electronic = ElectronicEmbedding(len(self.elements), self.channels[0], cutoff)
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
            h[:, 0, :] += self.electronic.node_features(graph, species, r, receiver, h.dtype)
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
