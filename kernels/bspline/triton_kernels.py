"""Triton kernels of the cubic B-spline radial functions and their derivatives in r.

``DERIV = k`` evaluates the k-th derivative in r, ``h^-k sum_j B_j^(k)(t) table[i + j]``; the
derivative in the table is the same basis scattered into the table's rows. The clamp and the
cutoff of the reference are reproduced as masks, so the derivatives agree with its autograd.
"""

import triton
import triton.language as tl


@triton.jit
def _pieces(t, DERIV: tl.constexpr):
    """The k-th derivatives in t of the four cubic pieces active on an interval."""
    s = 1.0 - t
    if DERIV == 0:
        t2 = t * t
        t3 = t2 * t
        b0 = s * s * s / 6
        b1 = (3 * t3 - 6 * t2 + 4) / 6
        b2 = (-3 * t3 + 3 * t2 + 3 * t + 1) / 6
        b3 = t3 / 6
    elif DERIV == 1:
        b0 = -0.5 * s * s
        b1 = 1.5 * t * t - 2 * t
        b2 = -1.5 * t * t + t + 0.5
        b3 = 0.5 * t * t
    elif DERIV == 2:
        b0 = s
        b1 = 3 * t - 2
        b2 = 1 - 3 * t
        b3 = t
    elif DERIV == 3:
        b0 = t * 0 - 1
        b1 = t * 0 + 3
        b2 = t * 0 - 3
        b3 = t * 0 + 1
    else:
        b0 = t * 0
        b1 = t * 0
        b2 = t * 0
        b3 = t * 0
    return b0, b1, b2, b3


@triton.jit
def _locate(x_ptr, scale_ptr, offs_e, me, K):
    """Interval index, local coordinate and the factor h^-k, zero where the reference's clamp
    or cutoff stops the value or its gradient (``x = r / h`` and the factor come from torch,
    so that float64 stays exact: Triton passes float scalars as float32)."""
    xr = tl.load(x_ptr + offs_e, mask=me, other=0.0)
    scale = tl.load(scale_ptr + offs_e, mask=me, other=0.0)
    x = tl.minimum(tl.maximum(xr, 0.0), K * 1.0)
    i = tl.minimum(tl.floor(x), K - 1.0)
    return i.to(tl.int64), x - i, scale


@triton.jit
def bspline_kernel(x_ptr, scale_ptr, table_ptr, out_ptr, E, K, O,
                   DERIV: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_O: tl.constexpr):
    """out[e, o] = h^-k sum_j B_j^(k)(t_e) table[i_e + j, o] (rows past the table are zero)."""
    offs_e = (tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    me, mo = offs_e < E, offs_o < O
    i, t, scale = _locate(x_ptr, scale_ptr, offs_e, me, K)
    b0, b1, b2, b3 = _pieces(t, DERIV)
    m2 = me[:, None] & mo[None, :]
    base = table_ptr + offs_o[None, :]
    w0 = tl.load(base + i[:, None] * O, mask=m2 & (i < K)[:, None], other=0.0)
    w1 = tl.load(base + (i + 1)[:, None] * O, mask=m2 & (i + 1 < K)[:, None], other=0.0)
    w2 = tl.load(base + (i + 2)[:, None] * O, mask=m2 & (i + 2 < K)[:, None], other=0.0)
    w3 = tl.load(base + (i + 3)[:, None] * O, mask=m2 & (i + 3 < K)[:, None], other=0.0)
    out = b0[:, None] * w0 + b1[:, None] * w1 + b2[:, None] * w2 + b3[:, None] * w3
    tl.store(out_ptr + offs_e[:, None] * O + offs_o[None, :], out * scale[:, None], mask=m2)


@triton.jit
def bspline_table_kernel(x_ptr, scale_ptr, go_ptr, out_ptr, E, K, O,
                         DERIV: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_O: tl.constexpr):
    """out[i_e + j, o] += h^-k B_j^(k)(t_e) go[e, o]: the transpose of ``bspline_kernel``."""
    offs_e = (tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    me, mo = offs_e < E, offs_o < O
    i, t, scale = _locate(x_ptr, scale_ptr, offs_e, me, K)
    b0, b1, b2, b3 = _pieces(t, DERIV)
    m2 = me[:, None] & mo[None, :]
    go = tl.load(go_ptr + offs_e[:, None] * O + offs_o[None, :], mask=m2, other=0.0)
    go = go * scale[:, None]
    base = out_ptr + offs_o[None, :]
    tl.atomic_add(base + i[:, None] * O, b0[:, None] * go, mask=m2 & (i < K)[:, None])
    tl.atomic_add(base + (i + 1)[:, None] * O, b1[:, None] * go, mask=m2 & (i + 1 < K)[:, None])
    tl.atomic_add(base + (i + 2)[:, None] * O, b2[:, None] * go, mask=m2 & (i + 2 < K)[:, None])
    tl.atomic_add(base + (i + 3)[:, None] * O, b3[:, None] * go, mask=m2 & (i + 3 < K)[:, None])
