"""Agreement between predicted scores and human opinion scores, computed with scipy.

SRCC and KRCC measure rank agreement; PLCC is reported after the four-parameter logistic mapping
that IQA papers use (VQEG), so a monotonic but non-linear predictor is not penalized for its scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

METRICS = ("srcc", "krcc", "plcc")


def _as_pair(pred: Sequence[float], target: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of equal length, got {pred.shape} and {target.shape}")
    return pred, target


def srcc(pred: Sequence[float], target: Sequence[float]) -> float:
    """Spearman rank correlation."""
    return float(stats.spearmanr(*_as_pair(pred, target)).statistic)


def krcc(pred: Sequence[float], target: Sequence[float]) -> float:
    """Kendall rank correlation (tau-b, which handles ties)."""
    return float(stats.kendalltau(*_as_pair(pred, target)).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG four-parameter logistic: b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))."""
    with np.errstate(over="ignore"):  # saturated tails are exactly b1 / b2
        return b2 + (b1 - b2) / (1.0 + np.exp(-(x - b3) / (np.abs(b4) + 1e-12)))


def zscore(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit spread: puts scores of any scale on one footing (a constant stays finite)."""
    return (values - values.mean()) / (values.std() + 1e-12)


def fit_logistic4(pred: Sequence[float], target: Sequence[float]) -> tuple[np.ndarray, bool]:
    """Parameters mapping `pred` onto `target`'s scale, for z-scored `pred`, and whether the fit converged.

    Predictions are z-scored first so one starting point works for any score scale. When the fit
    does not converge the identity-like linear start is kept (PLCC then equals Pearson's r).
    """
    pred, target = _as_pair(pred, target)
    z = zscore(pred)
    start = np.array([target.max(), target.min(), 0.0, 1.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(logistic4, z, target, p0=start, maxfev=20000)
        return params, True
    except (RuntimeError, ValueError):
        return start, False


def logistic_mapped(pred: Sequence[float], target: Sequence[float]) -> tuple[np.ndarray, bool]:
    """`pred` mapped onto the target scale by the fitted logistic (or unchanged if the fit failed)."""
    pred, target = _as_pair(pred, target)
    params, converged = fit_logistic4(pred, target)
    if not converged:
        return pred, False
    z = zscore(pred)
    return logistic4(z, *params), True


def pearson(pred: Sequence[float], target: Sequence[float]) -> float:
    pred, target = _as_pair(pred, target)
    if np.ptp(pred) == 0 or np.ptp(target) == 0:
        return float("nan")
    return float(stats.pearsonr(pred, target).statistic)


def plcc(pred: Sequence[float], target: Sequence[float]) -> float:
    """Pearson correlation after the four-parameter logistic fit."""
    mapped, _ = logistic_mapped(pred, target)
    return pearson(mapped, target)


def correlations(pred: Sequence[float], target: Sequence[float]) -> dict[str, float]:
    """SRCC, KRCC and PLCC (after the logistic fit) of one predictor against one MOS column."""
    return {"srcc": srcc(pred, target), "krcc": krcc(pred, target), "plcc": plcc(pred, target)}


class Resampler:
    """Bootstrap resamples of a benchmark's images: independent images, or with `clusters` (one label
    per image, e.g. its prompt) whole clusters drawn with replacement, every image of a drawn cluster
    kept. Images of one prompt share its difficulty, so resampling images alone understates how much
    a correlation would move on other prompts; resampling prompts does not."""

    def __init__(self, size: int, clusters: Sequence[str] | None = None):
        if clusters is not None and len(clusters) != size:
            raise ValueError(f"got {len(clusters)} cluster labels for {size} images")
        self.size = size
        self.members: list[np.ndarray] | None = None
        if clusters is not None:
            _, inverse = np.unique(np.asarray(clusters, dtype=object), return_inverse=True)
            self.members = [np.flatnonzero(inverse == c) for c in range(inverse.max() + 1)] if size else []

    @property
    def usable(self) -> bool:
        """Whether resamples can vary: at least two images, and two clusters when resampling clusters
        (one prompt's images would give a zero-width interval that looks falsely certain)."""
        return self.size > 1 and (self.members is None or len(self.members) > 1)

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        if self.members is None:
            return rng.integers(0, self.size, self.size)
        drawn = rng.integers(0, len(self.members), len(self.members))
        return np.concatenate([self.members[c] for c in drawn])


def bootstrap_ci(
    pred: Sequence[float],
    target: Sequence[float],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    clusters: Sequence[str] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for SRCC, KRCC and PLCC (resampling images with replacement, or
    with `clusters` whole clusters: see `Resampler`).

    The logistic mapping is fitted once on the full sample and kept fixed inside the resamples:
    refitting 1000 times costs minutes and moves the PLCC interval by far less than its width.
    """
    pred, target = _as_pair(pred, target)
    mapped, _ = logistic_mapped(pred, target)
    rng = np.random.default_rng(seed)
    resample = Resampler(len(pred), clusters)
    samples: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(n_boot if resample.usable else 0):
        idx = resample(rng)
        samples["srcc"].append(srcc(pred[idx], target[idx]))
        samples["krcc"].append(krcc(pred[idx], target[idx]))
        samples["plcc"].append(pearson(mapped[idx], target[idx]))
    return {name: _percentile_interval(values, level) for name, values in samples.items()}


def _percentile_interval(values: Sequence[float], level: float) -> tuple[float, float]:
    """The central `level` percentile interval of the finite bootstrap values (NaN, NaN if none)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_srcc_difference(
    pred: Sequence[float],
    reference: Sequence[float],
    target: Sequence[float],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    clusters: Sequence[str] | None = None,
) -> dict[str, Any]:
    """SRCC(pred) - SRCC(reference) on the same images, with a paired percentile bootstrap interval.

    Both predictors are scored on every resample of the same images, so the interval is that of the
    difference: far narrower than comparing two separate intervals, which overlap even when one
    method wins on nearly every resample. `p_not_above` is the share of resamples where `pred` does
    not beat `reference` (a one-sided bootstrap p-value). Resamples where either SRCC is undefined (a
    constant predictor) are left out of both. Images are resampled independently, or with `clusters`
    (the prompts) whole clusters (`Resampler`): on benchmarks with several images per prompt,
    resampling images alone makes the interval optimistic.
    """
    pred, target = _as_pair(pred, target)
    reference, _ = _as_pair(reference, target)
    rng = np.random.default_rng(seed)
    resample = Resampler(len(pred), clusters)
    deltas = []
    for _ in range(n_boot if resample.usable else 0):
        idx = resample(rng)
        deltas.append(srcc(pred[idx], target[idx]) - srcc(reference[idx], target[idx]))
    finite = np.asarray(deltas)[np.isfinite(deltas)]
    return {
        "delta": srcc(pred, target) - srcc(reference, target),
        "ci95": _percentile_interval(finite, level),
        "p_not_above": float(np.mean(finite <= 0.0)) if len(finite) else float("nan"),
        "resamples": len(finite),
    }


def prompt_share(values: Sequence[float], prompts: Sequence[str]) -> float:
    """Share of the variance of `values` that lies between prompts (eta squared: the between-group sum
    of squares over the total). For an alignment score, how much of it the prompt alone decides. NaN
    when some image has no prompt or all share one."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) != len(prompts):
        raise ValueError(f"got {len(values)} values but {len(prompts)} prompts")
    _, inverse = np.unique(np.asarray(prompts, dtype=object), return_inverse=True)
    if len(values) == 0 or inverse.max() < 1 or not all(prompts):
        return float("nan")  # without prompts, or with a single one, there is no between-prompt share
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    total = float(((values - values.mean()) ** 2).sum())
    return float(((means[inverse] - values.mean()) ** 2).sum() / total) if total > 0 else float("nan")


def pairwise_accuracy(pos_scores: Sequence[float], neg_scores: Sequence[float]) -> float:
    """Share of pairs where the positive scores higher than the negative; a tie counts one half."""
    pos, neg = _as_pair(pos_scores, neg_scores)
    if len(pos) == 0:
        return float("nan")
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))
