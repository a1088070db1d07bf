"""Radial functions: smoothness at knots and at the cutoff."""

import pytest
import torch

from mlip.nn.radial import BesselBasis, CubicBSplineRadial, PolynomialEnvelope


def _derivatives(f, r):
    r = r.clone().requires_grad_(True)
    y = f(r)
    (d1,) = torch.autograd.grad(y.sum(), r, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), r)
    return y.detach(), d1.detach(), d2.detach()


def test_envelope_vanishes_with_two_derivatives_at_cutoff():
    env = PolynomialEnvelope(5.0, p=6)
    y, d1, d2 = _derivatives(env, torch.tensor([5.0 - 1e-7, 5.0], dtype=torch.float64))
    assert y.abs().max() < 1e-12 and d1.abs().max() < 1e-5 and d2.abs().max() < 1e-3
    assert float(env(torch.tensor(0.0, dtype=torch.float64))) == 1.0
    assert float(env(torch.tensor(6.0, dtype=torch.float64))) == 0.0


def test_bessel_basis_shape_and_cutoff():
    basis = BesselBasis(4.0, 8)
    r = torch.linspace(0.0, 4.5, 50, dtype=torch.float64)
    out = basis(r)
    assert out.shape == (50, 8) and torch.isfinite(out).all()
    assert out[r >= 4.0].abs().max() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_spline_value_and_first_two_derivatives_continuous_at_knots(seed):
    torch.manual_seed(seed)
    spline = CubicBSplineRadial(5.0, num_out=3, num_knots=10).double()
    eps = 1e-7
    for k in range(1, 11):
        knot = k * spline.h
        r = torch.tensor([knot - eps, knot + eps], dtype=torch.float64)
        y, d1, d2 = _derivatives(lambda x: spline(x).sum(-1), r)
        assert abs(y[0] - y[1]) < 1e-5, k
        assert abs(d1[0] - d1[1]) < 1e-4, k
        # Second derivatives of a cubic spline are continuous but piecewise linear.
        assert abs(d2[0] - d2[1]) < 1e-3, k


def test_spline_is_zero_with_derivatives_from_cutoff_on():
    spline = CubicBSplineRadial(5.0, num_out=4, num_knots=12).double()
    r = torch.tensor([5.0 - 1e-6, 5.0, 5.5], dtype=torch.float64)
    y, d1, d2 = _derivatives(lambda x: spline(x).sum(-1), r)
    assert y[1:].abs().max() == 0 and y[0].abs() < 1e-12
    assert d1.abs().max() < 1e-8 and d2.abs().max() < 1e-4


def test_spline_basis_is_a_partition_of_unity_inside():
    spline = CubicBSplineRadial(4.0, num_out=1, num_knots=8).double()
    # Full B-spline bases sum to one; only the three left out near r_cut break that.
    r = torch.linspace(0.0, 4.0 - 3 * spline.h - 1e-9, 40, dtype=torch.float64)
    full = spline.basis(r)
    torch.testing.assert_close(full.sum(-1), torch.ones_like(r))


def test_spline_reproduces_a_known_function():
    # Fit the table to f(r) = (r_c - r)^3 by least squares: cubics are in the spline space.
    spline = CubicBSplineRadial(4.0, num_out=1, num_knots=8).double()
    r = torch.linspace(0.0, 3.99, 200, dtype=torch.float64)
    target = (4.0 - r) ** 3
    coef = torch.linalg.lstsq(spline.basis(r), target[:, None]).solution
    with torch.no_grad():
        spline.weight.copy_(coef)
    torch.testing.assert_close(spline(r)[:, 0], target, atol=1e-9, rtol=0)
