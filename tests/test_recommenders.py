"""Unit tests of the classic recommenders on tiny hand-built matrices."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from tools.recommenders import MODELS, ItemKNN, Recommender, make_recommender, top_k

ALL = list(MODELS)
# Small factor models keep the test file fast; the defaults are exercised on MovieLens.
FAST: dict[str, dict[str, float]] = {
    "als": {"factors": 8, "iterations": 10},
    "bpr": {"factors": 8, "iterations": 50},
}


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix(
        (np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items), dtype=np.float32
    )


# Two blocks of co-watched items, {0, 1} and {2, 3}; item 4 is never seen.
# Users 4 and 5 each saw one item of a block; user 6 saw nothing.
BLOCKS = _csr([[0, 1], [0, 1], [0, 1], [2, 3], [2, 3], [0], [2], []], 5)
U_HALF_A, U_HALF_B, U_EMPTY = 5, 6, 7


def _fitted(model: str, matrix: sp.csr_matrix, seed: int = 0) -> Recommender:
    rec = make_recommender(model, seed=seed, **FAST.get(model, {}))
    rec.fit(matrix)
    return rec


def test_pop_orders_by_count_and_breaks_ties_by_index() -> None:
    m = _csr([[2], [2, 0], [2, 0, 3], [1, 3]], 5)  # counts: 0:2, 1:1, 2:3, 3:2, 4:0
    rec = _fitted("pop", m)
    np.testing.assert_array_equal(rec.score(np.array([0]))[0], [2, 1, 3, 2, 0])
    np.testing.assert_array_equal(rec.recommend(np.array([0]), 5), [[2, 0, 3, 1, 4]])


@pytest.mark.parametrize("model", ["itemknn", "ease", "als"])
def test_recommends_the_co_occurring_item(model: str) -> None:
    rec = _fitted(model, BLOCKS)
    users = np.array([U_HALF_A, U_HALF_B])
    got = rec.recommend(users, 1, exclude=BLOCKS[users])
    np.testing.assert_array_equal(got, [[1], [3]])


def test_itemknn_similarity_values_and_pruning() -> None:
    # Items 0 and 1 share 3 users, |U_0| = 4, |U_1| = 3: cos = 3 / (2 * sqrt(3) + shrink).
    m = _csr([[0, 1], [0, 1], [0, 1], [0, 2], [2]], 3)
    rec = ItemKNN(shrink=0.0)
    rec.fit(m)
    s = rec.score(np.array([4]))[0]  # user 4 saw item 2 only
    np.testing.assert_allclose(s, [1 / (2 * np.sqrt(2)), 0.0, 0.0])
    s0 = rec.score(np.array([3]))[0]  # saw items 0 and 2
    np.testing.assert_allclose(s0[1], 3 / (2 * np.sqrt(3)))
    # With one neighbour per target item, item 2 keeps only item 0 (its sole co-item) and
    # item 0 keeps item 1 (0.866 > 0.354), so a user who saw item 2 gets no score for 0.
    pruned = ItemKNN(k_neighbors=1, shrink=0.0)
    pruned.fit(m)
    np.testing.assert_allclose(pruned.score(np.array([4]))[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(pruned.score(np.array([0]))[0][2], 1 / (2 * np.sqrt(2)))


def test_ease_weights_satisfy_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    m = sp.csr_matrix((rng.random((30, 8)) < 0.3).astype(np.float32))
    l2 = 2.0
    rec = make_recommender("ease", l2=l2)
    rec.fit(m)
    b = rec._b  # type: ignore[attr-defined]
    g = (m.T @ m).toarray().astype(np.float64)
    assert np.all(np.diag(b) == 0.0)
    # KKT of min ||X - XB||^2 + l2 ||B||^2 s.t. diag(B) = 0: the gradient is zero off the
    # diagonal (the diagonal carries the Lagrange multipliers).
    grad = (g + l2 * np.eye(8)) @ b - g
    off = ~np.eye(8, dtype=bool)
    np.testing.assert_allclose(grad[off], 0.0, atol=1e-9)
    np.testing.assert_allclose(rec.score(np.arange(30)), m.toarray() @ b, atol=1e-9)


@pytest.mark.parametrize("model", ALL)
def test_exclude_masks_seen_items_and_empty_users_work(model: str) -> None:
    rec = _fitted(model, BLOCKS)
    users = np.arange(BLOCKS.shape[0])
    got = rec.recommend(users, 3, exclude=BLOCKS)
    assert got.shape == (len(users), 3)
    seen = BLOCKS.toarray() > 0
    for u, row in enumerate(got):
        valid = row[row >= 0]
        assert not seen[u, valid].any()
        # Every user has at least 3 unseen items, so nothing is padded.
        assert len(valid) == 3
    assert rec.score(np.array([U_EMPTY])).shape == (1, 5)
    assert np.all(np.isfinite(rec.score(users)))


@pytest.mark.parametrize("model", ALL)
def test_fit_on_an_empty_matrix(model: str) -> None:
    rec = _fitted(model, sp.csr_matrix((3, 4), dtype=np.float32))
    assert rec.recommend(np.arange(3), 2).shape == (3, 2)


@pytest.mark.parametrize("model", ALL)
def test_same_seed_same_recommendations(model: str) -> None:
    a = _fitted(model, BLOCKS, seed=7).score(np.arange(8))
    b = _fitted(model, BLOCKS, seed=7).score(np.arange(8))
    np.testing.assert_array_equal(a, b)


def test_random_is_per_user_and_seed_dependent() -> None:
    rec = _fitted("random", BLOCKS, seed=1)
    full = rec.score(np.arange(8))
    # Same user, same scores, whatever else is in the batch.
    np.testing.assert_array_equal(rec.score(np.array([5, 2]))[0], full[5])
    np.testing.assert_array_equal(rec.score(np.array([5]))[0], full[5])
    assert not np.array_equal(full[0], full[1])
    other = _fitted("random", BLOCKS, seed=2).score(np.arange(8))
    assert not np.array_equal(full, other)
    assert np.all((full >= 0.0) & (full < 1.0))


@pytest.mark.parametrize("model", ["pop", "itemknn", "ease", "als", "bpr"])
def test_refit_with_more_data_is_a_fresh_fit(model: str) -> None:
    rec = _fitted(model, BLOCKS)
    before = rec.score(np.arange(8))
    # Item 4 becomes popular and co-watched with item 2 (5 users) far more than item 3 (2).
    more = BLOCKS + _csr([[2, 4], [2, 4], [2, 4], [4], [4], [], [], []], 5)
    more.data[:] = 1.0
    rec.fit(more)
    after = rec.score(np.arange(8))
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, _fitted(model, more).score(np.arange(8)))
    if model in ("pop", "itemknn", "ease"):
        # User 6 saw item 2 only: item 4 is now both the most popular and its best co-item.
        assert rec.recommend(np.array([U_HALF_B]), 1, exclude=more[[U_HALF_B]])[0, 0] == 4


def test_unknown_model() -> None:
    with pytest.raises(ValueError) as err:
        make_recommender("svd")
    # A bare name may be an installed plug-in (entry point); none is, so the message
    # lists the built-ins and the other ways to name a model.
    assert str(err.value) == (
        "unknown model 'svd': not a built-in model (random, pop, itemknn, ease, als, bpr), "
        "not an import path (module:Class) and not an entry point of group "
        "recarena.recommenders (none installed)"
    )


@pytest.mark.parametrize(
    ("model", "params", "name"),
    [
        ("ease", {"lambda": 1.0}, "lambda"),
        ("pop", {"k": 3}, "k"),
        ("itemknn", {"k_neighbors": 0}, "k_neighbors"),
        ("itemknn", {"k_neighbors": 2.5}, "k_neighbors"),
        ("als", {"factors": True}, "factors"),
        ("als", {"alpha": -1.0}, "alpha"),
        ("bpr", {"learning_rate": "fast"}, "learning_rate"),
        ("ease", {"l2": 0.0}, "l2"),
    ],
)
def test_bad_params_name_the_parameter(
    model: str, params: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        make_recommender(model, **params)


def test_params_are_resolved_and_names_case_insensitive() -> None:
    rec = make_recommender(" EASE ", seed=3, l2=50)
    assert rec.name == "ease"
    assert rec.seed == 3
    assert rec.params == {"l2": 50.0}
    assert make_recommender("itemknn").params == {"k_neighbors": 100, "shrink": 10.0}


def test_top_k_is_re_exported() -> None:
    assert top_k(np.array([[0.1, 0.3, 0.2]]), 2).tolist() == [[1, 2]]
    for model in ALL:
        with pytest.raises(RuntimeError, match="fit"):
            make_recommender(model).score(np.array([0]))


# The scenario schema checks model params at load (scenarios may not import tools); the two
# sets of rules must accept and reject the same values, with the same resulting value.
PROBES: list[Any] = [0, 1, 2, 100, -1, 2.0, 2.5, 0.0, 1e-9, -0.5, float("inf"), float("nan"),
                     True, False, "3", None, [1]]


@pytest.mark.parametrize("model", ALL)
def test_scenario_schema_params_agree_with_the_models(model: str) -> None:
    from pydantic import ValidationError

    from scenarios.schema import MODEL_PARAMS

    schema, defaults = MODEL_PARAMS[model], MODELS[model].defaults  # type: ignore[attr-defined]
    assert list(schema.model_fields) == list(defaults)
    for name, field in schema.model_fields.items():
        assert field.default == defaults[name]
        assert type(field.default) is type(defaults[name])
        for value in PROBES:
            try:
                by_schema: Any = getattr(schema.model_validate({name: value}), name)
            except ValidationError:
                by_schema = "rejected"
            try:
                by_model: Any = make_recommender(model, **{name: value}).params[name]
            except ValueError:
                by_model = "rejected"
            assert repr(by_schema) == repr(by_model), (model, name, value)
    with pytest.raises(ValidationError):
        schema.model_validate({"bogus": 1})
    with pytest.raises(ValueError, match="bogus"):
        make_recommender(model, bogus=1)


def test_top_k_breaks_ties_at_the_boundary_towards_the_lower_index() -> None:
    # Many equal scores, so the k-th place is usually a tie: the answer must be the full
    # stable sort's (best score first, then lowest index), whatever the CPU's selection
    # algorithm picks among equals.
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(300, 50)).astype(np.float64)
    scores[5] = 0.0  # one row all tied
    scores[7, :45] = -np.inf  # one row with fewer eligible items than k
    exclude = sp.csr_matrix((rng.random((300, 50)) < 0.1).astype(np.int8))
    got = top_k(scores, 10, exclude)
    s = scores.copy()
    r, c = exclude.nonzero()
    s[r, c] = -np.inf
    for u in range(s.shape[0]):
        order = [j for j in np.lexsort((np.arange(50), -s[u])) if np.isfinite(s[u, j])][:10]
        assert got[u].tolist() == order + [-1] * (10 - len(order)), u
