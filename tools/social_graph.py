"""The social graph of a population: who follows, or is tied to, whom (docs/social.md).

A scenario's ``graph:`` block (scenarios/schema/social.py) is built here into a
:class:`SocialGraph` (tools/social_model.py): node ``i`` is the dataset user ``users[i]``;
its out-neighbours and their tie strengths are sorted arrays, so an environment reads a
user's ties without any graph library. Random graphs and network measures come from
networkx through tools/graphs.py (the seam); edge-list files are read by
tools/social_edges.py; the rewiring interventions live in tools/social_rewire.py. All of
it is importable from here.

Generated graphs number users in a random order (seeded), so which user becomes a hub
(Barabási-Albert) or whose ring neighbour they are (Watts-Strogatz) does not follow the
dataset's id order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from scenarios.schema.social import (
    BLOCK_ATTRIBUTES,
    BarabasiAlbertGraph,
    FileGraph,
    GraphConfig,
    SBMGraph,
    WattsStrogatzGraph,
)
from tools import graphs
from tools.social_edges import read_edge_list
from tools.social_model import (
    UNKNOWN,
    GraphError,
    SocialGraph,
    assemble,
    attribute_levels,
    block_labels,
    components,
)
from tools.social_rewire import rewire_heterophilous, shuffled

__all__ = [
    "GraphError",
    "SocialGraph",
    "attribute_levels",
    "block_labels",
    "build_graph",
    "graph_stats",
    "rewire_heterophilous",
    "shuffled",
]

# ----------------------------------------------------------------------------- building


def build_graph(cfg: GraphConfig, users: Sequence[int], attrs: Sequence[Mapping[str, str]],
                user_ids: Sequence[str], seed: int, source: str = "") -> SocialGraph:
    """Build the social graph a ``graph:`` block asks for, over a population.

    Args:
        cfg: The block (a validated model: scenarios.schema.graph_config).
        users: The population's dataset user indices; node ``i`` is ``users[i]``.
        attrs: ``attrs[k]`` is the attribute mapping of ``users[k]`` (Dataset.user_attrs:
            ``age`` as a number string, ``gender``, ``occupation``).
        user_ids: The dataset's user ids by user index (Dataset.user_ids), so
            ``user_ids[users[k]]`` is the id an edge list names node ``k`` by.
        seed: The run's seed (``cfg.seed_offset`` is added).
        source: The scenario file (or its folder) the block came from; a relative edge-list
            ``path`` is read from its folder (from the working directory when empty).

    Raises:
        GraphError: The population or a parameter does not allow the graph, an edge list
            is bad (file and line named), or the graph is disconnected and
            ``allow_disconnected`` is false.
    """
    n = len(users)
    what = cfg.kind
    if len(attrs) != n:
        raise GraphError(f"{what}: {len(attrs)} attribute rows for {n} users")
    if len(set(users)) != n:
        raise GraphError(f"{what}: a user appears twice in the population")
    if n < 2:
        raise GraphError(f"{what}: a social graph needs at least 2 users, got {n}")
    bad = [u for u in users if not 0 <= u < len(user_ids)]
    if bad:
        raise GraphError(f"{what}: user index {bad[0]} is not a user of the dataset "
                         f"({len(user_ids)} users)")
    if isinstance(cfg, FileGraph):
        return _from_file(cfg, users, user_ids, source)
    s = seed + cfg.seed_offset
    rng = np.random.default_rng(s)
    nx_seed = int(rng.integers(2**31 - 1))
    blocks: list[str] | None = None
    if isinstance(cfg, SBMGraph):
        blocks = block_labels(attrs, cfg.blocks_by, what)
        src, dst = _sbm(cfg, blocks, nx_seed)
    elif isinstance(cfg, BarabasiAlbertGraph):
        if cfg.m >= n:
            raise GraphError(f"barabasi_albert: m={cfg.m} ties per new user needs more "
                             f"than m users, the population has {n}")
        e = rng.permutation(n)[graphs.barabasi_albert_edges(n, cfg.m, nx_seed)]
        src, dst = e[:, 0], e[:, 1]
    elif isinstance(cfg, WattsStrogatzGraph):
        if cfg.k >= n:
            raise GraphError(f"watts_strogatz: k={cfg.k} ring neighbours needs more than k "
                             f"users, the population has {n}")
        e = rng.permutation(n)[graphs.watts_strogatz_edges(n, cfg.k, cfg.p, nx_seed)]
        src, dst = e[:, 0], e[:, 1]
    else:  # pragma: no cover - the union is closed
        raise GraphError(f"unknown graph kind {what!r}")
    notes: list[str] = []
    if not cfg.allow_disconnected:
        src, dst = _tie_in_strays(what, n, src, dst, blocks, rng, notes)
    return assemble(users, False, src, dst, None, f"{_describe(cfg)}, seed {s}", notes)


def _describe(cfg: SBMGraph | BarabasiAlbertGraph | WattsStrogatzGraph) -> str:
    params = cfg.model_dump(exclude={"kind", "seed_offset", "allow_disconnected"})
    inner = ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}"
                      for k, v in params.items())
    return f"{cfg.kind}({inner})"


def _sbm(cfg: SBMGraph, blocks: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A planted-partition sample: one tie probability inside blocks, one across.

    With ``P`` pairs of users, ``W`` of them inside a block and ``E = mean_degree * n / 2``
    ties wanted, blocks alone would put ``s0 = W / P`` of the ties inside blocks; homophily
    ``h`` asks for ``s = s0 + h * (1 - s0)`` (so ``h`` is Coleman's homophily index of the
    expected graph), hence ``p_in = s * E / W`` and ``p_out = (1 - s) * E / (P - W)``, and
    the expected number of ties is ``E`` whatever ``h``. Users of small blocks get fewer
    ties than users of large ones when ``h`` is high (one ``p_in`` for every block).
    """
    n = len(blocks)
    names, inverse = np.unique(np.asarray(blocks), return_inverse=True)
    sizes = np.bincount(inverse).astype(np.float64)
    pairs = n * (n - 1) / 2.0
    within = float((sizes * (sizes - 1)).sum() / 2.0)
    between = pairs - within
    expected = cfg.mean_degree * n / 2.0
    h = cfg.homophily
    if h > 0 and len(names) < 2:
        raise GraphError(f"sbm: all {n} users fall in one block ({names[0]}) by "
                         f"{', '.join(cfg.blocks_by)}, so homophily {h:g} means nothing; "
                         "use homophily 0 or other blocks_by")
    if h > 0 and within == 0:
        raise GraphError(f"sbm: every block by {', '.join(cfg.blocks_by)} has one user, so "
                         f"there is no tie within a block for homophily {h:g}")
    if expected > pairs:
        raise GraphError(f"sbm: mean_degree {cfg.mean_degree:g} is more than the "
                         f"{n - 1} other users each of {n} users can have")
    s0 = within / pairs
    share = s0 + h * (1.0 - s0)
    p_in = share * expected / within if within else 0.0
    p_out = (1.0 - share) * expected / between if between else 0.0
    if p_in > 1.0:
        raise GraphError(
            f"sbm: mean_degree {cfg.mean_degree:g} at homophily {h:g} needs a within-block "
            f"tie probability of {p_in:.2f} > 1 ({len(names)} blocks of {n} users, the "
            f"largest {int(sizes.max())}); lower mean_degree or homophily, or use fewer "
            "blocks_by")
    probs = np.full((len(names), len(names)), p_out)
    np.fill_diagonal(probs, p_in)
    # The generator numbers nodes block by block; map them back to population order.
    order = np.argsort(inverse, kind="stable")
    e = order[graphs.sbm_edges(sizes.astype(np.int64).tolist(), probs.tolist(), seed)]
    return e[:, 0], e[:, 1]


def _tie_in_strays(what: str, n: int, src: np.ndarray, dst: np.ndarray,
                   blocks: Sequence[str] | None, rng: np.random.Generator, notes: list[str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A generated graph whose pieces outside the largest hold at most 1% of the users
    (sampling noise of a sparse graph) gets one tie from a random member of each piece to
    a random member of the largest (of the same block when there is one); more is an error.
    """
    label = components(n, src, dst)
    sizes = np.bincount(label)
    if len(sizes) == 1:
        return src, dst
    main = int(np.argmax(sizes))
    strays = n - int(sizes[main])
    if strays > max(1, n // 100):
        _disconnected(what, n, len(sizes), int(sizes[main]), False)
    members = np.flatnonzero(label == main)
    by_block: dict[str, np.ndarray] = {}
    if blocks is not None:
        arr = np.asarray(blocks)[members]
        by_block = {b: members[arr == b] for b in np.unique(arr)}
    add_s, add_d = [], []
    for c in range(len(sizes)):
        if c == main:
            continue
        u = int(rng.choice(np.flatnonzero(label == c)))
        pool = by_block.get(blocks[u], members) if blocks is not None else members
        add_s.append(u)
        add_d.append(int(rng.choice(pool)))
    notes.append(f"{what}: {len(add_s)} stray pieces ({strays} users) tied to the main one "
                 "by one tie each")
    return np.concatenate([src, add_s]), np.concatenate([dst, add_d])


def _disconnected(what: str, n: int, pieces: int, largest: int, directed: bool) -> NoReturn:
    kind = "weakly connected components" if directed else "connected components"
    raise GraphError(f"{what}: the graph has {pieces} {kind}; the largest holds "
                     f"{largest / n:.1%} of {n} users (allow_disconnected: true accepts it)")


def _from_file(cfg: FileGraph, users: Sequence[int], user_ids: Sequence[str],
               source: str) -> SocialGraph:
    path = Path(cfg.path).expanduser()
    if not path.is_absolute() and source:
        base = Path(source)
        path = (base if base.is_dir() else base.parent) / path
    node = {u: i for i, u in enumerate(users)}
    node_of_id = {uid: node.get(k) for k, uid in enumerate(user_ids)}
    el = read_edge_list(path, node_of_id, cfg.directed, cfg.weighted)
    n = len(users)
    if not cfg.allow_disconnected:
        label = components(n, el.src, el.dst)
        sizes = np.bincount(label)
        if len(sizes) > 1:
            _disconnected(f"file {path}", n, len(sizes), int(sizes.max()), cfg.directed)
    return assemble(users, cfg.directed, el.src, el.dst,
                     el.weight if cfg.weighted else None, str(path), el.notes)


# ----------------------------------------------------------------------------- statistics


def _summary(deg: np.ndarray) -> dict[str, Any]:
    """Mean, median, max and a log2 histogram ``[[low, high, count], ...]`` (0, 1, 2-3,
    4-7, ...) of a degree array."""
    top = int(deg.max()) if len(deg) else 0
    bins = [(0, 0)] + [(1 << k, (2 << k) - 1) for k in range(top.bit_length())]
    return {"mean": float(deg.mean()) if len(deg) else 0.0,
            "median": float(np.median(deg)) if len(deg) else 0.0, "max": top,
            "histogram": [[lo, hi, int(((deg >= lo) & (deg <= hi)).sum())] for lo, hi in bins]}


def graph_stats(g: SocialGraph, attrs: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """What the graph looks like, as plain JSON values (undefined numbers are None).

    Args:
        g: The graph.
        attrs: ``attrs[i]`` is the attribute mapping of node ``i``.

    Returns:
        ``nodes``, ``edges``, ``directed``, ``weighted``, ``degree`` (mean, median, max,
        log2 histogram; directed: followed plus followers) and, directed, ``in_degree``
        and ``out_degree``; ``mean_tie`` (strength); ``clustering`` (average);
        ``components`` (weak, if directed) and ``largest_component_share``;
        ``assortativity`` by ``degree`` and by each attribute some user has (``age_band``,
        ``gender``, ``occupation``); ``same_share``, per attribute the share of ties whose
        ends share its level; ``notes``.

    Raises:
        GraphError: ``attrs`` does not match the graph.
    """
    n = g.n_nodes
    if len(attrs) != n:
        raise GraphError(f"stats: {len(attrs)} attribute rows for {n} users")
    src, dst, w = g.edges()
    label = components(n, src, dst)
    sizes = np.bincount(label) if n else np.zeros(1, np.int64)
    levels = {a: attribute_levels(attrs, a) for a in BLOCK_ATTRIBUTES}
    levels = {a: v for a, v in levels.items() if any(x != UNKNOWN for x in v)}
    measures = graphs.network_measures(n, np.column_stack([src, dst]), g.directed, levels)
    same = {a: float(np.mean(np.asarray(v)[src] == np.asarray(v)[dst])) if len(src) else None
            for a, v in levels.items()}
    out: dict[str, Any] = {
        "nodes": n, "edges": g.n_edges, "directed": g.directed, "weighted": g.weighted,
        "degree": _summary(g.degree)}
    if g.directed:
        out["in_degree"] = _summary(g.in_degree)
        out["out_degree"] = _summary(g.out_degree)
    out.update({
        "mean_tie": float(w.mean()) if len(w) else None,
        "clustering": measures["clustering"],
        "components": len(sizes),
        "largest_component_share": float(sizes.max() / n) if n else 0.0,
        "assortativity": {k: measures[k] for k in ("degree", *levels)},
        "same_share": same,
        "notes": list(g.notes),
    })
    return out
