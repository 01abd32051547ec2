"""What a trace of an environment means: its outcome plug-in, found by environment name.

An environment (the ``environment`` of a trace's ``run_start`` event: ``feed``,
``conversation``, ...) declares in one ``Outcomes`` object everything the readers of its
traces need: its metrics (names, labels, the scenario defaults), the accumulator that turns
its events into run metrics (``compute_metrics``, ``metrics.json``), the per-user sums
behind paired comparisons and report intervals (``user_stats``), which events ``trace
summary`` reads, the report sections it adds, and how ``trace agent`` words its events. It
registers it with ``register_outcomes``; every reader asks ``outcomes_for(environment)``.
An environment without a plug-in is still read: its events are listed and counted, with a
one-line note, and it has no metrics.

This module is light (no numpy, no plotting) so the trace views stay fast: heavy parts of
a plug-in are imported inside its functions, and a report section may be named as
``"module:function"`` to be imported only when a report is built.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "BUILTIN",
    "Describer",
    "Marks",
    "Outcomes",
    "ReportSection",
    "RunMetrics",
    "Scoped",
    "UserAcc",
    "all_labels",
    "clip",
    "describers",
    "metric_event_types",
    "no_plugin_note",
    "outcomes_for",
    "rating_metrics",
    "ratio_of",
    "register_outcomes",
    "registered",
    "report_sections",
    "resolve",
    "step_types",
    "temporarily_registered",
    "unregister_outcomes",
]

# The environments RecArena ships, and the modules that declare them (imported on first use).
BUILTIN = {"feed": "simulations.analysis.outcomes_feed",
           "social": "simulations.analysis.outcomes_social",
           "conversation": "simulations.analysis.outcomes_conversation"}


class RunMetrics(Protocol):
    """Reads a run's events (those with an ``arm``, in trace order) into per-arm metrics."""

    def add(self, ev: dict[str, Any]) -> None:
        """One event of an arm (any type: ignore those that are not yours)."""

    def arms(self, n_items: int, ratings: bool) -> dict[str, dict[str, Any]]:
        """Per arm, in the order arms were first seen: ``{"overall": {...}, "rounds":
        {"1": {...}}, "roles": {role: {...}}, "stats": {...}}``. Float values are rounded to
        6 places by ``compute_metrics``; ``stats`` is ``simulations.analysis.arm_stats.arm_stats``'s
        output (or ``{}``). ``ratings`` is false for implicit-feedback data."""


@dataclass(frozen=True)
class Marks:
    """Text helpers of a one-line event description: escape, bold and dim (rich markup, or
    plain text when ``markup`` is off)."""

    markup: bool = True

    def e(self, x: Any) -> str:
        if not self.markup:
            return str(x)
        from rich.markup import escape

        return escape(str(x))

    def b(self, x: str) -> str:
        return f"[bold]{x}[/]" if self.markup else x

    def d(self, x: str) -> str:
        return f"[dim]{x}[/]" if self.markup else x


# (event, item title of an id, text helpers) -> one line saying what the event means.
Describer = Callable[[dict[str, Any], Callable[[Any], str], Marks], str]
# (figures, series, bootstrap resamples, seed) -> the section's HTML (a note when empty).
SectionRender = Callable[[Any, list[Any], int, int], str]


@dataclass(frozen=True)
class ReportSection:
    """A section of the HTML report. ``render`` gets every series of the report (filter
    those of your environment: ``s.run.environment``) and returns HTML; a section with no
    plot or table is left out and its text goes to the overview's "not shown" list.
    ``rank`` orders it among the others (overview 0, groups 50, ratings 60, new items 70,
    LLM 80, robustness 100)."""

    id: str
    title: str
    render: SectionRender | str  # or "module:function", imported when a report is built
    rank: int = 95

    def renderer(self) -> SectionRender:
        fn: SectionRender = resolve(self.render)
        return fn


def resolve(ref: Any) -> Any:
    """A callable, or the one a ``"module:function"`` string names (imported now)."""
    if callable(ref):
        return ref
    module, _, name = str(ref).partition(":")
    return getattr(importlib.import_module(module), name)


class UserAcc:
    """One user's sums in one arm while ``user_stats.arm_tables`` reads a trace: ``f``
    (field -> sum, the environment's ``user_fields``), ``exposure`` (item -> times shown:
    coverage and Gini) and ``extra`` (scratch for ``Outcomes.user_finish``)."""

    __slots__ = ("exposure", "extra", "f")

    def __init__(self) -> None:
        self.f: dict[str, float] = defaultdict(float)
        self.exposure: dict[str, int] = defaultdict(int)
        self.extra: dict[Any, Any] = {}


def _no_columns(metrics: dict[str, Any]) -> tuple[list[str], list[str]]:
    return [], []


@dataclass(frozen=True)
class Outcomes:
    """An environment's outcome plug-in.

    Attributes:
        environment: Its name, as traces carry it (``run_start.environment``).
        labels: Metric -> column label, in table order (run tables, trace summary, compare).
        defaults: The metrics a scenario reports when it lists none (``metrics:``).
        metrics: A new run accumulator (see ``RunMetrics``).
        event_types: The event types its metrics read (``trace summary`` recomputes them
            from these when ``summary.json`` is missing or disagrees).
        user_fields: Per-user sums of ``user_stats.arm_tables`` (paired comparison, report).
        user_event: Adds one arm event of a user to its ``UserAcc``; returns whether the
            event alone makes the user one of the arm's users (as a page or a finished
            conversation does).
        user_finish: Completes a user's sums after the trace (e.g. from ``extra``).
        ratios: Metric -> (numerator, denominator) among ``user_fields``: the metric over
            any weighted set of users is a ratio of weighted sums.
        compared: The metrics paired comparisons and the report's overview test (ratio
            metrics, or ``coverage``/``gini`` from exposure).
        rating_metrics: Metrics on the rating scale ("n/a" for implicit-feedback data).
        summary_columns: The run table's columns for a run's metrics: those with an
            interval (keys of ``stats``) and plain ones (keys of ``overall``).
        summary_note: The run table's footnote, given the metrics and interval columns.
        summary_lines: Lines under the run table (``recarena run``, ``trace summary``):
            facts of the run that are no per-user figure (the social world's graph).
        stat_labels: Labels of interval figures that are not in ``labels``.
        group_metrics: Metrics of the report's "by user group" panels.
        report_sections: Sections it adds to the HTML report.
        report_data: What its sections read from a run beyond the metrics and per-user
            sums: called (a callable or ``"module:function"``) with a run's events when a
            report is built; the report's ``Run.data`` holds the result.
        describe: Event type -> one-line description (``trace agent``, ``trace step``).
        seen_types: Event types that are what an agent saw (``trace step``'s "saw").
        result_types: Event types that are what an agent did (its "parsed result").
        step_title: A step name (last part of an event id, e.g. ``p2``) -> its heading in
            ``trace agent`` (None: the name itself).
        setting: The environment's settings (``config.environment``) shown by ``trace
            summary``.
    """

    environment: str
    labels: Mapping[str, str]
    defaults: tuple[str, ...]
    metrics: Callable[[], RunMetrics]
    event_types: tuple[str, ...]
    user_fields: tuple[str, ...] = ()
    user_event: Callable[[UserAcc, dict[str, Any]], bool] | None = None
    user_finish: Callable[[UserAcc], None] | None = None
    ratios: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    compared: tuple[str, ...] = ()
    rating_metrics: tuple[str, ...] = ()
    summary_columns: Callable[[dict[str, Any]], tuple[list[str], list[str]]] = _no_columns
    summary_note: Callable[[dict[str, Any], list[str]], str] | None = None
    summary_lines: Callable[[dict[str, Any]], list[str]] | None = None
    stat_labels: Mapping[str, str] = field(default_factory=dict)
    group_metrics: tuple[str, ...] = ()
    report_sections: tuple[ReportSection, ...] = ()
    report_data: Callable[[list[dict[str, Any]]], Any] | str | None = None
    describe: Mapping[str, Describer] = field(default_factory=dict)
    seen_types: tuple[str, ...] = ()
    result_types: tuple[str, ...] = ()
    step_title: Callable[[str], str | None] | None = None
    setting: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def clip(text: Any, n: int = 160) -> str:
    """``text`` on one line, at most ``n`` characters (for one-line event descriptions)."""
    s = " ".join(str(text).split())
    return s if len(s) <= n else s[: n - 1] + "…"


_REGISTRY: dict[str, Outcomes] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN.values():
            importlib.import_module(module)


def register_outcomes(outcomes: Outcomes, *, replace: bool = False) -> Outcomes:
    """Make ``outcomes`` the plug-in of its environment (returns it, so a module can write
    ``FEED = register_outcomes(Outcomes(...))``).

    Raises:
        ValueError: The environment already has a plug-in (unless ``replace``).
    """
    env = outcomes.environment
    if env in _REGISTRY and not replace and _REGISTRY[env] is not outcomes:
        raise ValueError(f"environment {env!r} already has an outcome plug-in")
    _REGISTRY[env] = outcomes
    if env not in BUILTIN:
        # Scenario validation of `metrics:` knows the new environment's metrics (the built-in
        # ones are the schema's own vocabulary; tests check they match their plug-ins).
        from scenarios.schema import ENVIRONMENT_METRICS

        ENVIRONMENT_METRICS[env] = outcomes.defaults
    return outcomes


def unregister_outcomes(environment: str) -> None:
    """Forget an environment's plug-in (tests; a built-in one cannot be removed)."""
    if environment in BUILTIN:
        raise ValueError(f"{environment!r} is a built-in environment")
    if _REGISTRY.pop(environment, None) is not None:
        from scenarios.schema import ENVIRONMENT_METRICS

        ENVIRONMENT_METRICS.pop(environment, None)


@contextmanager
def temporarily_registered(outcomes: Outcomes) -> Iterator[Outcomes]:
    """``outcomes`` registered inside the ``with`` block only (for tests)."""
    register_outcomes(outcomes)
    try:
        yield outcomes
    finally:
        unregister_outcomes(outcomes.environment)


def outcomes_for(environment: str | None) -> Outcomes | None:
    """The plug-in of an environment (None: nothing registered under that name)."""
    _load_builtins()
    return _REGISTRY.get(str(environment or "feed"))


def registered() -> dict[str, Outcomes]:
    """Every registered plug-in, built-in ones first."""
    _load_builtins()
    return dict(_REGISTRY)


def no_plugin_note(environment: str) -> str:
    """The one line readers show for an environment without a plug-in."""
    return (f"environment {environment!r} has no outcome plug-in "
            "(simulations.analysis.outcomes.register_outcomes): events are listed and counted, "
            "no metrics")


def all_labels() -> dict[str, str]:
    """Labels of every registered metric (and interval figure)."""
    out: dict[str, str] = {}
    for o in registered().values():
        out.update(o.labels)
        out.update({k: v for k, v in o.stat_labels.items() if k not in out})
    return out


def ratio_of(metric: str) -> tuple[str, str] | None:
    """(numerator, denominator) user fields of a ratio metric of any environment."""
    for o in registered().values():
        if metric in o.ratios:
            return o.ratios[metric]
    return None


def rating_metrics() -> tuple[str, ...]:
    """Metrics on the rating scale, of every environment."""
    return tuple(m for o in registered().values() for m in o.rating_metrics)


def metric_event_types() -> tuple[str, ...]:
    """Every event type some environment's metrics read."""
    seen: dict[str, None] = {}
    for o in registered().values():
        seen.update(dict.fromkeys(o.event_types))
    return tuple(seen)


def describers() -> dict[str, Describer]:
    """Event type -> description, of every environment."""
    out: dict[str, Describer] = {}
    for o in registered().values():
        out.update(o.describe)
    return out


def step_types() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(seen, result) event types of a step, of every environment."""
    plugins = registered().values()
    return (tuple(t for o in plugins for t in o.seen_types),
            tuple(t for o in plugins for t in o.result_types))


def report_sections() -> list[ReportSection]:
    """Every environment's report sections."""
    return [s for o in registered().values() for s in o.report_sections]


S = TypeVar("S")
K = TypeVar("K")


class Scoped(Generic[S]):
    """Per-arm scopes of an accumulator: overall, per round and per role.

    ``targets(ev)`` gives the accumulators an arm event counts in (creating them);
    ``result(arm, fn)`` gives ``{"overall", "rounds", "roles"}`` of ``fn`` over them, rounds
    and roles sorted.
    """

    def __init__(self, factory: Callable[[], S]) -> None:
        self.factory = factory
        self.overall: dict[str, S] = {}
        self.rounds: dict[tuple[str, Any], S] = {}
        self.roles: dict[tuple[str, str], S] = {}

    def _get(self, d: dict[K, S], key: K) -> S:
        acc = d.get(key)
        if acc is None:
            acc = d[key] = self.factory()
        return acc

    def targets(self, ev: dict[str, Any]) -> list[S]:
        arm = str(ev["arm"])
        out = [self._get(self.overall, arm), self._get(self.rounds, (arm, ev["round"]))]
        if ev.get("role") is not None:
            out.append(self._get(self.roles, (arm, str(ev["role"]))))
        return out

    def result(self, arm: str, fn: Callable[[S], dict[str, Any]]) -> dict[str, Any]:
        return {
            "overall": fn(self.overall[arm]),
            "rounds": {str(r): fn(a) for (a2, r), a in sorted(self.rounds.items(),
                                                                key=lambda kv: kv[0])
                       if a2 == arm},
            "roles": {ro: fn(a) for (a2, ro), a in sorted(self.roles.items(),
                                                          key=lambda kv: kv[0]) if a2 == arm},
        }

