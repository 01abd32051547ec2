"""Loading datasets (RecBole atomic and GroupLens layouts), errors, splits and matrices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tools.dataset import (
    GROUPLENS_GENRES,
    DataError,
    Dataset,
    Interactions,
    leave_last_out,
    load_dataset,
    temporal_split,
)

# ----------------------------------------------------------------------------- fixtures

# (item id, title, year, genres). File order is deliberately not numeric order, ids have
# gaps, one title has no year, one has parentheses that are not a year, one is not ASCII
# (GroupLens files are latin-1, atomic files UTF-8), one has only the "unknown" flag.
Item = tuple[str, str, str, tuple[str, ...]]
ITEMS: list[Item] = [
    ("10", "Toy Story", "1995", ("Animation", "Children's", "Comedy")),
    ("2", "GoldenEye", "1995", ("Action", "Adventure", "Thriller")),
    ("7", "Café Society", "1997", ("Drama",)),
    ("3", "Brain Candy (a.k.a. Kids in the Hall)", "", ("Comedy",)),
    ("267", "unknown", "", ()),
]
# (user id, item id, rating, timestamp), in file order.
Row = tuple[str, str, float, float]
INTER: list[Row] = [
    ("10", "2", 4.0, 300.0),
    ("2", "10", 5.0, 100.0),
    ("2", "7", 3.0, 200.0),
    ("1", "10", 1.0, 50.0),
    ("10", "267", 2.0, 400.0),
    ("2", "3", 4.5, 150.0),
]
USERS = [("1", "24", "M", "technician", "85711"), ("2", "53", "F", "other", "94043"),
         ("10", "30", "F", "writer", "10001")]
USER_FIELDS = ("age", "gender", "occupation", "zip_code")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def write_atomic(
    root: Path, items: list[Item] = ITEMS, inter: list[Row] = INTER,
    users: list[tuple[str, ...]] | None = USERS, stem: str = "x", eol: str = "\n",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    lines += [f"{i}\t{t}\t{y}\t{' '.join(g)}" for i, t, y, g in items]
    (root / f"{stem}.item").write_text(eol.join(lines) + eol, encoding="utf-8", newline="")
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{_fmt(r)}\t{_fmt(t)}" for u, i, r, t in inter]
    (root / f"{stem}.inter").write_text(eol.join(lines) + eol, encoding="utf-8", newline="")
    if users is not None:
        lines = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
        lines += ["\t".join(u) for u in users]
        (root / f"{stem}.user").write_text(eol.join(lines) + eol, encoding="utf-8",
                                            newline="")
    return root


def grouplens_item_line(item: Item, unknown_flag: bool = False) -> str:
    iid, title, year, genres = item
    full = f"{title} ({year})" if year else title
    date = f"01-Jan-{year}" if year else ""
    flags = ["1" if (g in genres or (g == "unknown" and unknown_flag)) else "0"
             for g in GROUPLENS_GENRES]
    return "|".join([iid, full, date, "", f"http://example.invalid/{iid}", *flags])


def write_grouplens(
    root: Path, items: list[Item] = ITEMS, inter: list[Row] = INTER,
    users: list[tuple[str, ...]] | None = USERS, eol: str = "\n",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    # The real "unknown" item (267) has only the "unknown" genre flag set.
    lines = [grouplens_item_line(it, unknown_flag=not it[3]) for it in items]
    (root / "u.item").write_text(eol.join(lines) + eol, encoding="latin-1", newline="")
    lines = [f"{u}\t{i}\t{_fmt(r)}\t{_fmt(t)}" for u, i, r, t in inter]
    (root / "u.data").write_text(eol.join(lines) + eol, encoding="latin-1", newline="")
    if users is not None:
        (root / "u.user").write_text(
            eol.join("|".join(u) for u in users) + eol, encoding="latin-1", newline="")
    return root


LAYOUTS: dict[str, Callable[..., Path]] = {"atomic": write_atomic, "grouplens": write_grouplens}


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def write(layout: str, root: Path, **kw: object) -> Path:
    return LAYOUTS[layout](root, **kw)


def data_file(layout: str, root: Path) -> Path:
    return root / ("x.inter" if layout == "atomic" else "u.data")


def item_file(layout: str, root: Path) -> Path:
    return root / ("x.item" if layout == "atomic" else "u.item")


# ----------------------------------------------------------------------------- loading


def test_catalog_follows_item_file_order(layout: str, tmp_path: Path) -> None:
    ds = load_dataset(write(layout, tmp_path / "d"))
    cat = ds.catalog
    assert cat.item_ids == tuple(i[0] for i in ITEMS)  # file order, not sorted
    assert cat.n_items == ds.n_items == len(ITEMS)
    assert cat.index == {iid: k for k, (iid, *_rest) in enumerate(ITEMS)}
    assert cat.titles == tuple(i[1] for i in ITEMS)
    assert cat.years == tuple(i[2] for i in ITEMS)
    assert cat.genres == tuple(i[3] for i in ITEMS)
    assert cat.genre_names == tuple(sorted({g for i in ITEMS for g in i[3]}))


def test_catalog_descriptions_and_genre_matrix(layout: str, tmp_path: Path) -> None:
    cat = load_dataset(write(layout, tmp_path / "d")).catalog
    toy = cat.index["10"]
    assert cat.descriptions[toy] == "Toy Story (1995), Animation, Children's, Comedy."
    assert cat.descriptions[cat.index["267"]] == "unknown, unclassified."
    m = cat.genre_matrix
    assert m.shape == (len(ITEMS), len(cat.genre_names))
    for k, (_, _, _, genres) in enumerate(ITEMS):
        on = {cat.genre_names[j] for j in np.flatnonzero(m[k])}
        assert on == set(genres)


def test_grouplens_title_year_parsing(tmp_path: Path) -> None:
    items: list[Item] = [
        ("1", "Toy Story", "1995", ("Comedy",)),
        ("2", "Big Bang Theory, The", "1994", ("Crime",)),
        ("3", "Mis (Title) Thing", "2001", ("Drama",)),
    ]
    root = write_grouplens(tmp_path / "g", items=items, inter=[("1", "1", 3.0, 1.0)])
    # A title ending in a non-numeric parenthesis keeps it and has no year.
    with (root / "u.item").open("a", encoding="latin-1") as f:
        flags = "|".join("1" if g == "Drama" else "0" for g in GROUPLENS_GENRES)
        f.write(f"4|Odd Film (remake)|||u|{flags}\n")
    cat = load_dataset(root).catalog
    assert cat.titles == ("Toy Story", "Big Bang Theory, The", "Mis (Title) Thing",
                          "Odd Film (remake)")
    assert cat.years == ("1995", "1994", "2001", "")


def test_grouplens_unknown_flag_is_not_a_genre(tmp_path: Path) -> None:
    items: list[Item] = [("1", "A", "2000", ("Comedy",))]
    root = tmp_path / "g"
    write_grouplens(root, items=items, inter=[("1", "1", 3.0, 1.0)])
    (root / "u.item").write_text(grouplens_item_line(items[0], unknown_flag=True) + "\n",
                                 encoding="latin-1")
    assert load_dataset(root).catalog.genres == (("Comedy",),)


def test_users_sorted_by_numeric_id_and_interactions_in_file_order(
    layout: str, tmp_path: Path
) -> None:
    ds = load_dataset(write(layout, tmp_path / "d"))
    # Only users with interactions; numeric ids sort as numbers ("2" before "10").
    assert ds.user_ids == ("1", "2", "10")
    assert ds.n_users == 3
    uidx = {u: k for k, u in enumerate(ds.user_ids)}
    iidx = ds.catalog.index
    inter = ds.interactions
    assert len(inter) == len(INTER)
    assert inter.user.tolist() == [uidx[u] for u, *_ in INTER]
    assert inter.item.tolist() == [iidx[i] for _, i, _, _ in INTER]
    assert inter.rating.tolist() == [r for *_, r, _ in INTER]
    assert inter.ts.tolist() == [t for *_, t in INTER]
    assert inter.user.dtype == np.int32 and inter.item.dtype == np.int32
    assert inter.rating.dtype == np.float32 and inter.ts.dtype == np.float64


def test_user_attributes(layout: str, tmp_path: Path) -> None:
    ds = load_dataset(write(layout, tmp_path / "d"))
    by_id = {u[0]: dict(zip(USER_FIELDS, u[1:], strict=True)) for u in USERS}
    assert ds.user_attrs == tuple(by_id[u] for u in ds.user_ids)


def test_user_file_is_optional(layout: str, tmp_path: Path) -> None:
    ds = load_dataset(write(layout, tmp_path / "d", users=None))
    assert ds.user_ids == ("1", "2", "10")
    assert ds.user_attrs == ({}, {}, {})


def test_both_layouts_give_the_same_dataset(tmp_path: Path) -> None:
    a = load_dataset(write_atomic(tmp_path / "a"))
    g = load_dataset(write_grouplens(tmp_path / "g"))
    assert a.name == "x" and g.name == "ml-100k"
    assert a.user_ids == g.user_ids
    assert a.user_attrs == g.user_attrs
    for attr in ("item_ids", "titles", "years", "genres", "descriptions"):
        assert getattr(a.catalog, attr) == getattr(g.catalog, attr), attr
    for attr in ("user", "item", "rating", "ts"):
        np.testing.assert_array_equal(getattr(a.interactions, attr),
                                      getattr(g.interactions, attr), err_msg=attr)


def test_crlf_line_endings_load_the_same(layout: str, tmp_path: Path) -> None:
    unix = load_dataset(write(layout, tmp_path / "lf"))
    dos = load_dataset(write(layout, tmp_path / "crlf", eol="\r\n"))
    assert dos.catalog.titles == unix.catalog.titles
    assert dos.catalog.genres == unix.catalog.genres
    assert dos.user_attrs == unix.user_attrs
    np.testing.assert_array_equal(dos.interactions.rating, unix.interactions.rating)
    np.testing.assert_array_equal(dos.interactions.item, unix.interactions.item)


def test_nested_ml100k_folder_is_found(tmp_path: Path) -> None:
    write_grouplens(tmp_path / "ml-100k")
    ds = load_dataset(tmp_path)
    assert ds.n_items == len(ITEMS) and len(ds.interactions) == len(INTER)


def test_item_statistics(layout: str, tmp_path: Path) -> None:
    ds = load_dataset(write(layout, tmp_path / "d"))
    pop = ds.item_popularity
    for iid, k in ds.catalog.index.items():
        assert pop[k] == sum(1 for _, i, _, _ in INTER if i == iid)
    # Shrunk towards the global mean with 5 pseudo-ratings.
    g = float(np.mean([r for *_, r, _ in INTER]))
    k = ds.catalog.index["10"]
    assert ds.item_mean_rating[k] == pytest.approx((5.0 + 1.0 + 5 * g) / (2 + 5), rel=1e-6)


# ----------------------------------------------------------------------------- errors


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="no such data folder") as ei:
        load_dataset(missing)
    assert str(ei.value).startswith(f"{missing}:")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(f)


def test_folder_without_dataset(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("nothing here")
    with pytest.raises(DataError, match="no dataset found") as ei:
        load_dataset(tmp_path)
    assert str(ei.value).startswith(f"{tmp_path}:")


def test_data_error_is_a_value_error() -> None:
    assert issubclass(DataError, ValueError)


def test_missing_item_file(layout: str, tmp_path: Path) -> None:
    root = write(layout, tmp_path / "d")
    item_file(layout, root).unlink()
    with pytest.raises(DataError, match="missing") as ei:
        load_dataset(root)
    assert str(ei.value).startswith(f"{item_file(layout, root)}:")


def _replace_line(path: Path, lineno: int, text: str, encoding: str) -> None:
    lines = path.read_text(encoding=encoding).splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding=encoding)


def _data_line(layout: str, idx: int) -> int:
    """Physical line of INTER[idx] in the interaction file (atomic files have a header)."""
    return idx + 2 if layout == "atomic" else idx + 1


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ("1\t10\t3", r"expected 4 tab-separated fields.*found 3"),
        ("1\t10\t3\t5\t9", r"expected 4 tab-separated fields.*found 5"),
        ("1\t10\tfive\t5", r"rating: not a number: 'five'"),
        ("1\t10\t3\tyesterday", r"timestamp: not a number: 'yesterday'"),
        ("1\t99\t3\t5", r"item_id: '99' is not in the item file"),
    ],
    ids=["too-few-fields", "too-many-fields", "rating", "timestamp", "unknown-item"],
)
def test_bad_interaction_line_names_file_and_line(
    layout: str, tmp_path: Path, row: str, pattern: str
) -> None:
    root = write(layout, tmp_path / "d")
    path = data_file(layout, root)
    lineno = _data_line(layout, 3)
    _replace_line(path, lineno, row, "utf-8")
    with pytest.raises(DataError, match=pattern) as ei:
        load_dataset(root)
    assert str(ei.value).startswith(f"{path}:{lineno}: ")
    assert "\n" not in str(ei.value)


def test_blank_lines_are_skipped_but_counted(layout: str, tmp_path: Path) -> None:
    root = write(layout, tmp_path / "d")
    path = data_file(layout, root)
    lines = path.read_text().splitlines()
    bad_at = len(lines) + 3  # two blank lines, then the bad row
    path.write_text("\n".join([*lines, "", "", "1\t10\tx\t1"]) + "\n")
    with pytest.raises(DataError) as ei:
        load_dataset(root)
    assert str(ei.value).startswith(f"{path}:{bad_at}: rating:")


def test_bad_item_line_names_file_and_line(layout: str, tmp_path: Path) -> None:
    root = write(layout, tmp_path / "d")
    path = item_file(layout, root)
    enc = "utf-8" if layout == "atomic" else "latin-1"
    lineno = 3 if layout == "atomic" else 2  # the second item either way
    _replace_line(path, lineno, "2\tGoldenEye" if layout == "atomic" else "2|GoldenEye|x",
                  enc)
    with pytest.raises(DataError, match="expected") as ei:
        load_dataset(root)
    assert str(ei.value).startswith(f"{path}:{lineno}: ")
    assert f"found {2 if layout == 'atomic' else 3}" in str(ei.value)


def test_atomic_empty_inter_file(tmp_path: Path) -> None:
    root = write_atomic(tmp_path / "d")
    (root / "x.inter").write_text("")
    with pytest.raises(DataError, match="empty file") as ei:
        load_dataset(root)
    assert str(ei.value).startswith(f"{root / 'x.inter'}:1: ")


def test_atomic_header_without_rating(tmp_path: Path) -> None:
    root = write_atomic(tmp_path / "d")
    (root / "x.inter").write_text("user_id:token\titem_id:token\tscore:float\ttimestamp:float\n"
                                  "1\t10\t3\t5\n")
    with pytest.raises(DataError, match="header has no 'rating' field") as ei:
        load_dataset(root)
    assert str(ei.value).startswith(f"{root / 'x.inter'}:1: ")


# ----------------------------------------------------------------------------- splits


def _inter(rows: list[tuple[int, int, float]]) -> Interactions:
    """(user, item, ts) rows; the rating is the row's position, to identify rows later."""
    return Interactions.from_lists(
        [r[0] for r in rows], [r[1] for r in rows], [float(k) for k in range(len(rows))],
        [r[2] for r in rows],
    )


def _rows(inter: Interactions) -> set[int]:
    return {int(x) for x in inter.rating}


def test_temporal_split_keeps_each_users_earliest_share() -> None:
    # User 0: five interactions in shuffled file order; user 1: two; user 2: one.
    rows = [(0, 1, 50.0), (0, 2, 10.0), (1, 7, 5.0), (0, 3, 40.0), (0, 4, 20.0),
            (2, 9, 1.0), (0, 5, 30.0), (1, 8, 6.0)]
    hist, fut = temporal_split(_inter(rows), history_fraction=0.8)
    # User 0: ceil(5 * 0.8) = 4 earliest in history, the latest (ts 50, row 0) in future.
    # User 1: ceil(2 * 0.8) = 2 but one future interaction is required: 1 / 1.
    # User 2: a single interaction stays in history.
    assert _rows(fut) == {0, 7}
    assert _rows(hist) == {1, 2, 3, 4, 5, 6}
    assert len(hist) + len(fut) == len(rows)
    for u in (0, 1):
        assert hist.ts[hist.user == u].max() < fut.ts[fut.user == u].min()


def test_temporal_split_ties_keep_file_order() -> None:
    # Three interactions at the same time: the split follows file order.
    rows = [(0, 5, 7.0), (0, 3, 7.0), (0, 4, 7.0)]
    hist, fut = temporal_split(_inter(rows), history_fraction=0.5)
    # ceil(3 * 0.5) = 2 in history: the first two lines.
    assert _rows(hist) == {0, 1}
    assert _rows(fut) == {2}


def test_temporal_split_tie_at_the_boundary() -> None:
    rows = [(0, 1, 30.0), (0, 2, 10.0), (0, 3, 30.0), (0, 4, 20.0)]
    hist, fut = temporal_split(_inter(rows), history_fraction=0.75)
    # Time order: row1 (10), row3 (20), then rows 0 and 2 tie at 30: row 0 comes first.
    assert _rows(hist) == {1, 3, 0}
    assert _rows(fut) == {2}


def test_temporal_split_min_future() -> None:
    rows = [(0, 1, 1.0), (0, 2, 2.0), (0, 3, 3.0), (1, 1, 1.0), (1, 2, 2.0)]
    hist, fut = temporal_split(_inter(rows), history_fraction=0.8, min_future=2)
    # User 0 (3 > 2): ceil(2.4) = 3 history would leave none, so two go to future.
    # User 1 (2 interactions, not more than min_future): all history.
    assert _rows(fut) == {1, 2}
    assert _rows(hist) == {0, 3, 4}


def test_temporal_split_full_history() -> None:
    inter = _inter([(0, 1, 1.0), (0, 2, 2.0), (1, 3, 3.0)])
    hist, fut = temporal_split(inter, history_fraction=1.0)
    assert len(hist) == 3 and len(fut) == 0


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.01])
def test_temporal_split_rejects_bad_fraction(bad: float) -> None:
    with pytest.raises(ValueError, match="history_fraction"):
        temporal_split(_inter([(0, 1, 1.0)]), history_fraction=bad)


def test_splits_of_no_interactions() -> None:
    hist, fut = temporal_split(Interactions.empty())
    assert len(hist) == 0 and len(fut) == 0
    train, test = leave_last_out(Interactions.empty())
    assert len(train) == 0 and len(test) == 0


def test_leave_last_out_picks_each_users_last() -> None:
    rows = [(1, 1, 5.0), (0, 1, 30.0), (0, 2, 10.0), (1, 2, 9.0), (0, 3, 20.0),
            (2, 4, 3.0), (1, 3, 1.0)]
    train, test = leave_last_out(_inter(rows))
    # User 0: ts 30 (row 1); user 1: ts 9 (row 3); user 2 has one interaction: train only.
    assert _rows(test) == {1, 3}
    assert _rows(train) == {0, 2, 4, 5, 6}
    assert sorted(test.user.tolist()) == [0, 1]


def test_leave_last_out_tie_takes_the_later_line() -> None:
    rows = [(0, 1, 5.0), (0, 2, 5.0), (0, 3, 1.0)]
    train, test = leave_last_out(_inter(rows))
    assert _rows(test) == {1}
    assert _rows(train) == {0, 2}


def test_splits_on_a_loaded_dataset(layout: str, tmp_path: Path) -> None:
    ds = load_dataset(write(layout, tmp_path / "d"))
    train, test = leave_last_out(ds.interactions)
    u = {uid: k for k, uid in enumerate(ds.user_ids)}
    i = ds.catalog.index
    # User "1" has one rating (kept in train); "2" rated last item "7" (ts 200),
    # "10" last rated item "267" (ts 400).
    assert sorted(zip(test.user.tolist(), test.item.tolist(), strict=True)) == sorted(
        [(u["2"], i["7"]), (u["10"], i["267"])])
    assert len(train) == len(INTER) - 2


# ----------------------------------------------------------------------------- matrix


def test_matrix_dedupes_keeping_the_last_value() -> None:
    inter = Interactions.from_lists(
        user=[0, 0, 1, 0, 1], item=[2, 1, 0, 2, 0], rating=[2.0, 4.0, 3.0, 5.0, 1.0],
        ts=[1.0, 2.0, 3.0, 4.0, 5.0],
    )
    binary = inter.matrix(2, 3)
    assert binary.shape == (2, 3)
    assert binary.nnz == 3  # (0,2) and (1,0) appear twice
    assert binary.toarray().tolist() == [[0, 1, 1], [1, 0, 0]]
    rated = inter.matrix(2, 3, binary=False)
    assert rated.nnz == 3
    assert rated.toarray().tolist() == [[0, 4, 5], [1, 0, 0]]
    assert rated.dtype == np.float32
    assert rated.has_sorted_indices


def test_matrix_of_no_interactions() -> None:
    m = Interactions.empty().matrix(3, 4)
    assert m.shape == (3, 4) and m.nnz == 0


def test_with_interactions_keeps_catalog(layout: str, tmp_path: Path) -> None:
    ds = load_dataset(write(layout, tmp_path / "d"))
    hist, _ = temporal_split(ds.interactions)
    sub = ds.with_interactions(hist)
    assert isinstance(sub, Dataset)
    assert sub.catalog is ds.catalog and sub.user_ids == ds.user_ids
    assert len(sub.interactions) == len(hist)


# ----------------------------------------------------------------------------- ML-100K


@pytest.mark.slow
def test_real_movielens_100k(ml100k: Path) -> None:
    ds = load_dataset(ml100k)
    assert ds.n_users == 943
    assert ds.n_items == 1682
    assert len(ds.interactions) == 100_000
    toy = ds.catalog.index["1"]
    assert ds.catalog.genres[toy] == ("Animation", "Children's", "Comedy")
    assert ds.catalog.titles[toy] == "Toy Story"
    assert ds.catalog.years[toy] == "1995"
    inter = ds.interactions
    assert set(np.unique(inter.rating).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # GroupLens guarantees at least 20 ratings per user; no (user, item) pair twice.
    assert np.bincount(inter.user, minlength=ds.n_users).min() >= 20
    assert ds.interactions.matrix(ds.n_users, ds.n_items).nnz == 100_000
