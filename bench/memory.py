"""Long-term memory: write and retrieve throughput and latency, 100,000 memories, 1,000 agents.

Usage::

    .venv/bin/python bench/memory.py [--agents 1000] [--per-agent 100] [--queries 1000]

Writes ``agents x per-agent`` factual memories and reflections ("watched 'Toy Story'
(Animation, Comedy) and rated it 4") into a persistent chromadb store in a temporary folder,
one simulation step (a memory for every agent) per batch, then times single retrievals
(k=5, default weights, random agents). The store is measured with the HashEmbedder so that
chromadb, not the model, is timed; MiniLM encoding throughput is measured apart. Writes the
section between ``<!-- memory:start -->`` and ``<!-- memory:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path and this file would shadow the
# `memory` package: put the repository first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import DOC, command_line, machine_line, update_doc  # noqa: E402
from memory import (  # noqa: E402
    HashEmbedder,
    LongTermStore,
    MemoryRecord,
    MiniLMEmbedder,
    Reflector,
    importance_of,
)

START, END = "<!-- memory:start -->", "<!-- memory:end -->"

GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]
_ADJ = ["Dark", "Silent", "Last", "Golden", "Broken", "Hidden", "Wild", "Lost", "Red", "Long"]
_NOUN = ["River", "Night", "Summer", "Empire", "Garden", "Road", "Storm", "Heart", "City", "Star"]
_TAIL = ["", " II", " Returns", " of the North", " in Paris", " Story", " Rising", " Forever"]
_REFLECT = [
    "I am satisfied with the recommendations: they match my taste for {g}.",
    "The recommendations feel repetitive; too much {g} and nothing new.",
    "Mixed feelings: some good {g} picks, but many films I did not care about.",
]


def make_catalog(rng: np.random.Generator, n: int = 2000) -> list[str]:
    """Film titles with one to three genres, e.g. "'Golden Road' (Drama, Romance)"."""
    out = []
    for _ in range(n):
        title = f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}{rng.choice(_TAIL)}"
        genres = ", ".join(sorted(rng.choice(GENRES, size=int(rng.integers(1, 4)), replace=False)))
        out.append(f"'{title}' ({genres})")
    return out


def make_step(
    rng: np.random.Generator, catalog: Sequence[str], agents: int, step: int, reflect_every: int
) -> list[MemoryRecord]:
    """One simulation step: a memory for every agent (a reflection every few steps)."""
    recs: list[MemoryRecord] = []
    refl = Reflector(every=reflect_every)
    for a in range(agents):
        agent = f"u{a:04d}"
        if reflect_every and step % reflect_every == reflect_every - 1:
            g = GENRES[int(rng.integers(len(GENRES)))]
            text = _REFLECT[int(rng.integers(len(_REFLECT)))].format(g=g)
            recs.append(refl.reflection_record(agent, (), text, step, step // 20))
            continue
        item = catalog[int(rng.integers(len(catalog)))]
        if rng.random() < 0.4:
            rating = int(rng.integers(1, 6))
            text, imp = (f"watched {item} and rated it {rating}",
                         importance_of("factual", rating, watched=True))
        else:
            text, imp = f"skipped {item}", importance_of("factual", None, watched=False)
        recs.append(MemoryRecord(
            id=f"{agent}/{step}", agent=agent, text=text, kind="factual", importance=imp,
            step=step, round=step // 20, meta={"page": step % 5},
        ))
    return recs


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure_store(agents: int, per_agent: int, queries: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    catalog = make_catalog(rng)
    emb = HashEmbedder(256)
    probe = HashEmbedder(256)  # its own hash cache, warmed like the store's
    r: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="recarena-membench-") as tmp:
        path = Path(tmp) / "memory"
        store = LongTermStore(path, emb)
        write_s = embed_s = 0.0
        for step in range(per_agent):
            batch = make_step(rng, catalog, agents, step, 10)
            t0 = time.perf_counter()
            probe.embed([b.text for b in batch])  # the embedder's share of a write
            t1 = time.perf_counter()
            store.add(batch)  # embeds and upserts
            t2 = time.perf_counter()
            embed_s += t1 - t0
            write_s += t2 - t1
        n = store.count()
        store.close()
        t0 = time.perf_counter()
        store = LongTermStore(path, emb)
        r["reopen_s"] = time.perf_counter() - t0
        names = [f"u{a:04d}" for a in rng.integers(agents, size=queries)]
        items = [catalog[i] for i in rng.integers(len(catalog), size=queries)]
        for a, it in zip(names[:20], items[:20], strict=True):  # warm-up
            store.retrieve(a, f"would I like {it}", 5, now_step=per_agent)
        lat = np.empty(queries)
        got = 0
        t_all = time.perf_counter()
        for i, (a, it) in enumerate(zip(names, items, strict=True)):
            t0 = time.perf_counter()
            res = store.retrieve(a, f"would I like {it}", 5, now_step=per_agent)
            lat[i] = time.perf_counter() - t0
            got += len(res)
        total_q = time.perf_counter() - t_all
        store.close()
        r.update(
            records=n, agents=agents, write_s=write_s, embed_s=embed_s,
            records_per_s=n / write_s, queries=queries, hits=got / queries,
            p50_ms=1000 * float(np.percentile(lat, 50)),
            p95_ms=1000 * float(np.percentile(lat, 95)),
            mean_ms=1000 * float(lat.mean()), qps=queries / total_q,
            disk_mb=_dir_size(path) / 1e6,
        )
    return r


def measure_minilm(n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    catalog = make_catalog(rng)
    texts = [f"watched {catalog[int(i)]} and rated it {int(rng.integers(1, 6))}"
             for i in rng.integers(len(catalog), size=n)]
    e = MiniLMEmbedder(batch_size=64)
    t0 = time.perf_counter()
    e.load()
    load_s = time.perf_counter() - t0
    e.embed(texts[:64])  # warm-up
    t0 = time.perf_counter()
    e.embed(texts)
    enc_s = time.perf_counter() - t0
    return {"load_s": load_s, "texts": n, "encode_s": enc_s, "per_s": n / enc_s}


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("chromadb", "sentence-transformers", "torch"))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--per-agent", type=int, default=100, help="memories per agent")
    p.add_argument("--queries", type=int, default=1000, help="timed retrievals")
    p.add_argument("--minilm-texts", type=int, default=1000, help="0 skips the MiniLM part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-doc", action="store_true", help="print only")
    args = p.parse_args(argv)
    if min(args.agents, args.per_agent, args.queries) < 1:
        p.error("--agents, --per-agent and --queries must be >= 1")

    s = measure_store(args.agents, args.per_agent, args.queries, args.seed)
    print(f"write: {s['records']:.0f} memories of {s['agents']:.0f} agents in "
          f"{s['write_s']:.1f} s = {s['records_per_s']:.0f} records/s "
          f"(hash embedding {s['embed_s']:.1f} s of it); store {s['disk_mb']:.0f} MB; "
          f"reopen {s['reopen_s']:.2f} s")
    print(f"retrieve: {s['queries']:.0f} queries (k=5): p50 {s['p50_ms']:.2f} ms, "
          f"p95 {s['p95_ms']:.2f} ms, {s['qps']:.0f} queries/s")
    m = measure_minilm(args.minilm_texts, args.seed) if args.minilm_texts > 0 else None
    if m:
        print(f"MiniLM: load {m['load_s']:.1f} s; {m['texts']:.0f} texts in "
              f"{m['encode_s']:.2f} s = {m['per_s']:.0f} sentences/s")
    if args.no_doc:
        return 0
    cmd = command_line(__file__, sys.argv[1:] if argv is None else list(argv))
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        START,
        f"## Long-term memory: {s['records']:,.0f} memories across {s['agents']:,.0f} agents",
        "",
        f"A persistent chromadb store (`memory.LongTermStore`, cosine HNSW) in a temporary "
        f"folder. Writes: one batch per simulation step, a memory for each of the "
        f"{s['agents']:,.0f} agents (factual \"watched 'Golden Road' (Drama, Romance) and "
        f"rated it 4\" / \"skipped ...\", and a reflection every 10 steps); records/s include "
        f"embedding. Embeddings come from the 256-dimensional `HashEmbedder` so that the "
        f"store is what is timed. Retrievals: one query at a time for a random agent, k=5, "
        f"default weights (1, 1, 1), 20 candidates re-ranked; after closing and reopening the "
        f"store.",
        "",
        "| memories | write (s) | records/s | store on disk (MB) | reopen (s) | queries | "
        "p50 (ms) | p95 (ms) | queries/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {s['records']:,.0f} | {s['write_s']:.1f} | **{s['records_per_s']:,.0f}** | "
        f"{s['disk_mb']:.0f} | {s['reopen_s']:.2f} | {s['queries']:,.0f} | "
        f"**{s['p50_ms']:.2f}** | {s['p95_ms']:.2f} | {s['qps']:,.0f} |",
        "",
    ]
    if m:
        lines += [
            "MiniLM embedding (`memory.MiniLMEmbedder`, all-MiniLM-L6-v2 from the offline "
            f"package, CPU, batch 64): {m['texts']:,.0f} short memory texts after a "
            f"{m['load_s']:.1f} s load.",
            "",
            "| texts | load (s) | encode (s) | sentences/s |",
            "| ---: | ---: | ---: | ---: |",
            f"| {m['texts']:,.0f} | {m['load_s']:.1f} | {m['encode_s']:.2f} | "
            f"**{m['per_s']:,.0f}** |",
            "",
        ]
    lines += [
        f"Command: `{cmd}`  ",
        f"Date: {date}  ",
        f"Machine: {machine_line()}; {_versions()}",
        END,
    ]
    update_doc(DOC, START, END, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
