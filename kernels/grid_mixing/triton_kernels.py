"""Triton kernel of spherical-grid mixing: projection, channel MLP, projection back, fused.

One program per node: the grid values (G, C), the hidden layer (G, H) and the MLP output
(G, C_out) stay in registers; only x and the result touch global memory. Every dimension is
padded to a power of two of at least 16 (``tl.dot``'s minimum); padded grid points have zero
projection weights in both directions, so they contribute nothing.
"""

import triton
import triton.language as tl


@triton.jit
def _load2d(ptr, rows, cols, n_rows, n_cols, stride):
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    return tl.load(ptr + rows[:, None] * stride + cols[None, :], mask=mask, other=0.0)


@triton.jit
def grid_mlp_kernel(
    x_ptr, t_ptr, f_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, out_ptr,
    K, G, C, H, O,
    BK: tl.constexpr, BG: tl.constexpr, BC: tl.constexpr, BH: tl.constexpr, BO: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    rk, rg = tl.arange(0, BK), tl.arange(0, BG)
    rc, rh, ro = tl.arange(0, BC), tl.arange(0, BH), tl.arange(0, BO)
    x = _load2d(x_ptr + n * K * C, rk, rc, K, C, C)  # (BK, BC)
    t = _load2d(t_ptr, rg, rk, G, K, K)  # (BG, BK)
    u = tl.dot(t, x, input_precision="ieee")  # (BG, BC): the node on the grid
    w1 = _load2d(w1_ptr, rc, rh, C, H, H)
    b1 = tl.load(b1_ptr + rh, mask=rh < H, other=0.0)
    a = tl.dot(u, w1, input_precision="ieee") + b1[None, :]
    h = a / (1.0 + tl.exp(-a))  # SiLU, in the input dtype (float64 too)
    w2 = _load2d(w2_ptr, rh, ro, H, O, O)
    b2 = tl.load(b2_ptr + ro, mask=ro < O, other=0.0)
    v = tl.dot(h, w2, input_precision="ieee") + b2[None, :]  # (BG, BO)
    f = _load2d(f_ptr, rk, rg, K, G, G)  # (BK, BG); zero on padded grid points
    out = tl.dot(f, v, input_precision="ieee")
    mask = (rk[:, None] < K) & (ro[None, :] < O)
    tl.store(out_ptr + n * K * O + rk[:, None] * O + ro[None, :], out, mask=mask)
