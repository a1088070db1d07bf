"""OC20 semantics in the loss and metrics: fixed atoms leave the force terms, tags weight them,
on the real OC20 frame (adsorbate + slab, FixAtoms, tags) and the S2EF sample chunk."""

import pytest

from mlip.data import keys as K
from mlip.data.graph import frame_to_graph
from mlip.data.loader import collate
from mlip.data.readers import read_frames
from mlip.metrics import Metrics
from mlip.train.config import ConfigError, DataConfig, LossConfig, TrainConfig, validate
from mlip.train.losses import WeightedLoss
from tests.helpers import SAMPLES, shared


@pytest.fixture(scope="module")
def slab():
    # required: CI has ../shared/data, and a skip here would hide the OC20 semantics
    oc20_frame = shared("oc20/oc20_frame_atoms.json", required=True)
    frame = next(iter(read_frames(oc20_frame, format="json")))
    graph = collate([frame_to_graph(frame, 4.0)])
    assert graph[K.FIXED].any() and not graph[K.FIXED].all()
    return graph


def _pred(graph, shift_where):
    forces = graph[K.FORCES].clone()
    forces[shift_where] += 0.5
    return {K.ENERGY: graph[K.ENERGY].clone(), K.FORCES: forces}


def _forces_loss(config, pred, graph):
    s, c = WeightedLoss(config).terms(pred, graph)["forces"]
    return float(s / c)


def test_fixed_atoms_leave_loss_and_metrics(slab):
    fixed = slab[K.FIXED]
    on_fixed = _pred(slab, fixed)
    assert _forces_loss(LossConfig(), on_fixed, slab) == 0.0
    assert _forces_loss(LossConfig(include_fixed=True), on_fixed, slab) > 0.0
    assert _forces_loss(LossConfig(), _pred(slab, ~fixed), slab) == pytest.approx(0.25)
    metrics = Metrics(per_element=True)
    metrics.update(on_fixed, slab)
    assert metrics.compute()["forces_mae"] == 0.0


def test_tags_weight_the_force_loss(slab):
    tags = slab[K.TAGS]
    free = ~slab[K.FIXED]
    on_surface = _pred(slab, (tags == 1) & free)
    # Weight 0 on the surface: its errors vanish; weight 1 elsewhere keeps the rest.
    assert _forces_loss(LossConfig(tag_weights={1: 0.0}), on_surface, slab) == 0.0
    assert _forces_loss(LossConfig(tag_weights={0: 0.0}), on_surface, slab) > 0.0
    with pytest.raises(ConfigError, match="tag_weights"):
        validate(TrainConfig(data=DataConfig(train="x.xyz"),
                             loss=LossConfig(tag_weights={"surface": 1.0})))


def test_s2ef_chunk_keeps_tags_fixed_and_referenced_energy():
    raw = list(read_frames(SAMPLES / "oc20_s2ef_sample.extxyz", format="extxyz"))
    referenced = list(read_frames(SAMPLES / "oc20_s2ef_sample.extxyz"))
    graphs = collate([frame_to_graph(f, 4.0) for f in referenced])
    assert K.TAGS in graphs and K.FIXED in graphs
    for r, f in zip(raw, referenced):
        assert f[K.ENERGY] != r[K.ENERGY]  # minus the system's reference, and no more
    assert len(referenced) == len(raw)
