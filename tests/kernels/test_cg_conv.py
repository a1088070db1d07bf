"""Channelwise CG convolution: Triton against the torch reference, every direction and dtype.

The coupling table is built here from e3nn's Wigner 3j symbols, as mlip.nn does; kernels/
itself never imports e3nn.
"""

import math

import torch
from mlip.kernels.cg_conv import cg_conv, reference
from pytest import mark

from tests.helpers.kernels import assert_matches, needs_interpreter, needs_triton


def cg_table(lmax):
    """Even paths (l1 + l2 + l3 even) of the uvu product, as (path, m1, m2, m3, coeff)."""
    from e3nn import o3

    paths = [(l1, l2, l3) for l1 in range(lmax + 1) for l2 in range(lmax + 1)
             for l3 in range(abs(l1 - l2), min(l1 + l2, lmax) + 1) if (l1 + l2 + l3) % 2 == 0]
    cols = [[], [], [], [], []]
    for p, (l1, l2, l3) in enumerate(paths):
        w = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)
        for i, j, k in (w.abs() > 1e-12).nonzero().tolist():
            for col, v in zip(cols, (p, l1 * l1 + i, l2 * l2 + j, l3 * l3 + k, w[i, j, k].item())):
                col.append(v)
    table = [torch.tensor(c) for c in cols[:4]] + [torch.tensor(cols[4], dtype=torch.float64)]
    return table, len(paths)


def inputs(dtype, device="cpu", N=4, E=8, C=4, lmax=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    table, P = cg_table(lmax)
    K = (lmax + 1) ** 2
    x = torch.randn(N, K, C, generator=gen, dtype=dtype)
    sh = torch.randn(E, K, generator=gen, dtype=dtype)
    w = torch.randn(E, P, C, generator=gen, dtype=dtype)
    receiver = torch.sort(torch.randint(0, N, (E,), generator=gen)).values
    sender = torch.randint(0, N, (E,), generator=gen)
    t = [x, sh, w, [c.to(device) for c in table], sender, receiver]
    return [a if isinstance(a, list) else a.to(device) for a in t] + [K]


def test_reference_matches_the_dense_cg_product():
    x, sh, w, table, s, r, K = inputs(torch.float64, lmax=1)
    path, m1, m2, m3, coeff = table
    dense = torch.zeros(w.shape[1], K, K, K, dtype=torch.float64)
    dense[path, m1, m2, m3] = coeff
    msg = torch.einsum("pijk,eic,ej,epc->ekc", dense, x[s], sh, w)
    out = torch.zeros_like(x).index_add(0, r, msg)
    torch.testing.assert_close(reference.cg_conv(x, sh, w, table, s, r, K), out)


def test_reference_gradcheck_and_gradgradcheck():
    x, sh, w, table, s, r, K = inputs(torch.float64, N=3, E=4, C=2, lmax=1)
    fn = lambda x, sh, w: reference.cg_conv(x, sh, w, table, s, r, K)  # noqa: E731
    args = [t.requires_grad_() for t in (x, sh, w)]
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


@needs_interpreter
@mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_matches_reference(dtype):
    assert_matches(cg_conv, inputs(dtype), wrt=(0, 1, 2), dtype=dtype)


@needs_interpreter
def test_triton_k_out_smaller_than_input():
    # Output degrees up to 1 from lmax = 2 inputs: entries with m3 >= 4 are dropped by the caller.
    x, sh, w, table, s, r, _ = inputs(torch.float64)
    keep = table[3] < 4
    table = [c[keep] for c in table]
    assert_matches(cg_conv, [x, sh, w, table, s, r, 4], wrt=(0, 1, 2), dtype=torch.float64)


@mark.parametrize("dtype", [torch.float32, torch.float64])
@mark.gpu
@needs_triton
def test_triton_matches_reference_cuda(dtype):
    args = inputs(dtype, "cuda", N=64, E=1000, C=64, lmax=3)
    assert_matches(cg_conv, args, wrt=(0, 1, 2), dtype=dtype)
