"""Small, learnable pair shards made from scikit-image photos, for tests and the loader benchmark.

Quality pairs: a crop vs the same crop blurred or noised (cv2, applied here, not pairgen's corruption
library, which the trainer does not import). Alignment pairs are text-side: the same crop with its
own caption vs another photo's caption (`neg_prompt`). Shards go through `pairgen.shards.write_shard`,
so they are real shards with completion markers.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from pairgen.records import PairRecord, make_pair_key
from pairgen.shards import encode_pair, shard_name, write_shard

PHOTOS = {
    "astronaut": "a portrait of an astronaut in a white spacesuit",
    "chelsea": "a photo of a tabby cat",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket on a launch pad",
    "hubble_deep_field": "a deep field image of distant galaxies",
    "immunohistochemistry": "a microscope image of stained tissue",
    "camera": "a black and white photo of a cameraman",
    "coins": "a collection of old coins",
}


@functools.cache
def photo(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image[..., :3]


def _crop(image: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    side = rng.randint(min(image.shape[:2]) // 2, min(image.shape[:2]))
    y, x = rng.randint(0, image.shape[0] - side), rng.randint(0, image.shape[1] - side)
    return cv2.resize(image[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def _distort(image: np.ndarray, rng: random.Random) -> tuple[np.ndarray, str, int, dict]:
    severity = rng.randint(2, 5)
    if rng.random() < 0.5:
        sigma = 0.6 * severity
        return cv2.GaussianBlur(image, (0, 0), sigma), "gaussian_blur", severity, {"sigma": sigma}
    sigma = 8.0 * severity
    noisy = image.astype(np.float32) + np.random.default_rng(rng.getrandbits(32)).normal(0, sigma, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8), "gaussian_noise", severity, {"sigma": sigma}


def synthetic_pair(index: int, rng: random.Random, size: int, alignment_fraction: float) -> dict:
    names = list(PHOTOS)
    name = names[index % len(names)]
    pos = _crop(photo(name), size, rng)
    seed = rng.getrandbits(31)
    common = dict(prompt=PHOTOS[name], prompt_id=name, source=name, seed=seed, pos_size=(size, size), neg_size=(size, size), config_hash="synthetic")
    if rng.random() < alignment_fraction:
        other = rng.choice([n for n in names if n != name])
        spec = {"name": "swap_prompt", "other": other, "index": index}
        key = make_pair_key(source_id=name, generator_id=None, generator_revision=None, seed=seed, corruption=spec)
        record = PairRecord(key=key, aspect="alignment", family="prompt", corruption="swap_prompt", severity=2,
                            params={"other": other}, neg_prompt=PHOTOS[other], **common)
        return encode_pair(record, pos, pos)
    neg, corruption, severity, params = _distort(pos, rng)
    spec = {"name": corruption, "severity": severity, "index": index}
    key = make_pair_key(source_id=name, generator_id=None, generator_revision=None, seed=seed, corruption=spec)
    record = PairRecord(key=key, aspect="quality", family="conventional", corruption=corruption, severity=severity, params=params, **common)
    return encode_pair(record, pos, neg)


def write_synthetic_shards(directory: str | Path, pairs: int, per_shard: int = 64, size: int = 96, alignment_fraction: float = 0.3, seed: int = 0) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    samples = [synthetic_pair(i, rng, size, alignment_fraction) for i in range(pairs)]
    for shard, start in enumerate(range(0, pairs, per_shard)):
        write_shard(directory, shard_name(shard), samples[start : start + per_shard])
    return directory
