"""torch.library ops over the B-spline Triton kernels, with autograd to any order.

``spline(r, table, k)`` is the k-th derivative in r; ``table_grad(r, go, k)`` its transpose
in the table. The derivative of each is a call of the two with k raised where r is
differentiated, so backward and double backward run on the same kernels.
"""

from __future__ import annotations

import torch
import triton
from torch.library import triton_op, wrap_triton

from .triton_kernels import bspline_kernel, bspline_table_kernel

BLOCK_E = 64


def _prepare(r: torch.Tensor, cutoff: float, num_knots: int, k: int):
    """``r / h`` exactly as the reference computes it, and the per-edge factor h^-k with the
    reference's masks: zero from the cutoff on and, for derivatives, where the clamp is active."""
    h = cutoff / num_knots
    xr = (r / h).contiguous()
    keep = r < cutoff
    if k > 0:
        keep = keep & (xr >= 0) & (xr <= num_knots)
    return xr, (torch.full_like(r, h ** (-k)) * keep).contiguous()


def _grid(E, O):
    bo = min(32, triton.next_power_of_2(O))
    return (triton.cdiv(E, BLOCK_E), triton.cdiv(O, bo)), bo


@triton_op("mlip::bspline", mutates_args=())
def spline(r: torch.Tensor, table: torch.Tensor, cutoff: float, k: int) -> torch.Tensor:
    """(E, num_out): the k-th r-derivative of the spline with coefficients ``table``."""
    table = table.contiguous()
    K, O = table.shape
    xr, scale = _prepare(r, cutoff, K, k)
    out = r.new_empty(r.shape[0], O)
    grid, bo = _grid(r.shape[0], O)
    wrap_triton(bspline_kernel)[grid](xr, scale, table, out, r.shape[0], K, O, DERIV=k,
                                      BLOCK_E=BLOCK_E, BLOCK_O=bo)
    return out


@triton_op("mlip::bspline_table_grad", mutates_args=())
def table_grad(r: torch.Tensor, go: torch.Tensor, cutoff: float, num_knots: int,
               k: int) -> torch.Tensor:
    """(num_knots, num_out): sum over edges of go[e] times the k-th-derivative basis at r_e."""
    go = go.contiguous()
    O = go.shape[1]
    xr, scale = _prepare(r, cutoff, num_knots, k)
    out = go.new_zeros(num_knots, O)
    grid, bo = _grid(r.shape[0], O)
    wrap_triton(bspline_table_kernel)[grid](xr, scale, go, out, r.shape[0], num_knots, O,
                                            DERIV=k, BLOCK_E=BLOCK_E, BLOCK_O=bo)
    return out


def _spline_setup(ctx, inputs, output):
    r, table, cutoff, k = inputs
    ctx.save_for_backward(r, table)
    ctx.cutoff, ctx.k = cutoff, k


def _spline_backward(ctx, go):
    r, table = ctx.saved_tensors
    gr = gt = None
    if ctx.needs_input_grad[0]:
        gr = (spline(r, table, ctx.cutoff, ctx.k + 1) * go).sum(-1)
    if ctx.needs_input_grad[1]:
        gt = table_grad(r, go, ctx.cutoff, table.shape[0], ctx.k)
    return gr, gt, None, None


def _table_setup(ctx, inputs, output):
    r, go, cutoff, num_knots, k = inputs
    ctx.save_for_backward(r, go)
    ctx.cutoff, ctx.k = cutoff, k


def _table_backward(ctx, gt):
    r, go = ctx.saved_tensors
    gr = ggo = None
    if ctx.needs_input_grad[0]:
        gr = (spline(r, gt, ctx.cutoff, ctx.k + 1) * go).sum(-1)
    if ctx.needs_input_grad[1]:
        ggo = spline(r, gt, ctx.cutoff, ctx.k)
    return gr, ggo, None, None, None


# Shapes for tracing (torch.compile, export): the compiled graph holds the op opaquely, which
# also works where the launcher cannot take fake tensors (the CPU interpreter).
spline.register_fake(lambda r, table, cutoff, k: r.new_empty(r.shape[0], table.shape[1]))
table_grad.register_fake(lambda r, go, cutoff, num_knots, k:
                         go.new_empty(num_knots, go.shape[1]))
spline.register_autograd(_spline_backward, setup_context=_spline_setup)
table_grad.register_autograd(_table_backward, setup_context=_table_setup)


def bspline_radial_triton(r, table, cutoff):
    """The Triton path of :func:`mlip.kernels.bspline.bspline_radial`."""
    return spline(r.contiguous(), table.to(r.dtype), float(cutoff), 0)
