"""Fidelity of simulated users against the real ones, beside baselines.

Taste alignment (Agent4Rec's protocol, made leak-free): the world and profiles are built
from ratings dated before a global time cutoff only (simulations/eval/alignment_setup.py; by
default ten rolling cutoffs, each user evaluated once, at one of them). The simulator is
shown held-out items the user really rated >= 4 mixed 1:m with items the user never rated
(available before the cutoff), and picks what it would watch. Negatives are drawn
``uniform`` (Agent4Rec's) or ``popularity-matched`` (stratified by the positive's
popularity decile, simulations/run/sampling.py). See simulations/eval/alignment_taste.py for the
figures (per-user and pooled AUC of the noiseless score, the noisy utility and the
decisions; accuracy, precision, recall, F1) and simulations/eval/alignment_ratings.py for
rating fidelity.

Baselines on the same users and items: random, popularity only, item mean rating only and
EASE on the same history; their decision thresholds and the bias model's regularisation
are fitted on tuning users only.

Users are split once by id into tuning, development and test users
(simulations/run/sampling.py). Figures are on test users (``split="development"`` reads the
development users, for design choices), as the mean and a 95% t-interval over ``seeds``
seeds (each seed draws other positives, negatives, rating items and noise for the same
users).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.brains.base import Brain
from simulations.eval.alignment_ratings import fit_bias, rating_one_seed, summarise_ratings
from simulations.eval.alignment_setup import (
    MIN_HISTORY,
    AlignmentSetup,
    Task,
    make_tasks,
    prepare_alignment,
    prepare_origins,
)
from simulations.eval.alignment_taste import summarise_taste, taste_one_seed
from simulations.eval.baselines import fit_bias_model, taste_scorers
from simulations.run.sampling import MAX_RATIO, NEGATIVE_SAMPLERS, NegativeSampler, keyed_rng
from tools.dataset import SPLIT_KINDS, SplitKind

__all__ = [
    "AlignmentSetup",
    "AlignmentUsersError",
    "Task",
    "evaluable_users",
    "make_tasks",
    "prepare_alignment",
    "prepare_origins",
    "run_alignment",
]

Progress = Callable[[str, int], Callable[[], None]]
DEFAULT_CUTOFFS = 10


class AlignmentUsersError(ValueError):
    """``--users`` asks for more users than the split has."""


def evaluable_users(setups: Sequence[AlignmentSetup], split: str) -> list[tuple[int, int]]:
    """(origin, user) of every evaluable user of ``split``, in origin then user order."""
    return [(k, u) for k, s in enumerate(setups) for u in s.users(split)]  # type: ignore[arg-type]


def _random_scorer(n_items: int, seed: int) -> Callable[[int, np.ndarray], np.ndarray]:
    def random(u: int, items: np.ndarray) -> np.ndarray:
        return np.random.default_rng([seed, u, 31]).random(n_items)[items]
    return random


def _validate(users: int | None, seeds: int, positives: int, rating_items: int,
              ratios: Sequence[int], negatives: str, brain: str, split: str,
              time_split: str, cutoffs: int, tuning_users: int,
              llm_threads: int | None) -> None:
    if users is not None and users < 1:
        raise ValueError("eval alignment: --users must be at least 1")
    if seeds < 1 or tuning_users < 1 or cutoffs < 1:
        raise ValueError("eval alignment: --seeds, --tuning-users and --cutoffs must be at "
                         "least 1")
    if llm_threads is not None and llm_threads < 1:
        raise ValueError("eval alignment: --llm-threads must be at least 1")
    if positives < 1 or rating_items < 1:
        raise ValueError("eval alignment: --positives and --rating-items must be at least 1")
    if not ratios or min(ratios) < 1 or max(ratios) > MAX_RATIO:
        raise ValueError(f"eval alignment: --ratios must be integers from 1 to {MAX_RATIO}")
    if negatives not in NEGATIVE_SAMPLERS:
        raise ValueError(f"eval alignment: --negatives must be one of "
                         f"{', '.join(NEGATIVE_SAMPLERS)}")
    if brain not in ("utility", "llm", "none"):
        raise ValueError("eval alignment: --brain must be utility, llm or none")
    if split not in ("test", "development"):
        raise ValueError("eval alignment: --split must be test or development (tuning "
                         "users fit the baselines and are never reported)")
    if time_split not in SPLIT_KINDS:
        raise ValueError(f"eval alignment: --time-split must be one of {', '.join(SPLIT_KINDS)}")
    if time_split == "per_user" and cutoffs != 1:
        raise ValueError("eval alignment: --time-split per_user has no cutoffs; pass "
                         "--cutoffs 1")


def _pick_users(setups: Sequence[AlignmentSetup], split: str, users: int | None,
                cutoffs: int) -> list[list[int]]:
    """The evaluated users per origin: all of the split, or a fixed sample of ``users``.

    Raises:
        AlignmentUsersError: Fewer evaluable users than asked for.
    """
    pool = evaluable_users(setups, split)
    if users is not None and users > len(pool):
        where = f"{cutoffs} cutoffs" if cutoffs > 1 else "one cutoff"
        raise AlignmentUsersError(
            f"eval alignment: --users {users}: only {len(pool)} {split} users have "
            f">= {MIN_HISTORY} history ratings and a liked held-out item ({where}); "
            f"ask for at most {len(pool)}")
    if users is not None and users < len(pool):
        # Fixed by the split, not by the seed: every seed evaluates the same users.
        keep = keyed_rng(0, 47).choice(len(pool), size=users, replace=False)
        pool = [pool[int(k)] for k in sorted(keep)]
    out: list[list[int]] = [[] for _ in setups]
    for k, u in pool:
        out[k].append(u)
    return out


def _config(role_cfg: Any, role_path: Path | None, split: str, time_split: str,
            cutoffs: list[float], history_fraction: float) -> dict[str, Any]:
    """The frozen configuration an evaluation reads (printed before its figures)."""
    cfg: dict[str, Any] = {
        "user_split": split, "time_split": time_split,
        "cutoffs": [float(c) for c in cutoffs],
        "history_fraction": history_fraction if len(cutoffs) == 1 else None,
    }
    if role_cfg is not None:
        cfg["role"] = role_cfg.name
        cfg["role_file"] = str(role_path) if role_path else None
        cfg["brain"] = role_cfg.brain.kind
        cfg["brain_params"] = role_cfg.brain.params.model_dump() if role_cfg.brain.params \
            is not None and hasattr(role_cfg.brain.params, "model_dump") else None
    return cfg


def run_alignment(
    data: str | Path,
    *,
    users: int | None = None,
    seeds: int = 10,
    seed: int = 0,
    negatives: NegativeSampler = "popularity-matched",
    brain: str = "utility",
    llm: str | None = None,
    llm_threads: int | None = None,
    role: str | Path | None = None,
    ratios: Sequence[int] = (1, 3, 9),
    positives: int = 4,
    rating_items: int = 10,
    tuning_users: int = 300,
    split: str = "test",
    time_split: SplitKind = "global",
    cutoffs: int | None = None,
    history_fraction: float = 0.8,
    out: str | Path | None = None,
    replay: str | None = None,
    progress: Progress = lambda name, total: lambda: None,
) -> dict[str, Any]:
    """Taste alignment and rating fidelity of one brain, beside baselines.

    Args:
        data: A MovieLens folder (atomic or GroupLens layout).
        users: Users evaluated (None: every evaluable user of the split); more than there
            are is an :class:`AlignmentUsersError`.
        seeds: Seeds ``seed .. seed + seeds - 1``; figures are means with 95% intervals
            over them.
        negatives: ``uniform`` or ``popularity-matched``.
        brain: ``utility``, ``llm`` (defaults to the ``local`` model) or ``none``.
        llm: ``--llm`` spec for the llm brain.
        llm_threads: CPU threads of the local model.
        role: A role file; default the shipped role for the brain.
        tuning_users: At most this many tuning users fit the baselines' thresholds.
        split: ``test`` (reported figures) or ``development`` (design choices).
        time_split: ``global`` (leak-free) or ``per_user`` (the leaky split, one cutoff).
        cutoffs: Rolling global cutoffs (1: the ``history_fraction`` quantile only;
            default 10 with the global split, 1 with the per-user split).
        out: Folder for the LLM cache (record), so the evaluation can be replayed.
        replay: A folder or cache to answer every LLM call from.
        progress: ``(task name, total) -> advance`` for progress bars.
    """
    from agents.llm import model_identity
    from agents.setup import make_brain, make_client, parse_llm_flag
    from scenarios.loader import load_role, shipped_role
    from tools.dataset import load_dataset

    ratios = sorted(set(ratios))
    if cutoffs is None:
        cutoffs = DEFAULT_CUTOFFS if time_split == "global" else 1
    _validate(users, seeds, positives, rating_items, ratios, negatives, brain, split,
              time_split, cutoffs, tuning_users, llm_threads)
    role_cfg = role_path = None
    if brain != "none":
        role_path = Path(role) if role else shipped_role(
            "llm_user" if brain == "llm" else "utility_user")
        role_cfg = load_role(role_path)
        if role_cfg.brain.kind != brain:
            raise ValueError(f"eval alignment: role {role_cfg.name!r} has brain "
                             f"{role_cfg.brain.kind!r}, not {brain!r}")
    ds = load_dataset(data)
    setups = prepare_origins(ds, cutoffs, 0, history_fraction, time_split)
    chosen = _pick_users(setups, split, users, cutoffs)
    tune_pool = evaluable_users(setups, "tuning")
    keep = keyed_rng(0, 43).choice(len(tune_pool), size=min(tuning_users, len(tune_pool)),
                                   replace=False)
    tune = [tune_pool[int(k)] for k in sorted(keep)]
    client = None
    llm_cfg = parse_llm_flag(llm or "local", None) if brain == "llm" else None
    if llm_cfg is not None and llm_threads is not None:
        llm_cfg = llm_cfg.model_copy(update={"n_threads": llm_threads})
    if llm_cfg is not None:
        folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="recarena-align-"))
        folder.mkdir(parents=True, exist_ok=True)
        client = make_client(llm_cfg, folder, replay_from=replay, seed=seed,
                             on_call=lambda rec: None)
    brains: list[Brain] | None = None
    if role_cfg is not None:
        brains = [make_brain(role_cfg, s.world, client=client, max_pages=1,
                             backend=llm_cfg.backend if llm_cfg else None) for s in setups]
    base_scorers = [taste_scorers(s.world, s.history, ds.n_users, 0) for s in setups]
    # Implicit feedback (no ratings in the data): no rating figure, "n/a" in tables.
    rated = ds.has_ratings
    reg = fit_bias(setups, rating_items, seed) if rated else None
    biases = ([fit_bias_model(s.history, ds.n_users, ds.n_items, *reg) for s in setups]
              if reg is not None else [])
    n = sum(len(c) for c in chosen)
    step_taste = progress("taste alignment", n * len(ratios) * seeds)
    step_rating = progress("rating fidelity", n * seeds)
    taste_runs, rating_runs = [], []
    try:
        for s in range(seed, seed + seeds):
            scorers = [{**b, "random": _random_scorer(ds.n_items, s)} for b in base_scorers]
            tasks = [t for k, us in enumerate(chosen)
                     for t in make_tasks(setups[k], us, negatives, positives=positives,
                                         seed=s, origin=k)]
            tuning = [t for k, u in tune
                      for t in make_tasks(setups[k], [u], negatives, positives=positives,
                                          seed=s, origin=k)]
            taste_runs.append(taste_one_seed(setups, brains, scorers, tasks, tuning, seed=s,
                                             ratios=ratios, on_user=step_taste))
            if rated:
                rating_runs.append(rating_one_seed(setups, brains, chosen, biases, seed=s,
                                                   per_user=rating_items,
                                                   on_user=step_rating))
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()
    pos = np.concatenate([t.positives for t in tasks])
    neg = np.concatenate([t.negatives[:, 0] for t in tasks])
    pops = np.concatenate([setups[t.origin].world.popularity[t.positives] for t in tasks])
    negp = np.concatenate([setups[t.origin].world.popularity[t.negatives[:, 0]] for t in tasks])
    res: dict[str, Any] = {
        "dataset": ds.name, "seeds": list(range(seed, seed + seeds)), "brain": brain,
        "llm": f"{llm_cfg.backend}:{model_identity(llm_cfg)}" if llm_cfg else None,
        "negatives": negatives, "users": n,
        "configuration": _config(role_cfg, role_path, split, time_split,
                                 [st.cutoff for st in setups], history_fraction),
        "split": {"evaluated": split, "evaluated_users": n,
                  "available_users": len(evaluable_users(setups, split)),
                  "tuning_users": len(tune_pool),
                  "baseline_thresholds_fitted_on": len(tune), "origins": len(setups)},
        "positives_per_user": positives,
        "popularity": {"median_positive": float(np.median(pops)),
                       "median_negative_1to1": float(np.median(negp)),
                       "positives_last_seed": int(pos.size), "negatives_1to1": int(neg.size)},
        "taste_alignment": summarise_taste(taste_runs, ratios, brains is not None),
        "rating_fidelity": summarise_ratings(rating_runs, reg) if reg is not None else None,
        "agent4rec_reported_1to1": {"accuracy": 0.69, "f1": 0.70},
    }
    if client is not None:
        res["llm_usage"] = {"calls": len(client.records),
                            "input_tokens": client.usage.total.input_tokens,
                            "output_tokens": client.usage.total.output_tokens}
    return res
