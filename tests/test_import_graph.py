"""The import graph of the engine: no module-level import cycle anywhere, counting imports
inside functions and under TYPE_CHECKING (grimp reads them all). import-linter's contracts
in pyproject.toml (`lint-imports`, run by `make test`) check the layers, the seams and the
cycles between sibling packages; this test checks cycles between any modules."""

from __future__ import annotations

import grimp
import networkx as nx

PACKAGES = ("agents", "memory", "planners", "tools", "scenarios", "simulations")


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)
    g = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module:
                g.add_edge(module, imported)
    cycles = sorted(sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1)
    assert cycles == [], f"import cycles: {cycles}"


def test_each_sdk_has_one_seam() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)
    seams = {"openai": {"agents.llm.openai_chat"}, "langchain_openai": {"agents.llm.openai_chat"},
             "llama_cpp": {"agents.llm.local"}, "chromadb": {"memory.chroma"},
             "ray": {"simulations.executors.ray_shards"}, "networkx": {"tools.graphs"},
             "bm25s": {"tools.search"}, "plotly": {"simulations.report.figures"}}
    for sdk, allowed in seams.items():
        importers = graph.find_modules_that_directly_import(sdk) if sdk in graph.modules \
            else set()
        assert importers <= allowed, f"{sdk} imported by {sorted(importers - allowed)}"
        if sdk in graph.modules:
            assert importers == allowed, f"{sdk}: the seam {sorted(allowed)} no longer imports it"
