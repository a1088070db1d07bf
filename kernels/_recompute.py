"""Chunked evaluation with recomputation in the backward pass: the per-edge and per-grid-point
tensors of a force call are never all alive at once.

A force (and stress) call differentiates once. Plain autograd keeps every intermediate of the
forward for that one backward, which for facet-s means several ``(E, G, C)`` edge tensors and
``(N, G, H)`` grid tensors: about 3 MB per atom. The two functions here run the forward in
chunks (of edges, of rows) keeping only their inputs, and the backward recomputes one chunk at
a time. Peak memory is then that of the inputs plus one chunk's intermediates.

Both are exact (the same arithmetic per element, chunk by chunk) and stay differentiable to any
order: when the backward itself is recorded (``create_graph=True``, as force training does), it
recomputes the whole forward under autograd instead, like ``torch.utils.checkpoint``.
Gradients the engine will not use (the parameters', in a force call) are skipped.
"""

from __future__ import annotations

import torch
from torch.autograd.graph import get_gradient_edge

# Elements of the largest intermediate of one chunk: 2^21 float32 are 8 MB, small enough to
# stay in cache-friendly pieces and large enough that per-chunk overhead is negligible.
CHUNK_ELEMENTS = 1 << 21


def chunk_size(rows: int, row_elements: int, budget: int = CHUNK_ELEMENTS) -> int:
    return max(1, min(rows, budget // max(row_elements, 1)))


def _tracked(t):
    """A tensor that needs grad is passed through a view: a non-leaf, whose gradient edge the
    engine can be asked about inside ``autograd.grad`` (it refuses to answer for leaves)."""
    return t.view_as(t) if torch.is_tensor(t) and t.requires_grad else t


def _wanted(ctx) -> list[bool]:
    """Per saved input: will the running backward use its gradient?"""
    will = getattr(torch._C, "_will_engine_execute_node", None)
    out = []
    for edge, need in zip(ctx.grad_edges, ctx.needs_input_grad[ctx.offset :]):
        if edge is None or not need:
            out.append(False)
        elif will is None:
            out.append(True)
        else:
            try:
                out.append(bool(will(edge.node)))
            except RuntimeError:  # asked about a leaf, or outside a backward: compute it
                out.append(True)
    return out


def _edge(t):
    """The tensor's gradient edge, or None where no gradient can reach it: a view made under
    ``torch.no_grad`` claims ``requires_grad`` but has no grad_fn (an energy-only call)."""
    if torch.is_tensor(t) and t.requires_grad and not (t._is_view() and t.grad_fn is None):
        return get_gradient_edge(t)
    return None


def _setup(ctx, offset, tensors):
    ctx.offset = offset
    ctx.grad_edges = [_edge(t) for t in tensors]


def _full_grads(fn_out, inputs, wanted, grad_out):
    """Differentiable gradients of ``fn_out`` (recomputed under autograd) for the wanted inputs."""
    picked = [t for t, w in zip(inputs, wanted) if w]
    if not picked:
        return [None] * len(inputs)
    grads = iter(
        torch.autograd.grad(
            fn_out, picked, grad_out, create_graph=True, allow_unused=True, materialize_grads=True
        )
    )
    return [next(grads) if w else None for w in wanted]


class _Scatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, n_edge, chunk, sender, receiver, node_x, *rest):
        _setup(ctx, 5, (node_x, *rest))
        ctx.fn, ctx.n_edge, ctx.chunk = fn, n_edge, chunk
        ctx.save_for_backward(sender, receiver, node_x, *rest)
        edge, shared = rest[:n_edge], rest[n_edge:]
        out = None
        for start in range(0, max(sender.shape[0], 1), chunk):
            sl = slice(start, start + chunk)
            m = fn(node_x[sender[sl]], *(t[sl] for t in edge), *shared)
            if out is None:
                out = m.new_zeros(node_x.shape[0], *m.shape[1:])
            out.index_add_(0, receiver[sl], m)
        return out

    @staticmethod
    def backward(ctx, go):
        sender, receiver, node_x, *rest = ctx.saved_tensors
        fn, n_edge, chunk = ctx.fn, ctx.n_edge, ctx.chunk
        inputs = [node_x, *rest]
        wanted = _wanted(ctx)
        if torch.is_grad_enabled():  # the backward is being recorded: differentiable recompute
            with torch.enable_grad():
                m = fn(node_x[sender], *rest[:n_edge], *rest[n_edge:])
                out = m.new_zeros(node_x.shape[0], *m.shape[1:]).index_add(0, receiver, m)
            return (None,) * 5 + tuple(_full_grads(out, inputs, wanted, go))
        edge, shared = rest[:n_edge], rest[n_edge:]
        grads = [
            None
            if not w
            else (torch.zeros_like(t) if i == 0 or i > n_edge else torch.empty_like(t))
            for i, (t, w) in enumerate(zip(inputs, wanted))
        ]
        for start in range(0, sender.shape[0], chunk):
            sl = slice(start, start + chunk)
            with torch.enable_grad():
                leaves = [node_x[sender[sl]], *(t[sl] for t in edge), *shared]
                leaves = [t.detach().requires_grad_(w) for t, w in zip(leaves, wanted)]
                m = fn(*leaves)
                picked = [t for t, w in zip(leaves, wanted) if w]
                got = (
                    iter(
                        torch.autograd.grad(
                            m, picked, go[receiver[sl]], allow_unused=True, materialize_grads=True
                        )
                    )
                    if picked
                    else iter(())
                )
            for i, w in enumerate(wanted):
                if not w:
                    continue
                g = next(got)
                if i == 0:
                    grads[0].index_add_(0, sender[sl], g)
                elif i <= n_edge:
                    grads[i][sl] = g
                else:
                    grads[i] += g
        return (None,) * 5 + tuple(grads)


def scatter_messages(fn, node_x, edge_inputs, shared, sender, receiver, chunk=None):
    """``out[i] = sum over edges e with receiver[e] == i of fn(node_x[sender[e]], *edge[e],
    *shared)``, evaluated ``chunk`` edges at a time and recomputed in the backward.

    ``fn`` maps a chunk's gathered node rows, edge rows and the shared tensors to its messages
    (first axis the chunk's edges); it must be a pure function of its tensor arguments.
    """
    if chunk is None:  # sized by one edge's message
        probe = fn(node_x[sender[:1]], *(t[:1] for t in edge_inputs), *shared)
        chunk = chunk_size(sender.shape[0], probe[0].numel()) if len(probe) else 1
    edge_inputs, shared = [_tracked(t) for t in edge_inputs], [_tracked(t) for t in shared]
    return _Scatter.apply(
        fn, len(edge_inputs), int(chunk), sender, receiver, _tracked(node_x), *edge_inputs, *shared
    )


class _Rows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, chunk, x, *shared):
        _setup(ctx, 2, (x, *shared))
        ctx.fn, ctx.chunk = fn, chunk
        ctx.save_for_backward(x, *shared)
        return torch.cat(
            [fn(x[s : s + chunk], *shared) for s in range(0, max(x.shape[0], 1), chunk)]
        )

    @staticmethod
    def backward(ctx, go):
        x, *shared = ctx.saved_tensors
        fn, chunk = ctx.fn, ctx.chunk
        wanted = _wanted(ctx)
        if torch.is_grad_enabled():
            with torch.enable_grad():
                out = fn(x, *shared)
            return (None, None) + tuple(_full_grads(out, [x, *shared], wanted, go))
        grads = [torch.zeros_like(t) if w else None for t, w in zip([x, *shared], wanted)]
        for s in range(0, x.shape[0], chunk):
            sl = slice(s, s + chunk)
            with torch.enable_grad():
                leaves = [t.detach().requires_grad_(w) for t, w in zip([x[sl], *shared], wanted)]
                out = fn(*leaves)
                picked = [t for t, w in zip(leaves, wanted) if w]
                got = (
                    iter(
                        torch.autograd.grad(
                            out, picked, go[sl], allow_unused=True, materialize_grads=True
                        )
                    )
                    if picked
                    else iter(())
                )
            for i, w in enumerate(wanted):
                if w:
                    g = next(got)
                    if i == 0:
                        grads[0][sl] = g
                    else:
                        grads[i] += g
        return (None, None) + tuple(grads)


def map_rows(fn, x, shared, chunk=None):
    """``fn(x, *shared)`` for a row-wise ``fn`` (row i of the output depends on row i of ``x``
    only), evaluated ``chunk`` rows at a time and recomputed in the backward."""
    if chunk is None:
        chunk = chunk_size(x.shape[0], x[:1].numel() * 8)
    shared = [_tracked(t) for t in shared]
    return _Rows.apply(fn, int(chunk), _tracked(x), *shared)
