"""Chunked evaluation with recomputation: the same values and derivatives as plain autograd."""

import pytest
import torch
from mlip.kernels._recompute import map_rows, scatter_messages

F64 = torch.float64


def message(x_sender, d, r, table, scale):
    # Nonlinear in every input, so first and second derivatives are all non-trivial.
    filt = torch.tanh(r[:, None, None] * table) * (d @ scale)[:, :, None]
    return x_sender * filt


def inputs(n=5, e=11, g=4, c=3, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, dtype=F64, generator=gen).requires_grad_()

    sender = torch.randint(0, n, (e,), generator=gen)
    receiver = torch.randint(0, n, (e,), generator=gen)
    return t(n, g, c), t(e, 3), t(e), t(g, c), t(3, g), sender, receiver


def plain(x, d, r, table, scale, sender, receiver):
    return torch.zeros_like(x).index_add(0, receiver, message(x[sender], d, r, table, scale))


def lean(x, d, r, table, scale, sender, receiver, chunk=3):
    return scatter_messages(message, x, (d, r), (table, scale), sender, receiver, chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 3, 11, 50, None])
def test_scatter_values_and_gradients_match_plain_autograd(chunk):
    args = inputs()
    leaves = list(args[:5])
    ref, out = plain(*args), lean(*args, chunk=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), leaves)
    g_out = torch.autograd.grad((out * w).sum(), leaves)
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_scatter_gradient_of_a_subset_matches():
    # A force call asks for the inputs' gradients only; the skipped ones must not change them.
    args = inputs(seed=1)
    x, d = args[0], args[1]
    gx_ref, gd_ref = torch.autograd.grad(plain(*args).square().sum(), [x, d])
    gx, gd = torch.autograd.grad(lean(*args).square().sum(), [x, d])
    torch.testing.assert_close(gx, gx_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gd, gd_ref, rtol=1e-12, atol=1e-12)


def test_scatter_double_backward_matches_plain_autograd():
    # Force training: a loss on the input gradient, differentiated again for the weights.
    args = inputs(seed=2)
    x, d, r, table, scale = args[:5]
    results = []
    for fn in (plain, lean):
        (gd,) = torch.autograd.grad(fn(*args).square().sum(), [d], create_graph=True)
        results.append(torch.autograd.grad(gd.square().sum(), [x, r, table, scale]))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_scatter_without_edges():
    x, d, r, table, scale, sender, receiver = inputs(e=0)
    out = lean(x, d, r, table, scale, sender, receiver)
    assert out.shape == x.shape and not out.any()
    (gx,) = torch.autograd.grad(out.sum(), [x], allow_unused=True, materialize_grads=True)
    assert not gx.any()


def test_scatter_and_rows_under_no_grad():
    # An energy-only evaluation (torch.no_grad, leaves that require grad): the same values.
    args = inputs(seed=3)
    ref = plain(*args).detach()
    w, b = torch.randn(3, 3, dtype=F64).requires_grad_(), torch.randn(3, dtype=F64)
    x = torch.randn(6, 3, dtype=F64).requires_grad_()
    with torch.no_grad():
        out = lean(*args)
        rows = map_rows(rows_fn, x, (w, b), chunk=2)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(rows, rows_fn(x, w, b).detach(), rtol=1e-13, atol=1e-13)
    assert not out.requires_grad and not rows.requires_grad


def rows_fn(x, w, b):
    return torch.nn.functional.silu(x @ w + b) @ w.T


@pytest.mark.parametrize("chunk", [1, 2, 7, None])
def test_rows_values_first_and_second_derivatives_match(chunk):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(7, 4, 3, dtype=F64, generator=gen).requires_grad_()
    w = torch.randn(3, 5, dtype=F64, generator=gen).requires_grad_()
    b = torch.randn(5, dtype=F64, generator=gen).requires_grad_()
    ref, out = rows_fn(x, w, b), map_rows(rows_fn, x, (w, b), chunk=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    for a, c in zip(
        torch.autograd.grad(out.sin().sum(), [x, w, b]),
        torch.autograd.grad(ref.sin().sum(), [x, w, b]),
    ):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)
    second = []
    for y in (rows_fn(x, w, b), map_rows(rows_fn, x, (w, b), chunk=chunk)):
        (gx,) = torch.autograd.grad(y.sin().sum(), [x], create_graph=True)
        second.append(torch.autograd.grad(gx.square().sum(), [w, b]))
    for a, c in zip(*second):
        torch.testing.assert_close(a, c, rtol=1e-11, atol=1e-11)
