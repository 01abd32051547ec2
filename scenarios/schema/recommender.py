"""Recommender arms: model names, per-model parameters, candidates and cold start."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from scenarios.schema.base import FrozenModel

__all__ = [
    "MODEL_PARAMS",
    "ALSParams",
    "ArmModel",
    "BPRParams",
    "BuiltinModel",
    "CandidateConfig",
    "ColdStartConfig",
    "EASEParams",
    "ItemKNNParams",
    "ModelName",
    "ModelParams",
    "NoParams",
    "PluginModel",
    "RecommenderConfig",
    "check_params",
    "params_doc",
    "params_json_schema",
]

BuiltinModel = Literal["random", "pop", "itemknn", "ease", "als", "bpr"]
# Your own recommender: an import path (mypkg.module:Class) or an installed entry point of
# the group recarena.recommenders; found and its params checked by scenarios/plugins.py.
PluginModel = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.-]*(:[A-Za-z_][\w.]*)?$")]
ModelName = BuiltinModel | PluginModel
ArmModel = Literal["random", "pop", "itemknn", "ease", "als", "bpr", "agent"] | PluginModel


class ModelParams(FrozenModel):
    # Strict: YAML's "100" or true is not a number, and 2.5 is not a count.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class NoParams(ModelParams):
    """random and pop take no parameters."""


class ItemKNNParams(ModelParams):
    k_neighbors: int = Field(100, ge=1, description="Neighbours kept per item.")
    shrink: float = Field(10.0, ge=0, description="Added to the cosine denominator.")


class EASEParams(ModelParams):
    l2: float = Field(500.0, gt=0, description="L2 regularisation of the item-item weights.")


class ALSParams(ModelParams):
    factors: int = Field(64, ge=1, description="Latent factors.")
    regularization: float = Field(5.0, ge=0)
    alpha: float = Field(5.0, ge=0, description="Confidence of observed interactions.")
    iterations: int = Field(15, ge=1)


class BPRParams(ModelParams):
    factors: int = Field(64, ge=1, description="Latent factors (plus an item bias).")
    learning_rate: float = Field(0.01, ge=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)


# The parameters each model takes (tools/recommenders checks the same rules again when a
# model is built; tests keep the two in agreement).
MODEL_PARAMS: dict[str, type[ModelParams]] = {
    "random": NoParams, "pop": NoParams, "itemknn": ItemKNNParams, "ease": EASEParams,
    "als": ALSParams, "bpr": BPRParams,
}


def params_doc() -> str:
    parts = []
    for model, cls in MODEL_PARAMS.items():
        fields = [f"{n} ({getattr(f.annotation, '__name__', f.annotation)}, default {f.default})"
                  for n, f in cls.model_fields.items()]
        parts.append(f"{model}: {', '.join(fields) or 'none'}")
    return "Model parameters, checked at load. " + "; ".join(parts) + "."


def check_params(model: str | None, params: dict[str, Any]) -> dict[str, Any]:
    if model not in MODEL_PARAMS:
        return params  # the model field has already failed
    cls = MODEL_PARAMS[model]
    takes = (f"it takes: {', '.join(cls.model_fields)}" if cls.model_fields
             else "it takes none")
    unknown = [k for k in params if k not in cls.model_fields]
    if unknown:
        # Located at the unknown name itself, and saying what the model does take.
        raise ValidationError.from_exception_data("params", [{
            "type": PydanticCustomError("unknown_parameter",
                                        "unknown parameter of {model}; {takes}",
                                        {"model": model, "takes": takes}),
            "loc": (str(k),), "input": params[k]} for k in unknown])
    # Only what was given, typed: the trace shows what the file says.
    return cls.model_validate(params).model_dump(exclude_unset=True)


def params_json_schema(schema: dict[str, Any]) -> None:
    # Editors get the same per-model check as the loader: if model is X, params is X's.
    schema["allOf"] = [
        {"if": {"properties": {"model": {"const": m}}, "required": ["model"]},
         "then": {"properties": {"params": cls.model_json_schema()}}}
        for m, cls in MODEL_PARAMS.items()
    ]


class ColdStartConfig(FrozenModel):
    """How an arm shows items released by ``add_items`` events, which no model can rank
    yet (see tools/recommenders/cold_start.py)."""

    policy: Literal["none", "content", "random"] = Field(
        "content",
        description="content: reserved slots go to the new items most similar in genres "
        "and title/description words to what the user interacted with; random: to new "
        "items in seeded random order (exploration); none: no reserved slots.",
    )
    share: float = Field(
        0.25, ge=0, le=1,
        description="Share of every page's slots reserved for released items, rounded up "
        "(at least one slot when > 0); new items the model picks itself count.",
    )

    @model_validator(mode="after")
    def _share_with_policy(self) -> ColdStartConfig:
        if self.policy != "none" and self.share == 0:
            raise ValueError(f"share 0 reserves nothing for policy {self.policy!r}; "
                             "use policy: none or a share > 0")
        return self


class CandidateConfig(FrozenModel):
    """model: agent: the classic model whose top ``n`` unseen items the agent ranks."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=params_json_schema)

    model: ModelName = "ease"
    n: int = Field(20, ge=1, le=1000, description="Candidates per request.")
    params: dict[str, Any] = Field({}, description=params_doc())

    @field_validator("params")
    @classmethod
    def _model_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_params(info.data.get("model"), v)


class RecommenderConfig(FrozenModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=params_json_schema)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: ArmModel = Field(
        description="A classic model; your own, as an import path (mypkg.module:Class) or "
        "an installed entry point of group recarena.recommenders (docs/recommenders.md); or "
        "agent: an LLM recommender role or team (agent: or team:) ranking the candidates of "
        "a classic model (candidates:).")
    agent: str | None = Field(
        None, description="model: agent: a team file (kind: team) or a recommender role "
        "file (kind: recommender), relative to the scenario file.")
    team: dict[str, Any] | None = Field(
        None, description="model: agent: an inline team, as a team file's fields (manager, "
        "members, max_turns, memory; role files relative to the scenario file).")
    candidates: CandidateConfig = Field(
        CandidateConfig(), description="model: agent: the candidate generator.")
    params: dict[str, Any] = Field({}, description=params_doc())
    retrain: bool = Field(
        False, description="Refit between rounds on history plus simulated watches."
    )
    cold_start: ColdStartConfig = Field(
        ColdStartConfig(),
        description="Reserved slots for items released by add_items events (a switched-to "
        "model keeps the arm's policy).",
    )

    @field_validator("params")
    @classmethod
    def _model_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_params(info.data.get("model"), v)

    @model_validator(mode="after")
    def _agent_fields(self) -> RecommenderConfig:
        if self.model == "agent":
            if (self.agent is None) == (self.team is None):
                raise ValueError("model: agent needs exactly one of agent: (a team or "
                                 "recommender role file) or team: (an inline team)")
            if self.params:
                raise ValueError("model: agent takes no params; give the candidate "
                                 "model's under candidates.params")
        elif self.agent is not None or self.team is not None:
            raise ValueError(f"agent: and team: are for model: agent, not {self.model}")
        return self
