"""The shipped scenario, role and team files, found through the installed package
(``importlib.resources``), not through the checkout: tests then read the YAML that users
get, wherever the package is installed from."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["SCENARIOS", "shipped"]

# A regular package on disk (an editable install, the checkout on PYTHONPATH, or a wheel
# unpacked into site-packages): its resources are files with a path.
SCENARIOS = Path(str(files("scenarios")))


def shipped(*parts: str) -> Path:
    """The shipped file ``scenarios/PARTS...`` (``shipped("roles", "llm_user.yaml")``);
    with no parts, the folder itself."""
    return SCENARIOS.joinpath(*parts)
