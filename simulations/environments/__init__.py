"""Environments agents act in; ``environment.kind`` picks one from the registry."""

from simulations.environments.base import (
    ENVIRONMENTS,
    Environment,
    EnvSetup,
    PrepareInput,
    interaction_kinds,
    make_environment,
    prepare_hook,
    register,
)
from simulations.environments.conversation import ConversationEnvironment
from simulations.environments.feed import FeedEnvironment
from simulations.environments.social import SocialEnvironment

__all__ = [
    "ENVIRONMENTS",
    "ConversationEnvironment",
    "EnvSetup",
    "Environment",
    "FeedEnvironment",
    "PrepareInput",
    "SocialEnvironment",
    "interaction_kinds",
    "make_environment",
    "prepare_hook",
    "register",
]
