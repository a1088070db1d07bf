"""Shared checks for kernel tests: each direction against the reference, with its own tolerance.

OpenEquivariance's model: forward, backward and double backward are compared separately. The
upstream gradients have stride 0 (like autograd's gradient of ``out.sum()``), so a launcher
that forgets ``.contiguous()`` fails here. Without a GPU the Triton path runs under
``TRITON_INTERPRET=1``, which tests/kernels/conftest.py sets before the kernels are built.
"""

from __future__ import annotations

import pytest
import torch
from mlip.kernels._dispatch import HAS_TRITON, interpreting

# Relative to max(1, max|reference|).
TOL = {
    torch.float32: {"forward": 1e-5, "backward": 3e-4, "double": 3e-4},
    torch.float64: {"forward": 1e-12, "backward": 1e-11, "double": 1e-11},
}

needs_interpreter = pytest.mark.skipif(
    not (HAS_TRITON and interpreting()),
    reason="triton not installed, or TRITON_INTERPRET=1 not set (on a GPU machine the "
    "@pytest.mark.gpu tests cover the Triton path)",
)
# With @pytest.mark.gpu (tests/conftest.py skips that without CUDA): triton is optional.
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")


def stride0_like(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random tensor of t's shape whose last axis has stride 0."""
    base = torch.randn(*t.shape[:-1], 1, generator=gen, dtype=t.dtype).to(t.device)
    return base.expand(t.shape)


def directions(fn, inputs, wrt, backend):
    """Forward, gradients of <out, v> and of <grads, w> w.r.t. ``inputs[i] for i in wrt``."""
    leaves = [x.detach().clone().requires_grad_() if i in wrt else x for i, x in enumerate(inputs)]
    gen = torch.Generator().manual_seed(1)
    out = fn(*leaves, backend=backend)
    go = stride0_like(out, gen)
    params = [leaves[i] for i in wrt]
    grads = torch.autograd.grad(out, params, go, create_graph=True, allow_unused=True)
    # An input the output does not depend on (edge_dir at lmax = 0) has a zero gradient.
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    vs = [stride0_like(g, gen) for g in grads]  # drawn for all, so both backends see the same
    second = sum((g * v).sum() for g, v in zip(grads, vs) if g.requires_grad)
    if not torch.is_tensor(second):
        return out, grads, [torch.zeros_like(p) for p in params]
    doubles = torch.autograd.grad(second, params, allow_unused=True)
    doubles = [torch.zeros_like(p) if d is None else d for p, d in zip(params, doubles)]
    return out, grads, doubles


def max_errors(fn, inputs, wrt, backend="triton"):
    """Largest scaled error of each direction of ``backend`` against the torch reference."""
    ref = directions(fn, inputs, wrt, "torch")
    got = directions(fn, inputs, wrt, backend)

    def err(a, b):
        return ((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()

    return {
        "forward": err(got[0], ref[0]),
        "backward": max(err(a, b) for a, b in zip(got[1], ref[1])),
        "double": max(err(a, b) for a, b in zip(got[2], ref[2])),
    }


def assert_matches(fn, inputs, wrt, dtype, backend="triton"):
    errors = max_errors(fn, inputs, wrt, backend)
    for direction, tol in TOL[dtype].items():
        assert errors[direction] <= tol, f"{direction}: {errors[direction]:.2e} > {tol:.0e}"
    return errors
