"""The text-only bias check: it must detect a biased negative generator, and the built-in
generator must pass it."""

from __future__ import annotations

import numpy as np
import pytest

from pairgen.prompts import builtin_prompts
from pairgen.prompts.bias_check import Pairs, evaluate, fit_logistic, run, within_target


def test_logistic_regression_learns_a_separable_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - 0.5 * x[:, 2] > 0).astype(float)
    w = fit_logistic(x, y, l2=0.1)
    assert np.mean((x @ w > 0) == (y > 0.5)) > 0.95


def test_detects_negatives_that_are_always_longer():
    prompts = [p.text for p in builtin_prompts()[:200]]
    biased = Pairs("biased", prompts, [t + " in the style of an old photograph" for t in prompts], np.arange(200))
    scores = evaluate(biased, encoder=None, folds=5, seed=0)
    assert scores["length"] > 0.95 and scores["worst"] > 0.95
    row = {"type": "biased", "difficulty": "hard", "pairs": 200, **scores}
    assert within_target(row) is False


def test_unbiased_pairs_score_near_chance():
    prompts = [p.text for p in builtin_prompts()[:300]]
    shuffled = list(np.random.default_rng(0).permutation(prompts))  # negatives from the same distribution
    scores = evaluate(Pairs("none", prompts, shuffled, np.arange(300)), encoder=None, folds=5, seed=0)
    assert abs(scores["length"] - 0.5) < 0.1 and abs(scores["frequency"] - 0.5) < 0.1


def test_cheap_features_on_the_builtin_set_are_within_target():
    rows = run(builtin_prompts(), ["count_change", "object_add_remove"], per_prompt=1, folds=5, seed=0, embeddings=False)
    for row in rows:
        assert row["pairs"] > 200 and within_target(row), row


@pytest.fixture(scope="module")
def minilm_rows():
    kinds = ["attribute_replace", "attribute_swap", "count_change", "object_replace", "relation_flip", "object_add_remove"]
    return {r["type"]: r for r in run(builtin_prompts(), kinds, per_prompt=2, folds=5, seed=0, embeddings=True)}


@pytest.mark.slow
def test_minilm_check_hard_types_within_target(minilm_rows):
    """The documented command's numbers, with sentence-embedding plausibility (about a minute on 2 busy cores)."""
    for kind in ("attribute_replace", "attribute_swap", "count_change", "object_replace", "relation_flip"):
        assert within_target(minilm_rows[kind]), minilm_rows[kind]


@pytest.mark.slow
def test_minilm_check_object_add_remove(minilm_rows):
    """Additions and removals balanced between prompt shapes (was 0.90 when only `and a X` was added)."""
    assert within_target(minilm_rows["object_add_remove"]), minilm_rows["object_add_remove"]
