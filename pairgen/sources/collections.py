"""Existing image collections as positives: a folder, a CSV of images with prompts, a HF dataset, or
the real photos that ship inside scikit-image.

Re-scoring an old generator's images needs no regeneration: each image becomes a positive for
corruption and text-side alignment pairs. Where a collection records generation settings (e.g.
AGIQA-3K's `sd1.5_lowstep` vs `sd1.5_normal`), `natural_pairs` rules pair images of the same prompt
into generation-level pairs with the provenance of both images.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field, model_validator

from pairgen.config_base import Severity, StrictModel
from pairgen.images import as_rgb_uint8
from pairgen.prompts.sources import prompt_id

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class NaturalPairRule(StrictModel):
    """For the same prompt, an image made with setting `better` beats one made with `worse` on `aspect`."""

    better: str
    worse: str
    severity: Severity = 3
    """How strong the degradation is judged to be (recorded; used for curricula and stats)."""
    aspect: Literal["quality", "alignment"] = "quality"
    """`alignment` for settings that weaken prompt adherence by construction (e.g. a lower
    classifier-free guidance scale); a rule may be listed once per aspect."""


class ImageCollectionConfig(StrictModel):
    """One collection of existing images with prompts."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$", description="short name used in pair keys")
    kind: Literal["folder", "csv", "hf", "skimage"]
    path: str | None = None
    """folder: the image folder (prompts from `{stem}.txt` sidecars); csv: the CSV file; hf: a dataset name or path."""
    images: str | None = None
    """csv: folder the image column is relative to (default: `images/` next to the CSV, else the CSV's folder)."""
    image_column: str = "name"
    prompt_column: str = "prompt"
    setting_column: str | None = None
    """Column naming the generation setting of each image (enables `natural_pairs`)."""
    split: str = "train"
    names: list[str] = Field(default_factory=list)
    """skimage: photo names from skimage.data (default: all colour photos with built-in captions)."""
    limit: int | None = Field(default=None, ge=1)
    max_side: int | None = Field(default=512, ge=32)
    """Images with a longer side are downscaled (area interpolation) before pairs are built."""
    natural_pairs: list[NaturalPairRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_kind_fields(self) -> ImageCollectionConfig:
        if self.kind in ("folder", "csv", "hf") and not self.path:
            raise ValueError(f"kind {self.kind!r} needs 'path'")
        if self.natural_pairs and not self.setting_column:
            raise ValueError("natural_pairs need 'setting_column' (the column that names each image's generation setting)")
        return self


@dataclass(frozen=True)
class CollectionItem:
    """One image of a collection: where to load it and what prompt it was made for."""

    collection: str
    name: str
    location: str
    """File path, or `hf://{dataset}#{split}/{row}` for a HF dataset row."""
    prompt: str
    setting: str | None = None

    @property
    def image_id(self) -> str:
        return f"{self.collection}/{self.name}"

    @property
    def prompt_id(self) -> str:
        return prompt_id(self.prompt)


class CollectionError(ValueError):
    """A collection that cannot be read; the message names the file, column or row."""


def _skimage_captions() -> dict[str, str]:
    text = resources.files("pairgen.sources").joinpath("data/skimage_captions.json").read_text(encoding="utf-8")
    return json.loads(text)


def _iter_folder(config: ImageCollectionConfig) -> Iterator[CollectionItem]:
    folder = Path(config.path)
    if not folder.is_dir():
        raise CollectionError(f"collection {config.id!r}: image folder not found: {folder}")
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            sidecar = path.with_suffix(".txt")
            try:
                prompt = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else ""
            except UnicodeDecodeError as exc:
                raise CollectionError(f"{sidecar}: prompt sidecar is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            yield CollectionItem(config.id, path.name, str(path), prompt)


def _iter_csv(config: ImageCollectionConfig) -> Iterator[CollectionItem]:
    path = Path(config.path)
    if not path.is_file():
        raise CollectionError(f"collection {config.id!r}: CSV file not found: {path}")
    image_root = Path(config.images) if config.images else (path.parent / "images" if (path.parent / "images").is_dir() else path.parent)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        wanted = [c for c in (config.image_column, config.prompt_column, config.setting_column) if c]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise CollectionError(f"{path}: missing column(s) {missing}; columns present: {columns}")
        for line, row in enumerate(reader, start=2):
            image = image_root / row[config.image_column]
            if not image.is_file():
                raise CollectionError(f"{path}, line {line}: image file not found: {image}")
            setting = row[config.setting_column] if config.setting_column else None
            yield CollectionItem(config.id, row[config.image_column], str(image), row[config.prompt_column].strip(), setting)


def _iter_hf(config: ImageCollectionConfig) -> Iterator[CollectionItem]:
    dataset = _load_hf(config.path, config.split)
    missing = [c for c in (config.image_column, config.prompt_column, config.setting_column) if c and c not in dataset.column_names]
    if missing:
        raise CollectionError(f"dataset {config.path!r}: missing column(s) {missing}; columns present: {dataset.column_names}")
    prompts = dataset[config.prompt_column]
    settings = dataset[config.setting_column] if config.setting_column else [None] * len(prompts)
    for row, (prompt, setting) in enumerate(zip(prompts, settings)):
        yield CollectionItem(config.id, f"{row:08d}", f"hf://{config.path}#{config.split}/{row}#{config.image_column}", str(prompt).strip(), setting)


def _iter_skimage(config: ImageCollectionConfig) -> Iterator[CollectionItem]:
    captions = _skimage_captions()
    names = config.names or sorted(captions)
    unknown = [n for n in names if n not in captions]
    if unknown:
        raise CollectionError(f"collection {config.id!r}: no built-in caption for skimage photo(s) {unknown}; known: {sorted(captions)}")
    for name in names:
        yield CollectionItem(config.id, name, f"skimage://{name}", captions[name])


_READERS = {"folder": _iter_folder, "csv": _iter_csv, "hf": _iter_hf, "skimage": _iter_skimage}


def list_collection(config: ImageCollectionConfig) -> list[CollectionItem]:
    """The items of a collection in a stable order (file/row order), up to `limit`."""
    items = []
    for item in _READERS[config.kind](config):
        items.append(item)
        if config.limit and len(items) >= config.limit:
            break
    return items


@functools.lru_cache(maxsize=4)
def _load_hf(path: str, split: str):
    """A HF dataset by Hub name (from the local cache when offline) or a folder saved with `save_to_disk`."""
    import datasets

    folder = Path(path)
    try:
        if (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file():
            dataset = datasets.load_from_disk(path)
            return dataset[split] if isinstance(dataset, datasets.DatasetDict) else dataset
        return datasets.load_dataset(path, split=split)
    except (FileNotFoundError, ConnectionError) as exc:
        raise CollectionError(
            f"dataset {path!r} is not available locally ({exc}); pre-download it with "
            f"`huggingface-cli download --repo-type dataset {path}` (it lands under HF_HOME)"
        ) from None


def load_image(location: str, max_side: int | None = None) -> np.ndarray:
    """Load an item's image as uint8 RGB, downscaled so its longer side is at most `max_side`."""
    if location.startswith("skimage://"):
        from skimage import data

        image = getattr(data, location.removeprefix("skimage://"))()
    elif location.startswith("hf://"):
        dataset_part, row_part, column = location.removeprefix("hf://").rsplit("#", 2)
        split, row = row_part.rsplit("/", 1)
        image = _load_hf(dataset_part, split)[int(row)][column]
    else:
        try:
            with Image.open(location) as handle:
                handle.load()
                image = handle if handle.mode in ("RGB", "RGBA", "L", "LA", "I;16") else handle.convert("RGB")
                image = np.asarray(image)
        except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
            raise CollectionError(f"{location}: cannot read image ({exc})") from None
    try:
        image = as_rgb_uint8(image, name=location)
    except (TypeError, ValueError) as exc:
        raise CollectionError(str(exc)) from None
    if max_side and max(image.shape[:2]) > max_side:
        import cv2

        scale = max_side / max(image.shape[:2])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def natural_pairs(config: ImageCollectionConfig, items: list[CollectionItem]) -> list[tuple[CollectionItem, CollectionItem, NaturalPairRule]]:
    """(better, worse, rule) for every prompt that has images of both settings of a rule."""
    by_prompt: dict[tuple[str, str], CollectionItem] = {}
    for item in items:
        by_prompt.setdefault((item.prompt_id, item.setting or ""), item)
    pairs = []
    for rule in config.natural_pairs:
        for (pid, setting), better in sorted(by_prompt.items()):
            if setting == rule.better and (pid, rule.worse) in by_prompt:
                pairs.append((better, by_prompt[(pid, rule.worse)], rule))
    return pairs
