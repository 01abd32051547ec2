"""Taste spaces: the item (and user) embeddings a utility user's taste is measured in.

Every family (scenarios/taste.py) gives items ``x`` dims and, per user, a unit taste vector,
so that ``taste_u . item_i`` orders the catalogue as that family's model would for the
user. Each space is a genre block (rows of length ``genre_weight``) beside a collaborative
block whose rows over items with history have mean length 1; items nobody interacted with
get their collaborative row predicted from content (tools/item_space.py
``impute_factors``), as for the EASE space.

- ``ease``: EASE in symmetric low-rank form (tools/item_space.py); taste = mean of the
  history's rows.
- ``puresvd``: the top right singular vectors of the binary history (``x_u V V^T``);
  taste = mean of the history's rows. Not an arm: no recommender shares this model.
- ``itemknn``: the low-rank form of item-item cosine similarity (``V S`` of the
  column-normalised history, so ``e_i . e_j`` is about ``cos(i, j)``); taste = mean of
  the history's rows, i.e. the sum of similarities to what the user watched.
- ``als`` / ``bpr``: the fitted item factors; taste = the fitted user factors (BPR's bias
  column included), scaled to the length the history's mean row has.
- ``ensemble``: its members side by side, each member's item block divided by the typical
  spread of its users' similarities, each member's user block unit length: a user's
  similarity is the sum of the members' standardised similarities, so no member's scale
  dominates.
- ``random`` (null): random item and user vectors. ``none`` (null): no taste signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from scenarios.taste import TasteConfig
from tools.dataset import Dataset, Interactions
from tools.item_space import content_features, impute_factors, item_embeddings
from tools.memo import digest, memoised

__all__ = ["TasteSpace", "taste_space"]

_EASE_L2 = 500.0
_FACTORS = 64  # the other families' default: the arms' own (ALS, BPR) size


@dataclass(frozen=True, eq=False)
class TasteSpace:
    """Item rows and one unit taste vector per user (zeros for users without history)."""

    family: str
    items: np.ndarray  # items x d, float32
    users: np.ndarray | None  # users x d, float32; None: the mean of the history's rows

    def user_tastes(self, history: Interactions, n_users: int) -> np.ndarray:
        """Users x d unit taste vectors (computed from ``history`` when not given)."""
        if self.users is not None:
            return self.users
        x = history.matrix(n_users, self.items.shape[0], binary=True)
        return _unit_rows(_mean_rows(x, self.items.astype(np.float64))).astype(np.float32)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, n, out=np.zeros_like(m), where=n > 0)


def _mean_rows(x: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Per user, the mean of the rows of their history items."""
    counts = np.asarray(x.sum(axis=1)).ravel()
    total = np.asarray(x @ items)
    return np.divide(total, counts[:, None], out=np.zeros_like(total), where=counts[:, None] > 0)


def _svd(x: sp.csr_matrix, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Singular values and right vectors (items x k), largest first, signs fixed."""
    k = min(k, min(x.shape) - 1)
    if not x.nnz or k < 1:
        return np.zeros(0), np.zeros((x.shape[1], 0))
    v0 = np.random.default_rng(seed).uniform(-1, 1, size=min(x.shape))
    _, s, vt = svds(x.astype(np.float64), k=k, v0=v0, random_state=seed)
    order = np.argsort(-s, kind="stable")
    v = vt.T[:, order]
    signs = np.sign(v.sum(axis=0))
    return s[order], v * np.where(signs == 0, 1.0, signs)


def _collab(family: str, x: sp.csr_matrix, cfg: TasteConfig, seed: int
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """The raw collaborative block and, for factor models, the user factors."""
    k = cfg.factors or _FACTORS
    if family == "puresvd":
        return _svd(x, k, seed)[1], None
    if family == "itemknn":
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        xn = sp.csr_matrix(x @ sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms),
                                                  where=norms > 0)))
        s, v = _svd(xn, k, seed)
        return v * s, None
    if family in ("als", "bpr"):
        from tools.recommenders import make_recommender
        from tools.recommenders.mf import ALS, BPR

        rec = make_recommender(family, seed=seed, factors=k)
        assert isinstance(rec, ALS | BPR)
        rec.fit(x)
        return (np.asarray(rec.item_factors, dtype=np.float64),
                np.asarray(rec.user_factors, dtype=np.float64))
    if family == "random":
        rng = np.random.default_rng(np.random.SeedSequence([seed, 991]))
        return (rng.standard_normal((x.shape[1], k)), rng.standard_normal((x.shape[0], k)))
    raise ValueError(f"unknown taste family {family!r}")


def _single(family: str, dataset: Dataset, history: Interactions, cfg: TasteConfig,
            seed: int, impute: bool) -> TasteSpace:
    x: sp.csr_matrix = history.matrix(dataset.n_users, dataset.n_items, binary=True)
    if family == "ease":  # tools/item_space.py's space, bit for bit (its own defaults)
        size = {"factors": cfg.factors} if cfg.factors else {}
        return TasteSpace(family, item_embeddings(
            dataset, history, seed=seed, genre_weight=cfg.genre_weight, impute=impute,
            l2=cfg.l2 or _EASE_L2, **size), None)
    genre = _unit_rows(dataset.catalog.genre_matrix.astype(np.float64)) * cfg.genre_weight
    if family == "none":
        items = np.zeros((x.shape[1], 1))
        return TasteSpace(family, items.astype(np.float32),
                          np.zeros((x.shape[0], 1), dtype=np.float32))
    cf, user_f = _collab(family, x, cfg, seed)
    if family == "random":  # no information: not even genres or the history
        assert user_f is not None
        return TasteSpace(family, _unit_rows(cf).astype(np.float32),
                          _unit_rows(user_f).astype(np.float32))
    seen = np.asarray(x.sum(axis=0)).ravel() > 0
    cf = np.array(cf, dtype=np.float64, copy=True)
    cf[~seen] = 0.0  # what nobody watched is predicted from content, not left to a fit
    norms = np.linalg.norm(cf, axis=1)
    warm = norms > 0
    cf /= float(norms[warm].mean()) if warm.any() else 1.0
    if impute and cf.shape[1] and (~seen).any() and seen.any():
        cf = impute_factors(cf, content_features(dataset.catalog), ~seen)
    items = np.hstack([genre, cf])
    if user_f is None:
        return TasteSpace(family, items.astype(np.float32), None)
    mean = _mean_rows(x, items)
    # A factor model's own user vector, as long as the history's mean row is (its
    # direction is what counts; the length keeps the genre block's share).
    length = np.linalg.norm(mean[:, genre.shape[1]:], axis=1, keepdims=True)
    users = np.hstack([mean[:, :genre.shape[1]], _unit_rows(user_f) * length])
    return TasteSpace(family, items.astype(np.float32), _unit_rows(users).astype(np.float32))


def _ensemble(members: tuple[str, ...], dataset: Dataset, history: Interactions,
              cfg: TasteConfig, seed: int, impute: bool) -> TasteSpace:
    item_blocks, user_blocks = [], []
    x = history.matrix(dataset.n_users, dataset.n_items, binary=True)
    active = np.asarray(x.sum(axis=1)).ravel() > 0
    for m in members:
        space = _member(m, dataset, history, cfg, seed, impute)
        users = space.users
        if users is None:
            users = _unit_rows(_mean_rows(x, space.items.astype(np.float64)))
        sims = users[active].astype(np.float64) @ space.items.T.astype(np.float64)
        spread = float(np.mean(sims.std(axis=1))) if active.any() else 1.0
        item_blocks.append(space.items / (spread or 1.0))
        user_blocks.append(users)
    users = np.hstack(user_blocks) / np.sqrt(len(members))  # unit rows: each block is unit
    return TasteSpace("ensemble", np.hstack(item_blocks).astype(np.float32),
                      users.astype(np.float32))


def taste_space(dataset: Dataset, history: Interactions, cfg: TasteConfig | None = None,
                *, seed: int = 0, impute: bool = True) -> TasteSpace:
    """The taste space of ``cfg`` (default EASE) fitted on ``history`` alone."""
    cfg = cfg or TasteConfig()
    if cfg.family == "ensemble":
        return _ensemble(cfg.member_families, dataset, history, cfg, seed, impute)
    return _member(cfg.family, dataset, history, cfg, seed, impute)


def _member(family: str, dataset: Dataset, history: Interactions, cfg: TasteConfig,
            seed: int, impute: bool) -> TasteSpace:
    # An ensemble and its members' own runs share these fits inside tools.memo.memo().
    return memoised(lambda: digest(
        "taste", family, cfg.factors, cfg.genre_weight, cfg.l2, seed, impute, dataset.name,
        dataset.n_items, dataset.n_users, history.user, history.item, history.ts),
        lambda: _single(family, dataset, history, cfg, seed, impute))
