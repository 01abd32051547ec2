"""The fake-user (shilling) attack's figures, per recommender and seed, clean vs attacked:

* **exposure**: the share of the real (simulated) users' feed pages that show a target,
  read from the two traces;
* **HR@10**: the share of the population whose top 10 unseen items (the arm's model fitted
  on the history, clean or with the fake users and the defence) hold a target;
* **detectors**: AUC of PCA variable selection (unsupervised) and of the logistic
  detector (trained on injections of other seeds and targets, against one half of the
  real users) on the other half of the real users and the injected profiles;
* **defence**: when the block has one, how many fake and real profiles it filtered (from
  the attacked trace's ``defence`` events).

Paired over seeds: per arm, the attacked minus clean difference with a t-interval over
seeds (simulations/analysis/stats.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulations.analysis.stats import auc, interval
from simulations.eval.attack import clean_attacked
from simulations.record.trace import iter_trace
from simulations.run.attack import FakeUserAttack
from tools.recommenders import make_recommender
from tools.shilling_detect import (
    LogisticDetector,
    pca_scores,
    profile_features,
    train_logistic,
)

__all__ = ["detector_aucs", "eval_detector", "exposure", "hit_rate", "measure"]


def exposure(run_dir: Any, targets: set[str]) -> dict[str, float]:
    """Per arm: pages showing a target / pages (all pages of real users)."""
    pages: dict[str, int] = {}
    hits: dict[str, int] = {}
    for ev in iter_trace(run_dir / "trace.jsonl"):
        if ev.get("type") != "page":
            continue
        arm = str(ev["arm"])
        pages[arm] = pages.get(arm, 0) + 1
        hits[arm] = hits.get(arm, 0) + bool(targets.intersection(ev["items"]))
    return {a: hits[a] / n for a, n in pages.items() if n}


def hit_rate(prep: Any, arm: Any, fake: FakeUserAttack | None, targets: tuple[int, ...],
             k: int = 10) -> float:
    """HR@k of the targets among the population for one arm's model (attacked when
    ``fake`` reaches the arm, else clean)."""
    ds, hist = prep.dataset, prep.history
    train, rows = (fake.training(arm.name, hist) if fake is not None
                   else (hist, ds.n_users))
    rec = make_recommender(arm.model, seed=prep.scenario.seed, **arm.params)
    rec.fit(train.matrix(rows, ds.n_items, binary=not rec.uses_ratings))
    users = np.asarray(prep.population, np.int64)
    seen = hist.matrix(rows, ds.n_items)[users]
    top = rec.recommend(users, k, exclude=seen)
    return float(np.isin(top, np.asarray(targets, np.int64)).any(axis=1).mean())


def _halves(prep: Any) -> tuple[np.ndarray, np.ndarray]:
    """The real users split in two (seeded): one trains the supervised detector, the other
    is evaluated."""
    real = np.unique(prep.history.user)
    perm = np.random.default_rng(np.random.SeedSequence([prep.scenario.seed, 77])
                                 ).permutation(real)
    return np.sort(perm[: real.size // 2]), np.sort(perm[real.size // 2:])


def eval_detector(prep: Any, fake: FakeUserAttack) -> LogisticDetector:
    """The supervised detector of ``detector_aucs``: trained on injections of other seeds
    and targets against the first half of the real users (``_halves``)."""
    ds = prep.dataset
    count = fake.profiles.count if fake.profiles is not None else fake.plan.count
    return train_logistic(prep.history, ds.n_users, ds.n_items, ds.catalog,
                          _halves(prep)[0], avoid=fake.plan.targets, count=count,
                          seed=prep.scenario.seed + 7919)


def detector_aucs(prep: Any, fake: FakeUserAttack, detector: LogisticDetector | None = None
                  ) -> dict[str, float | None]:
    """AUC of each detector on half of the real users (the other half trains the
    supervised one, unless ``detector`` is given) and the injected profiles."""
    if fake.profiles is None or fake.profiles.count == 0:
        return {"pca": None, "logistic": None}
    ds, hist = prep.dataset, prep.history
    fp = fake.profiles
    m = hist.concat(fp.interactions).matrix(ds.n_users + fp.count, ds.n_items, binary=False)
    test_half = _halves(prep)[1]
    pca = pca_scores(m)
    det = detector or eval_detector(prep, fake)
    lr = det.scores(profile_features(m))
    fakes = fp.users
    return {"pca": auc(pca[fakes], pca[test_half]), "logistic": auc(lr[fakes], lr[test_half])}


def _defence(run_dir: Any) -> dict[str, Any] | None:
    evs = [ev for ev in iter_trace(run_dir / "trace.jsonl") if ev.get("type") == "defence"]
    if not evs:
        return None
    return {"fits": len(evs),
            "fake_filtered_share": float(np.mean([e["fake_flagged"] / max(e["fake_users"], 1)
                                                  for e in evs])),
            "real_filtered": float(np.mean([e["flagged"] - e["fake_flagged"] for e in evs]))}


def measure(ctx: Any) -> dict[str, Any]:
    """The fake-user attack's figures (see the module doc)."""
    per_arm: dict[str, dict[str, list[float]]] = {}
    seeds: list[dict[str, Any]] = []
    for sr in ctx.runs:
        fake: FakeUserAttack = sr.attacked.attack.fake_users
        ids = {sr.attacked.dataset.catalog.item_ids[t] for t in fake.plan.targets}
        ex_c, ex_a = exposure(sr.clean_dir, ids), exposure(sr.attacked_dir, ids)
        row: dict[str, Any] = {"seed": sr.seed, "targets": sorted(ids),
                               "fake_users": fake.profiles.count if fake.profiles else 0,
                               "detectors": detector_aucs(sr.attacked, fake),
                               "defence": _defence(sr.attacked_dir), "arms": {}}
        if fake.written:
            row["written"] = fake.written
        for arm in sr.attacked.scenario.recommenders:
            cell = per_arm.setdefault(arm.name, {k: [] for k in (
                "exposure_clean", "exposure_attacked", "hr_clean", "hr_attacked")})
            cell["exposure_clean"].append(ex_c.get(arm.name, 0.0))
            cell["exposure_attacked"].append(ex_a.get(arm.name, 0.0))
            if arm.model != "agent":
                cell["hr_clean"].append(hit_rate(sr.clean, arm, None, fake.plan.targets))
                cell["hr_attacked"].append(hit_rate(sr.attacked, arm, fake,
                                                    fake.plan.targets))
            row["arms"][arm.name] = {k: v[-1] for k, v in cell.items() if v}
        seeds.append(row)
    first = ctx.runs[0].attacked.attack.fake_users
    arms = {a: {"attacked": first.reaches(a),
                "exposure": clean_attacked(c["exposure_clean"], c["exposure_attacked"]),
                "hr10": (clean_attacked(c["hr_clean"], c["hr_attacked"]) if c["hr_clean"]
                         else None)}
            for a, c in per_arm.items()}
    dets = {d: interval([s["detectors"][d] for s in seeds
                         if s["detectors"][d] is not None]) for d in ("pca", "logistic")}
    return {"strategy": first.plan.strategy, "intent": first.plan.intent,
            "fake_users": first.profiles.count if first.profiles else 0,
            "arms": arms, "detectors": dets, "per_seed": seeds}
