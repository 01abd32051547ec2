"""Plug-in recommenders named in a scenario: found, imported and their params checked at
load, before any work (the classes themselves: tools/recommenders/plugin.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from scenarios.schema import MODEL_PARAMS, Scenario

__all__ = ["model_problems", "plugin_problems"]

Loc = tuple[str | int, ...]


def _models(scn: Scenario) -> Iterator[tuple[Loc, str, Mapping[str, Any]]]:
    for i, r in enumerate(scn.recommenders):
        if r.model == "agent":
            yield ("recommenders", i, "candidates"), r.candidates.model, r.candidates.params
        else:
            yield ("recommenders", i), r.model, r.params
    for i, ev in enumerate(scn.events):
        model = getattr(ev, "model", None)
        if model is not None:
            yield ("events", i), model, ev.params  # type: ignore[union-attr]


def model_problems(model: str, params: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Problems of one plug-in ``model`` with ``params``, located relative to the mapping
    that holds ``model:`` and ``params:`` (empty for a built-in model)."""
    if model in MODEL_PARAMS or model == "agent":
        return []
    from tools.recommenders.plugin import PluginError, load_plugin, plugin_param_problems

    try:
        cls = load_plugin(model)
    except PluginError as e:
        return [(("model",), str(e))]
    return [(("params", key) if key else ("params",), msg)
            for key, msg in plugin_param_problems(cls, model, params)]


def plugin_problems(scn: Scenario) -> list[tuple[Loc, str]]:
    """Every plug-in model of the scenario that cannot be loaded, or whose params its
    constructor does not take, as (location, message)."""
    return [(loc + sub, msg) for loc, model, params in _models(scn)
            for sub, msg in model_problems(model, params)]
