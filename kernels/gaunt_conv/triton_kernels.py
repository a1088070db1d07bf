"""Triton kernels of the Gaunt-grid convolution and of all its derivatives.

Every quantity is a partial derivative of one functional,

    Phi = sum_{e,g,c} a[ia_e,g,c] b[ib_e,g,c] wc[e,g] sum_l R[e,l,c] (2l+1)/(4pi) P_l^(k)(cos[e,g]),

with P_l^(k) the k-th derivative of the Legendre polynomial. Three kernels evaluate its
derivatives w.r.t. a node operand (``conv``: gather, filter, scatter), the per-edge weights
(``radial``) and the cosines (``reduce``). The filter lives in registers, never in memory.
"""

import triton
import triton.language as tl

_INV_4PI = 0.07957747154594767


@triton.jit
def _legendre_step(cos, p1, p2, l: tl.constexpr, DERIV: tl.constexpr, P_START: tl.constexpr):
    """P_l^(k) from P_{l-1}^(k) (p1) and P_{l-2}^(k) (p2):
    (l-k) P_l^(k) = (2l-1) x P_{l-1}^(k) - (l-1+k) P_{l-2}^(k), P_k^(k) = (2k-1)!!, 0 below."""
    if l < DERIV:
        p = cos * 0.0
    elif l == DERIV:
        p = cos * 0.0 + P_START
    else:
        p = ((2 * l - 1) * cos * p1 - (l - 1 + DERIV) * p2) / (l - DERIV)
    return p


@triton.jit
def gaunt_conv_kernel(
    x_ptr, cos_ptr, r_ptr, wc_ptr, gather_ptr, scatter_ptr, out_ptr,
    E, G, C,
    LMAX: tl.constexpr, DERIV: tl.constexpr, P_START: tl.constexpr, HAS_WC: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[scatter_e, g, c] += x[gather_e, g, c] * wc[e,g] * filter_e(g, c); one g per program."""
    pid_e, pid_c, g = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_e = (pid_e * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    me, mc = offs_e < E, offs_c < C
    m2 = me[:, None] & mc[None, :]
    src = tl.load(gather_ptr + offs_e, mask=me, other=0)
    dst = tl.load(scatter_ptr + offs_e, mask=me, other=0)
    cos = tl.load(cos_ptr + offs_e * G + g, mask=me, other=0.0)
    filt = tl.zeros((BLOCK_E, BLOCK_C), dtype=cos.dtype)
    p1 = cos * 0.0
    p2 = cos * 0.0
    for l in tl.static_range(LMAX + 1):
        p = _legendre_step(cos, p1, p2, l, DERIV, P_START)
        w = tl.load(r_ptr + (offs_e[:, None] * (LMAX + 1) + l) * C + offs_c[None, :], mask=m2,
                    other=0.0)
        filt += w * (p * ((2 * l + 1) * _INV_4PI))[:, None]
        p2 = p1
        p1 = p
    if HAS_WC:
        filt = filt * tl.load(wc_ptr + offs_e * G + g, mask=me, other=0.0)[:, None]
    xv = tl.load(x_ptr + (src[:, None] * G + g) * C + offs_c[None, :], mask=m2, other=0.0)
    tl.atomic_add(out_ptr + (dst[:, None] * G + g) * C + offs_c[None, :], xv * filt, mask=m2)


@triton.jit
def gaunt_radial_kernel(
    a_ptr, b_ptr, cos_ptr, wc_ptr, ia_ptr, ib_ptr, out_ptr,
    E, G, C,
    LMAX: tl.constexpr, DERIV: tl.constexpr, P_START: tl.constexpr, HAS_WC: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[e, l, c] = sum_g wc[e,g] (2l+1)/(4pi) P_l^(k)(cos[e,g]) a[ia_e,g,c] b[ib_e,g,c];
    one degree l per program (axis 2), so each program holds a single accumulator."""
    pid_e, pid_c, lsel = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_e = (pid_e * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    me, mc = offs_e < E, offs_c < C
    m2 = me[:, None] & mc[None, :]
    ia = tl.load(ia_ptr + offs_e, mask=me, other=0)
    ib = tl.load(ib_ptr + offs_e, mask=me, other=0)
    acc = tl.zeros((BLOCK_E, BLOCK_C), dtype=out_ptr.dtype.element_ty)
    for g in range(G):
        cos = tl.load(cos_ptr + offs_e * G + g, mask=me, other=0.0)
        basis = cos * 0.0
        p1 = cos * 0.0
        p2 = cos * 0.0
        for l in tl.static_range(LMAX + 1):
            p = _legendre_step(cos, p1, p2, l, DERIV, P_START)
            basis = tl.where(lsel == l, p * ((2 * l + 1) * _INV_4PI), basis)
            p2 = p1
            p1 = p
        if HAS_WC:
            basis = basis * tl.load(wc_ptr + offs_e * G + g, mask=me, other=0.0)
        av = tl.load(a_ptr + (ia[:, None] * G + g) * C + offs_c[None, :], mask=m2, other=0.0)
        bv = tl.load(b_ptr + (ib[:, None] * G + g) * C + offs_c[None, :], mask=m2, other=0.0)
        acc += av * bv * basis[:, None]
    tl.store(out_ptr + (offs_e[:, None] * (LMAX + 1) + lsel) * C + offs_c[None, :], acc, mask=m2)


@triton.jit
def gaunt_reduce_kernel(
    a_ptr, b_ptr, cos_ptr, r_ptr, ia_ptr, ib_ptr, out_ptr,
    E, G, C,
    LMAX: tl.constexpr, DERIV: tl.constexpr, P_START: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[e, g] = sum_c a[ia_e,g,c] b[ib_e,g,c] sum_l R[e,l,c] (2l+1)/(4pi) P_l^(k)(cos[e,g]);
    one g per program (axis 1), channels reduced in a loop, so no atomics."""
    pid_e, g = tl.program_id(0), tl.program_id(1)
    offs_e = (pid_e * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
    me = offs_e < E
    ia = tl.load(ia_ptr + offs_e, mask=me, other=0)
    ib = tl.load(ib_ptr + offs_e, mask=me, other=0)
    cos = tl.load(cos_ptr + offs_e * G + g, mask=me, other=0.0)
    total = cos * 0.0
    for c0 in range(0, C, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)
        m2 = me[:, None] & (offs_c < C)[None, :]
        filt = tl.zeros((BLOCK_E, BLOCK_C), dtype=cos.dtype)
        p1 = cos * 0.0
        p2 = cos * 0.0
        for l in tl.static_range(LMAX + 1):
            p = _legendre_step(cos, p1, p2, l, DERIV, P_START)
            w = tl.load(r_ptr + (offs_e[:, None] * (LMAX + 1) + l) * C + offs_c[None, :],
                        mask=m2, other=0.0)
            filt += w * (p * ((2 * l + 1) * _INV_4PI))[:, None]
            p2 = p1
            p1 = p
        av = tl.load(a_ptr + (ia[:, None] * G + g) * C + offs_c[None, :], mask=m2, other=0.0)
        bv = tl.load(b_ptr + (ib[:, None] * G + g) * C + offs_c[None, :], mask=m2, other=0.0)
        total += tl.sum(av * bv * filt, axis=1)
    tl.store(out_ptr + offs_e * G + g, total, mask=me)
