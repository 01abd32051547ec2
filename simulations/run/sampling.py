"""Who is evaluated on what: the tuning/development/test user split, disjoint test
samples, and the negative samplers of the taste-alignment protocol.

The split is by user id (a hash of the split seed and the id mapped to [0, 1)), so it does
not depend on the order of the data or on who else is in it, and it never changes with the
evaluation seed. Users whose hash is below ``TUNING_SHARE`` (0.3) are tuning users (every
parameter is fitted on them), the next ``DEVELOPMENT_SHARE`` (0.2) development users
(choices between fitted candidates are made on them), the rest (0.5) test users (read only
by the final evaluation; nothing is chosen on them). The tuning set is the one of the
earlier two-way split, so ``is_tuning_user`` is unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "DEVELOPMENT_SHARE",
    "MAX_RATIO",
    "NEGATIVE_SAMPLERS",
    "SPLIT_SEED",
    "TUNING_SHARE",
    "USER_SPLITS",
    "NegativeSampler",
    "UserSplit",
    "disjoint_samples",
    "is_tuning_user",
    "keyed_rng",
    "popularity_deciles",
    "sample_negatives",
    "split_users",
    "user_split",
    "users_by_split",
]

SPLIT_SEED = 0
TUNING_SHARE = 0.3
DEVELOPMENT_SHARE = 0.2
UserSplit = Literal["tuning", "development", "test"]
USER_SPLITS: tuple[UserSplit, ...] = ("tuning", "development", "test")
NegativeSampler = Literal["uniform", "popularity-matched"]
NEGATIVE_SAMPLERS: tuple[NegativeSampler, ...] = ("uniform", "popularity-matched")
# Negatives are always drawn for this ratio and shorter ratios take prefixes, so the 1:1
# draw is the same whichever --ratios are asked for (Agent4Rec's largest ratio is 1:9).
MAX_RATIO = 9


def _unit(user_id: str, seed: int) -> float:
    h = hashlib.sha256(f"recarena-split:{seed}:{user_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def is_tuning_user(user_id: str, seed: int = SPLIT_SEED,
                   share: float = TUNING_SHARE) -> bool:
    """Whether a user id falls in the tuning set (deterministic in seed and id)."""
    return _unit(user_id, seed) < share


def user_split(user_id: str, seed: int = SPLIT_SEED) -> UserSplit:
    """The split of a user id: ``tuning``, ``development`` or ``test`` (stable)."""
    x = _unit(user_id, seed)
    if x < TUNING_SHARE:
        return "tuning"
    return "development" if x < TUNING_SHARE + DEVELOPMENT_SHARE else "test"


def users_by_split(user_ids: Sequence[str],
                   seed: int = SPLIT_SEED) -> dict[UserSplit, list[int]]:
    """Indices of the users of each split (disjoint, covering all, ascending)."""
    out: dict[UserSplit, list[int]] = {s: [] for s in USER_SPLITS}
    for k, uid in enumerate(user_ids):
        out[user_split(uid, seed)].append(k)
    return out


def split_users(user_ids: Sequence[str], seed: int = SPLIT_SEED,
                share: float = TUNING_SHARE) -> tuple[list[int], list[int]]:
    """Indices of tuning users and of all other (development and test) users.

    The two-way split of earlier versions; evaluations report on ``users_by_split(...)
    ["test"]`` only, never on development users.
    """
    tuning: list[int] = []
    rest: list[int] = []
    for k, uid in enumerate(user_ids):
        (tuning if is_tuning_user(uid, seed, share) else rest).append(k)
    return tuning, rest


def disjoint_samples(users: Sequence[int], n_samples: int, size: int,
                     seed: int) -> list[list[int]]:
    """``n_samples`` disjoint samples of ``size`` users (smaller if there are too few).

    Raises:
        ValueError: Fewer users than samples.
    """
    if n_samples < 1 or size < 1:
        raise ValueError("need at least one sample of at least one user")
    if len(users) < n_samples:
        raise ValueError(f"{len(users)} users cannot fill {n_samples} disjoint samples")
    per = min(size, len(users) // n_samples)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 41]))
    order = rng.permutation(np.asarray(sorted(users), dtype=np.int64))
    return [sorted(int(u) for u in order[k * per:(k + 1) * per]) for k in range(n_samples)]


def popularity_deciles(popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity decile 0-9 among the items rated in history (-1: unrated).

    Deciles are of the average rank, so items with equal popularity share a decile and
    the deciles' popularity ranges never overlap (sizes may differ where many items tie).
    """
    pop = np.asarray(popularity, dtype=np.float64)
    out = np.full(pop.shape, -1, dtype=np.int64)
    avail = np.flatnonzero(pop > 0)
    if avail.size:
        ranks = rankdata(pop[avail], method="average")  # 1..n
        out[avail] = np.minimum(((ranks - 0.5) * 10 / avail.size).astype(np.int64), 9)
    return out


def sample_negatives(
    kind: NegativeSampler,
    rng: np.random.Generator,
    positives: np.ndarray,
    candidates: np.ndarray,
    popularity: np.ndarray,
    m: int,
) -> np.ndarray:
    """Negatives for a user, ``m`` per positive, as a (len(positives), m) array, no item
    twice.

    Each row is an ordered draw, so the first ``k`` columns are themselves a valid 1:k
    sample: ratios evaluated on prefixes are nested and paired. Callers draw for a fixed
    ``m`` (``MAX_RATIO``) so that the draws do not depend on which ratios are evaluated.

    Args:
        kind: ``uniform`` (Agent4Rec's: any candidate) or ``popularity-matched``
            (stratified: each positive's negatives are drawn uniformly among the
            candidates in the positive's popularity decile, ``popularity_deciles``; when
            the decile runs out, the nearest deciles are added, nearer first), so
            popularity alone can hardly tell positives from negatives.
        positives: Item indices of the positives.
        candidates: Item indices the user never rated (neither in history nor held out)
            and that were available (rated by someone) in history.
        popularity: History interaction count per item.
        m: Negatives per positive.
    """
    n_pos = len(positives)
    if n_pos * m > len(candidates):
        raise ValueError(f"{len(candidates)} candidate negatives cannot give {m} per "
                         f"positive for {n_pos} positives")
    if kind == "uniform":
        return rng.choice(candidates, size=n_pos * m, replace=False).reshape(n_pos, m)
    if kind != "popularity-matched":
        raise ValueError(f"unknown negative sampler {kind!r}; expected one of "
                         f"{', '.join(NEGATIVE_SAMPLERS)}")
    dec = popularity_deciles(popularity)
    cand = np.asarray(candidates, dtype=np.int64)
    cand_dec = dec[cand]
    free = np.ones(len(cand), dtype=bool)
    out = np.empty((n_pos, m), dtype=np.int64)
    for row, p in enumerate(positives):
        d = max(int(dec[int(p)]), 0)
        picked: list[int] = []
        # Own decile first, then the nearest ones (ties: the less popular side first).
        for dd in sorted(range(10), key=lambda x: (abs(x - d), x)):
            pool = np.flatnonzero(free & (cand_dec == dd))
            take = pool[rng.permutation(len(pool))][:m - len(picked)]
            free[take] = False
            picked.extend(int(i) for i in take)
            if len(picked) == m:
                break
        if len(picked) < m:  # items without a decile (unrated) only as a last resort
            pool = np.flatnonzero(free)
            take = pool[rng.permutation(len(pool))][:m - len(picked)]
            free[take] = False
            picked.extend(int(i) for i in take)
        out[row] = cand[np.asarray(picked, dtype=np.int64)]
    return out


def keyed_rng(*key: int) -> np.random.Generator:
    """A generator that depends on ``key`` only (seed, sample, user, ...), never on order."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))
