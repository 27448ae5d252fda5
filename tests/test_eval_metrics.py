"""Metrics against scipy on real AGIQA-3K dev scores, and the properties the report relies on."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from trainer.metrics import (
    bootstrap_ci,
    correlations,
    fit_logistic4,
    krcc,
    logistic4,
    paired_srcc_difference,
    pairwise_accuracy,
    Resampler,
    plcc,
    prompt_share,
    srcc,
)

DEV = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "agiqa3k-dev"


@pytest.fixture(scope="module")
def dev_mos() -> tuple[np.ndarray, np.ndarray]:
    if not (DEV / "data.csv").is_file():
        pytest.skip(f"benchmark data not found: {DEV}")
    with open(DEV / "data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([float(r["mos_quality"]) for r in rows]), np.array([float(r["mos_align"]) for r in rows])


def test_rank_correlations_match_scipy(dev_mos):
    quality, align = dev_mos
    assert srcc(quality, align) == pytest.approx(stats.spearmanr(quality, align).statistic, abs=1e-12)
    assert krcc(quality, align) == pytest.approx(stats.kendalltau(quality, align).statistic, abs=1e-12)
    assert 0.3 < srcc(quality, align) < 0.95  # the two MOS columns are related but not the same


def test_plcc_undoes_a_logistic_relation(dev_mos):
    quality, _ = dev_mos
    score = 7.0 * quality + 3.0  # a predictor on its own scale, with MOS a saturating function of it
    mos = logistic4((score - score.mean()) / score.std(), 4.8, 0.1, 0.3, 0.3)
    assert stats.pearsonr(score, mos).statistic < 0.97
    assert plcc(score, mos) == pytest.approx(1.0, abs=1e-6)
    assert srcc(score, mos) == pytest.approx(1.0)


def test_plcc_on_a_linear_predictor_is_at_least_pearson(dev_mos):
    quality, align = dev_mos
    assert plcc(align, quality) >= stats.pearsonr(align, quality).statistic - 1e-9


def test_logistic_fit_recovers_known_parameters():
    x = np.linspace(-3, 3, 200)
    y = logistic4(x, 4.5, 0.5, 0.2, 0.7)
    params, converged = fit_logistic4(x, y)
    z = (x - x.mean()) / x.std()
    assert converged
    np.testing.assert_allclose(logistic4(z, *params), y, atol=1e-6)


def test_sign_flips_with_the_predictor(dev_mos):
    quality, align = dev_mos
    plus, minus = correlations(align, quality), correlations(-align, quality)
    assert plus["srcc"] == pytest.approx(-minus["srcc"])
    assert plus["krcc"] == pytest.approx(-minus["krcc"])


def test_bootstrap_interval_brackets_the_estimate_and_shrinks_with_n(dev_mos):
    quality, align = dev_mos
    full = bootstrap_ci(align, quality, n_boot=300, seed=1)
    small = bootstrap_ci(align[:60], quality[:60], n_boot=300, seed=1)
    estimate = correlations(align, quality)
    for name in ("srcc", "krcc", "plcc"):
        lo, hi = full[name]
        assert lo < estimate[name] < hi
        assert hi - lo < small[name][1] - small[name][0]
    assert bootstrap_ci(align, quality, n_boot=50, seed=3) == bootstrap_ci(align, quality, n_boot=50, seed=3)


def test_paired_difference_separates_predictors_whose_own_intervals_overlap(dev_mos):
    """Alignment MOS predicts quality MOS; adding a little more noise to it costs a few hundredths of
    SRCC: separate intervals overlap, the paired interval of the difference does not include 0."""
    quality, align = dev_mos
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, len(align))
    better, worse = align + 0.2 * noise * align.std(), align + 0.45 * noise * align.std()
    result = paired_srcc_difference(better, worse, quality, n_boot=300)
    assert result["delta"] == pytest.approx(srcc(better, quality) - srcc(worse, quality))
    lo, hi = result["ci95"]
    assert 0 < lo < result["delta"] < hi and result["p_not_above"] < 0.025
    separate = bootstrap_ci(better, quality, n_boot=300)["srcc"], bootstrap_ci(worse, quality, n_boot=300)["srcc"]
    assert separate[0][0] < separate[1][1]  # the unpaired intervals overlap
    same = paired_srcc_difference(align, align, quality, n_boot=50)
    assert same["delta"] == 0 and same["ci95"] == (0.0, 0.0) and same["p_not_above"] == 1.0


def test_resampling_prompts_widens_the_interval_of_a_predictor_that_only_knows_the_prompt():
    """On the dev split (495 images, 50 prompts), a predictor that gives each prompt one random score
    agrees with the alignment MOS only by the chance of 50 prompt values; resampling images treats its
    495 images as independent evidence, resampling whole prompts (`clusters`) does not and shows a
    wider interval. Every resample keeps whole prompts."""
    with open(DEV / "data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    prompts = [r["prompt"] for r in rows]
    align = np.array([float(r["mos_align"]) for r in rows])
    rng = np.random.default_rng(0)
    offsets = {p: rng.normal() for p in sorted(set(prompts))}
    prompt_only = np.array([offsets[p] for p in prompts])
    images = bootstrap_ci(prompt_only, align, n_boot=300, seed=0)["srcc"]
    clustered = bootstrap_ci(prompt_only, align, n_boot=300, seed=0, clusters=prompts)["srcc"]
    assert clustered[1] - clustered[0] > 1.3 * (images[1] - images[0])
    resample = Resampler(len(prompts), prompts)(np.random.default_rng(0))
    counts = dict.fromkeys(offsets, 0)
    for index in resample:
        counts[prompts[index]] += 1
    assert all(counts[p] % prompts.count(p) == 0 for p in offsets)  # whole prompts, drawn with replacement
    with pytest.raises(ValueError, match="got 3 cluster labels for 4 images"):
        Resampler(4, prompts[:3])
    paired = paired_srcc_difference(prompt_only, align, align, n_boot=100, clusters=prompts)
    assert paired["ci95"][1] < 0 and paired["p_not_above"] == 1.0  # the MOS itself ranks perfectly
    # one prompt's images cannot be resampled by prompt: no interval rather than a falsely certain one
    one = [i for i, p in enumerate(prompts) if p == prompts[0]]
    single = paired_srcc_difference(prompt_only[one] + align[one], align[one] * 0.5, align[one], n_boot=50, clusters=[prompts[i] for i in one])
    assert single["resamples"] == 0 and np.isnan(single["p_not_above"]) and all(np.isnan(single["ci95"]))
    assert all(np.isnan(bootstrap_ci(align[one], align[one], n_boot=50, clusters=[prompts[i] for i in one])["srcc"]))


def test_pairwise_accuracy_counts_ties_as_half():
    assert pairwise_accuracy([3, 2, 1, 5], [1, 2, 4, 0]) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert np.isnan(pairwise_accuracy([], []))


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        srcc([1, 2, 3], [1, 2])


def test_prompt_share_is_the_between_prompt_share_of_variance():
    prompts = ["a", "a", "b", "b"]
    assert prompt_share([1.0, 1.0, 3.0, 3.0], prompts) == pytest.approx(1.0)  # the prompt decides everything
    assert prompt_share([1.0, 3.0, 1.0, 3.0], prompts) == pytest.approx(0.0)  # the prompt decides nothing
    # prompt means 2 and 4 around the grand mean 3: between 4 * 1 = 4, total 4 + 0 + 0 + 4 = 8
    assert prompt_share([1.0, 3.0, 3.0, 5.0], prompts) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="3 values but 4 prompts"):
        prompt_share([1.0, 2.0, 3.0], prompts)
    assert np.isnan(prompt_share([1.0, 2.0], ["", ""]))  # no prompts (KonIQ-10k): no between-prompt share
    assert np.isnan(prompt_share([1.0, 2.0], ["a", "a"]))
