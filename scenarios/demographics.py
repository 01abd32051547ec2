"""User attributes shared by the schema, the social graph and the analysis of a run.

Plain Python (no pydantic), so the analysis of a trace can band ages without loading the
scenario schema. Re-exported by scenarios/schema/.
"""

from __future__ import annotations

__all__ = ["AGE_BANDS", "age_band"]

# MovieLens-1M's age bands (upper bound, exclusive; label), the usual ones in fairness
# studies of MovieLens; 56 and over is the last band.
_AGE_UPPER = ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"),
              (56, "50-55"))
AGE_BANDS: tuple[str, ...] = (*(label for _, label in _AGE_UPPER), "56+")


def age_band(age: str | int | None) -> str | None:
    """MovieLens-1M age band of an age (None when it is not a whole number)."""
    try:
        a = int(str(age).strip())
    except (TypeError, ValueError):
        return None
    return next((label for upper, label in _AGE_UPPER if a < upper), AGE_BANDS[-1])
