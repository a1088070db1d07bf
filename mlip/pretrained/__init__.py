"""Trained models that ship inside the package (DESIGN §6): ``mlip.load_pretrained(name)``.

Each model is ``<name>.pt``, an ordinary checkpoint, beside ``<name>.yaml``, its card: the
training data and its licence, the level of theory, the command that trained it, the test
errors on a split that the card names, the elements and the domain where it can be trusted.
Nothing is downloaded. Every verb and class that takes a checkpoint path also takes these
names (``mlip md xtb-charged-facet-s ...``, ``MLIPCalculator("xtb-charged-facet-s")``).

This module imports neither torch nor the models until a model is loaded, so that listing
the names and printing a card (``mlip info NAME``) stay instant.
"""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).resolve().parent

#: what every card states; tests/pretrained checks each shipped card has them all
CARD_KEYS = (
    "name", "summary", "model", "elements", "data", "licence", "level_of_theory", "command",
    "test", "domain", "limitations",
)


def pretrained_models() -> list[str]:
    """Names of the shipped models (each a checkpoint with its card)."""
    return sorted(p.stem for p in _DIR.glob("*.pt") if p.with_suffix(".yaml").is_file())


def _check(name: str) -> str:
    if name not in pretrained_models():
        raise KeyError(f"no pretrained model {name!r}; shipped: {pretrained_models() or 'none'}")
    return name


def pretrained_path(name: str) -> Path:
    """The checkpoint file of a shipped model."""
    return _DIR / f"{_check(name)}.pt"


def model_card(name: str) -> dict:
    """The card of a shipped model, as a dict (see :data:`CARD_KEYS`)."""
    import yaml

    with open(_DIR / f"{_check(name)}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def resolve_model(spec) -> Path:
    """A checkpoint path for ``spec``: an existing file as given, else a shipped model's name.
    A spec that is neither is returned as a path, for the reader to report."""
    path = Path(spec)
    if path.is_file() or not isinstance(spec, str) or spec not in pretrained_models():
        return path
    return pretrained_path(spec)


def load_pretrained(name: str, device=None, dtype=None):
    """The shipped model ``name`` as a :class:`~mlip.models.base.Potential` in eval mode."""
    from ..models.registry import load_model

    return load_model(pretrained_path(name), device=device, dtype=dtype)


def evaluate_on_split(model, config_path, max_atoms: int = 512) -> dict:
    """The model's errors on the test split of a training config (its test file, or its
    ``data.test_fraction`` of train), as a run's ``test_metrics.json`` records them. Paths in
    the config are relative to the working directory, as for ``mlip train``."""
    from ..evaluate import evaluate
    from ..train.config import load_config
    from ..train.prepare import split_data

    test = split_data(load_config(config_path))[2]
    if test is None:
        raise ValueError(f"{config_path} has no test set (data.test or data.test_fraction)")
    return evaluate(model, test, max_atoms=max_atoms)


def reproduce_test_errors(name: str) -> dict:
    """Re-evaluate a shipped model on the split its card names (run from a source checkout,
    where the card's config and its data are); compare with ``model_card(name)["test"]``."""
    return evaluate_on_split(load_pretrained(name), model_card(name)["test"]["config"])


def format_card(card: dict) -> str:
    """A card as text for a terminal: one field a paragraph, the test errors as a table."""
    lines = [f"{card['name']}: {card.get('summary', '')}".rstrip(": ")]
    for key in CARD_KEYS[2:]:
        value = card.get(key)
        if value is None or key == "test":
            continue
        label = key.replace("_", " ")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{label:<16}{str(value).strip()}")
    test = card.get("test") or {}
    if test:
        lines.append(f"{'test':<16}{test.get('split', '')}: {test.get('description', '')}")
        for group, metrics in _metric_rows(test):
            lines.append(f"  {group:<22}" + "  ".join(
                f"{k} {1000 * v:.2f}" for k, v in metrics.items() if isinstance(v, float)))
        lines.append("  (meV/atom for energy, meV/Å for forces, meV/Å³ for stress)")
    return "\n".join(lines)


def _metric_rows(test: dict):
    yield "all", {k: v for k, v in test.get("metrics", {}).items() if k.endswith(("mae", "rmse"))}
    for group, metrics in (test.get("metrics", {}).get("per_state") or {}).items():
        yield f"charge/spin {group}", {
            k: v for k, v in metrics.items() if k.endswith(("mae", "rmse"))
        }
