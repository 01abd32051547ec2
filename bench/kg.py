"""Tools on MovieLens 100K: knowledge-graph size and query latency, BM25 and vector search.

Usage::

    .venv/bin/python bench/kg.py --data ../shared/data/ml-100k [--queries 200]

Loads ``ml-100k.kg``/``ml-100k.link`` (tools/kg.py) in this fresh process and times, for
random linked movies (seeded): an item's neighbours (all relations, and actors only), up
to 3 paths between two movies, and the movies sharing an actor or the director. Then
builds the BM25 index (tools/search.py) and the chromadb item index
(memory/item_index.py) over the 1,682 item texts, with MiniLM and with the hash embedder
(which leaves chromadb's own cost), and times single queries (titles and genre phrases of
random items, k=10). Writes the section between ``<!-- kg:start -->`` and
``<!-- kg:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path: put the repository first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from memory.embedders import HashEmbedder, MiniLMEmbedder  # noqa: E402
from memory.item_index import ItemIndex  # noqa: E402
from tools.dataset import load_dataset  # noqa: E402
from tools.kg import kg_files, load_kg, neighbours, paths, sharing  # noqa: E402
from tools.search import BM25Index, item_texts  # noqa: E402

START, END = "<!-- kg:start -->", "<!-- kg:end -->"


def timed(fn: Callable[[Any], Any], args: Sequence[Any]) -> tuple[float, float, list[Any]]:
    """p50 and p95 latency (ms) of ``fn`` over ``args``, one call at a time, and results."""
    lat, out = [], []
    for a in args:
        t = time.perf_counter()
        out.append(fn(a))
        lat.append(time.perf_counter() - t)
    ms = 1000 * np.asarray(lat)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True, help="the ml-100k folder (atomic files + .kg)")
    p.add_argument("--queries", type=int, default=200, help="timed queries per kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-minilm", action="store_true", help="skip the MiniLM index")
    p.add_argument("--no-doc", action="store_true", help="print only")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    ds = load_dataset(args.data)
    files = kg_files(args.data, ds.name)
    if files is None:
        print(f"{args.data}: no {ds.name}.kg/.link files", file=sys.stderr)
        return 2
    t = time.perf_counter()
    kg = load_kg(*files)
    load_s = time.perf_counter() - t
    rng = np.random.default_rng(args.seed)
    linked = sorted(i for i in kg.entity_of if kg.node(i) is not None)
    items = [str(x) for x in rng.choice(linked, size=args.queries)]
    pairs = [tuple(str(x) for x in rng.choice(linked, size=2, replace=False))
             for _ in range(args.queries)]
    q_rows: list[tuple[str, float, float, str]] = []
    p50, p95, res = timed(lambda i: neighbours(kg, i), items)
    q_rows.append(("neighbours, all relations", p50, p95,
                   f"{np.mean([len(r) for r in res]):.0f} facts"))
    p50, p95, res = timed(lambda i: neighbours(kg, i, "actor"), items)
    q_rows.append(("neighbours, actors", p50, p95, f"{np.mean([len(r) for r in res]):.0f} actors"))
    p50, p95, res = timed(lambda ab: paths(kg, ab[0], ab[1], k=3), pairs)
    found = [r for r in res if r]
    q_rows.append(("paths between two movies (k=3, <= 4 hops)", p50, p95,
                   f"{len(found) / len(res):.0%} connected; first path "
                   f"{np.mean([len(r[0]) for r in found]):.1f} hops"))
    p50, p95, res = timed(lambda i: sharing(kg, i), items)
    q_rows.append(("movies sharing an actor or the director", p50, p95,
                   f"{np.mean([len(r) for r in res]):.1f} movies (top 10)"))

    cat = ds.catalog
    texts = item_texts(cat)
    picks = rng.choice(cat.n_items, size=args.queries)
    queries = [cat.titles[i] if k % 2 == 0 else
               f"{' '.join(cat.genres[i]).lower()} movie from {cat.years[i] or 'the nineties'}"
               for k, i in enumerate(picks)]
    s_rows: list[tuple[str, float, float, float, str]] = []
    t = time.perf_counter()
    bm25 = BM25Index(texts)
    build = time.perf_counter() - t
    p50, p95, res = timed(lambda q: bm25.search(q, 10), queries)
    hit = np.mean([bool(r) and r[0][0] == i for r, i, k in
                   zip(res, picks, range(len(picks)), strict=True) if k % 2 == 0])
    s_rows.append(("BM25 (bm25s, no stemming)", build, p50, p95,
                   f"title query finds its item first: {hit:.0%}"))
    embedders: list[tuple[str, Any]] = [("hash-256 (chromadb cost alone)", HashEmbedder(256))]
    if not args.no_minilm:
        embedders.insert(0, ("MiniLM (all-MiniLM-L6-v2, CPU)", MiniLMEmbedder()))
    for name, emb in embedders:
        t = time.perf_counter()
        ix = ItemIndex(emb, cat.item_ids, texts)
        build = time.perf_counter() - t
        try:
            p50, p95, res = timed(partial(ItemIndex.search, ix, k=10), queries)
        finally:
            ix.close()
        hit = np.mean([bool(r) and r[0][0] == cat.item_ids[i] for r, i, k in
                       zip(res, picks, range(len(picks)), strict=True) if k % 2 == 0])
        s_rows.append((f"chromadb, {name}", build, p50, p95,
                       f"title query finds its item first: {hit:.0%}"))
    load_after = os.getloadavg()[0]

    body = [
        "## Tools: knowledge graph and catalogue search on MovieLens 100K", "",
        f"Knowledge graph (`tools/kg.py`, networkx) from `{ds.name}.kg` and "
        f"`{ds.name}.link`: {kg.n_triples:,} triples in {len(kg.file_relations)} "
        f"relations; {len(kg.inverse) // 2} relations restate another backwards (found "
        f"from the data) and are folded, leaving {kg.n_facts:,} facts in "
        f"{len(kg.relations)} relations. Loaded in {load_s:.2f} s (once per process).", "",
        "| nodes | edges (undirected) | facts | relations (file / kept) | linked items |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {kg.n_nodes:,} | {kg.graph.number_of_edges():,} | {kg.n_facts:,} | "
        f"{len(kg.file_relations)} / {len(kg.relations)} | {len(kg.entity_of):,} |", "",
        f"Queries, one at a time, {args.queries} random linked movies (or pairs), seed "
        f"{args.seed}. Paths: bidirectional Dijkstra where passing an entity costs "
        "log(1 + degree), repeated with the earlier paths' entities removed.", "",
        "| query | p50 (ms) | p95 (ms) | answers |", "| --- | ---: | ---: | --- |",
        *[f"| {n} | {a:.2f} | {b:.2f} | {c} |" for n, a, b, c in q_rows], "",
        f"Catalogue search over the {cat.n_items:,} item texts (title, year, genres), k=10, "
        f"{args.queries} queries: half are item titles, half genre-and-year phrases. "
        "Vector search embeds the query and asks chromadb (cosine HNSW); the hash "
        "embedder row leaves chromadb's own cost.", "",
        "| index | build (s) | p50 (ms) | p95 (ms) | note |", "| --- | ---: | ---: | ---: | --- |",
        *[f"| {n} | {b:.2f} | {x:.2f} | {y:.2f} | {c} |" for n, b, x, y, c in s_rows],
        "", "Entities other than movies carry only Freebase ids, and the links are not "
        "all right: item 1566 (The Man from Down Under, 1943) shares 9 actors with Toy "
        "Story (`kg_shared(1)`), so it is probably linked to a Toy Story film; tools report "
        "what the files say.", "",
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after on "
        f"{os.cpu_count()} CPUs (other work shares the machine; a loaded machine inflates "
        "MiniLM's query time most).",
    ]
    print("\n".join(body))
    if not args.no_doc:
        write_section(START, END, body, __file__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
