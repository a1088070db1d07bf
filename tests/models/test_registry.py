"""The registry shows a family's own ImportError instead of calling its models unknown."""

import sys

import pytest

from mlip.models import registry


def test_import_error_in_a_family_surfaces(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlip.models.transformer", None)  # import fails
    with pytest.raises(ImportError, match="mlip.models.transformer"):
        registry.build_model("transformer-s")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'facet-z'.*facet-s"):
        registry.build_model("facet-z")
