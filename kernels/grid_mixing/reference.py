"""Pure-torch reference of spherical-grid mixing: oracle and CPU path.

Sample every channel's band-limited function on an S2 grid, apply a 2-layer channel MLP with
SiLU at every grid point, and project back to spherical harmonics:

    u = to_grid @ x,   v = silu(u w1 + b1) w2 + b2,   out = from_grid @ v

The pointwise nonlinearity makes the output band-unlimited, so equivariance is approximate and
improves with the grid's resolution (measured where GridMixing is documented).
"""

from __future__ import annotations

import torch


def grid_mlp(x, to_grid, from_grid, w1, b1, w2, b2):
    """``x (N, K, C)``, ``to_grid (G, K)``, ``from_grid (K, G)``, ``w1 (C, H)``, ``b1 (H,)``,
    ``w2 (H, C_out)``, ``b2 (C_out,)`` -> ``(N, K, C_out)``."""
    u = torch.einsum("gk,nkc->ngc", to_grid.to(x.dtype), x)
    h = torch.nn.functional.silu(u @ w1 + b1)
    return torch.einsum("kg,ngo->nko", from_grid.to(x.dtype), h @ w2 + b2)


def grid_mlp_backward(go, x, to_grid, from_grid, w1, b1, w2, b2):
    """Gradients of ``grid_mlp`` for the upstream gradient ``go``, written out in torch ops
    that autograd can differentiate again (the Triton op's backward and double backward)."""
    T, F = to_grid.to(x.dtype), from_grid.to(x.dtype)
    u = torch.einsum("gk,nkc->ngc", T, x)
    a = u @ w1 + b1
    sig = torch.sigmoid(a)
    h = a * sig
    gv = torch.einsum("kg,nko->ngo", F, go)
    ga = (gv @ w2.transpose(0, 1)) * (sig * (1 + a * (1 - sig)))
    gu = ga @ w1.transpose(0, 1)
    return {
        "x": torch.einsum("gk,ngc->nkc", T, gu),
        "to_grid": torch.einsum("ngc,nkc->gk", gu, x),
        "from_grid": torch.einsum("nko,ngo->kg", go, h @ w2 + b2),
        "w1": torch.einsum("ngc,ngh->ch", u, ga),
        "b1": ga.sum((0, 1)),
        "w2": torch.einsum("ngh,ngo->ho", h, gv),
        "b2": gv.sum((0, 1)),
    }
