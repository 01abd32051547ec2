"""The Python entry point for scripts and notebooks: load a scenario, override fields, run
it, read its summary as a pandas DataFrame, and register your own recommender.

    from simulations import api

    scn = api.load("quickstart", overrides={"population.size": 20}, seed=3)
    result = api.run(scn, out="runs/mine", llm="fake")
    df = result.summary()                 # one row per (arm, round, metric)
    api.register_recommender("mostpop", MostPopular)   # then model: mostpop in a scenario

Everything here is what ``recarena run`` does, with the same checks and the same run
folder; nothing is validated less. See docs/api.md. These names are the stable surface:
what they call may move (simulations.run.runner, scenarios.loader), these will not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scenarios.loader import LoadedScenario, ScenarioError, load_scenario
from simulations.run.prepare import check_api_keys, prepare
from simulations.run.runner import RunResult
from simulations.run.runner import run as run_prepared
from tools.recommenders.plugin import register_recommender, registered_recommenders

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.llm import CallRecord

__all__ = [
    "Result",
    "load",
    "register_recommender",
    "registered_recommenders",
    "run",
    "shipped_scenarios",
    "summary",
]


def shipped_scenarios() -> list[str]:
    """The names of the scenarios that ship with RecArena (``load`` takes them)."""
    return sorted(p.name.removesuffix(".yaml") for p in files("scenarios").iterdir()
                  if p.name.endswith(".yaml"))


def _path_of(scenario: str | Path) -> Path:
    path = Path(scenario)
    if path.is_file():
        return path
    shipped = files("scenarios") / f"{str(scenario).removesuffix('.yaml')}.yaml"
    if isinstance(scenario, str) and "/" not in scenario and shipped.is_file():
        return Path(str(shipped))
    raise FileNotFoundError(f"{scenario}: no such scenario file or shipped scenario "
                            f"(shipped: {', '.join(shipped_scenarios())})")


def load(scenario: str | Path, overrides: Mapping[str, Any] | None = None, *,
         llm: str | None = None, **fields: Any) -> LoadedScenario:
    """Load and validate a scenario, with fields overridden.

    Args:
        scenario: A scenario file, or the name of a shipped scenario (``quickstart``).
        overrides: New values by dotted key (``population.size``,
            ``recommenders.0.params.l2``, ``environment.rounds``).
        llm: The model the run will use (``fake``, ``local``, ``openai[:MODEL]``): an LLM
            role may then come without an ``llm:`` block, as with ``recarena run --llm``.
        **fields: Top-level or dotted-with-double-underscore overrides
            (``seed=3``, ``population__size=20``).

    Raises:
        ScenarioError: The file or an override is invalid; ``str()`` is one line, naming
            the override (``override population.size=0: ...``) when one is at fault.
        FileNotFoundError: No such file or shipped scenario.
    """
    changes = {**(overrides or {}), **{k.replace("__", "."): v for k, v in fields.items()}}
    path = _path_of(scenario)
    try:
        return load_scenario(path, llm_flag=llm is not None, overrides=changes)
    except ValueError as e:  # ScenarioError too: name the override at fault, if any
        field = getattr(e, "field", "")
        at_fault = [k for k in changes if _concerns(k, field)] if field else list(changes)
        if isinstance(e, ScenarioError):
            if not at_fault:
                raise
            key = at_fault[0]
            raise ScenarioError(e.path, e.line, e.field, f"override {key}={changes[key]!r}: "
                                f"{e.message}") from None
        raise ScenarioError(path, 1, "", str(e)) from None


def _concerns(key: str, field: str) -> bool:
    # The loader names fields as the file spells them (population.size, recommenders.0.name).
    return field == key or field.startswith(key + ".") or key.startswith(field + ".")


@dataclass(frozen=True)
class Result:
    """A finished run: its folder, status and metrics (``RunResult``), as data frames."""

    run_dir: Path
    status: str
    reason: str | None
    metrics: dict[str, Any]
    llm: dict[str, Any] | None

    def summary(self) -> pd.DataFrame:
        """One row per (arm, round, metric); ``round`` is NA for the arm's overall value."""
        return summary(self.run_dir)


def run(scenario: LoadedScenario | str | Path, *, out: str | Path | None = None,
        llm: str | None = None, data: str | Path | None = None, replay: str | None = None,
        chat_model: BaseChatModel | None = None,
        on_session_end: Callable[[int], None] | None = None,
        on_llm_call: Callable[[CallRecord], None] | None = None) -> Result:
    """Run a scenario into a new run folder (``recarena run``).

    Args:
        scenario: From ``load`` (or a file / shipped name, loaded without overrides).
        out: The run folder (must not exist or be empty); default: under the scenario's
            ``output.dir``, named by scenario and time.
        llm: ``fake`` (the offline scripted model), ``local`` or ``openai[:MODEL]``; default:
            the scenario's ``llm:`` block.
        data: The dataset folder or file (default: the scenario's, else RECARENA_DATA).
        replay: A run folder (or LLM cache) to answer every LLM call from.
        chat_model: Talk to this LangChain chat model instead (tests' fakes).
        on_session_end, on_llm_call: Progress callbacks.

    Raises:
        ScenarioError, RunError: Invalid input, or the run failed (the trace is kept).
    """
    loaded = scenario if isinstance(scenario, LoadedScenario) else load(scenario, llm=llm)
    if out is not None:
        target = Path(out)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise FileExistsError(f"{target} exists and is not an empty folder (a run never "
                                  "writes into an earlier run)")
    if replay is None and chat_model is None:
        check_api_keys(loaded, llm)
    prep = prepare(loaded, llm=llm, data=str(data) if data is not None else None)
    res: RunResult = run_prepared(prep, Path(out) if out is not None else None,
                                  on_session_end=on_session_end or (lambda n: None),
                                  replay=replay, chat_model=chat_model,
                                  on_llm_call=on_llm_call)
    return Result(res.run_dir, res.status, res.reason, res.metrics, res.llm)


def summary(run_dir: str | Path) -> pd.DataFrame:
    """A run folder's metrics (its ``summary.json``) as a long data frame: columns
    ``arm``, ``round`` (NA for the overall value), ``metric``, ``value``; one row per arm,
    round and metric the run reports."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no summary.json (not a finished run folder)")
    metrics = json.loads(path.read_text())["metrics"]
    rows: list[dict[str, Any]] = []
    for arm, m in metrics["arms"].items():
        names = list(m["overall"])
        rows += [{"arm": arm, "round": pd.NA, "metric": n, "value": m["overall"][n]}
                 for n in names]
        for rnd, rm in m.get("rounds", {}).items():
            rows += [{"arm": arm, "round": int(rnd), "metric": n, "value": rm[n]}
                     for n in names if n in rm]
    frame = pd.DataFrame(rows, columns=["arm", "round", "metric", "value"])
    frame["round"] = frame["round"].astype("Int64")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame

