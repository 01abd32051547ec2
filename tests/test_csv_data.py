"""Your own data as a plain CSV: mapped columns, sniffed delimiters, implicit feedback
(rating figures say n/a, nothing crashes) and FILE:LINE:column errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.console import Console

from scenarios.loader import load_scenario
from simulations.cli.main import main, metrics_table
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tools.csv_data import load_csv
from tools.dataset import DataError, load_dataset

REPO = Path(__file__).resolve().parents[1]


def _write_csv(path: Path, *, sep: str = ",", rating: bool = True, ts: bool = True,
               names: tuple[str, str, str, str] = ("user", "item", "rating", "timestamp"),
               users: int = 30, items: int = 40, per_user: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    cols = [names[0], names[1]] + ([names[2]] if rating else []) + ([names[3]] if ts else [])
    lines = [sep.join(cols)]
    for u in range(users):
        for k, i in enumerate(rng.choice(items, size=per_user, replace=False)):
            row = [f"u{u}", f"i{i}"]
            if rating:
                row.append(str(int(rng.integers(1, 6))))
            if ts:
                row.append(str(1000 * u + k))
            lines.append(sep.join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scenario(tmp_path: Path, csv_name: str, **dataset: Any) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({
        "kind": "scenario", "name": "mine", "seed": 1,
        "dataset": {"source": "csv", "path": csv_name, **dataset},
        "population": {"size": 12},
        "recommenders": [{"name": "pop", "model": "pop"}, {"name": "ease", "model": "ease"}],
        "environment": {"kind": "feed", "items_per_page": 3, "max_pages": 2, "rounds": 1},
    }, sort_keys=False))
    return p


def test_default_columns_and_sniffed_delimiters(tmp_path: Path) -> None:
    for sep in (",", ";", "\t", "|"):
        ds = load_csv(_write_csv(tmp_path / "d.csv", sep=sep))
        assert ds.n_users == 30 and ds.n_items <= 40 and len(ds.interactions) == 300
        assert ds.has_ratings and set(np.unique(ds.interactions.rating)) <= {1, 2, 3, 4, 5}
    # load_dataset takes a CSV file too (what --data FILE.csv gives eval commands).
    assert load_dataset(tmp_path / "d.csv").n_users == 30


def test_mapped_names_and_iso_dates(tmp_path: Path) -> None:
    p = tmp_path / "shop.csv"
    p.write_text("who;what;stars;when\na;x;5;2024-01-02\na;y;2;2024-01-01\nb;x;4;2024-02-01\n")
    ds = load_csv(p, {"user": "who", "item": "what", "rating": "stars", "timestamp": "when"},
                  explicit=frozenset({"user", "item", "rating", "timestamp"}))
    assert ds.user_ids == ("a", "b") and ds.catalog.item_ids == ("x", "y")
    inter = ds.interactions
    assert inter.rating.tolist() == [5.0, 2.0, 4.0]
    assert inter.ts[1] < inter.ts[0] < inter.ts[2]  # dates, not file order


def test_errors_name_file_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("user,item,rating\nu1,i1,4\nu1,i2,five\n")
    with pytest.raises(DataError, match=rf"^{p}:3: column 'rating': not a number: 'five'$"):
        load_csv(p)
    p.write_text("user,item,rating\nu1,i1,4\nu1,i2\n")
    with pytest.raises(DataError, match=rf"^{p}:3: expected 3 ','-separated fields"):
        load_csv(p)
    p.write_text("user,item,rating,timestamp\nu1,i1,4,yesterday\n")
    with pytest.raises(DataError, match=rf"^{p}:2: column 'timestamp': not a number or ISO"):
        load_csv(p)
    p.write_text("user,item\nu1,i1\n")
    with pytest.raises(DataError, match=rf"^{p}:1: column 'score' \(rating\) is not in the "
                       "header"):
        load_csv(p, {"rating": "score"}, explicit=frozenset({"rating"}))
    with pytest.raises(DataError, match=rf"^{p}:1: column 'customer' \(user\)"):
        load_csv(p, {"user": "customer"})


def test_cli_csv_error_is_one_line_exit_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("u,i,r\n1,2,3\n1,3,x\n")
    s = _scenario(tmp_path, "d.csv", columns={"user": "u", "item": "i", "rating": "r"})
    assert main(["run", str(s), "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"{csv}:3: column 'r': not a number: 'x'"
    # A mapping that names no column is caught by validate... at load, with its line.
    s.write_text(s.read_text().replace("source: csv", "source: files"))
    assert main(["validate", str(s)]) == 2
    assert "columns and delimiter are for source: csv" in capsys.readouterr().err


def test_rated_csv_runs_with_ratings(tmp_path: Path) -> None:
    _write_csv(tmp_path / "d.csv", sep=";", names=("uid", "iid", "score", "t"))
    s = _scenario(tmp_path, "d.csv",
                  columns={"user": "uid", "item": "iid", "rating": "score", "timestamp": "t"})
    res = run(prepare(load_scenario(s)), tmp_path / "run")
    assert res.status == "completed" and "ratings" not in res.metrics
    assert res.metrics["arms"]["pop"]["overall"]["mean_rating"] is not None


def _table(metrics: dict[str, Any]) -> str:
    c = Console(width=250, record=True)
    c.print(metrics_table(metrics))
    return c.export_text()


def test_implicit_feedback_says_na_everywhere(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _write_csv(tmp_path / "d.csv", rating=False)
    s = _scenario(tmp_path, "d.csv")
    res = run(prepare(load_scenario(s)), tmp_path / "run")
    assert res.status == "completed"
    m = res.metrics
    assert m["ratings"] is False
    for arm in m["arms"].values():
        assert arm["overall"]["mean_rating"] is None and arm["stats"]["mean_rating"] is None
        assert arm["overall"]["watch_rate"] is not None  # the rest is measured
    assert "n/a" in _table(m)
    # The run's own printout and JSON.
    assert main(["run", str(s), "--quiet", "--out", str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and "implicit feedback" in out
    ref = json.loads((tmp_path / "run" / "reference.json").read_text())
    assert ref["has_ratings"] is False and ref["heldout_ratings"] == {}
    # trace summary (table and --json).
    assert main(["trace", "summary", str(tmp_path / "run")]) == 0
    assert "n/a" in capsys.readouterr().out
    assert main(["trace", "summary", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metrics"]["ratings"] is False
    # compare: the rating row says n/a; the others are compared.
    assert main(["compare", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "rating" in out and "n/a" in out and "watch rate" in out


def test_implicit_report_has_no_rating_panel(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    from simulations.report.html import build_report

    _write_csv(tmp_path / "d.csv", rating=False)
    res = run(prepare(load_scenario(_scenario(tmp_path, "d.csv"))), tmp_path / "run")
    text = build_report([res.run_dir], resamples=50)
    assert 'id="ratings"' not in text
    assert "n/a (implicit feedback" in text


def test_alignment_rating_table_says_na() -> None:
    from simulations.cli.alignment import alignment_tables

    res = {"brain": "utility", "negatives": "uniform", "users": 2, "seeds": [0],
           "configuration": {"user_split": "test"}, "taste_alignment": {"ratios": {}},
           "rating_fidelity": None}
    c = Console(width=200, record=True)
    for t in alignment_tables(res):
        c.print(t)
    text = c.export_text()
    assert "n/a" in text and "RMSE" in text


def test_shipped_csv_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # RECARENA_DATA (a MovieLens folder in CI) must not replace the scenario's own CSV.
    monkeypatch.setenv("RECARENA_DATA", str(tmp_path / "elsewhere"))
    loaded = load_scenario(shipped("csv_example.yaml"))
    prep = prepare(loaded)
    assert prep.dataset.name == "csv_example" and prep.dataset.has_ratings
    assert 200 <= len(prep.dataset.interactions) <= 1000  # a few hundred rows
    res = run(prep, tmp_path / "run")
    assert res.status == "completed"
    assert set(res.metrics["arms"]) == {"random", "pop", "ease"}
