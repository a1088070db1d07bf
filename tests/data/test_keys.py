"""The field table in mlip.data.keys is the one schema: the tuples, the HDF5 layout, the readers'
checks, the batch fills and the loss targets all come from it, and say the same."""

import math

import numpy as np
import pytest
import torch

from mlip.data import hdf5, loader
from mlip.data import keys as K
from mlip.data.graph import frame_to_graph
from mlip.data.loader import collate_targets
from mlip.data.readers import _common
from mlip.data.readers._common import BadRecord, check_record

# The HDF5 cache's layout is a file format (FORMAT_VERSION 1): pinned here, not derived, so
# that a change to the field table that would change it fails until the version is bumped.
FORMAT_1_PER_ATOM = {
    K.POSITIONS: ((3,), np.float64, None),
    K.ATOMIC_NUMBERS: ((), np.int64, None),
    K.FORCES: ((3,), np.float64, math.nan),
    K.TAGS: ((), np.int64, 0),
    K.FIXED: ((), np.bool_, False),
}
FORMAT_1_PER_FRAME = {
    K.CELL: ((3, 3), np.float64, None),
    K.PBC: ((3,), np.bool_, None),
    K.ENERGY: ((), np.float64, math.nan),
    K.STRESS: ((3, 3), np.float64, math.nan),
    K.CHARGE: ((), np.float64, math.nan),
    K.SPIN: ((), np.float64, math.nan),
}


def _same_fill(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or (a == b and type(a) is type(b))


def test_every_key_constant_is_one_field():
    constants = {v for k, v in vars(K).items() if k.isupper() and isinstance(v, str)}
    assert constants == set(K.FIELDS)
    for name, field in K.FIELDS.items():
        assert field.name == name
        assert field.level in K.LEVELS and field.dtype in K.DTYPES and field.role in K.ROLES


def test_graph_keys_have_one_level_and_one_dtype():
    levels = (K.PER_ATOM, K.PER_STRUCTURE, K.PER_EDGE, (K.EDGE_INDEX,))
    dtypes = (K.FLOAT_KEYS, K.INT_KEYS, K.BOOL_KEYS)
    for groups in (levels, dtypes):
        flat = [key for group in groups for key in group]
        assert len(flat) == len(set(flat)) and set(flat) == set(K.ALL_KEYS)
    assert set(K.ALL_KEYS) == {k for k, f in K.FIELDS.items() if f.role != "reader"}
    for key in K.ALL_KEYS:
        field = K.FIELDS[key]
        assert (key in K.PER_ATOM) == (field.level == "atom")
        assert (key in K.PER_STRUCTURE) == (field.level == "structure")
        assert (key in K.FLOAT_KEYS) == (field.dtype == "float")


def test_frame_fields():
    assert K.REQUIRED == (K.POSITIONS, K.ATOMIC_NUMBERS, K.CELL, K.PBC)
    assert K.TARGETS == (K.ENERGY, K.FORCES, K.STRESS)
    assert set(K.FRAME) == set(K.REQUIRED) | set(K.OPTIONAL)
    assert set(K.INPUTS) == set(K.FRAME) - set(K.TARGETS)
    # What a graph carries beyond the frame is what frame_to_graph builds, never read from files.
    assert K.VIRIAL not in K.FRAME and K.NODE_ENERGY not in K.FRAME
    assert all(K.FIELDS[k].fill is None for k in K.FIELDS if k not in K.FRAME)


@pytest.mark.parametrize(
    ("table", "pinned", "level"),
    [(hdf5.PER_ATOM, FORMAT_1_PER_ATOM, "atom"), (hdf5.PER_FRAME, FORMAT_1_PER_FRAME, "structure")],
)
def test_hdf5_layout_is_the_field_table_and_format_1(table, pinned, level):
    assert hdf5.FORMAT_VERSION == 1
    assert list(table) == list(pinned)  # dataset order: the order they are created in
    for key, (shape, dtype, fill) in table.items():
        want_shape, want_dtype, want_fill = pinned[key]
        assert shape == want_shape and dtype is want_dtype and _same_fill(fill, want_fill), key
        field = K.FIELDS[key]
        assert (field.level, field.shape, field.numpy_dtype) == (level, shape, dtype)
    assert hdf5.OPTIONAL == [k for k in (*hdf5.PER_ATOM, *hdf5.PER_FRAME) if k in K.OPTIONAL]


def test_reader_checks_come_from_the_table():
    # In order: the first misshapen key is the one a bad record names.
    assert list(_common._SHAPES.items()) == [
        (K.POSITIONS, ("N", 3)), (K.ATOMIC_NUMBERS, ("N",)), (K.CELL, (3, 3)), (K.PBC, (3,)),
        (K.ENERGY, ()), (K.FORCES, ("N", 3)), (K.STRESS, (3, 3)), (K.CHARGE, ()), (K.SPIN, ()),
        (K.TAGS, ("N",)), (K.FIXED, ("N",)),
    ]  # fmt: skip
    assert _common._FINITE == (
        K.POSITIONS, K.CELL, K.ENERGY, K.FORCES, K.STRESS, K.CHARGE, K.SPIN
    )  # fmt: skip


def _frame(n=2):
    return {
        K.POSITIONS: np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])[:n],
        K.ATOMIC_NUMBERS: np.array([1, 1])[:n],
        K.CELL: np.eye(3) * 5.0,
        K.PBC: np.ones(3, bool),
        "name": "f:0",
    }


@pytest.mark.parametrize("key", K.FRAME)
def test_readers_refuse_a_misshapen_frame_field(key):
    frame = _frame()
    frame[key] = np.zeros((*K.frame_shape(key, 2), 2), K.FIELDS[key].numpy_dtype)
    with pytest.raises(BadRecord, match=f"key '{key}': shape") as err:
        check_record(frame)
    assert err.value.key == key


def test_batch_fills_come_from_the_table():
    assert [f.name for f in loader._DEFAULTS] == [K.TAGS, K.FIXED]
    plain, tagged = _frame(), {**_frame(), K.TAGS: np.array([1, 2]), K.FIXED: np.ones(2, bool)}
    batch = loader.collate([frame_to_graph(f, 3.0) for f in (plain, tagged)])
    assert batch[K.TAGS].dtype == torch.long and batch[K.TAGS].tolist() == [0, 0, 1, 2]
    assert batch[K.FIXED].dtype == torch.bool and batch[K.FIXED].tolist() == [0, 0, 1, 1]


def test_missing_targets_are_nan_of_their_shape():
    labelled = {**_frame(), K.ENERGY: np.float64(1.0), K.FORCES: np.ones((2, 3)),
                K.STRESS: np.eye(3)}  # fmt: skip
    batch = collate_targets([frame_to_graph(f, 3.0) for f in (_frame(), labelled)])
    assert batch[K.ENERGY].shape == (2,) and batch[K.ENERGY][0].isnan()
    assert batch[K.FORCES].shape == (4, 3) and batch[K.FORCES][:2].isnan().all()
    assert batch[K.STRESS].shape == (2, 3, 3) and batch[K.STRESS][0].isnan().all()


def test_other_copies_read_the_table():
    from mlip.models import frame_averaging, registry

    not_inputs = {K.ENERGY, K.FORCES, K.STRESS, K.NODE_ENERGY, K.VIRIAL}
    assert set(frame_averaging._TARGETS) == not_inputs
    assert registry.UNITS == {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"}


def test_registering_refuses_a_second_or_malformed_field():
    with pytest.raises(ValueError, match="twice"):
        K._field(K.POSITIONS, "atom", (3,), "float", "input")
    with pytest.raises(ValueError, match="bad level"):
        K._field("molecule_id", "molecule", (), "int", "graph")
    with pytest.raises(ValueError, match="fill"):
        K._field("edge_weight", "edge", (), "float", "graph", fill=0.0)
    assert "molecule_id" not in K.FIELDS and "edge_weight" not in K.FIELDS
