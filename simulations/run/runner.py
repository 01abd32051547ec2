"""The run loop: prepare data and agents, run each recommender arm round by round through
the feed graph, then compute metrics from the trace and close the run folder.

Arms run one after another on the same seeded users (paired comparison): a user's random
draws depend on (seed, user, round, page) only.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.items.live import ArmItems
from agents.library import Library
from agents.llm import BudgetExceededError, LLMError
from agents.recsys.factory import AgentEnv, LLMAgent, agent_from
from agents.recsys.plugins import AgentRecommender
from agents.run_stores import reset_stores
from scenarios.schema import (
    RecommenderConfig,
    SwitchRecommenderEvent,
)
from simulations.environments import Environment, EnvSetup, make_environment
from simulations.environments.loop import Actor, Checkpoints, Loop
from simulations.environments.pipeline import lockstep_forced
from simulations.executors import (
    ClientView,
    Executor,
    ExecutorError,
    PopulationSpec,
    make_executor,
)
from simulations.inspection.index import INDEX_FILENAME
from simulations.inspection.items import ITEMS_FILENAME, catalog_items, write_items
from simulations.record.crash import crash_point
from simulations.record.redact import Redactor
from simulations.record.trace import ResumeDivergedError, TraceWriter
from simulations.record.withhold import WithholdingRedactor
from simulations.run.attack import FakeUserAttack
from simulations.run.folder import make_run_dir, write_json, write_reference
from simulations.run.follow import TraceFollower
from simulations.run.heap import survivors_frozen
from simulations.run.outcome import git_commit, llm_summary, versions
from simulations.run.prepare import (
    DATA_ENV,
    InputError,
    Prepared,
    Resumable,
    ResumeError,
    RunError,
    check_api_keys,
    check_requirements,
    config_hash,
    config_of,
    load_manifest,
    load_resumable,
    prepare,
    resolve_data_path,
)
from simulations.run.stop_signals import interrupt_reason
from tools.dataset import Interactions
from tools.item_space import content_features
from tools.memo import digest, memoised
from tools.recommenders import ColdStartRecommender, Recommender, make_recommender

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.llm import CallRecord, LLMClient

__all__ = [
    "DATA_ENV",
    "InputError",
    "Prepared",
    "Resumable",
    "ResumeError",
    "RunError",
    "RunResult",
    "check_api_keys",
    "check_requirements",
    "config_hash",
    "load_manifest",
    "load_resumable",
    "prepare",
    "resolve_data_path",
    "resume",
    "run",
]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    status: str
    events: int
    llm: dict[str, Any] | None = None
    reason: str = ""  # why it stopped, when it did not complete (manifest "reason")


def _redactor(prep: Prepared) -> Redactor:
    """Masks the environment's secrets and those of every variable an llm: block names."""
    cfgs = [prep.llm, *(r.config.llm for r in prep.loaded.roles)]
    base = Redactor.from_environment(c.api_key_env for c in cfgs if c is not None)
    if not prep.scenario.output.withhold_attributes:
        return base
    ds = prep.dataset
    return WithholdingRedactor.for_users(base, ds.user_ids, ds.user_attrs)


def _fit(cfg: RecommenderConfig | SwitchRecommenderEvent, seed: int, prep: Prepared,
         train: Interactions, arm: RecommenderConfig,
         released: frozenset[int], agent: LLMAgent | None = None,
         n_users: int | None = None) -> ColdStartRecommender:
    """The model fitted on ``train``, wrapped with the arm's cold-start policy (an agent
    arm: the agent ranking its candidate model's top items)."""
    try:
        if isinstance(cfg, RecommenderConfig) and cfg.model == "agent":
            if agent is None:
                raise ValueError(f"arm {cfg.name!r}: no agent was built")
            cand = make_recommender(cfg.candidates.model, seed=seed, **cfg.candidates.params)
            rec: Recommender = AgentRecommender(cand, agent, cfg.candidates.n,
                                                prep.dataset.user_ids, seed)
        else:
            rec = make_recommender(cfg.model, seed=seed, **cfg.params)
    except (ValueError, TypeError) as e:
        raise RunError(f"{prep.loaded.path}: recommenders: {e}") from None

    def build() -> ColdStartRecommender:
        w = ColdStartRecommender(rec, content_features(prep.dataset.catalog),
                                 policy=arm.cold_start.policy, share=arm.cold_start.share,
                                 seed=seed)
        # Fake users of an attack (simulations/run/attack.py) are rows after the real ones.
        w.fit(train.matrix(n_users or prep.dataset.n_users, prep.dataset.n_items,
                           binary=not rec.uses_ratings))
        return w

    crash_point("refit")
    if agent is not None:
        wrapped = build()
    else:  # identical fits are shared inside tools.memo.memo() (eval validity --taste)
        wrapped = memoised(lambda: digest(
            "fit", cfg.model_dump_json(), arm.cold_start.model_dump_json(), seed,
            prep.dataset.name, prep.dataset.n_items, train.user, train.item, train.rating),
            build)
    wrapped.new_items = released
    return wrapped


def _open_arm(prep: Prepared, cfg: RecommenderConfig, executor: Executor,
              trace: TraceWriter, on_session_end: Callable[[int], None],
              agent: LLMAgent | None = None,
              fake: FakeUserAttack | None = None) -> tuple[Actor, Environment]:
    """One arm: a fresh population in a fresh environment (the loop then runs its rounds,
    simulations.environments.loop). An attack's fake users reach this arm's fits only
    if the attack names the arm (``fake``: the run's fake-user attack)."""
    scn = prep.scenario
    population = executor.for_arm(cfg.name)
    fits = [0]

    def fit(c: RecommenderConfig | SwitchRecommenderEvent, train: Interactions,
            released: frozenset[int]) -> ColdStartRecommender:
        rows = None
        if fake is not None and fake.reaches(cfg.name):
            fits[0] += 1
            train, rows = fake.training(cfg.name, train, trace.emit, f"fit{fits[0]}/")
        return _fit(c, scn.seed, prep, train, cfg, released, agent, n_users=rows)

    if fake is not None and fake.reaches(cfg.name):
        trace.emit("attack", f"{cfg.name}/attack", arm=cfg.name, round=None,
                   **fake.describe(prep.dataset))
    env = make_environment(scn.environment.kind, EnvSetup(
        arm=cfg, scenario=scn, dataset=prep.dataset, history=prep.history,
        future=prep.future, world=prep.world, users=prep.population,
        withheld=prep.withheld, trace=trace,
        fit=fit,
        role_of=executor.role_of, on_session_end=on_session_end,
        activity=_activity(prep, executor.role_of),
        items=ArmItems(prep.items) if prep.items is not None else None))
    return population, env


def _fake_users(prep: Prepared, executor: Executor, replay: bool) -> FakeUserAttack | None:
    """The run's fake-user attack, its LLM-written profiles written now (through the
    run's LLM service: cached, and answered from the cache on a resume)."""
    fake = prep.attack.fake_users if prep.attack is not None else None
    if fake is None or fake.profiles is not None:
        return fake
    service = executor.llm_service()
    if service is None or prep.llm is None:
        raise RunError(f"{prep.loaded.path}: attack.fake_users.strategy llm needs an llm: "
                       "block (or --llm) and the default executor")
    client = service.client(prep.llm, caller="attacker", on_call=lambda rec: None)
    client.recorder.replay = replay
    return fake.write(client, prep.dataset, prep.history)


def _activity(prep: Prepared, role_of: dict[int, str]) -> dict[int, int]:
    """Each simulated user's activity trait (1-3) in the role it plays."""
    return {u: prep.role_profiles[role][u].activity for u, role in role_of.items()
            if role in prep.role_profiles}


def run(
    prep: Prepared,
    out: Path | None = None,
    on_session_end: Callable[[int], None] = lambda n: None,
    argv: list[str] | None = None,
    replay: str | None = None,
    chat_model: BaseChatModel | None = None,
    warm_cache: str | None = None,
    on_llm_call: Callable[[CallRecord], None] | None = None,
) -> RunResult:
    """Run every arm; write trace, manifest, summary, catalogue (items.jsonl), checkpoints
    (checkpoints.sqlite) and the trace index (trace_index.sqlite) into the run folder.

    Args:
        prep: From ``prepare``.
        out: The run folder to create (default: under the scenario's output dir).
        on_session_end: Progress callback, called with the number of sessions that ended.
        argv: The command line, for the manifest.
        replay: A run folder or LLM cache to answer every LLM call from (no network).
        chat_model: Use this chat model instead of building one from the llm config
            (tests pass ``agents.llm.FakeChatModel``).
        warm_cache: A run folder or LLM cache whose calls this run's cache starts with
            (recording continues; used by ``recarena compare`` across scenarios).
        on_llm_call: Progress callback, called with every finished LLM call (cache hits
            included; from the executor's event loop thread).
    """
    scn = prep.scenario
    uses_llm = any(r.config.brain.kind == "llm" for r in prep.loaded.roles) or bool(
        prep.loaded.agents)
    if replay is not None and not uses_llm:
        raise RunError("--replay: this scenario's roles use no LLM; nothing to replay")
    if replay is None and chat_model is None:  # before the run folder exists
        check_api_keys(prep.loaded, prep.args.get("llm"))
    run_dir = make_run_dir(out, scn)
    config = config_of(prep)
    manifest: dict[str, Any] = {
        "scenario": scn.name, "scenario_file": str(prep.loaded.path),
        "config_hash": config_hash(config), "seed": scn.seed, "versions": versions(),
        "git_commit": git_commit(), "command": argv or sys.argv,
        "platform": platform.platform(), "status": "running", "replay_of": replay,
        "executor": scn.executor.model_dump(mode="json"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed": 0,
        # What `recarena resume` needs to prepare this run again.
        "resume": {**prep.args, "scenario_file": str(prep.loaded.path.resolve()),
                   "replay": _abs(replay), "warm_cache": _abs(warm_cache)},
    }
    redactor = _redactor(prep)
    write_json(run_dir / "manifest.json", manifest, redactor)
    write_items(run_dir / ITEMS_FILENAME, catalog_items(prep.dataset.catalog))
    write_reference(run_dir, prep)
    return _execute(prep, run_dir, manifest, config, on_session_end=on_session_end,
                    replay=replay, chat_model=chat_model, warm_cache=warm_cache,
                    resume=False, on_llm_call=on_llm_call)


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path is not None else None


def resume(
    run: Path | Resumable,
    on_session_end: Callable[[int], None] = lambda n: None,
    chat_model: BaseChatModel | None = None,
    on_llm_call: Callable[[CallRecord], None] | None = None,
) -> RunResult:
    """Continue a run that stopped before its end (killed, interrupted, failed).

    The run is re-executed from its seed up to its last checkpoint with every LLM call
    answered from the run's own cache (a call the cache lacks is an error, never a paid
    call) and every trace event checked against the file, then continues from the
    checkpoint. The result equals an uninterrupted run's.

    Raises:
        ResumeError: See ``load_resumable``.
        RunError: The re-execution did not reproduce the trace (code or data changed).
    """
    r = run if isinstance(run, Resumable) else load_resumable(run)
    manifest = dict(r.manifest)
    args = manifest["resume"]
    if args.get("replay") is None and chat_model is None:  # calls after the checkpoint
        check_api_keys(r.prep.loaded, args.get("llm"))
    manifest.update(status="running", resumed=int(manifest.get("resumed", 0)) + 1)
    for k in ("reason", "events", "elapsed_s", "llm", "finished"):
        manifest.pop(k, None)
    write_json(r.run_dir / "manifest.json", manifest, _redactor(r.prep))
    return _execute(r.prep, r.run_dir, manifest, r.config, on_session_end=on_session_end,
                    replay=args.get("replay"), chat_model=chat_model,
                    warm_cache=args.get("warm_cache"), resume=True, on_llm_call=on_llm_call)


def _execute(prep: Prepared, run_dir: Path, *args: Any, **kwargs: Any) -> RunResult:
    """The run proper (fresh, or resumed from the run folder's checkpoint), its trace
    followed for the outcome and the index as it is written."""
    follower = TraceFollower(run_dir / "trace.jsonl", run_dir / INDEX_FILENAME)
    try:
        with survivors_frozen():
            return _traced(prep, run_dir, *args, follower=follower, **kwargs)
    finally:
        follower.close()


def _traced(prep: Prepared, run_dir: Path, manifest: dict[str, Any], config: dict[str, Any],
            *, on_session_end: Callable[[int], None], replay: str | None,
            chat_model: BaseChatModel | None, warm_cache: str | None, resume: bool,
            follower: TraceFollower, on_llm_call: Callable[[CallRecord], None] | None = None
            ) -> RunResult:
    scn = prep.scenario
    redactor = _redactor(prep)
    t0 = time.perf_counter()
    status, reason = "completed", ""
    checkpoints = Checkpoints(run_dir)
    cursor = checkpoints.cursor() if resume else None
    path = run_dir / "trace.jsonl"
    if resume:
        # Every store the run wrote (agents' memories, shared and team stores) is rebuilt
        # by the re-execution; the cache keeps what was paid for.
        reset_stores(run_dir)
        trace = TraceWriter.resume(path, redactor, offset=cursor["offset"] if cursor else 0,
                                   events=cursor["events"] if cursor else 0)
    else:
        trace = TraceWriter(path, redactor)
    with trace:
        follower.start()
        trace.emit(
            "run_start", "run", scenario=scn.name, seed=scn.seed, config=config,
            dataset=prep.dataset.name, n_items=prep.dataset.n_items,
            n_users=prep.dataset.n_users, population=len(prep.population),
            history_interactions=len(prep.history), future_interactions=len(prep.future),
            environment=scn.environment.kind,
            # Only implicit data says so: traces of rated data stay as they were.
            **({} if prep.dataset.has_ratings else {"ratings": False}),
        )
        library = Library.for_dataset(prep.dataset, prep.history, prep.world, seed=scn.seed)
        try:
            executor = make_executor(scn.executor, PopulationSpec(
                roles=prep.loaded.roles, world=prep.world, profiles=prep.role_profiles,
                role_worlds=prep.role_worlds,
                users=prep.population, history=prep.history, seed=scn.seed,
                llm=prep.llm, run_dir=run_dir, replay=replay, chat_model=chat_model,
                max_pages=scn.environment.max_pages, library=library,
                keep_prompts=scn.output.keep_prompts, on_llm_call=on_llm_call,
                # On a resume the run's own cache already holds the warm calls: copying
                # them again would overwrite what the run recorded.
                warm_cache=None if resume else warm_cache), trace.emit, run_dir)
        except ExecutorError as e:
            raise RunError(str(e)) from None
        roles = {r.config.name: sum(1 for v in executor.role_of.values()
                                    if v == r.config.name) for r in prep.loaded.roles}
        trace.emit("population", "run/population", roles=roles)
        if prep.item_attack is not None:
            trace.emit("attack", "run/attack", **prep.item_attack.event(
                prep.dataset.catalog.item_ids))
            service = executor.llm_service()
            if service is not None and prep.item_attack.note:
                service.set_note(prep.item_attack.note)
        trace.flush()
        agents: dict[str, LLMAgent] = {}
        fake: FakeUserAttack | None = None  # written before the first arm opens

        def agent_clients() -> list[LLMClient]:
            return [c for a in agents.values() for c in a.rt.clients.values()]

        def set_replay(on: bool) -> None:
            executor.set_replay(on)
            for client in agent_clients():
                client.recorder.replay = on

        def open_arm(i: int) -> tuple[Actor, Environment]:
            cfg = scn.recommenders[i]
            out = _open_arm(prep, cfg, executor, trace, on_session_end, agents.get(cfg.name),
                            fake)
            # Rebuilding a resumed run answers every LLM call from the run's own cache:
            # a call it lacks fails the resume rather than being paid for again.
            set_replay(replay is not None or trace.verifying)
            return out

        loop = Loop(len(scn.recommenders), scn.environment.rounds, open_arm, trace,
                    pipeline=not lockstep_forced())
        try:
            fake = _fake_users(prep, executor, replay is not None or trace.verifying)
            for name, loaded_agent in prep.loaded.agents.items():
                agents[name] = agent_from(loaded_agent, AgentEnv(
                    library=library, seed=scn.seed, run_dir=run_dir, llm=prep.llm,
                    replay=replay, chat_model=chat_model, emit=trace.emit,
                    cache=executor.shared_cache(), service=executor.llm_service(),
                    keep_prompts=scn.output.keep_prompts,
                    on_llm_call=on_llm_call))
            if cursor is not None:
                loop.rebuild(cursor)
                set_replay(replay is not None)
            loop.run(checkpoints, resume=cursor is not None)
        except ResumeDivergedError as e:
            raise RunError(str(e)) from None
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM under the CLI (stop_signals)
            status, reason = "interrupted", interrupt_reason(e)
        except BudgetExceededError as e:
            status, reason = "budget_exhausted", str(e)
        except LLMError as e:  # already one line for the user
            status, reason = "failed", str(e)
        except Exception as e:
            status, reason = "failed", f"{type(e).__name__}: {e}"
        finally:
            for a in agents.values():
                a.close()
            executor.close()
            checkpoints.close()
        if trace.verifying:  # stopped before the checkpoint: nothing new to write
            raise RunError(f"resume stopped while rebuilding the run (event {trace.count} "
                           f"of {cursor['events'] if cursor else 0}): {reason}")
        clients: list[ClientView] = [*executor.clients(), *agent_clients()]
        trace.flush()
        outcome = follower.outcome(trace.offset)
        metrics, failed = outcome.metrics, outcome.failed
        if status == "completed" and clients and failed and not outcome.answered:
            # The run's real decisions are pages and turns: interviews and opening requests
            # that succeeded do not make a run whose every choice failed a measurement.
            status, reason = "failed", (f"every LLM decision failed ({failed} decision "
                                        "failures; their raw answers are in the trace)")
        for arm_name, m in metrics["arms"].items():
            for name in scn.metric_names():
                trace.emit("metric", f"metric/{arm_name}/{name}", arm=arm_name, round=None,
                           name=name, value=m["overall"][name])
                for rnd, rm in m["rounds"].items():
                    trace.emit("metric", f"metric/{arm_name}/r{rnd}/{name}", arm=arm_name,
                               round=int(rnd), name=name, value=rm[name])
        if clients:
            per_agent = {a: {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                             "cost_usd": round(u.cost_usd, 8)}
                         for c in clients for a, u in sorted(c.usage.per_agent.items())}
            trace.emit("llm_usage", "run/llm_usage",
                       input_tokens=sum(c.usage.total.input_tokens for c in clients),
                       output_tokens=sum(c.usage.total.output_tokens for c in clients),
                       cost_usd=round(sum(c.usage.total.cost_usd for c in clients), 8),
                       per_agent=dict(sorted(per_agent.items())))
        elapsed = time.perf_counter() - t0
        trace.emit("run_end", "run/end", status=status, reason=reason,
                   elapsed_s=round(elapsed, 3))
        events = trace.count
    llm = llm_summary(clients)
    summary = {"scenario": scn.name, "seed": scn.seed, "status": status, "reason": reason,
               "metrics": metrics, "llm": llm}
    if outcome.item_updates:  # per arm and round: item descriptions the run rewrote
        summary["item_updates"] = outcome.item_updates
    if outcome.reasoning:  # per arm: rationales / query sets prepared, reused, their cost
        summary["reasoning"] = outcome.reasoning
    write_json(run_dir / "summary.json", summary, redactor)
    manifest.update(status=status, reason=reason, events=events,
                    elapsed_s=round(elapsed, 3), llm=llm,
                    finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json(run_dir / "manifest.json", manifest, redactor)
    follower.finish()  # the index `recarena trace` reads (rebuilt on demand if missing)
    if status == "failed":
        raise RunError(redactor.text(f"run failed: {reason} (partial trace kept in {run_dir})"))
    return RunResult(run_dir, metrics, status, events, llm, reason)
