"""A seeded synthetic world: a catalogue with titles, genres, descriptions and popularity,
and users with latent tastes whose rated histories follow those tastes.

It lets the quickstart run with no files. Items and users live in one latent space; each
genre is a direction in it, so genres and tastes agree, as they do in real data.
"""

from __future__ import annotations

import numpy as np

from tools.dataset import Catalog, Dataset, Interactions

__all__ = ["GENRES", "make_world"]

GENRES = (
    "Drama", "Comedy", "Action", "Thriller", "Romance", "Sci-Fi", "Horror", "Documentary",
    "Animation", "Adventure", "Crime", "Fantasy", "Mystery", "Musical", "War", "Western",
    "Family", "History",
)
_ADJ = (
    "Silent", "Crimson", "Last", "Hidden", "Golden", "Broken", "Midnight", "Electric",
    "Distant", "Frozen", "Wild", "Hollow", "Bright", "Lost", "Secret", "Iron", "Paper",
    "Velvet", "Burning", "Quiet",
)
_NOUN = (
    "Harbor", "Circuit", "Garden", "Empire", "River", "Signal", "Orchard", "Frontier",
    "Mirror", "Lantern", "Voyage", "Kingdom", "Station", "Promise", "Tide", "Machine",
    "Letter", "Summit", "Carnival", "Witness",
)
_PLOT = {
    "Drama": "a family torn between duty and desire",
    "Comedy": "two hapless friends whose plan goes hilariously wrong",
    "Action": "a retired agent pulled back for one last mission",
    "Thriller": "a witness who cannot trust anyone",
    "Romance": "strangers who meet by chance every summer",
    "Sci-Fi": "a crew that wakes up light-years off course",
    "Horror": "a house that remembers every guest",
    "Documentary": "the people behind a vanishing craft",
    "Animation": "a small robot looking for its maker",
    "Adventure": "a map that leads somewhere impossible",
    "Crime": "a heist that unravels in one night",
    "Fantasy": "an apprentice who inherits a dragon",
    "Mystery": "a detective chasing a letter with no sender",
    "Musical": "a choir that must win to save its hall",
    "War": "a platoon cut off behind the lines",
    "Western": "a sheriff facing the town's past",
    "Family": "siblings on a road trip with their grandmother",
    "History": "the week that changed a kingdom",
}


def _titles(n: int, rng: np.random.Generator) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for _ in range(n):
        base = f"The {_ADJ[rng.integers(len(_ADJ))]} {_NOUN[rng.integers(len(_NOUN))]}"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base} {seen[base]}")
    return out


def make_world(
    n_users: int = 300,
    n_items: int = 400,
    n_genres: int = 10,
    dim: int = 8,
    history_mean: float = 30.0,
    seed: int = 0,
) -> Dataset:
    """Generate a catalogue, users and rated histories, all from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7001]))
    genres = GENRES[:n_genres]
    genre_dirs = rng.normal(size=(n_genres, dim))
    genre_dirs /= np.linalg.norm(genre_dirs, axis=1, keepdims=True)

    item_vec = rng.normal(size=(n_items, dim))
    item_vec /= np.linalg.norm(item_vec, axis=1, keepdims=True)
    affinity = item_vec @ genre_dirs.T
    item_genres: list[tuple[str, ...]] = []
    for i in range(n_items):
        k = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        top = np.argsort(-affinity[i], kind="stable")[:k]
        item_genres.append(tuple(genres[j] for j in sorted(top)))
    log_pop = rng.normal(0.0, 1.0, size=n_items)
    quality = rng.normal(0.0, 0.45, size=n_items)
    years = rng.integers(1960, 2025, size=n_items)
    titles = _titles(n_items, rng)
    descriptions = tuple(
        f"{titles[i]} ({years[i]}): {', '.join(item_genres[i])}. The story of "
        f"{_PLOT[item_genres[i][0]]}."
        for i in range(n_items)
    )
    catalog = Catalog(
        item_ids=tuple(str(i + 1) for i in range(n_items)),
        titles=tuple(titles),
        genres=tuple(item_genres),
        years=tuple(str(y) for y in years),
        descriptions=descriptions,
    )

    user_vec = rng.normal(size=(n_users, dim))
    user_vec /= np.linalg.norm(user_vec, axis=1, keepdims=True)
    user_bias = rng.normal(0.0, 0.35, size=n_users)
    pickiness = rng.uniform(1.0, 3.0, size=n_users)
    users, items, ratings, ts = [], [], [], []
    t0 = 1_600_000_000.0
    for u in range(n_users):
        n = int(min(n_items - 1, 5 + rng.poisson(max(history_mean - 5.0, 1.0))))
        aff = item_vec @ user_vec[u]
        logits = log_pop + pickiness[u] * aff
        p = np.exp(logits - logits.max())
        p /= p.sum()
        chosen = rng.choice(n_items, size=n, replace=False, p=p)
        r = np.clip(np.rint(3.5 + user_bias[u] + quality[chosen] + 1.4 * aff[chosen]
                            + rng.normal(0.0, 0.6, size=n)), 1, 5)
        t = t0 + np.sort(rng.uniform(0, 3.0e7, size=n))
        users.extend([u] * n)
        items.extend(chosen.tolist())
        ratings.extend(r.tolist())
        ts.extend(t.tolist())
    return Dataset(
        name=f"synthetic-{seed}",
        catalog=catalog,
        user_ids=tuple(str(u + 1) for u in range(n_users)),
        interactions=Interactions.from_lists(users, items, ratings, ts),
        user_attrs=tuple({} for _ in range(n_users)),
        item_vectors=item_vec.astype(np.float32),
    )
