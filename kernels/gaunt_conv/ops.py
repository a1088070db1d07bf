"""torch.library ops over the Gaunt-grid Triton kernels, with autograd to any order.

The three ops (``conv``, ``radial``, ``reduce``; see triton_kernels.py) are the derivatives
of one functional, so the derivative of each is a call of the others, with the Legendre
derivative order ``k`` raised by one where the cosines are differentiated. Registering those
calls as the backward makes backward, double backward and beyond run on the same kernels,
and nothing of size (E, G, C) is ever stored. The cosines ``edge_dir @ grid_dirs.T`` (E, G)
are formed in torch, which carries their gradient back to the edge directions.
"""

from __future__ import annotations

import math

import torch
import triton
from torch.library import triton_op, wrap_triton

from .triton_kernels import gaunt_conv_kernel, gaunt_radial_kernel, gaunt_reduce_kernel

BLOCK_E, BLOCK_C = 32, 32


def _p_start(k: int) -> float:
    return float(math.prod(range(1, 2 * k, 2)))  # (2k-1)!! = P_k^(k)


def _blocks(C: int) -> int:
    return min(BLOCK_C, triton.next_power_of_2(C))


@triton_op("mlip::gaunt_conv", mutates_args=())
def conv(x: torch.Tensor, cos: torch.Tensor, radial: torch.Tensor, wc: torch.Tensor | None,
         gather: torch.Tensor, scatter: torch.Tensor, n_out: int, k: int) -> torch.Tensor:
    """(n_out, G, C): scatter of x[gather] times the k-th-derivative filter (times wc)."""
    x, cos, radial = x.contiguous(), cos.contiguous(), radial.contiguous()
    gather, scatter = gather.contiguous(), scatter.contiguous()
    wc_ = cos if wc is None else wc.contiguous()
    E, G = cos.shape
    C = x.shape[-1]
    out = x.new_zeros(n_out, G, C)
    bc = _blocks(C)
    grid = (triton.cdiv(E, BLOCK_E), triton.cdiv(C, bc), G)
    wrap_triton(gaunt_conv_kernel)[grid](
        x, cos, radial, wc_, gather, scatter, out, E, G, C,
        LMAX=radial.shape[1] - 1, DERIV=k, P_START=_p_start(k), HAS_WC=wc is not None,
        BLOCK_E=BLOCK_E, BLOCK_C=bc,
    )
    return out


@triton_op("mlip::gaunt_radial", mutates_args=())
def radial_grad(a: torch.Tensor, b: torch.Tensor, cos: torch.Tensor, wc: torch.Tensor | None,
                ia: torch.Tensor, ib: torch.Tensor, lmax: int, k: int) -> torch.Tensor:
    """(E, L+1, C): per-edge sum over the grid of a[ia] b[ib] (wc) P_l^(k) (2l+1)/(4pi)."""
    a, b, cos = a.contiguous(), b.contiguous(), cos.contiguous()
    ia, ib = ia.contiguous(), ib.contiguous()
    wc_ = cos if wc is None else wc.contiguous()
    E, G = cos.shape
    C = a.shape[-1]
    out = a.new_empty(E, lmax + 1, C)
    bc = _blocks(C)
    grid = (triton.cdiv(E, BLOCK_E), triton.cdiv(C, bc), lmax + 1)
    wrap_triton(gaunt_radial_kernel)[grid](
        a, b, cos, wc_, ia, ib, out, E, G, C,
        LMAX=lmax, DERIV=k, P_START=_p_start(k), HAS_WC=wc is not None,
        BLOCK_E=BLOCK_E, BLOCK_C=bc,
    )
    return out


@triton_op("mlip::gaunt_reduce", mutates_args=())
def reduce(a: torch.Tensor, b: torch.Tensor, cos: torch.Tensor, radial: torch.Tensor,
           ia: torch.Tensor, ib: torch.Tensor, k: int) -> torch.Tensor:
    """(E, G): per-edge sum over channels of a[ia] b[ib] times the k-th-derivative filter."""
    a, b, cos, radial = a.contiguous(), b.contiguous(), cos.contiguous(), radial.contiguous()
    ia, ib = ia.contiguous(), ib.contiguous()
    E, G = cos.shape
    C = a.shape[-1]
    out = cos.new_empty(E, G)
    grid = (triton.cdiv(E, BLOCK_E), G)
    wrap_triton(gaunt_reduce_kernel)[grid](
        a, b, cos, radial, ia, ib, out, E, G, C,
        LMAX=radial.shape[1] - 1, DERIV=k, P_START=_p_start(k),
        BLOCK_E=BLOCK_E, BLOCK_C=_blocks(C),
    )
    return out


def _times(t, wc):
    return t if wc is None else t * wc


# --- autograd: each derivative is another call of the same three ops --------------------------

def _conv_setup(ctx, inputs, output):
    x, cos, radial, wc, gather, scatter, n_out, k = inputs
    ctx.save_for_backward(x, cos, radial, wc, gather, scatter)
    ctx.k = k


def _conv_backward(ctx, go):
    x, cos, radial, wc, gather, scatter = ctx.saved_tensors
    k, need = ctx.k, ctx.needs_input_grad
    gx = gcos = gr = gwc = None
    if need[0]:
        gx = conv(go, cos, radial, wc, scatter, gather, x.shape[0], k)
    if need[1]:
        gcos = _times(reduce(x, go, cos, radial, gather, scatter, k + 1), wc)
    if need[2]:
        gr = radial_grad(x, go, cos, wc, gather, scatter, radial.shape[1] - 1, k)
    if need[3]:
        gwc = reduce(x, go, cos, radial, gather, scatter, k)
    return gx, gcos, gr, gwc, None, None, None, None


def _radial_setup(ctx, inputs, output):
    a, b, cos, wc, ia, ib, lmax, k = inputs
    ctx.save_for_backward(a, b, cos, wc, ia, ib)
    ctx.k = k


def _radial_backward(ctx, go):
    a, b, cos, wc, ia, ib = ctx.saved_tensors
    k, need = ctx.k, ctx.needs_input_grad
    ga = gb = gcos = gwc = None
    if need[0]:
        ga = conv(b, cos, go, wc, ib, ia, a.shape[0], k)
    if need[1]:
        gb = conv(a, cos, go, wc, ia, ib, b.shape[0], k)
    if need[2]:
        gcos = _times(reduce(a, b, cos, go, ia, ib, k + 1), wc)
    if need[3]:
        gwc = reduce(a, b, cos, go, ia, ib, k)
    return ga, gb, gcos, gwc, None, None, None, None


def _reduce_setup(ctx, inputs, output):
    a, b, cos, radial, ia, ib, k = inputs
    ctx.save_for_backward(a, b, cos, radial, ia, ib)
    ctx.k = k


def _reduce_backward(ctx, go):
    a, b, cos, radial, ia, ib = ctx.saved_tensors
    k, need = ctx.k, ctx.needs_input_grad
    ga = gb = gcos = gr = None
    if need[0]:
        ga = conv(b, cos, radial, go, ib, ia, a.shape[0], k)
    if need[1]:
        gb = conv(a, cos, radial, go, ia, ib, b.shape[0], k)
    if need[2]:
        gcos = reduce(a, b, cos, radial, ia, ib, k + 1) * go
    if need[3]:
        gr = radial_grad(a, b, cos, go, ia, ib, radial.shape[1] - 1, k)
    return ga, gb, gcos, gr, None, None, None


# Shapes for tracing (torch.compile, export): the compiled graph holds the op opaquely, which
# also works where the launcher cannot take fake tensors (the CPU interpreter).
conv.register_fake(lambda x, cos, radial, wc, gather, scatter, n_out, k:
                   x.new_empty(n_out, cos.shape[1], x.shape[-1]))
radial_grad.register_fake(lambda a, b, cos, wc, ia, ib, lmax, k:
                          a.new_empty(cos.shape[0], lmax + 1, a.shape[-1]))
reduce.register_fake(lambda a, b, cos, radial, ia, ib, k: cos.new_empty(cos.shape))
conv.register_autograd(_conv_backward, setup_context=_conv_setup)
radial_grad.register_autograd(_radial_backward, setup_context=_radial_setup)
reduce.register_autograd(_reduce_backward, setup_context=_reduce_setup)


def gaunt_grid_conv_triton(x_grid, edge_dir, radial, grid_dirs, sender, receiver):
    """The Triton path of :func:`mlip.kernels.gaunt_conv.gaunt_grid_conv`."""
    cos = edge_dir @ grid_dirs.transpose(0, 1).to(edge_dir.dtype)
    return conv(x_grid, cos, radial, None, sender, receiver, x_grid.shape[0], 0)
