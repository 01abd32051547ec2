"""Random streams of agents: one per (user, round, step), whatever the arm or batch."""

from __future__ import annotations

import numpy as np

__all__ = ["user_rng"]


def user_rng(seed: int, user: int, round_: int, step: int) -> np.random.Generator:
    """The random stream of one user at one step (a page, a turn, an interview).

    Seeding per (user, round, step) keeps paired A/B arms on the same draws and makes
    results independent of how users are scheduled or batched.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, user, round_, step])))
