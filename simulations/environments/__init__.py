"""Environments agents act in; ``environment.kind`` picks one from the registry."""

from simulations.environments.base import (
    ENVIRONMENTS,
    Environment,
    EnvSetup,
    interaction_kinds,
    make_environment,
    register,
)
from simulations.environments.conversation import ConversationEnvironment
from simulations.environments.feed import FeedEnvironment

__all__ = [
    "ENVIRONMENTS",
    "ConversationEnvironment",
    "EnvSetup",
    "Environment",
    "FeedEnvironment",
    "interaction_kinds",
    "make_environment",
    "register",
]
