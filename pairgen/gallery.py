"""Render every corruption at all five severities on a real photo, labelled.

    python -m pairgen.gallery --out gallery.png [--photo astronaut] [--work 224] [--tile 112] [--names jpeg,fog]

Each row is one corruption (name, group, family), the columns are the original and severities
1..5, all with the same seed, so a row shows only the level changing. Corruptions run on a
`work`-px photo (224 = ImageNet-C's size; pixel-sized parameters look as intended) and are shown
as `tile`-px thumbnails.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pairgen.corruptions import get_corruption, list_corruptions

LABEL_WIDTH = 170
HEADER_HEIGHT = 22
GAP = 2
FONT = cv2.FONT_HERSHEY_SIMPLEX


def load_photo(name: str, side: int) -> np.ndarray:
    """A skimage.data photo (or an image file path), centre-cropped square, `side` px, uint8 RGB."""
    if Path(name).is_file():
        image = np.asarray(Image.open(name).convert("RGB"))
    else:
        from skimage import data

        image = getattr(data, name)()
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return cv2.resize(image[top : top + side, left : left + side], (side, side), interpolation=cv2.INTER_AREA)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.42, color: tuple[int, int, int] = (20, 20, 20)) -> None:
    cv2.putText(canvas, text, (x, y), FONT, scale, color, 1, cv2.LINE_AA)


def render_block(photo: np.ndarray, names: Sequence[str], seed: int, tile: int) -> np.ndarray:
    """One column block: a header row, then one row per corruption."""
    width = LABEL_WIDTH + 6 * (tile + GAP)
    canvas = np.full((HEADER_HEIGHT + len(names) * (tile + GAP), width, 3), 255, np.uint8)
    for column, title in enumerate(["original", "1", "2", "3", "4", "5"]):
        _text(canvas, title, LABEL_WIDTH + column * (tile + GAP) + tile // 2 - 4 * len(title), 16)
    for row, name in enumerate(names):
        corruption = get_corruption(name)
        y = HEADER_HEIGHT + row * (tile + GAP)
        _text(canvas, name, 6, y + tile // 2 - 4, 0.45)
        _text(canvas, f"{corruption.group} / {corruption.family}", 6, y + tile // 2 + 14, 0.36, (110, 110, 110))
        images = [photo] + [corruption.apply(photo, severity, np.random.default_rng(seed)) for severity in range(1, 6)]
        for column, image in enumerate(images):
            x = LABEL_WIDTH + column * (tile + GAP)
            canvas[y : y + tile, x : x + tile] = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
    return canvas


def render_gallery(photo: np.ndarray, names: Sequence[str], tile: int, seed: int = 0, blocks: int = 2) -> np.ndarray:
    """All rows split into `blocks` side-by-side column blocks (keeps the image near square)."""
    per_block = -(-len(names) // blocks)
    parts = [render_block(photo, names[i : i + per_block], seed, tile) for i in range(0, len(names), per_block)]
    height = max(part.shape[0] for part in parts)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 12), (0, 0)), constant_values=255) for p in parts]
    return np.concatenate(padded, axis=1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output PNG path")
    parser.add_argument("--photo", default="astronaut", help="skimage.data photo name or an image file")
    parser.add_argument("--work", type=int, default=224, help="photo size in px the corruptions run at")
    parser.add_argument("--tile", type=int, default=112, help="thumbnail size in px")
    parser.add_argument("--names", default="", help="comma-separated corruption names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocks", type=int, default=2, help="number of side-by-side column blocks")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()] or list_corruptions()
    for name in names:
        get_corruption(name)  # fail early, listing the known names
    gallery = render_gallery(load_photo(args.photo, args.work), names, args.tile, args.seed, args.blocks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gallery).save(args.out, optimize=True)
    print(f"wrote {args.out} ({gallery.shape[1]}x{gallery.shape[0]} px, {len(names)} corruptions)")


if __name__ == "__main__":
    main()
