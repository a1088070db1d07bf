"""The registry shows a family's own ImportError instead of calling its models unknown."""

import sys

import pytest

from mlip.models import registry


def test_import_error_in_a_family_surfaces(monkeypatch):
    import mlip.models

    monkeypatch.setitem(sys.modules, "mlip.models.transformer", None)  # import fails
    monkeypatch.delattr(mlip.models, "transformer", raising=False)  # as if never imported
    with pytest.raises(ImportError, match="mlip.models.transformer"):
        registry.build_model("transformer-s")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'facet-z'.*facet-s"):
        registry.build_model("facet-z")


def test_foreign_files_are_refused_without_unsafe_advice(tmp_path):
    import os

    import torch

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(registry.CheckpointError, match="not a file written by torch.save"):
        registry.load_model(text)

    class Code:
        def __reduce__(self):
            return (os.getcwd, ())

    pickled = tmp_path / "code.pt"
    torch.save({"format_version": 3, "x": Code()}, pickled)
    with pytest.raises(registry.CheckpointError, match="never unpickles") as err:
        registry.load_model(pickled)
    assert "weights_only" not in str(err.value)
