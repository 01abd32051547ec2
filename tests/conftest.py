"""Shared fixtures: where MovieLens lives, tiny datasets, a repo root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ml-100k"


def ml100k_path() -> Path:
    """MovieLens 100K: RECARENA_DATA, else ../shared/data/ml-100k beside the repo."""
    return Path(os.environ.get("RECARENA_DATA") or DEFAULT_DATA)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def ml100k() -> Path:
    p = ml100k_path()
    if not (p / "ml-100k.inter").exists() and not (p / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found at {p} (set RECARENA_DATA)")
    return p
