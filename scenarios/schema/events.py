"""Scripted events: items released and models switched at a given round."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from scenarios.schema.base import FrozenModel
from scenarios.schema.recommender import ModelName, check_params, params_json_schema

__all__ = ["AddItemsEvent", "Event", "SwitchRecommenderEvent"]


class AddItemsEvent(FrozenModel):
    """Withhold the ``count`` newest items (by release year, then first rating) from the
    start and release them at ``at_round``; later events get newer items."""

    action: Literal["add_items"]
    at_round: int = Field(ge=2)
    count: int = Field(ge=1)


class SwitchRecommenderEvent(FrozenModel):
    """From ``at_round`` on, the arm ``recommender`` uses another model."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=params_json_schema)

    action: Literal["switch_recommender"]
    at_round: int = Field(ge=2)
    recommender: str
    model: ModelName
    params: dict[str, Any] = Field({}, description="As a recommender's params, for the new model.")

    @field_validator("params")
    @classmethod
    def _model_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_params(info.data.get("model"), v)


Event = Annotated[AddItemsEvent | SwitchRecommenderEvent, Field(discriminator="action")]
