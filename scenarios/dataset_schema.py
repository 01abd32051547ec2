"""Scenario ``dataset:``: a synthetic world, a data folder, or one CSV file (re-exported by
scenarios/schema/)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CsvColumns", "DatasetConfig", "SyntheticConfig"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyntheticConfig(_Frozen):
    n_users: int = Field(300, ge=2, le=1_000_000)
    n_items: int = Field(400, ge=10, le=1_000_000)
    n_genres: int = Field(10, ge=2, le=18)
    dim: int = Field(8, ge=2, le=128, description="Latent taste dimensions.")
    history_mean: float = Field(30.0, gt=0, description="Mean interactions per user.")


class CsvColumns(_Frozen):
    """source: csv: which column holds what (rating and timestamp may be null: absent)."""

    user: str = Field("user", min_length=1)
    item: str = Field("item", min_length=1)
    rating: str | None = Field(
        "rating", min_length=1, description="null (or a file without this column): implicit "
        "feedback; rating figures say n/a.")
    timestamp: str | None = Field(
        "timestamp", min_length=1, description="Numbers or ISO dates; null (or absent): "
        "file order is time order.")


class DatasetConfig(_Frozen):
    source: Literal["synthetic", "files", "csv"] = "synthetic"
    path: str | None = Field(
        None, description="Data folder for source=files (--data or RECARENA_DATA override "
        "it); the CSV file for source=csv (relative to the scenario file; --data overrides "
        "it).")
    columns: CsvColumns = Field(CsvColumns(), description="source: csv: column names.")
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="source: csv: field separator; "
        "default: sniffed (comma, semicolon, tab or pipe).")
    history_fraction: float = Field(
        0.8, gt=0, le=1,
        description="Share of the ratings kept as history: with split global, the time "
        "quantile of the one cutoff; with split per_user, each user's earliest share.",
    )
    split: Literal["global", "per_user"] = Field(
        "global",
        description="global (leak-free): one time cutoff for everyone, history strictly "
        "before it, ties at it go to the future; per_user: each user's earliest share "
        "(leaks other users' later ratings into history; kept for comparison).",
    )
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _csv_fields(self) -> DatasetConfig:
        if self.source == "csv" and self.path is None:
            raise ValueError("source: csv needs path: the CSV file")
        if self.source != "csv" and (self.columns != CsvColumns()
                                     or self.delimiter is not None):
            raise ValueError("columns and delimiter are for source: csv")
        return self
