"""Where positives come from besides the generators: existing image collections."""

from pairgen.sources.collections import (
    CollectionError,
    CollectionItem,
    ImageCollectionConfig,
    NaturalPairRule,
    list_collection,
    load_image,
    natural_pairs,
)

__all__ = [
    "CollectionError",
    "CollectionItem",
    "ImageCollectionConfig",
    "NaturalPairRule",
    "list_collection",
    "load_image",
    "natural_pairs",
]
