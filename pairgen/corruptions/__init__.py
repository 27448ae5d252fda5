"""Visual-quality negatives: a registry of corruptions (KADID-25, ImageNet-C, ELIQ, AIGC structure
artifacts, composition), the no-op filter and the planner. See docs/corruptions.md."""

from pairgen.corruptions import blur, brightness, color, compression, eliq, imagenet_c, noise, sharpness, spatial, structure  # noqa: F401  (register)
from pairgen.corruptions.base import (
    Corruption,
    UnknownCorruptionError,
    apply_corruption,
    get_corruption,
    list_corruptions,
    register,
)

__all__ = [
    "Corruption",
    "UnknownCorruptionError",
    "apply_corruption",
    "get_corruption",
    "list_corruptions",
    "register",
]
