"""run.compile: the traced and compiled training forward against the eager one.

The numerics are checked on the traced graph itself (backend "none"), which is what the
compiler receives; one test compiles with torch.compile's "aot_eager" backend (AOT autograd,
the part that refused force training before the trace, without inductor's code generation,
which takes minutes); the slow test trains with inductor itself.
"""

import ase.build
import ase.io
import numpy as np
import pytest
import torch

import mlip
from mlip.data import batch_graphs, from_ase
from mlip.train import ConfigError, train
from mlip.train.compiled import CompiledPotential
from tests.helpers import ACAC, tiny_config


def _acac_batch(start, n):
    frames = ase.io.read(ACAC / "train_300K.xyz", index=f"{start}:{start + n}")
    return batch_graphs([from_ase(a, cutoff=4.0) for a in frames])


def _copper_batch(n, seed):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 1 + k)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        frames.append(atoms)
    return batch_graphs([from_ase(a, cutoff=4.0) for a in frames])


def _run(forward, model, graph, stress=False):
    """Outputs, and the gradients of an energy + forces (+ stress) loss to the parameters."""
    out = forward(graph, compute_forces=True, compute_stress=stress)
    loss = out["energy"].pow(2).sum() + 10 * out["forces"].pow(2).sum()
    if stress:
        loss = loss + 100 * out["stress"].pow(2).sum()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
    return {k: v.detach() for k, v in out.items()}, grads


def _assert_same(model, compiled, graph, stress=False):
    ref_out, ref_grads = _run(model, model, graph, stress)
    out, grads = _run(compiled, model, graph, stress)
    assert sorted(out) == sorted(ref_out)
    for key in ref_out:
        torch.testing.assert_close(out[key], ref_out[key], rtol=1e-9, atol=1e-10)
    for g, ref in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref, rtol=1e-8, atol=1e-9)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return mlip.build_model("equivariant", elements=[1, 6, 8], lmax=1, channels=8, num_layers=2,
                            correlation=2, element_product=True, product="cg",
                            pair_repulsion=True).train()


def test_one_graph_serves_batches_of_other_sizes(model):
    compiled = CompiledPotential(model, backend="none")
    # 3, 2 and 4 structures: the first batch's 3 must not be taken for the 3 of xyz.
    for graph in (_acac_batch(0, 3), _acac_batch(10, 2), _acac_batch(20, 4)):
        _assert_same(model, compiled, graph)
    assert len(compiled._graphs) == 1
    _assert_same(model, compiled, _acac_batch(30, 1))  # one structure: its own trace
    assert len(compiled._graphs) == 2


def test_parameter_updates_reach_the_compiled_graph():
    torch.manual_seed(0)
    model = mlip.build_model("equivariant", elements=[1, 6, 8], lmax=1, channels=4,
                             num_layers=1).train()
    compiled = CompiledPotential(model, backend="aot_eager")
    graph = _acac_batch(0, 2)
    _assert_same(model, compiled, graph)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1).add_(0.01)
    model.set_e0({1: -1.0})
    _assert_same(model, compiled, graph)


def test_stress_of_periodic_batches():
    torch.manual_seed(0)
    model = mlip.build_model("equivariant", elements=[29], lmax=1, channels=4, num_layers=1,
                             pair_repulsion=True).train()
    compiled = CompiledPotential(model, backend="none")
    for graph in (_copper_batch(2, 0), _copper_batch(3, 1)):
        _assert_same(model, compiled, graph, stress=True)
    assert len(compiled._graphs) == 1


def _charged_batch():
    rng = np.random.default_rng(0)
    frames = []
    for name, charge, spin in [("H2O", 1, 2), ("CH4", 0, 1), ("NH3", -1, 2), ("CH3OH", 0, 1)]:
        atoms = ase.build.molecule(name)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.info.update(charge=charge, spin=spin)
        frames.append(atoms)
    return batch_graphs([from_ase(a, cutoff=4.0) for a in frames])


@pytest.mark.parametrize("charge_spin", [True, False])
def test_charged_batches_with_and_without_conditioning(charge_spin, recwarn):
    def build():
        torch.manual_seed(0)
        return mlip.build_model("equivariant", elements=[1, 6, 7, 8], lmax=1, channels=4,
                                num_layers=2, charge_spin=charge_spin).train()

    model = build()
    _assert_same(model, CompiledPotential(model, backend="none"), _charged_batch())
    # Without conditioning the model warns once that it ignores the charges; the compiled
    # call checks outside the trace, so it warns too when it comes first.
    ignored = [w for w in recwarn if "ignores the total charge" in str(w.message)]
    assert len(ignored) == (0 if charge_spin else 1)
    if not charge_spin:
        with pytest.warns(UserWarning, match="ignores the total charge"):
            CompiledPotential(build(), backend="none")(_charged_batch())


def _transformer(**extra):
    torch.manual_seed(0)
    return mlip.build_model("transformer", elements=[1, 6, 7, 8], dim=16, num_heads=2,
                            num_layers=2, edge_dim=8, order_parameters=2, **extra).train()


@pytest.mark.parametrize("extra", [{}, {"symmetry": "canonical", "canonical": {"penalty": 0.1}},
                                   {"charge_spin": True}],
                         ids=["plain", "canonical", "charge-spin"])
def test_transformers_trace_into_one_graph(extra):
    # The neighbour attention is a softmax over edge segments: no width taken from the data.
    model = _transformer(**extra)
    compiled = CompiledPotential(model, backend="none")
    for graph in (_acac_batch(0, 3), _acac_batch(10, 2)):
        _assert_same(model, compiled, graph)
    assert len(compiled._graphs) == 1
    if extra.get("charge_spin"):
        _assert_same(model, compiled, _charged_batch())
    if extra.get("symmetry") == "canonical":  # the frame report the auxiliary loss reads
        graph = _acac_batch(0, 3)
        torch.testing.assert_close(model.auxiliary_losses(compiled(graph))["frame"],
                                   model.auxiliary_losses(model(graph))["frame"])


def test_frame_averaging_is_refused_by_name():
    # Its frames depend on the covariance's eigenvalues (generic, axial or isotropic), a
    # branch on values per structure.
    from mlip.models.frame_averaging import FrameAveraged

    model = FrameAveraged(_transformer()).train()
    with pytest.raises(ConfigError, match="FrameAveraged could not be traced"):
        CompiledPotential(model, backend="none")(_acac_batch(0, 2))


def test_an_untraceable_model_is_refused_by_name(model, monkeypatch):
    inner = model.atomic_output

    def data_dependent(graph, edge_vec):
        out = inner(graph, edge_vec)
        return out * 2 if bool(out.sum() > 0) else out  # a branch on values

    monkeypatch.setattr(model, "atomic_output", data_dependent)
    with pytest.raises(ConfigError, match="EquivariantPotential could not be traced"):
        CompiledPotential(model, backend="none")(_acac_batch(0, 2))


def test_compile_with_bf16_is_refused(tmp_path):
    config = tiny_config(ACAC / "train_300K.xyz", tmp_path / "run",
                         run={"compile": True, "bf16": True, "device": "cuda"})
    with pytest.raises(ConfigError, match="run.compile and run.bf16"):
        train(config)


@pytest.mark.slow
def test_training_with_inductor_follows_the_eager_run(tmp_path):
    data = tmp_path / "train.xyz"
    ase.io.write(data, ase.io.read(ACAC / "train_300K.xyz", index=":24"), format="extxyz")
    losses = {}
    for flag in (False, True):
        run_dir = tmp_path / f"run-{flag}"
        train(tiny_config(data, run_dir, run={"compile": flag, "epochs": 2},
                          data={"max_atoms": 45}))
        losses[flag] = np.loadtxt(run_dir / "metrics.csv", delimiter=",", skiprows=1,
                                  usecols=(4, 5))
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("family", ["equivariant", "transformer"])
def test_inductor_on_cuda_follows_eager(family, model):
    # Inductor's CUDA code (Triton kernels) against the eager model, float64, with stress.
    model = (model if family == "equivariant" else _transformer()).to("cuda")
    compiled = CompiledPotential(model)
    for graph in (_acac_batch(0, 3), _acac_batch(10, 2)):
        graph = {k: v.to("cuda") if torch.is_tensor(v) else v for k, v in graph.items()}
        ref_out, ref_grads = _run(model, model, graph, stress=True)
        out, grads = _run(compiled, model, graph, stress=True)
        for key in ref_out:
            torch.testing.assert_close(out[key], ref_out[key], rtol=1e-7, atol=1e-9)
        for g, ref in zip(grads, ref_grads):
            torch.testing.assert_close(g, ref, rtol=1e-6, atol=1e-8)
    assert len(compiled._graphs) == 1
