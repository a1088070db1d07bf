"""torch.library op over the fused grid-mixing Triton kernel.

The forward is one fused kernel. The backward is written in torch ops (recomputing the grid
values, ``reference.grid_mlp_backward``): it stores (N, G, H) intermediates like the
reference does, and autograd differentiates it again for the double backward.
"""

from __future__ import annotations

import torch
import triton
from torch.library import triton_op, wrap_triton

from .reference import grid_mlp_backward
from .triton_kernels import grid_mlp_kernel

_NAMES = ("x", "to_grid", "from_grid", "w1", "b1", "w2", "b2")


def _pad(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


@triton_op("mlip::grid_mlp", mutates_args=())
def grid_mlp_op(x: torch.Tensor, to_grid: torch.Tensor, from_grid: torch.Tensor,
                w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                b2: torch.Tensor) -> torch.Tensor:
    x, to_grid, from_grid = x.contiguous(), to_grid.contiguous(), from_grid.contiguous()
    w1, b1, w2, b2 = w1.contiguous(), b1.contiguous(), w2.contiguous(), b2.contiguous()
    N, K, C = x.shape
    G, H, O = to_grid.shape[0], w1.shape[1], w2.shape[1]
    out = x.new_empty(N, K, O)
    if N:
        wrap_triton(grid_mlp_kernel)[(N,)](
            x, to_grid, from_grid, w1, b1, w2, b2, out, K, G, C, H, O,
            BK=_pad(K), BG=_pad(G), BC=_pad(C), BH=_pad(H), BO=_pad(O),
        )
    return out


def _setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, go):
    grads = grid_mlp_backward(go, *ctx.saved_tensors)
    return tuple(grads[k] if need else None for k, need in zip(_NAMES, ctx.needs_input_grad))


# Shapes for tracing (torch.compile, export): the compiled graph holds the op opaquely, which
# also works where the launcher cannot take fake tensors (the CPU interpreter).
grid_mlp_op.register_fake(lambda x, to_grid, from_grid, w1, b1, w2, b2:
                          x.new_empty(x.shape[0], x.shape[1], w2.shape[1]))
grid_mlp_op.register_autograd(_backward, setup_context=_setup)


def grid_mlp_triton(x, to_grid, from_grid, w1, b1, w2, b2):
    """The Triton path of :func:`mlip.kernels.grid_mixing.grid_mlp`."""
    dt = x.dtype
    return grid_mlp_op(x, to_grid.to(dt), from_grid.to(dt), w1.to(dt), b1.to(dt), w2.to(dt),
                       b2.to(dt))
