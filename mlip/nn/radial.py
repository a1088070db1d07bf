"""Radial functions of the edge length: envelopes, Bessel basis, learnable cubic B-splines.

All are smooth at the cutoff, so energies and forces go continuously to zero as a neighbour
leaves it, and all are twice differentiable (force training differentiates twice).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..kernels.bspline import bspline_radial
from ..kernels.bspline.reference import locate


class PolynomialEnvelope(nn.Module):
    """u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = r / r_cut.

    The DimeNet envelope: u(1) = u'(1) = u''(1) = 0, and u = 0 past r_cut.
    """

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff, self.p = float(cutoff), int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p, x = self.p, r / self.cutoff
        u = (
            1.0
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        )
        return torch.where(x < 1.0, u, torch.zeros_like(u))

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, p={self.p}"


class BesselBasis(nn.Module):
    """sqrt(2/r_c) sin(n pi r / r_c) / r times a polynomial envelope (the NequIP basis).

    Output ``(E, num_basis)``. The frequencies are buffers, not parameters, so a model's
    state_dict does not depend on whether they are trained elsewhere.
    """

    def __init__(self, cutoff: float, num_basis: int = 8, envelope_p: int = 6):
        super().__init__()
        self.cutoff, self.num_basis = float(cutoff), int(num_basis)
        self.register_buffer(
            "freq", torch.arange(1, num_basis + 1, dtype=torch.float64) * math.pi / cutoff
        )
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r[..., None]
        # sin(k r)/r is smooth at r -> 0 (limit k); clamp only guards the division.
        safe = r.clamp_min(1e-9)
        basis = math.sqrt(2.0 / self.cutoff) * torch.sin(self.freq.to(r.dtype) * safe) / safe
        return basis * self.envelope(r)


class CubicBSplineRadial(nn.Module):
    """Learnable radial functions R_c(r) = sum_k w_kc B_k(r) on uniform knots over [0, r_cut].

    The Facet radial function: a table lookup instead of an MLP. The cardinal cubic B-splines
    are C^2, and the three basis functions whose support crosses r_cut are left out, so each
    R_c is C^2 everywhere and exactly zero, with its first two derivatives, from r_cut on.
    Output ``(E, num_out)``.
    """

    def __init__(self, cutoff: float, num_out: int, num_knots: int = 16, init_std: float = 1.0):
        super().__init__()
        self.backend = "auto"  # kernel backend; not a parameter, so never in the state_dict
        if num_knots < 2:
            raise ValueError("a cubic B-spline radial function needs at least 2 knot intervals")
        self.cutoff, self.num_knots, self.num_out = float(cutoff), int(num_knots), int(num_out)
        self.h = self.cutoff / self.num_knots
        # Basis k starts at knot (k - 3) h; k = 0 .. num_knots - 1 vanish before r_cut.
        self.weight = nn.Parameter(torch.randn(num_knots, num_out) * init_std)

    def basis(self, r: torch.Tensor) -> torch.Tensor:
        """B-spline basis values ``(E, num_knots)`` (dense, for tests and plots)."""
        idx, local = locate(r, self.cutoff, self.num_knots)
        full = torch.zeros(*r.shape, self.num_knots + 3, dtype=r.dtype, device=r.device)
        full = full.scatter(-1, idx[..., None] + torch.arange(4, device=r.device), local)
        return full[..., : self.num_knots]

    def forward(self, r: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``R(r)``, with ``weight`` in place of the parameter when given (a pure function of
        its tensors, for recomputation)."""
        # mlip.kernels.bspline holds this math (torch reference and Triton kernel); the
        # padding rows for the three bases that would cross r_cut are added there.
        weight = self.weight if weight is None else weight
        return bspline_radial(r, weight.to(r.dtype), self.cutoff, backend=self.backend)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, num_knots={self.num_knots}, num_out={self.num_out}"
