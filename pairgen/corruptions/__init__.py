"""Visual-quality negatives: a registry of corruptions (KADID-25, ImageNet-C, ELIQ, AIGC structure
artifacts, composition), the no-op filter and the planner. See docs/corruptions.md."""

from pairgen.corruptions import (  # noqa: F401  (importing a module registers its corruptions)
    blur,
    brightness,
    color,
    composition,
    compression,
    eliq,
    imagenet_c,
    noise,
    sharpness,
    spatial,
    structure,
)
from pairgen.corruptions.base import (
    Corruption,
    UnknownCorruptionError,
    apply_corruption,
    check_severity,
    get_corruption,
    list_corruptions,
    register,
)
from pairgen.corruptions.config import (
    CompositionConfig,
    CorruptionEntry,
    NoOpFilterConfig,
    QualityCorruptionsConfig,
)
from pairgen.corruptions.plan import (
    CorruptionSpec,
    QAStats,
    QualityNegative,
    is_noop,
    make_quality_negative,
    plan_erasure_negatives,
    plan_quality_negatives,
)
from pairgen.corruptions.qa import psnr, ssim

__all__ = [
    "CompositionConfig",
    "Corruption",
    "CorruptionEntry",
    "CorruptionSpec",
    "NoOpFilterConfig",
    "QAStats",
    "QualityCorruptionsConfig",
    "QualityNegative",
    "UnknownCorruptionError",
    "apply_corruption",
    "check_severity",
    "get_corruption",
    "list_corruptions",
    "is_noop",
    "make_quality_negative",
    "plan_quality_negatives",
    "psnr",
    "register",
    "ssim",
]
