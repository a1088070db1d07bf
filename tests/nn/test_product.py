import pytest
import torch
from e3nn import o3

from mlip.nn.product import CGPathProduct, SymmetricGridProduct
from mlip.nn.spherical import wigner_D
from mlip.nn.tensor_product import CGTensorProduct, GauntGridProduct

F64 = torch.float64


def features(lmax, channels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(5, (lmax + 1) ** 2, channels, dtype=F64, generator=gen)


@pytest.mark.parametrize("correlation", [1, 2, 3])
def test_matches_chained_gaunt_products(correlation):
    lmax, channels = 2, 4
    torch.manual_seed(correlation)
    prod = SymmetricGridProduct(lmax, channels, correlation).double()
    assert prod.grid.degree == correlation * lmax + lmax
    x = features(lmax, channels)
    w = prod.weights.detach()
    # nu-fold products built pairwise at full degree, projected to lmax at the end.
    ref, power = w[0] * x, x
    for nu in range(1, correlation):
        power = GauntGridProduct(nu * lmax, lmax, (nu + 1) * lmax)(power, x)
        ref = ref + w[nu] * power[:, : (lmax + 1) ** 2]
    torch.testing.assert_close(prod(x), ref, atol=1e-12, rtol=0)


def test_exactly_equivariant_including_reflections():
    lmax = 3
    torch.manual_seed(0)
    prod = SymmetricGridProduct(lmax, 6, correlation=3).double()
    x = features(lmax, 6, seed=1)
    for r in (o3.rand_matrix(dtype=F64), -o3.rand_matrix(dtype=F64)):
        d = wigner_D(lmax, r)
        torch.testing.assert_close(prod(d @ x), d @ prod(x), atol=1e-12, rtol=0)


def test_many_body_terms_matter_and_are_learnable():
    torch.manual_seed(0)
    prod = SymmetricGridProduct(2, 3, correlation=2).double()
    x = features(2, 3)
    with torch.no_grad():
        prod.weights[1] = 0.0
    torch.testing.assert_close(prod(x), x, atol=1e-12, rtol=0)  # identity at nu = 1 only
    with torch.no_grad():
        prod.weights[1] = 0.5
    assert (prod(x) - x).abs().max() > 1e-2
    prod(x).square().sum().backward()
    assert prod.weights.grad.abs().min() > 0
    assert list(prod.state_dict()) == ["weights"]
    with pytest.raises(ValueError):
        SymmetricGridProduct(2, 3, correlation=0)


def test_per_element_weights_pick_each_nodes_row():
    torch.manual_seed(0)
    shared = SymmetricGridProduct(2, 3, correlation=2).double()
    per = SymmetricGridProduct(2, 3, correlation=2, num_species=2).double()
    assert per.weights.shape == (2, 2, 3)
    x = features(2, 3)
    species = torch.tensor([0, 1, 1, 0, 1])
    with torch.no_grad():
        per.weights.copy_(shared.weights.expand(2, -1, -1))
    # Equal rows: the shared product; a changed row moves only that element's nodes.
    torch.testing.assert_close(per(x, species), shared(x), atol=1e-12, rtol=0)
    with torch.no_grad():
        per.weights[1, 1] += 0.5
    moved = (per(x, species) - shared(x)).abs().amax(dim=(1, 2))
    assert (moved[species == 0] < 1e-12).all() and (moved[species == 1] > 1e-3).all()
    d = wigner_D(2, -o3.rand_matrix(dtype=F64))
    torch.testing.assert_close(per(d @ x, species), d @ per(x, species), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="species"):
        per(x)


def test_cg_path_product_is_o3_equivariant_with_per_element_weights():
    torch.manual_seed(0)
    prod = CGPathProduct(2, 4, correlation=3, num_species=3).double()
    x, species = features(2, 4, seed=2), torch.tensor([0, 2, 1, 1, 0])
    for r in (o3.rand_matrix(dtype=F64), -o3.rand_matrix(dtype=F64)):
        d = wigner_D(2, r)
        torch.testing.assert_close(prod(d @ x, species), d @ prod(x, species), atol=1e-12,
                                   rtol=0)
    with pytest.raises(ValueError, match="species"):
        prod(x)
    with pytest.raises(ValueError, match="correlation"):
        CGPathProduct(2, 4, correlation=0)


def test_cg_path_product_has_one_polynomial_term_per_body_order():
    torch.manual_seed(0)
    prod = CGPathProduct(2, 3, correlation=3).double()
    x = features(2, 3, seed=3)
    # B(t x) = t b1 + t^2 b2 + t^3 b3: the cubic through four values of t has no constant
    # term, and every order is present.
    ts = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=F64)
    vander = torch.stack([ts**k for k in range(4)], dim=1)
    values = torch.stack([prod(t * x).flatten() for t in ts])
    coeffs = torch.linalg.solve(vander, values)
    assert coeffs[0].abs().max() < 1e-10
    assert all(coeffs[k].abs().max() > 1e-3 for k in (1, 2, 3))
    torch.testing.assert_close(coeffs[1], x.flatten(), atol=1e-10, rtol=0)  # w_1 = 1 at start


def test_cg_path_product_weights_each_path_separately():
    torch.manual_seed(0)
    prod = CGPathProduct(2, 3, correlation=2).double()
    x = features(2, 3, seed=4)
    with torch.no_grad():
        prod.out[0].zero_()
        prod.out[0][prod.paths.index((1, 1, 0))] = 1.0
    # Only (1, 1 -> 0) left: the l = 0 rows gain the channel's |x_1|^2 / sqrt(3) (e3nn's
    # unit-norm 3j symbol for (1 1 0) is delta / sqrt(3) up to sign), nothing else moves.
    extra = prod(x) - x
    torch.testing.assert_close(extra[:, 1:], torch.zeros_like(extra[:, 1:]), atol=1e-12, rtol=0)
    torch.testing.assert_close(extra[:, 0].abs(), x[:, 1:4].square().sum(1) / 3**0.5,
                               atol=1e-12, rtol=0)
    prod(x).square().sum().backward()
    assert prod.out[0].grad[prod.paths.index((1, 1, 0))].abs().min() > 0


def test_cg_path_product_dense_form_equals_the_cg_reference():
    torch.manual_seed(0)
    prod = CGPathProduct(2, 4, correlation=3, num_species=2).double()
    x, species = features(2, 4, seed=5), torch.tensor([1, 0, 0, 1, 1])
    tp = CGTensorProduct(2, 2, 2, paths="even").double()
    assert tp.paths == prod.paths
    w = lambda p: p[species]  # noqa: E731
    chain = tp(x, x, weights=w(prod.inner[0]))
    ref = x * w(prod.linear)[:, prod.degree] + tp(x, x, weights=w(prod.out[0]))
    ref = ref + tp(chain, x, weights=w(prod.out[1]))
    torch.testing.assert_close(prod(x, species), ref, atol=1e-12, rtol=0)
