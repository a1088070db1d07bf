"""torch.library ops over the CG-convolution Triton kernels, with autograd to any order.

The convolution is multilinear, so the derivative of each op (to a node operand, to the
weights, to the harmonics) is a call of the others with the roles of the operands swapped:
backward and double backward run on the same kernels.
"""

from __future__ import annotations

import torch
import triton
from torch.library import triton_op, wrap_triton

from .triton_kernels import cg_nodes_kernel, cg_sh_kernel, cg_weights_kernel

BLOCK_E = 32

# Groupings of the table (rows of ``idx``/``coeff``/``ptr``) and its columns.
BY_M3, BY_M1, BY_PATH, BY_M2 = range(4)
COL_PATH, COL_M1, COL_M2, COL_M3 = range(4)


def prepare_table(cg_table, sizes, dtype):
    """(path, m1, m2, m3, coeff) -> ``idx (4, 4, T)``, ``coeff (4, T)``, ``ptr (4, R+1)``:
    the table sorted by m3, m1, path and m2, with CSR row pointers for each order."""
    cols = torch.stack([c.long() for c in cg_table[:4]])  # (4, T)
    coeff = cg_table[4].to(dtype)
    rows = max(sizes) + 1
    idx, cf, ptr = [], [], []
    for key in (COL_M3, COL_M1, COL_PATH, COL_M2):
        order = torch.argsort(cols[key], stable=True)
        idx.append(cols[:, order])
        cf.append(coeff[order])
        counts = torch.bincount(cols[key], minlength=rows)
        ptr.append(torch.cat([counts.new_zeros(1), counts.cumsum(0)]))
    return torch.stack(idx).contiguous(), torch.stack(cf).contiguous(), torch.stack(ptr)


def _bc(C):
    return min(32, triton.next_power_of_2(C))


@triton_op("mlip::cg_nodes", mutates_args=())
def nodes(xin: torch.Tensor, sh: torch.Tensor, w: torch.Tensor, idx: torch.Tensor,
          coeff: torch.Tensor, ptr: torch.Tensor, gather: torch.Tensor, scatter: torch.Tensor,
          n_out: int, k_out: int, reverse: bool) -> torch.Tensor:
    """m1 side -> m3 side (``reverse=False``, the convolution) or m3 -> m1 (its transpose)."""
    xin, sh, w = xin.contiguous(), sh.contiguous(), w.contiguous()
    gather, scatter = gather.contiguous(), scatter.contiguous()
    E, C = sh.shape[0], xin.shape[-1]
    out = xin.new_zeros(n_out, k_out, C)
    bc = _bc(C)
    wrap_triton(cg_nodes_kernel)[(triton.cdiv(E, BLOCK_E), triton.cdiv(C, bc), k_out)](
        xin, sh, w, idx, coeff, ptr, gather, scatter, out,
        E, C, idx.shape[-1], xin.shape[1], sh.shape[1], w.shape[1], k_out, ptr.shape[1],
        GROUP=BY_M1 if reverse else BY_M3, IN_COL=COL_M3 if reverse else COL_M1,
        BLOCK_E=BLOCK_E, BLOCK_C=bc,
    )
    return out


@triton_op("mlip::cg_weights", mutates_args=())
def weights_grad(x1: torch.Tensor, x3: torch.Tensor, sh: torch.Tensor, idx: torch.Tensor,
                 coeff: torch.Tensor, ptr: torch.Tensor, i1: torch.Tensor, i3: torch.Tensor,
                 num_paths: int) -> torch.Tensor:
    """(E, P, C): the contraction of everything but the weights."""
    x1, x3, sh = x1.contiguous(), x3.contiguous(), sh.contiguous()
    i1, i3 = i1.contiguous(), i3.contiguous()
    E, C = sh.shape[0], x1.shape[-1]
    out = x1.new_empty(E, num_paths, C)
    bc = _bc(C)
    wrap_triton(cg_weights_kernel)[(triton.cdiv(E, BLOCK_E), triton.cdiv(C, bc), num_paths)](
        x1, x3, sh, idx, coeff, ptr, i1, i3, out,
        E, C, idx.shape[-1], x1.shape[1], sh.shape[1], x3.shape[1], num_paths, ptr.shape[1],
        BLOCK_E=BLOCK_E, BLOCK_C=bc,
    )
    return out


@triton_op("mlip::cg_sh", mutates_args=())
def sh_grad(x1: torch.Tensor, x3: torch.Tensor, w: torch.Tensor, idx: torch.Tensor,
            coeff: torch.Tensor, ptr: torch.Tensor, i1: torch.Tensor, i3: torch.Tensor,
            k2: int) -> torch.Tensor:
    """(E, K2): the contraction of everything but the harmonics."""
    x1, x3, w = x1.contiguous(), x3.contiguous(), w.contiguous()
    i1, i3 = i1.contiguous(), i3.contiguous()
    E, C = w.shape[0], x1.shape[-1]
    out = x1.new_empty(E, k2)
    wrap_triton(cg_sh_kernel)[(triton.cdiv(E, BLOCK_E), k2)](
        x1, x3, w, idx, coeff, ptr, i1, i3, out,
        E, C, idx.shape[-1], x1.shape[1], k2, x3.shape[1], w.shape[1], ptr.shape[1],
        BLOCK_E=BLOCK_E, BLOCK_C=_bc(C),
    )
    return out


# --- autograd: each derivative is another call of the same three ops --------------------------

def _nodes_setup(ctx, inputs, output):
    xin, sh, w, idx, coeff, ptr, gather, scatter, n_out, k_out, reverse = inputs
    ctx.save_for_backward(xin, sh, w, idx, coeff, ptr, gather, scatter)
    ctx.reverse = reverse


def _nodes_backward(ctx, go):
    xin, sh, w, idx, coeff, ptr, gather, scatter = ctx.saved_tensors
    need, table = ctx.needs_input_grad, (idx, coeff, ptr)
    # The m1-side operand and its index, and the m3-side ones.
    x1, i1, x3, i3 = (go, scatter, xin, gather) if ctx.reverse else (xin, gather, go, scatter)
    gx = gsh = gw = None
    if need[0]:
        gx = nodes(go, sh, w, *table, scatter, gather, xin.shape[0], xin.shape[1],
                   not ctx.reverse)
    if need[1]:
        gsh = sh_grad(x1, x3, w, *table, i1, i3, sh.shape[1])
    if need[2]:
        gw = weights_grad(x1, x3, sh, *table, i1, i3, w.shape[1])
    return gx, gsh, gw, None, None, None, None, None, None, None, None


def _weights_setup(ctx, inputs, output):
    x1, x3, sh, idx, coeff, ptr, i1, i3, num_paths = inputs
    ctx.save_for_backward(x1, x3, sh, idx, coeff, ptr, i1, i3)


def _weights_backward(ctx, gw):
    x1, x3, sh, idx, coeff, ptr, i1, i3 = ctx.saved_tensors
    need, table = ctx.needs_input_grad, (idx, coeff, ptr)
    g1 = g3 = gsh = None
    if need[0]:
        g1 = nodes(x3, sh, gw, *table, i3, i1, x1.shape[0], x1.shape[1], True)
    if need[1]:
        g3 = nodes(x1, sh, gw, *table, i1, i3, x3.shape[0], x3.shape[1], False)
    if need[2]:
        gsh = sh_grad(x1, x3, gw, *table, i1, i3, sh.shape[1])
    return g1, g3, gsh, None, None, None, None, None, None


def _sh_setup(ctx, inputs, output):
    x1, x3, w, idx, coeff, ptr, i1, i3, k2 = inputs
    ctx.save_for_backward(x1, x3, w, idx, coeff, ptr, i1, i3)


def _sh_backward(ctx, gs):
    x1, x3, w, idx, coeff, ptr, i1, i3 = ctx.saved_tensors
    need, table = ctx.needs_input_grad, (idx, coeff, ptr)
    g1 = g3 = gw = None
    if need[0]:
        g1 = nodes(x3, gs, w, *table, i3, i1, x1.shape[0], x1.shape[1], True)
    if need[1]:
        g3 = nodes(x1, gs, w, *table, i1, i3, x3.shape[0], x3.shape[1], False)
    if need[2]:
        gw = weights_grad(x1, x3, gs, *table, i1, i3, w.shape[1])
    return g1, g3, gw, None, None, None, None, None, None


# Shapes for tracing (torch.compile, export): the compiled graph holds the op opaquely, which
# also works where the launcher cannot take fake tensors (the CPU interpreter).
nodes.register_fake(lambda xin, sh, w, idx, coeff, ptr, gather, scatter, n_out, k_out, rev:
                    xin.new_empty(n_out, k_out, xin.shape[-1]))
weights_grad.register_fake(lambda x1, x3, sh, idx, coeff, ptr, i1, i3, num_paths:
                           x1.new_empty(sh.shape[0], num_paths, x1.shape[-1]))
sh_grad.register_fake(lambda x1, x3, w, idx, coeff, ptr, i1, i3, k2:
                      x1.new_empty(w.shape[0], k2))
nodes.register_autograd(_nodes_backward, setup_context=_nodes_setup)
weights_grad.register_autograd(_weights_backward, setup_context=_weights_setup)
sh_grad.register_autograd(_sh_backward, setup_context=_sh_setup)


def cg_conv_triton(x, sh, weights, cg_table, sender, receiver, k_out):
    """The Triton path of :func:`mlip.kernels.cg_conv.cg_conv`."""
    sizes = (x.shape[1], sh.shape[1], k_out, weights.shape[1])
    table = prepare_table(cg_table, sizes, x.dtype)
    return nodes(x, sh, weights, *table, sender, receiver, x.shape[0], k_out, False)
