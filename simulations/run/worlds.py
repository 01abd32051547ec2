"""Each role's world and profiles: one taste space per family and settings among the roles.

The utility brain measures taste in the item space its role names (``brain.taste``,
scenarios/taste.py; tools/taste.py builds it). Roles with the same family and settings
share one world; a role with its own family gets its own world and profiles, fitted on the
same history.
"""

from __future__ import annotations

from agents.profile import UserProfile, build_profiles
from scenarios.loader import LoadedScenario
from tools.dataset import Dataset, Interactions
from tools.taste import TasteSpace, taste_space
from tools.world import World

__all__ = ["taste_worlds"]

def taste_worlds(ds: Dataset, history: Interactions, loaded: LoadedScenario, seed: int
                 ) -> tuple[dict[str, list[UserProfile]], dict[str, World]]:
    """Per role, its profiles and its world: one taste space (tools/taste.py) per family
    and settings among the roles, fitted on ``history`` only."""
    ds_hist = ds.with_interactions(history)
    worlds: dict[str, tuple[World, TasteSpace]] = {}
    by_traits: dict[str, list[UserProfile]] = {}
    role_profiles: dict[str, list[UserProfile]] = {}
    role_worlds: dict[str, World] = {}
    for r in loaded.roles:  # the first is loaded.role
        taste = r.config.brain.taste
        tkey = taste.model_dump_json()
        if tkey not in worlds:
            space = taste_space(ds, history, taste, seed=seed)
            worlds[tkey] = (World(
                catalog=ds.catalog, embeddings=space.items,
                item_mean=ds_hist.item_mean_rating, popularity=ds_hist.item_popularity,
                global_mean=float(history.rating.mean()) if len(history) else 3.5,
            ), space)
        role_world, space = worlds[tkey]
        key = r.config.traits.model_dump_json() + tkey
        if key not in by_traits:
            by_traits[key] = build_profiles(ds, history, space.items, r.config.traits,
                                            tastes=space.users)
        role_profiles[r.config.name] = by_traits[key]
        role_worlds[r.config.name] = role_world
    return role_profiles, role_worlds
