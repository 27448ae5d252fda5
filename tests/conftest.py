"""Shared test fixtures: real photos from skimage.data and small real pair shards."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina", "hubble_deep_field", "camera")


def photo(name: str, size: int = 96) -> np.ndarray:
    """A real photo from skimage.data as uint8 RGB, resized to size x size."""
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return cv2.resize(image[..., :3], (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    return {name: photo(name) for name in PHOTO_NAMES}


def make_pairs(photos: dict[str, np.ndarray], n: int, offset: int = 0) -> list[dict]:
    """Encoded raw samples of simple real pairs: a photo vs its blurred copy."""
    from pairgen.records import PairRecord, make_pair_key
    from pairgen.shards import encode_pair

    names = sorted(photos)
    samples = []
    for i in range(offset, offset + n):
        name = names[i % len(names)]
        pos = photos[name]
        neg = cv2.GaussianBlur(pos, (0, 0), 2.0)
        spec = {"name": "gaussian_blur", "severity": 3}
        key = make_pair_key(source_id=f"{name}-{i}", generator_id=None, generator_revision=None, seed=i, corruption=spec)
        record = PairRecord(
            key=key,
            aspect="quality",
            family="conventional",
            corruption="gaussian_blur",
            severity=3,
            params={"sigma": 2.0},
            prompt=f"a photo of {name.replace('_', ' ')}",
            prompt_id=f"{name}-{i}",
            source="skimage",
            seed=i,
            pos_size=(pos.shape[1], pos.shape[0]),
            neg_size=(neg.shape[1], neg.shape[0]),
            config_hash="0" * 32,
        )
        samples.append(encode_pair(record, pos, neg))
    return samples


@pytest.fixture
def shard_dir(tmp_path: Path, photos) -> Path:
    """A complete dataset folder: two shards (5 + 3 pairs), markers and manifest."""
    from pairgen.shards import build_manifest, shard_name, write_manifest, write_shard

    samples = make_pairs(photos, 8)
    stats = [write_shard(tmp_path, shard_name(0), samples[:5]), write_shard(tmp_path, shard_name(1), samples[5:])]
    write_manifest(tmp_path, build_manifest(name="test", shard_stats=stats, config={}, config_hash="0" * 32))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory) -> dict[str, Path]:
    """Tiny random-weight diffusers pipelines saved with save_pretrained: {family: folder}."""
    from pairgen.generators import build_tiny_pipelines

    return build_tiny_pipelines(tmp_path_factory.mktemp("fixtures"))
