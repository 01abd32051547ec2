"""``recarena eval task`` end to end: check the inputs, load the data, build the agent
from its role or team file, evaluate it beside the baselines, release it.

The agent is built by ``agents.recsys.factory.make_recommender_agent`` over a tool
library whose past is the tasks' history split (nothing of any user's future), and
writes its trace events (delegations, tool calls, LLM calls) to ``OUT/trace.jsonl``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulations.tasks.data import TaskSetup, prepare_tasks
from simulations.tasks.suite import Progress, TaskOptions, evaluate_task

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.group import Emit
    from agents.recsys.protocol import RecommenderAgent
    from scenarios.schema import LLMConfig

__all__ = ["check_inputs", "check_team", "load_task_agent", "run_eval_task", "work_dir"]


def load_task_agent(path: Path, setup: TaskSetup, *, seed: int, run_dir: Path,
                    llm: LLMConfig | None, replay: str | None,
                    chat_model: BaseChatModel | None, emit: Emit) -> RecommenderAgent:
    """The recommender agent of a role or team file, with tools over the history split.

    The one place the offline tasks meet the agent factory.
    """
    from agents.library import Library
    from agents.recsys.factory import AgentEnv, make_recommender_agent

    library = Library.for_dataset(setup.dataset, setup.history, seed=seed)
    env = AgentEnv(library=library, seed=seed, run_dir=run_dir, llm=llm, replay=replay,
                   chat_model=chat_model, emit=emit)
    return make_recommender_agent(path, env)


def check_team(path: Path, *, llm_given: bool) -> None:
    """Load and validate a role or team file; every role needs a model (its ``llm:``
    block or ``--llm``).

    Raises:
        ScenarioError: The file or a role it names is invalid.
        ValueError: A role has no model and none is given.
    """
    from scenarios.recsys_loader import LoadedTeam, load_agent

    loaded = load_agent(path)
    roles = ([loaded.manager, *(m for m, _ in loaded.members)]
             if isinstance(loaded, LoadedTeam) else [loaded])
    for r in roles:
        if r.config.needs_llm and r.config.llm is None and not llm_given:
            raise ValueError(f"--llm: role {r.config.name!r} of {path} has no llm: block; "
                             "give --llm local, openai or openai:MODEL")


def _not_empty(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def check_inputs(opt: TaskOptions, *, team: str | None, llm: str | None,
                 replay: str | None, out: str | None, llm_threads: int | None = None,
                 llm_ctx: int | None = None, llm_timeout: float | None = None) -> None:
    """Every argument error, before any work (ValueError, one line)."""
    opt.validate()
    if llm_timeout is not None and (llm_timeout <= 0 or llm is None):
        raise ValueError("--llm-timeout: a positive number of seconds, with --llm")
    if llm_ctx is not None and (llm_ctx < 256 or llm is None):
        raise ValueError("--llm-ctx: a context window of at least 256 tokens, with --llm")
    if llm_threads is not None and (llm_threads < 1 or not (llm or "").startswith("local")):
        raise ValueError("--llm-threads: a positive number of threads, with --llm local")
    if team is None:
        for flag, v in (("--llm", llm), ("--replay", replay)):
            if v is not None:
                raise ValueError(f"{flag}: applies with --team only (baselines use no LLM)")
    elif not Path(team).is_file():
        raise ValueError(f"{team}: no such role or team file")
    else:
        check_team(Path(team), llm_given=llm is not None)
    if replay is not None:
        from agents.llm import resolve_cache_path

        if not resolve_cache_path(replay).is_file():
            raise ValueError(f"--replay: no LLM cache at {resolve_cache_path(replay)} (give "
                             "the --out folder of an earlier eval task or its cache)")
    if out is not None and _not_empty(Path(out)):
        raise ValueError(f"--out: {out} exists and is not an empty folder; choose another")


@contextlib.contextmanager
def work_dir(out: str | None, prefix: str = "recarena-task-") -> Iterator[Path]:
    """``out`` (created), or a temporary folder removed afterwards."""
    if out is not None:
        p = Path(out)
        p.mkdir(parents=True, exist_ok=True)
        yield p
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as d:
            yield Path(d)


def run_eval_task(
    data: str | Path,
    opt: TaskOptions,
    *,
    team: str | None = None,
    llm: str | None = None,
    llm_threads: int | None = None,
    llm_ctx: int | None = None,
    llm_timeout: float | None = None,
    replay: str | None = None,
    out: str | None = None,
    chat_model: BaseChatModel | None = None,
    progress: Progress = lambda name, total: lambda n: None,
) -> dict[str, Any]:
    """Evaluate the role or team in ``team`` (or only the baselines) on ``opt.task``.

    Args:
        llm: ``--llm`` spec overriding the role's model (local, openai, openai:MODEL).
        llm_threads: CPU threads of the local model.
        llm_ctx: Context window (tokens) of the local model.
        llm_timeout: Seconds one model call may take.
        replay: An earlier run folder or LLM cache to answer every call from.
        out: Folder for answers.jsonl, result.json, the agent's trace and LLM cache.
        chat_model: Use this chat model (tests pass a FakeChatModel).
    """
    from tools.dataset import load_dataset

    check_inputs(opt, team=team, llm=llm, replay=replay, out=out, llm_threads=llm_threads,
                 llm_ctx=llm_ctx, llm_timeout=llm_timeout)
    if llm is not None and replay is None and chat_model is None:  # before any work
        from agents.setup import missing_api_key, parse_llm_flag

        problem = missing_api_key(parse_llm_flag(llm, None))
        if problem:
            raise ValueError(f"--llm {llm}: {problem}")
    llm_cfg = None
    if llm is not None:
        from agents.setup import parse_llm_flag

        llm_cfg = parse_llm_flag(llm, None)
    if llm_cfg is not None and llm_threads is not None:
        llm_cfg = llm_cfg.model_copy(update={"n_threads": llm_threads})
    if llm_cfg is not None and llm_ctx is not None:
        llm_cfg = llm_cfg.model_copy(update={"n_ctx": llm_ctx})
    if llm_cfg is not None and llm_timeout is not None:
        llm_cfg = llm_cfg.model_copy(update={"timeout_s": llm_timeout})
    setup = prepare_tasks(load_dataset(data), split=opt.time_split)  # type: ignore[arg-type]
    with work_dir(out) as run_dir, contextlib.ExitStack() as stack:
        agent, trace = None, None
        if team is not None:
            from simulations.record.trace import TraceWriter

            trace = stack.enter_context(TraceWriter(run_dir / "trace.jsonl"))
            agent = load_task_agent(Path(team), setup, seed=opt.seed, run_dir=run_dir,
                                    llm=llm_cfg, replay=replay, chat_model=chat_model,
                                    emit=trace.emit)
            stack.callback(agent.close)
        info: dict[str, Any] = {"team": team, "llm": None}
        if llm_cfg is not None:
            from agents.llm import model_identity

            info["llm"] = f"{llm_cfg.backend}:{model_identity(llm_cfg)}"
        status = "failed"
        reason: str | None = "stopped by an error"
        try:
            res = evaluate_task(setup, opt, agent, out=Path(out) if out else None, info=info,
                                progress=progress)
            status, reason = "completed", None
            return res
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted"
            raise
        finally:
            # The trace views report a trace without run_end as incomplete.
            if trace is not None:
                trace.emit("run_end", "run/end", status=status, reason=reason,
                           eval_task=opt.task)
