"""Backbone registry: `get_backbone("dual-encoder" | "hf-clip" | "hf-vlm", **options)`."""

from trainer.backbones.base import Backbone, DualTowerBackbone, TokenFeatures
from trainer.backbones.registry import BACKBONES, get_backbone, register_backbone

# Importing the modules registers their backbones.
from trainer.backbones import dual_encoder, hf_clip, hf_vlm  # noqa: E402,F401  isort: skip

__all__ = ["BACKBONES", "Backbone", "DualTowerBackbone", "TokenFeatures", "get_backbone", "register_backbone"]
