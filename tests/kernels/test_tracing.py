"""torch.compile traces every Triton-backed op: the fake implementations give shapes to
dynamo, so a function calling the kernels compiles to one graph (fullgraph, no break), and the
compiled call gives the reference's values and gradients.

On CPU the kernels run under the interpreter, which cannot take fake tensors, so the graph is
run by the "eager" backend. On a GPU the same check runs through AOT autograd ("aot_eager"),
which traces the ops' backward formulas and the Triton kernels inside them.
"""

import pytest
import torch
from mlip.kernels.bspline import bspline_radial
from mlip.kernels.cg_conv import cg_conv
from mlip.kernels.gaunt_conv import gaunt_grid_conv
from mlip.kernels.grid_mixing import grid_mlp

from tests.helpers.kernels import needs_interpreter
from tests.kernels import test_bspline, test_cg_conv, test_gaunt_conv, test_grid_mixing

CASES = {
    "gaunt_grid_conv": (gaunt_grid_conv, test_gaunt_conv.inputs, (0, 1, 2)),
    "cg_conv": (cg_conv, test_cg_conv.inputs, (0, 1, 2)),
    "bspline_radial": (bspline_radial, test_bspline.inputs, (0, 1)),
    "grid_mlp": (grid_mlp, test_grid_mixing.inputs, tuple(range(7))),
}


def _check(name, device, backend):
    fn, make, wrt = CASES[name]
    torch._dynamo.reset()

    def run(call, args):
        args = [a.detach().clone().requires_grad_(i in wrt) if torch.is_tensor(a) else a
                for i, a in enumerate(args)]
        out = call(*args)
        grads = torch.autograd.grad(out.square().sum(), [args[i] for i in wrt])
        return out.detach(), grads

    def triton_call(*args):
        return fn(*args, backend="triton")

    args = make(torch.float64, device)
    compiled = torch.compile(triton_call, backend=backend, fullgraph=True)
    out, grads = run(compiled, args)
    ref_out, ref_grads = run(lambda *a: fn(*a, backend="torch"), args)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-9)


@needs_interpreter
@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_graph_with_the_kernel_matches_eager(name):
    _check(name, "cpu", "eager")


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_aot_compiled_graph_with_the_kernel_matches_eager_cuda(name):
    _check(name, "cuda", "aot_eager")
