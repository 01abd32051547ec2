"""Your own recommender, without editing RecArena: the protocol and how it is found.

A scenario's ``model:`` (and ``--models`` / ``--recommenders`` on the command line) is
a built-in name (``ease``), an import path (``mypkg.module:ClassName``), or the name of
an installed entry point of the group ``recarena.recommenders``. Any class that meets
``RecommenderPlugin`` works; it need not inherit from anything here. See
docs/recommenders.md.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Mapping
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import scipy.sparse as sp

from tools.recommenders.base import Recommender

__all__ = [
    "ENTRY_POINT_GROUP",
    "IncrementalRecommender",
    "PluginError",
    "PluginRecommender",
    "RecommenderPlugin",
    "arm_name",
    "entry_point_names",
    "is_plugin_spec",
    "load_plugin",
    "plugin_param_problems",
    "register_recommender",
    "registered_recommenders",
]

ENTRY_POINT_GROUP = "recarena.recommenders"
BUILTIN = "random, pop, itemknn, ease, als, bpr"  # tools.recommenders.MODELS (a test checks)
# module.path:QualName (an import path) or a bare entry-point name.
_SPEC = re.compile(r"^[A-Za-z_][\w.-]*(:[A-Za-z_][\w.]*)?$")


class PluginError(ValueError):
    """A plug-in recommender cannot be found, imported or built; one line."""


@runtime_checkable
class RecommenderPlugin(Protocol):
    """What a recommender must do to be an arm.

    The class is built as ``Cls(seed=SEED, **params)`` (``seed`` only if ``__init__`` takes
    it or ``**kwargs``), with ``params`` from the scenario, checked against the signature
    at load.

    Attributes:
        uses_ratings: Optional (default False). True: ``fit`` gets ratings as values;
            False: 1.0 for every interaction.
    """

    def fit(self, matrix: sp.csr_matrix) -> None:
        """Learn from the users x items interaction matrix (CSR, float32; row = dense
        user index, column = dense item index, as in ``Dataset``)."""

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        """Top-k item indices per user (len(users) x k, int), best first, padded with -1.

        ``exclude`` has one row per entry of ``users`` (same order) and n_items columns;
        its non-zero items must not be returned (already seen, shown or not yet released).
        """


@runtime_checkable
class IncrementalRecommender(RecommenderPlugin, Protocol):
    """Optionally, ``update``: on ``retrain: true`` arms, between rounds, RecArena calls
    ``update(matrix)`` with the full matrix (history plus simulated watches) instead of
    building and fitting a new instance."""

    def update(self, matrix: sp.csr_matrix) -> None: ...


# Classes registered in this process by name (``register_recommender``): scripts and
# notebooks name their own class in a scenario without packaging it.
_REGISTERED: dict[str, type] = {}


def register_recommender(name: str, cls: type) -> None:
    """Make ``cls`` available as ``model: NAME`` in this process (scenarios loaded and run
    after the call; e.g. from a script or a notebook, without packaging the class).

    Raises:
        PluginError: ``name`` is a built-in model, not a valid name, or already registered
            to another class; or ``cls`` lacks ``fit``/``recommend``.
    """
    if name in {m.strip() for m in BUILTIN.split(",")} or name == "agent":
        raise PluginError(f"register_recommender: {name!r} is a built-in model; choose "
                          "another name")
    if not _SPEC.match(name) or ":" in name:
        raise PluginError(f"register_recommender: {name!r} is not a valid model name "
                          "(letters, digits, _ . -)")
    _check_class(cls, "registered", name)
    if _REGISTERED.get(name, cls) is not cls:
        raise PluginError(f"register_recommender: {name!r} is already registered to "
                          f"{_REGISTERED[name].__qualname__}")
    _REGISTERED[name] = cls


def registered_recommenders() -> dict[str, type]:
    """The classes ``register_recommender`` registered, by name."""
    return dict(_REGISTERED)


def _check_class(obj: Any, how: str, target: str) -> None:
    if not inspect.isclass(obj):
        raise PluginError(f"{how} {target} is not a class (got {type(obj).__name__})")
    missing = [m for m in ("fit", "recommend") if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(f"{how} {target}: a recommender needs fit() and recommend(); "
                          f"it lacks {', '.join(missing)} (see docs/recommenders.md)")


def is_plugin_spec(spec: str) -> bool:
    """Whether ``spec`` can name a plug-in (an import path or an entry-point name)."""
    return bool(_SPEC.match(spec))


def arm_name(spec: str) -> str:
    """A valid arm name for a model given on the command line (``a.b:C`` -> ``a.b.C``)."""
    return spec.replace(":", ".")


def entry_point_names() -> list[str]:
    """Installed entry points of the ``recarena.recommenders`` group."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def load_plugin(spec: str) -> type:
    """The class ``spec`` names: ``module:Class`` is imported, a bare name is looked up
    among the ``recarena.recommenders`` entry points.

    Raises:
        PluginError: one line naming ``spec`` and what failed.
    """
    if spec in _REGISTERED:
        return _REGISTERED[spec]
    if ":" in spec:
        how, target = "import path", spec
    else:
        eps = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
               if ep.name == spec]
        if not eps:
            known = ", ".join(entry_point_names()) or "none installed"
            raise PluginError(
                f"unknown model {spec!r}: not a built-in model ({BUILTIN}), not an import "
                f"path (module:Class) and not an entry point of group {ENTRY_POINT_GROUP} "
                f"({known})")
        how, target = f"entry point {spec!r} ->", eps[0].value
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except Exception as e:  # any failure in the user's module is reported in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise PluginError(f"cannot load {how} {target}: {type(e).__name__}: {first}"
                          ) from None
    _check_class(obj, how, target)
    return cast(type, obj)


def _signature(cls: type) -> inspect.Signature:
    try:
        return inspect.signature(cls)
    except (TypeError, ValueError):  # some C types: accept anything
        return inspect.Signature([inspect.Parameter(
            "kwargs", inspect.Parameter.VAR_KEYWORD)])


def plugin_param_problems(cls: type, spec: str,
                          params: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """What is wrong with ``params`` for ``cls``: (the parameter, or None for the whole
    mapping; message). Checked against ``cls``'s constructor signature."""
    sig = _signature(cls)
    ps = {n: p for n, p in sig.parameters.items()
          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    takes = ", ".join(n for n in ps if n != "seed") or "none"
    out: list[tuple[str | None, str]] = []
    if not var_kw:
        out += [(k, f"unknown parameter of {spec}; it takes: {takes}")
                for k in params if k not in ps]
    need = [n for n, p in ps.items()
            if p.default is p.empty and n != "seed" and n not in params]
    if need:
        out.append((None, f"{spec} needs parameter(s) {', '.join(need)}"))
    return out


def _accepts_seed(cls: type) -> bool:
    sig = _signature(cls)
    return "seed" in sig.parameters or any(
        p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


class PluginRecommender(Recommender):
    """A plug-in class behind the engine's ``Recommender`` interface.

    ``score`` (used by the conversation re-ranker and the agents' candidate tools) is the
    plug-in's own ``score(users)`` when it has one, else derived from its full ranking
    (n_items - rank; unranked items score -inf).
    """

    def __init__(self, spec: str, seed: int = 0, **params: Any) -> None:
        cls = load_plugin(spec)
        problems = plugin_param_problems(cls, spec, params)
        if problems:
            where, msg = problems[0]
            raise PluginError(f"{where}: {msg}" if where else msg)
        kwargs = {**params, "seed": seed} if _accepts_seed(cls) and "seed" not in params \
            else dict(params)
        try:
            self.plugin = cls(**kwargs)
        except Exception as e:
            raise PluginError(f"{spec}({', '.join(kwargs)}): {type(e).__name__}: {e}"
                              ) from None
        super().__init__(seed, **params)
        self.name = spec
        self.uses_ratings = bool(getattr(self.plugin, "uses_ratings", False))
        self.incremental = callable(getattr(self.plugin, "update", None))
        self._n_items = 0

    def _fit(self, matrix: sp.csr_matrix) -> None:
        self._n_items = matrix.shape[1]
        self.plugin.fit(matrix)

    def update(self, matrix: sp.csr_matrix) -> None:
        """The plug-in's incremental ``update`` (a full ``fit`` if it has none)."""
        if not self.incremental:
            self.fit(matrix)
            return
        self._train = matrix.tocsr().astype(np.float32)
        self._n_items = matrix.shape[1]
        self.plugin.update(self._train)

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if users.size == 0:
            return np.zeros((0, k), dtype=np.int64)
        out = np.asarray(self.plugin.recommend(users, k, exclude))
        if out.ndim != 2 or out.shape[0] != users.size or out.shape[1] > k:
            raise PluginError(f"{self.name}.recommend returned shape {out.shape}; expected "
                              f"({users.size}, {k})")
        if out.shape[1] < k:
            out = np.hstack([out, -np.ones((users.size, k - out.shape[1]), out.dtype)])
        out = out.astype(np.int64)
        if ((out < -1) | (out >= max(self._n_items, 1))).any():
            raise PluginError(f"{self.name}.recommend returned an item index outside "
                              f"0..{self._n_items - 1} (or -1 for none)")
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        own = getattr(self.plugin, "score", None)
        if callable(own):
            return np.asarray(own(users), dtype=np.float64)
        n = self._n_items
        ranked = self.recommend(users, n, None)
        s = np.full((users.size, n), -np.inf)
        rows, pos = np.nonzero(ranked >= 0)
        s[rows, ranked[rows, pos]] = n - pos
        return s
