"""Which ``environment.kind`` a scenario may name, and the settings each one takes.

The schema layer imports no engine, so it cannot look at the environments' registry
(simulations.environments); this small registry is what it validates against instead.
The shipped kinds are known here; ``simulations.environments.register`` adds a plug-in
environment (and its pydantic settings model, if it declares one) when its module is
imported, so a scenario that names it validates at load like a shipped one; a kind not
yet known is looked up among the installed entry points of group
``recarena.environments`` (name: the kind, value: the module that registers it), so
``recarena run`` finds an installed plug-in without code. A plug-in's settings sit under
``environment.settings`` and are validated by its model at load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "SHIPPED_ENVIRONMENTS",
    "PluggableEnvironment",
    "environment_kinds",
    "register_environment_kind",
    "settings_model",
    "validate_kind",
    "validate_settings",
]

ENTRY_POINT_GROUP = "recarena.environments"

# The shipped environments' settings are EnvironmentConfig's own fields.
SHIPPED_ENVIRONMENTS = ("feed", "conversation")

_KINDS: dict[str, type[BaseModel] | None] = dict.fromkeys(SHIPPED_ENVIRONMENTS)


def register_environment_kind(kind: str, settings: type[BaseModel] | None = None) -> None:
    """Let scenarios name ``environment.kind: KIND`` (with ``settings`` validated by the
    given model). Called by ``simulations.environments.register``."""
    if kind in SHIPPED_ENVIRONMENTS and settings is not None:
        raise ValueError(f"the shipped environment {kind!r} takes no settings model")
    _KINDS[kind] = settings


def environment_kinds() -> tuple[str, ...]:
    """Every kind a scenario may name, shipped first."""
    return tuple(_KINDS)


def settings_model(kind: str) -> type[BaseModel] | None:
    return _KINDS.get(kind)


def _load_entry_point(kind: str) -> None:
    """Import the module an installed ``recarena.environments`` entry point named
    ``kind`` points at (importing it registers the environment)."""
    eps = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
           if ep.name == kind]
    if not eps:
        return
    module = eps[0].value.partition(":")[0]
    try:
        importlib.import_module(module)
    except Exception as e:  # any failure in the user's module is reported in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"cannot load environment entry point {kind!r} -> {module}: "
                         f"{type(e).__name__}: {first}") from None


def validate_kind(kind: str) -> str:
    if kind not in _KINDS:
        _load_entry_point(kind)
    if kind not in _KINDS:
        raise ValueError(f"unknown environment kind {kind!r}; known: "
                         f"{', '.join(environment_kinds())} (a plug-in environment is known "
                         "once its module is imported, or through an entry point of group "
                         f"{ENTRY_POINT_GROUP})")
    return kind


def validate_settings(kind: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` checked by the kind's model, with its defaults filled in."""
    model = _KINDS.get(kind) if kind is not None else None
    if model is None:
        if settings:
            raise ValueError(f"the {kind} environment takes no settings; drop "
                             "environment.settings")
        return settings
    try:
        return model.model_validate(settings).model_dump(mode="json")
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"{where + ': ' if where else ''}{err['msg']}") from None


class PluggableEnvironment(BaseModel):
    """``environment.kind`` (shipped or registered) and a plug-in's ``settings``; the
    scenario schema's EnvironmentConfig builds on it. Empty settings are left out of
    dumps, so configs (and the traces and hashes made of them) of shipped environments
    read as before."""

    kind: str = Field(
        "feed", description="feed: page-by-page recommendations; conversation: the user "
        "describes what it wants and the recommender answers turn by turn; or a plug-in "
        "environment's name.", json_schema_extra={"examples": list(SHIPPED_ENVIRONMENTS)})
    settings: dict[str, Any] = Field(
        {}, description="A plug-in environment's own settings (checked by its model).")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        return validate_kind(v)

    @field_validator("settings")
    @classmethod
    def _valid_settings(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return validate_settings(info.data.get("kind"), v)

    @model_serializer(mode="wrap")
    def _without_empty_settings(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict) and not out.get("settings"):
            out.pop("settings", None)
        return out
