"""Triton kernels of the channelwise CG convolution and of its derivatives.

The convolution is linear in each of x1 (the m1 side), x3 (the m3 side), sh and the weights,
so every derivative of ``Phi = sum coeff x3[i3,m3,c] x1[i1,m1,c] sh[e,m2] w[e,p,c]`` is one of
three contractions: to a node operand (gather, couple, scatter), to the weights, to the
harmonics. Each program owns one output row (m_out, p or m2) and walks only the table entries
of that row (the caller sorts the table by it, CSR-style), so it accumulates in registers and
writes, or atomically adds, once.

Table layout: ``idx (4 groupings, 4 columns, T)`` with columns (path, m1, m2, m3) and
groupings sorted by m3, m1, path and m2; ``coeff (4, T)``; row pointers ``ptr (4, R+1)``.
"""

import triton
import triton.language as tl


@triton.jit
def cg_nodes_kernel(
    x_ptr, sh_ptr, w_ptr, idx_ptr, coeff_ptr, ptr_ptr, gather_ptr, scatter_ptr, out_ptr,
    E, C, T, K_IN, K2, P, K_OUT, R1,
    GROUP: tl.constexpr, IN_COL: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[scatter_e, m_out, c] += sum_{entries of m_out} coeff x[gather_e, m_in, c] sh[e, m2]
    w[e, p, c]; m_out is program axis 2."""
    pid_e, pid_c, m_out = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_e = (pid_e * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    me, mc = offs_e < E, offs_c < C
    m2d = me[:, None] & mc[None, :]
    src = tl.load(gather_ptr + offs_e, mask=me, other=0)
    dst = tl.load(scatter_ptr + offs_e, mask=me, other=0)
    start = tl.load(ptr_ptr + GROUP * R1 + m_out)
    end = tl.load(ptr_ptr + GROUP * R1 + m_out + 1)
    table = idx_ptr + GROUP * 4 * T
    acc = tl.zeros((BLOCK_E, BLOCK_C), dtype=out_ptr.dtype.element_ty)
    for j in range(start, end):
        p = tl.load(table + j)
        m_in = tl.load(table + IN_COL * T + j)
        m2 = tl.load(table + 2 * T + j)
        cf = tl.load(coeff_ptr + GROUP * T + j)
        xv = tl.load(x_ptr + (src[:, None] * K_IN + m_in) * C + offs_c[None, :], mask=m2d,
                     other=0.0)
        wv = tl.load(w_ptr + (offs_e[:, None] * P + p) * C + offs_c[None, :], mask=m2d,
                     other=0.0)
        shv = tl.load(sh_ptr + offs_e * K2 + m2, mask=me, other=0.0)
        acc += xv * wv * (shv * cf)[:, None]
    if end > start:
        tl.atomic_add(out_ptr + (dst[:, None] * K_OUT + m_out) * C + offs_c[None, :], acc,
                      mask=m2d)


@triton.jit
def cg_weights_kernel(
    x1_ptr, x3_ptr, sh_ptr, idx_ptr, coeff_ptr, ptr_ptr, i1_ptr, i3_ptr, out_ptr,
    E, C, T, K1, K2, K3, P, R1,
    BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[e, p, c] = sum_{entries of path p} coeff x1[i1_e, m1, c] x3[i3_e, m3, c] sh[e, m2]."""
    pid_e, pid_c, p = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_e = (pid_e * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    me, mc = offs_e < E, offs_c < C
    m2d = me[:, None] & mc[None, :]
    i1 = tl.load(i1_ptr + offs_e, mask=me, other=0)
    i3 = tl.load(i3_ptr + offs_e, mask=me, other=0)
    start = tl.load(ptr_ptr + 2 * R1 + p)
    end = tl.load(ptr_ptr + 2 * R1 + p + 1)
    table = idx_ptr + 2 * 4 * T
    acc = tl.zeros((BLOCK_E, BLOCK_C), dtype=out_ptr.dtype.element_ty)
    for j in range(start, end):
        m1 = tl.load(table + T + j)
        m2 = tl.load(table + 2 * T + j)
        m3 = tl.load(table + 3 * T + j)
        cf = tl.load(coeff_ptr + 2 * T + j)
        a = tl.load(x1_ptr + (i1[:, None] * K1 + m1) * C + offs_c[None, :], mask=m2d, other=0.0)
        b = tl.load(x3_ptr + (i3[:, None] * K3 + m3) * C + offs_c[None, :], mask=m2d, other=0.0)
        shv = tl.load(sh_ptr + offs_e * K2 + m2, mask=me, other=0.0)
        acc += a * b * (shv * cf)[:, None]
    tl.store(out_ptr + (offs_e[:, None] * P + p) * C + offs_c[None, :], acc, mask=m2d)


@triton.jit
def cg_sh_kernel(
    x1_ptr, x3_ptr, w_ptr, idx_ptr, coeff_ptr, ptr_ptr, i1_ptr, i3_ptr, out_ptr,
    E, C, T, K1, K2, K3, P, R1,
    BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[e, m2] = sum_{entries of m2} coeff sum_c x1[i1_e, m1, c] x3[i3_e, m3, c] w[e, p, c]."""
    pid_e, m2 = tl.program_id(0), tl.program_id(1)
    offs_e = (pid_e * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    me = offs_e < E
    i1 = tl.load(i1_ptr + offs_e, mask=me, other=0)
    i3 = tl.load(i3_ptr + offs_e, mask=me, other=0)
    start = tl.load(ptr_ptr + 3 * R1 + m2)
    end = tl.load(ptr_ptr + 3 * R1 + m2 + 1)
    table = idx_ptr + 3 * 4 * T
    total = tl.zeros((BLOCK_E,), dtype=out_ptr.dtype.element_ty)
    for c0 in range(0, C, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)
        m2d = me[:, None] & (offs_c < C)[None, :]
        acc = tl.zeros((BLOCK_E, BLOCK_C), dtype=out_ptr.dtype.element_ty)
        for j in range(start, end):
            p = tl.load(table + j)
            m1 = tl.load(table + T + j)
            m3 = tl.load(table + 3 * T + j)
            cf = tl.load(coeff_ptr + 3 * T + j)
            a = tl.load(x1_ptr + (i1[:, None] * K1 + m1) * C + offs_c[None, :], mask=m2d,
                        other=0.0)
            b = tl.load(x3_ptr + (i3[:, None] * K3 + m3) * C + offs_c[None, :], mask=m2d,
                        other=0.0)
            wv = tl.load(w_ptr + (offs_e[:, None] * P + p) * C + offs_c[None, :], mask=m2d,
                         other=0.0)
            acc += a * b * wv * cf
        total += tl.sum(acc, axis=1)
    tl.store(out_ptr + offs_e * K2 + m2, total, mask=me)
