"""The base of every scenario and role model: validated once, at load, then frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["SCHEMA_VERSION", "FrozenModel"]

SCHEMA_VERSION = 1


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
