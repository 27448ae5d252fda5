"""Reference images that centre the alignment score on its prompt.

Why: ranking pairs built for alignment mostly share their prompt (image swaps, erasures, natural
pairs), so nothing ties one prompt's scores to another's, and text-side pairs (the same image, a
perturbed prompt) reward what a prompt looks like on its own. Both leave a prompt-only offset in the
alignment score; on AGIQA-3K it carried about 40% of the score's variance, against 12% in the human
alignment scores (benchmarks/RESULTS.md, run 12). A critic with `reference_images: R` reports
`alignment(x, t) - mean_r alignment(r, t)` over R fixed reference images: how much better this image
fits the prompt than typical images do, the pointwise-mutual-information form of image-text
agreement (query-bank normalisation in retrieval does the same). Rankings among images of one
prompt are unchanged; scores of different prompts become comparable.

References are positive images of pair shards: distinct images, drawn by a seeded hash of the pair
key, so the same shards and seed give the same references. `trainer.train` draws them when the
config asks for them; for an existing checkpoint:

    python -m trainer.references --checkpoint out/train_pool/final --shards out/pool --count 32 --out out/train_pool/final-centred
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pairgen.config_base import digest, validate_config
from pairgen.shards import decode_pair, iter_raw_samples
from trainer.config import CriticConfig
from trainer.critic import Critic, read_config
from trainer.data import resolve_shards


def draw_references(shards: str | list[str], count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` distinct positive images of the pair shards: per distinct image its lowest seeded hash
    of a pair key, the `count` lowest of those. Two passes: hashes first, then only those decoded."""
    urls, _ = resolve_shards(shards)  # an empty or missing dataset is reported as such
    ranks: dict[str, tuple[str, str]] = {}  # image digest -> (rank, key)
    for sample in iter_raw_samples(urls):
        image, rank = hashlib.sha1(sample["pos.png"]).hexdigest(), digest(f"{seed}:{sample['__key__']}")
        if image not in ranks or rank < ranks[image][0]:
            ranks[image] = (rank, sample["__key__"])
    if len(ranks) < count:
        raise ValueError(f"{shards}: asked for {count} reference images, the shards hold {len(ranks)} distinct positive images")
    order = {key: position for position, (_, key) in enumerate(sorted(ranks.values())[:count])}
    chosen = {sample["__key__"]: decode_pair(sample).pos for sample in iter_raw_samples(urls) if sample["__key__"] in order}
    return [chosen[key] for key in sorted(order, key=order.get)]


def add_references(checkpoint: str | Path, shards: str | list[str], count: int, out: str | Path, seed: int = 0) -> Path:
    """A copy of `checkpoint` at `out` (all trained weights, LoRA adapters included) whose critic
    centres alignment on `count` reference images."""
    checkpoint, out = Path(checkpoint), Path(out)
    config = read_config(checkpoint)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new folder (the checkpoint is copied, never changed in place)")
    centred = Critic(validate_config(CriticConfig, {**config.model_dump(mode="json"), "reference_images": count}, source=f"--count {count}"))
    centred.load_trained_weights(checkpoint)
    centred.set_references(draw_references(shards, count, seed))
    centred.save_pretrained(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.references", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="critic checkpoint folder")
    parser.add_argument("--shards", required=True, help="pair shards to draw reference images from (a folder or a shard list)")
    parser.add_argument("--count", type=int, default=32, help="number of reference images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="new checkpoint folder (must not exist)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    try:
        print(add_references(args.checkpoint, args.shards, args.count, args.out, args.seed))
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
