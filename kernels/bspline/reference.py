"""Pure-torch reference of the cubic B-spline radial functions: the oracle and the CPU path.

``R_o(r) = sum_k table[k, o] B_k(r)`` on uniform knots of spacing ``h = cutoff / num_knots``;
basis k starts at knot (k - 3) h. The three bases whose support crosses the cutoff are left
out (their table rows are zero padding), so every R_o is C^2 and exactly zero, with its first
two derivatives, from the cutoff on. The same math as ``mlip.nn.radial.CubicBSplineRadial``.
"""

from __future__ import annotations

import torch


def locate(r: torch.Tensor, cutoff: float, num_knots: int):
    """Interval index ``(E,)`` and the four active basis values ``(E, 4)`` at ``r``."""
    h = cutoff / num_knots
    x = (r / h).clamp(0.0, float(num_knots))
    i = torch.floor(x).clamp(max=num_knots - 1)
    t = x - i
    t2, t3 = t * t, t * t * t
    s = 1.0 - t
    # The four cubic B-spline pieces active on interval i, for bases i, i+1, i+2, i+3.
    local = torch.stack(
        [s * s * s / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6],
        dim=-1,
    )
    return i.long(), local


def bspline_radial(r: torch.Tensor, table: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``r (E,)``, ``table (num_knots, num_out)`` -> ``(E, num_out)``, zero from the cutoff on."""
    num_knots, num_out = table.shape
    idx, local = locate(r, float(cutoff), num_knots)
    # Padding rows for the three bases that would cross r_cut: their weights are zero.
    padded = torch.cat([table, table.new_zeros(3, num_out)], 0).to(r.dtype)
    rows = idx[..., None] + torch.arange(4, device=r.device)
    coeff = padded[rows]  # (E, 4, num_out)
    out = (local[..., None] * coeff).sum(-2)
    return torch.where((r < cutoff)[..., None], out, torch.zeros_like(out))
