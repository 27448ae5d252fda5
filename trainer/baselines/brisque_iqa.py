"""BRISQUE (Mittal et al. 2012) through the `brisque` package, whose SVM ships in its wheel.

Under numpy 2 the package's feature function returns one-element arrays that its scaling step
cannot convert; `FixedBRISQUE` flattens them to floats. The package stays untouched. BRISQUE is
lower-is-better, so the score is negated to keep "higher = better" for every method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainer.baselines import register_baseline


def _brisque_class() -> type:
    try:
        from brisque import BRISQUE
    except ImportError as exc:
        from trainer.benchmarks import BenchmarkError

        raise BenchmarkError(f"the brisque baseline needs `pip install brisque==0.2.0` ({exc})") from None

    class FixedBRISQUE(BRISQUE):
        def calculate_brisque_features(self, image: np.ndarray, kernel_size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
            features = super().calculate_brisque_features(image, kernel_size=kernel_size, sigma=sigma)
            return np.array([np.asarray(f, dtype=np.float64).item() for f in features])

    return FixedBRISQUE


class BrisqueScorer:
    def __init__(self) -> None:
        self.model = _brisque_class()(url=False)

    def brisque(self, image: np.ndarray) -> float:
        """The package's BRISQUE score (about 0 = pristine .. 100 = badly distorted).

        NaN where the statistics are undefined (a flat image, e.g. a blank safety-filtered output);
        the evaluation leaves such images out of BRISQUE's numbers and says how many.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.model.score(image))

    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, np.ndarray]:
        values = -np.array([self.brisque(image) for image in images])
        return {"quality": values, "alignment": values}


@register_baseline("brisque")
def make_brisque() -> BrisqueScorer:
    return BrisqueScorer()
