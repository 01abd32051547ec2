"""Matrix-factorisation baselines on top of the ``implicit`` library (CPU implementations).

Both models are refitted from scratch on every ``fit`` call (a fresh ``implicit`` model, so
no warm start leaks between calls), run single-threaded with BLAS pinned to one thread, and
are seeded with ``random_state=seed``: the same data and seed give the same factors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from tools.recommenders.params import ParamRecommender, binarize

__all__ = ["ALS", "BPR"]


class _FactorModel(ParamRecommender):
    """Scores are ``user_factors[users] @ item_factors.T``."""

    _user_factors: np.ndarray
    _item_factors: np.ndarray

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        u = self._user_factors[np.asarray(users, dtype=np.int64)]
        return np.asarray(u @ self._item_factors.T, dtype=np.float64)

    @property
    def user_factors(self) -> np.ndarray:
        """Users x factors of the last fit (BPR: a constant 1 in the last column)."""
        self._check_fitted()
        return self._user_factors

    @property
    def item_factors(self) -> np.ndarray:
        """Items x factors of the last fit (BPR: the item bias in the last column)."""
        self._check_fitted()
        return self._item_factors

    def _empty_factors(self, matrix: sp.csr_matrix) -> None:
        # implicit cannot sample from an empty matrix; with no data every score is 0.
        self._user_factors = np.zeros((matrix.shape[0], 1), dtype=np.float32)
        self._item_factors = np.zeros((matrix.shape[1], 1), dtype=np.float32)


class ALS(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky, 2008) via ``implicit``'s CPU solver.

    Observed entries get confidence ``alpha`` (``implicit`` scales the binary matrix by
    ``alpha``), unobserved ones confidence 1 and preference 0.

    Defaults were picked on a validation split of MovieLens 100K (the last two train items
    per user, never the test item): HR@10 is flat for factors 32-128 and regularization
    0.05-20, while alpha >= 20 over-weights the positives and loses ~0.02 HR@10.
    """

    name = "als"
    defaults: ClassVar[dict[str, int | float]] = {
        "factors": 64,
        "regularization": 5.0,
        "alpha": 5.0,
        "iterations": 15,
    }

    def _fit(self, matrix: sp.csr_matrix) -> None:
        x = binarize(matrix).astype(np.float32)
        if x.nnz == 0:
            self._empty_factors(x)
            return
        # One BLAS thread: implicit warns otherwise, and it keeps results reproducible.
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=self.p_int("factors"),
                regularization=self.p_float("regularization"),
                alpha=self.p_float("alpha"),
                iterations=self.p_int("iterations"),
                use_native=True,
                use_cg=True,
                num_threads=1,
                random_state=self.seed,
            )
            model.fit(x, show_progress=False)
        self._user_factors = np.asarray(model.user_factors)
        self._item_factors = np.asarray(model.item_factors)


class BPR(_FactorModel):
    """Bayesian Personalised Ranking (Rendle et al., 2009) via ``implicit``'s CPU SGD.

    ``implicit`` appends an item-bias column to the factors (the user side holds a constant
    1 there), so ``user_factors @ item_factors.T`` already includes the bias. Users with no
    interactions never get an update; their random initial factors are zeroed so that they
    are ranked by the learned item bias alone.

    Defaults (``implicit``'s own learning rate and regularization, 100 epochs) were the best
    of a small grid on a MovieLens 100K validation split; learning rates >= 0.05 lost
    0.02-0.05 HR@10 there.
    """

    name = "bpr"
    defaults: ClassVar[dict[str, int | float]] = {
        "factors": 64,
        "learning_rate": 0.01,
        "regularization": 0.01,
        "iterations": 100,
    }

    def _fit(self, matrix: sp.csr_matrix) -> None:
        x = binarize(matrix).astype(np.float32)
        if x.nnz == 0:
            self._empty_factors(x)
            return
        with threadpool_limits(limits=1, user_api="blas"):
            model = BayesianPersonalizedRanking(
                factors=self.p_int("factors"),
                learning_rate=self.p_float("learning_rate"),
                regularization=self.p_float("regularization"),
                iterations=self.p_int("iterations"),
                num_threads=1,
                random_state=self.seed,
            )
            model.fit(x, show_progress=False)
        user_factors = np.array(model.user_factors, copy=True)
        cold = np.diff(x.indptr) == 0
        user_factors[cold, :-1] = 0.0
        self._user_factors = user_factors
        self._item_factors = np.asarray(model.item_factors)
