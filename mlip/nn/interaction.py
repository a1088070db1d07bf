"""The interactions of the equivariant family (CG, Gaunt grid, Gaunt Fourier) and its layer.

Per layer: lift the node features to the convolution width, gather the sender's, take the
tensor product with the edge's spherical harmonics weighted by a radial function, sum into the
receiver, optionally take a many-body product, and update through the self-connection. The
interactions call one op each in :mod:`mlip.kernels`, which picks the backend (Triton on GPU,
torch on CPU, lean chunks at inference); nothing here chooses a backend.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..kernels.cg_conv import cg_conv
from ..kernels.gaunt_conv import gaunt_grid_conv
from .mixing import EquivariantLinear, Gate, GridMixing
from .product import CGPathProduct, SymmetricGridProduct
from .radial import BesselBasis, CubicBSplineRadial, PolynomialEnvelope
from .spherical import FromGrid, S2Grid, ToGrid
from .tensor_product import CGTensorProduct, GauntFourierProduct

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
    docs/notes/acac-training-history.md).
    """
    if norm not in MESSAGE_NORMS:
        raise ValueError(f"message_norm must be one of {MESSAGE_NORMS}, got {norm!r}")
    if norm == "integral":
        return 1.0
    return math.sqrt(4 * math.pi) if kind == "cg" else 4 * math.pi


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
        return self.weights(r, *self.parameters())

    def weights(self, r, *params):
        """``forward`` with the given parameters (``self.parameters()`` order): a pure function
        of its tensors, which the lean Gaunt-grid path recomputes per chunk of edges."""
        if self.kind == "mlp":
            w1, b1, w2, b2, w3, b3 = params
            h = nn.functional.silu(nn.functional.linear(self.basis(r), w1, b1))
            h = nn.functional.silu(nn.functional.linear(h, w2, b2))
            out = nn.functional.linear(h, w3, b3) * self.envelope(r)[:, None]
        else:
            out = self.spline(r, *params)
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
        if self.kind == "cg":
            # The op picks its path: the fused kernel on GPU, the blocked product on CPU.
            table = [getattr(self, f"table_{n}") for n in ("path", "m1", "m2", "m3")]
            table.append(self.table_coeff.to(x.dtype))
            out = cg_conv(x, sh, w, table, sender, receiver, x.shape[1], backend=self.backend,
                          blocks=self.tp.blocks())
            return out * self.gain
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
        # The radial net goes to the op as a function of its parameters, so that inference
        # (lean) recomputes it per edge chunk instead of keeping (E, L+1, C) for the forces.
        out = gaunt_grid_conv(x_grid, direction, r, grid_dirs, sender, receiver,
                              backend=self.backend, lean=not self.training,
                              radial_fn=self.radial.weights,
                              radial_params=tuple(self.radial.parameters()))
        return self.from_grid(out) * self.gain


def make_interaction(kind, lmax, channels, radial_kwargs, message_norm="component"):
    if kind not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {INTERACTIONS}, got {kind!r}")
    gain = message_gain(kind, message_norm)
    if kind == "gaunt-grid":
        return GauntGridInteraction(lmax, channels, radial_kwargs, gain)
    return EdgeProductInteraction(kind, lmax, channels, radial_kwargs, gain)


class Layer(nn.Module):
    """lift -> interaction -> (many-body product) -> self-connection, plus a linear skip."""

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
