"""Judging simulators and recommenders by running them: fidelity, offline evaluation, A/B
comparisons."""

__all__: list[str] = []
