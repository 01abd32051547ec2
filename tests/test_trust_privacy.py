"""Privacy: the attack's AUC on hand-made data where the answer is known, a run that
withholds user attributes (none in any trace file; the same run without the option has
them), and ``recarena eval privacy`` on that run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from scenarios.loader import load_scenario
from simulations.record.redact import Redactor
from simulations.record.withhold import WithholdingRedactor
from simulations.run.runner import prepare, run
from simulations.trust.privacy import attack_auc
from tests.test_cli import assert_one_line, cli
from tools.dataset import load_dataset
from tools.history import attribute_phrase

REPO = Path(__file__).resolve().parents[1]


def test_attack_finds_an_attribute_written_in_the_items_and_not_a_random_one() -> None:
    rng = np.random.default_rng(0)
    n, items = 120, 40
    labels = np.array(["F", "M"] * (n // 2))
    x = (rng.random((n, items)) < 0.2).astype(float)
    x[labels == "F", 0] = 1.0  # every woman watched item 0, no man did
    x[labels == "M", 0] = 0.0
    found = attack_auc(sp.csr_matrix(x), labels.tolist(), folds=5, seeds=1, resamples=100,
                       permutations=19)
    assert found["auc"] > 0.95 and found["ci_low"] > 0.9
    assert found["p"] == pytest.approx(1 / 20) and found["null"]["hi"] < 0.8
    noise = (rng.random((n, items)) < 0.2).astype(float)
    null = attack_auc(sp.csr_matrix(noise), labels.tolist(), folds=5, seeds=1, resamples=100,
                      permutations=19)
    # Noise is not significant against the permutation null, although its bootstrap
    # interval (conditional on the fitted attack) misses 0.5 here: AUC 0.61 [0.54, 0.72].
    assert null["p"] > 0.05 and null["ci_low"] > 0.5
    # Classes smaller than the folds are dropped; one class left: no AUC.
    one = attack_auc(sp.csr_matrix(x[:64]), ["F"] * 62 + ["M"] * 2, folds=5)
    assert one["auc"] is None and one["classes"] == ["F"]


def test_withholding_redactor_removes_profile_attrs_and_the_prompt_phrase() -> None:
    attrs = {"age": "24", "gender": "M", "occupation": "technician", "zip_code": "85711"}
    r = WithholdingRedactor.for_users(Redactor(), ["1", "2"], [attrs, {}])
    line = json.dumps({"type": "profile", "user": "1", "attrs": attrs,
                       "request": f"The user: user 1 ({attribute_phrase(attrs)}): 20 movies."
                                  " Also user 2 (this stays)."})
    out = r.text(line)
    assert json.loads(out)["attrs"] == {}
    assert "technician" not in out and "85711" not in out
    assert "The user: user 1: 20 movies." in out and "user 2 (this stays)" in out


def _scenario(tmp: Path, data: Path, withhold: bool) -> Path:
    scn = {
        "kind": "scenario", "name": "withhold", "seed": 3,
        "dataset": {"source": "files", "path": str(data)},
        "population": {"size": 4, "role": str(REPO / "scenarios" / "roles" /
                                              "utility_user.yaml")},
        "recommenders": [
            {"name": "pop", "model": "pop"},
            {"name": "llmrank", "model": "agent",
             "agent": str(REPO / "scenarios" / "roles" / "llmrank.yaml"),
             "candidates": {"model": "pop", "n": 6}}],
        "environment": {"kind": "feed", "items_per_page": 3, "max_pages": 1, "rounds": 1},
        "llm": {"backend": "fake", "model": "fake"},
        "output": {"withhold_attributes": withhold},
    }
    p = tmp / f"withhold-{withhold}.yaml"
    p.write_text(yaml.safe_dump(scn))
    return p


@pytest.mark.slow
def test_a_run_that_withholds_attributes_writes_none(ml100k: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    ds = load_dataset(ml100k)
    runs = {}
    for withhold in (False, True):
        loaded = load_scenario(_scenario(tmp_path, ml100k, withhold))
        runs[withhold] = run(prepare(loaded), tmp_path / f"run-{withhold}").run_dir
    users = {json.loads(x)["user"] for x in (runs[True] / "trace.jsonl").read_text()
             .splitlines() if '"type":"profile"' in x}
    assert len(users) == 4
    index = {u: k for k, u in enumerate(ds.user_ids)}
    phrases = [attribute_phrase(ds.user_attrs[index[u]]) for u in users]
    kept = (runs[False] / "trace.jsonl").read_text()
    # Without the option the attributes are there: in profiles and in the agent's prompts.
    assert '"occupation"' in kept and any(p in kept for p in phrases)
    assert "llm_call" in kept
    checked = 0
    for f in runs[True].rglob("*"):
        # The LLM cache keeps prompts for replay (docs/trust.md): not a trace.
        if not f.is_file() or f.name.startswith("llm_cache"):
            continue
        text = f.read_bytes().decode("utf-8", errors="replace")
        for word in ("gender", "occupation", "zip_code", *phrases):
            assert word not in text, (f.name, word)
        checked += 1
    assert checked >= 4  # trace, index, summary, manifest at least
    assert json.loads((runs[True] / "summary.json").read_text())["status"] == "completed"
    # The privacy attack reads attributes from the data, so it works on such a run.
    rc, _, err = cli(capsys, "eval", "privacy", runs[True], "--data", ml100k,
                       "--all-users", "--folds", "3", "--seeds", "1")
    assert rc == 2 and "needs at least 6" in assert_one_line(err)  # 4 users, 3 folds


@pytest.mark.slow
def test_cli_privacy_on_a_small_run(ml100k: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "run", REPO / "scenarios" / "movielens_feed.yaml", "--data",
                     ml100k, "--users", "40", "--out", tmp_path / "r", "--quiet")
    assert rc == 0, err
    rc, out, err = cli(capsys, "eval", "privacy", tmp_path / "r", "--data", ml100k,
                       "--arms", "pop,ease", "--all-users", "--folds", "3", "--seeds", "1",
                       "--permutations", "3", "--json")
    assert rc == 0, err
    res = json.loads(out)
    g = res["attributes"]["gender"]
    assert set(g) == {"simulated:pop", "simulated:ease", "real:history", "null:random_taste",
                      "real:future"}
    assert g["real:history"]["users"] == res["users"] > 0
    assert all(0.0 <= g[s]["auc"] <= 1.0 for s in ("simulated:ease", "real:history"))
    assert g["simulated:ease"]["null"]["permutations"] == 3
    rc, _, err = cli(capsys, "eval", "privacy", tmp_path / "r", "--data", ml100k, "--arms",
                     "nosucharm")
    assert rc == 2 and "nosucharm" in assert_one_line(err)
    rc, _, err = cli(capsys, "eval", "privacy", tmp_path / "nothing", "--data", ml100k)
    assert rc == 2 and "not a run folder" in assert_one_line(err)
