"""Validated hyper-parameters shared by the classic recommenders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from tools.recommenders.base import Recommender

__all__ = ["ParamRecommender", "binarize", "resolve_params"]


def resolve_params(
    model: str, defaults: Mapping[str, int | float], given: Mapping[str, Any]
) -> dict[str, int | float]:
    """Merge ``given`` over ``defaults``, checking names, types and ranges.

    Integer parameters must be ints >= 1; float parameters numbers >= 0 (never bools).
    ``scenarios.schema.MODEL_PARAMS`` states the same rules for scenario files (a test
    keeps them in agreement).

    Args:
        model: Model name, used in error messages.
        defaults: Allowed parameter names with their default values (their type is the
            parameter's type).
        given: Parameters supplied by the caller.

    Returns:
        The complete parameter dict.

    Raises:
        ValueError: A parameter is unknown or has a bad value; the message names it.
    """
    out: dict[str, int | float] = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            allowed = ", ".join(defaults) or "none"
            raise ValueError(f"{model}: unknown parameter '{key}'; allowed: {allowed}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{model}: parameter '{key}' must be a number, got {value!r}")
        if isinstance(defaults[key], int):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{model}: parameter '{key}' must be an integer >= 1, "
                                 f"got {value!r}")
            out[key] = int(value)
        else:
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"{model}: parameter '{key}' must be >= 0, got {value!r}")
            out[key] = float(value)
    return out


def binarize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """A float64 copy of ``matrix`` with every stored non-zero set to 1."""
    x = matrix.tocsr().astype(np.float64)
    x.eliminate_zeros()
    x.data[:] = 1.0
    return x


class ParamRecommender(Recommender):
    """A recommender whose keyword parameters are checked against ``defaults``.

    ``self.params`` holds the complete, validated parameter set (defaults filled in), so it
    can be logged next to results.
    """

    defaults: ClassVar[Mapping[str, int | float]] = {}

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed, **resolve_params(self.name, self.defaults, params))

    def _check_fitted(self) -> None:
        """Raise the base class's RuntimeError if ``fit`` has not been called."""
        _ = self.train_matrix

    def p_int(self, key: str) -> int:
        return int(self.params[key])

    def p_float(self, key: str) -> float:
        return float(self.params[key])
