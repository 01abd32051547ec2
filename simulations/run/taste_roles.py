"""A utility role under another taste family, with that family's calibrated parameters.

The watch threshold, exit and interview centres and the rating weight of the utility brain
are calibrated per taste family on tuning users (bench/tune_taste.py writes
scenarios/taste_calibration.json): a similarity in one family's space is not on the
same scale as in another's. ``role_for_family`` swaps the family of a role and lays that
family's calibration over its parameters, so ``--taste`` comparisons compare user models,
not miscalibrated thresholds. A null family ``none`` also sets ``taste_weight`` to 0 (a
popularity-only user).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from scenarios.schema import RoleConfig, UtilityParams
from scenarios.taste import LEARNED_FAMILIES, NULL_FAMILIES, TASTE_FAMILIES, TasteConfig

__all__ = ["CALIBRATION", "calibration", "parse_families", "role_for_family"]

# JSON beside the scenarios (not in roles/: every YAML file there is a role).
CALIBRATION = Path(str(files("scenarios"))) / "taste_calibration.json"


def calibration(path: Path | None = None) -> dict[str, dict[str, float]]:
    """Family -> calibrated parameter values (default file: ``CALIBRATION``; empty when
    the file is missing)."""
    path = path or CALIBRATION
    if not path.exists():
        return {}
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, dict[str, float]] = {}
    for fam, params in data.items():
        if fam.startswith("_"):  # a comment
            continue
        if fam not in TASTE_FAMILIES or not isinstance(params, dict):
            raise ValueError(f"{path}: {fam!r} is not a taste family with parameters")
        UtilityParams.model_validate(params)  # a bad value fails here, at load
        out[fam] = {str(k): float(v) for k, v in params.items()}
    return out


def parse_families(text: str, *, allow_null: bool = False) -> list[str]:
    """``all`` or a comma list of families, validated (one-line error)."""
    allowed = LEARNED_FAMILIES + (NULL_FAMILIES if allow_null else ())
    names = list(LEARNED_FAMILIES) if text.strip() == "all" else [
        t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ValueError(f"--taste: unknown family {', '.join(bad) or '(none)'}; "
                         f"choose from all, {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ValueError("--taste: a family is named twice")
    return names


def role_for_family(role: RoleConfig, family: str,
                    table: dict[str, dict[str, float]] | None = None) -> RoleConfig:
    """``role`` with its taste family replaced and that family's calibration applied."""
    if role.brain.kind != "utility":
        return role
    table = calibration() if table is None else table
    values = {**role.brain.params.model_dump(), **table.get(family, {})}
    if family == "none":
        values["taste_weight"] = 0.0
    old = role.brain.taste
    taste = TasteConfig(family=family,
                        factors=old.factors, genre_weight=old.genre_weight)
    brain = role.brain.model_copy(update={"params": UtilityParams.model_validate(values),
                                          "taste": taste})
    return role.model_copy(update={"brain": brain})
