"""Force training compiled whole (``run.compile``): the force graph traced, then torch.compile.

torch.compile cannot compile force training as it stands: the model calls ``autograd.grad``
with ``create_graph`` for the forces, and AOT autograd refuses to differentiate through a
graph that itself ran a backward. Here the potential is traced with ``make_fx`` instead, its
forces (and stress) taken by ``torch.func.grad`` of the energy, which the trace records as
ordinary aten ops: one graph from (parameters, buffers, graph tensors) to (energy, forces,
stress). That graph is differentiable like any other, so torch.compile (AOT autograd and
inductor) compiles it and its backward to the parameters, fusing the many small elementwise
ops of the edge and grid tensors that dominate a CPU step (docs/benchmarks/performance.md).
Tracing the forward's own ``autograd.grad`` instead gives a graph whose parameter derivatives
are slightly wrong (see ``_conservative``).

The trace uses symbolic sizes, so one graph serves every batch of the same layout. Sizes 0
and 1 are special cases in a symbolic trace (broadcasting, empty edges), so the key of a
graph includes which sizes are 0, 1 or more; and duck sizing is off, so that two sizes that
happen to be equal in the first batch (3 structures, 3 coordinates) stay independent.
Parameters and buffers are inputs, not constants: the optimizer's updates, ``set_e0`` and
``load_state_dict`` are seen by the compiled graph. Validation and inference stay eager.
"""

from __future__ import annotations

import logging
import time

import torch
from torch.func import functional_call, grad

from ..data import keys as K
from ..nn.derivatives import apply_strain, stress_from_strain_derivative
from .config import ConfigError

log = logging.getLogger("mlip.train")


def _size_class(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(min(int(s), 2) for s in t.shape)


class CompiledPotential:
    """``potential(graph, compute_forces, compute_stress)`` for training, compiled.

    Call it in the potential's training mode (the mode it is traced in is part of the key).
    Outputs are those of ``Potential.forward``, differentiable to the parameters.
    """

    def __init__(self, model: torch.nn.Module, backend: str = "inductor"):
        # backend: torch.compile's; the tests use "aot_eager" (AOT autograd without codegen).
        self.model, self.backend = model, backend
        self._graphs: dict = {}

    def __call__(self, graph: dict, compute_forces: bool = True,
                 compute_stress: bool = False) -> dict:
        keys = tuple(sorted(k for k, v in graph.items() if torch.is_tensor(v)))
        tensors = [graph[k] for k in keys]
        key = (keys, tuple(_size_class(t) for t in tensors), tuple(t.dtype for t in tensors),
               bool(compute_forces), bool(compute_stress), self.model.training)
        params = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        entry = self._graphs.get(key)
        first = entry is None
        if first:
            start = time.perf_counter()
            entry = self._graphs[key] = self._build(keys, tensors, params, buffers,
                                                    compute_forces, compute_stress)
        # The eager check the trace leaves out (it branches on the charges' values).
        self.model._warn_ignored_charge(graph)
        fn, out_keys = entry
        out = dict(zip(out_keys, fn(params, buffers, *tensors)))
        if first:  # the compile is minutes of silence otherwise
            log.info("run.compile: graph %d traced, its forward compiled and run in %.0f s",
                     len(self._graphs), time.perf_counter() - start)
        return out

    def _build(self, keys, tensors, params, buffers, compute_forces, compute_stress):
        from torch.fx.experimental import _config as fx_config
        from torch.fx.experimental.proxy_tensor import make_fx

        model, out_keys = self.model, []
        conservative = model.conservative and (compute_forces or compute_stress)

        def potential(params, buffers, *tensors):
            graph = dict(zip(keys, tensors))
            if not conservative:
                out = functional_call(model, (params, buffers), (graph,),
                                      {"compute_forces": compute_forces})
            else:
                out = _conservative(model, params, buffers, graph, compute_forces,
                                    compute_stress)
            out_keys[:] = sorted(out)
            return tuple(out[k] for k in out_keys)

        start = time.perf_counter()
        detached = {k: v.detach() for k, v in params.items()}
        try:
            model._tracing = True
            with fx_config.patch(use_duck_shape=False):
                traced = make_fx(potential, tracing_mode="symbolic")(detached, buffers, *tensors)
        except Exception as err:  # a data-dependent branch, an op make_fx cannot trace, ...
            raise ConfigError(
                f"run.compile: {type(model).__name__} could not be traced into one graph "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                "train it without run.compile") from err
        finally:
            model._tracing = False
        log.info("run.compile: traced %s (%d ops) in %.1f s; compiling on first use",
                 type(model).__name__, len(traced.graph.nodes), time.perf_counter() - start)
        if self.backend == "none":  # the traced graph itself (for tests)
            return traced, tuple(out_keys)
        return torch.compile(traced, dynamic=True, backend=self.backend), tuple(out_keys)


def _conservative(model, params, buffers, graph, compute_forces, compute_stress) -> dict:
    """``Potential.forward``'s outputs with the forces (and stress) taken by ``torch.func.grad``.

    Not by the forward's own ``autograd.grad``: make_fx traces that inner backward with
    the right values but a graph whose derivatives to the parameters are off by ~1e-3 in
    the first layer (measured against finite differences); torch.func's transform traces
    into a graph that differentiates exactly (tests/train/test_compiled.py).
    """
    dtype = model.dtype
    positions = graph[K.POSITIONS].to(dtype)
    cell = graph[K.CELL].to(dtype)
    strain = torch.zeros(cell.shape[0], 3, 3, dtype=dtype, device=cell.device)

    def energy(positions, strain):
        inputs = dict(graph)
        if compute_stress:
            positions, inputs[K.CELL] = apply_strain(positions, cell, graph[K.BATCH], strain)
        inputs[K.POSITIONS] = positions
        out = functional_call(model, (params, buffers), (inputs,), {"compute_forces": False})
        return out[K.ENERGY].sum(), out

    (d_pos, d_strain), out = grad(energy, argnums=(0, 1), has_aux=True)(positions, strain)
    if compute_forces:
        out[K.FORCES] = -d_pos
    if compute_stress:
        out[K.STRESS] = stress_from_strain_derivative(d_strain, cell)
    return out
