"""AIGC structure artifacts: the local failures of generated images (melted shapes, duplicated or
mirrored parts, missing objects, waxy skin, fused parts, tiled textures, seams), applied inside a
region mask (`regions.py`). Severity scales both the region (5% .. 20% of the image) and the
artifact's magnitude."""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import from_255
from pairgen.corruptions.regions import Region, region_mask

AREA = (0.05, 0.0875, 0.125, 0.1625, 0.20)
SMEAR_SIDE = 64  # texture smear filters the region at this size (size-independent look and cost)
POISSON_SIDE = 96  # duplication solves its Poisson membrane at this size
INPAINT_SIDE = 128  # omission is inpainted on a map with this short side (fast, smoother fill)


def translate(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """`image` moved by (dx, dy) px, borders reflected: pixel p of the result is image[p - (dx, dy)]."""
    height, width = image.shape[:2]
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def random_offset(rng: np.random.Generator, params: dict[str, Any], distance: float) -> tuple[float, float]:
    """A (dx, dy) of length `distance` in a random direction, recorded."""
    angle = rng.uniform(0, 2 * np.pi)
    dx, dy = distance * np.cos(angle), distance * np.sin(angle)
    params["offset"] = [round(dx, 2), round(dy, 2)]
    return dx, dy


class StructureArtifact(Corruption):
    """Base: draw a region, let `_alter` produce the altered image, blend it in through the mask.

    `opacity` (a level table entry, 1 if absent) scales the blend; `hard_edges` skips feathering.
    """

    group = "structure"
    family = "aigc_structure"
    hard_edges: ClassVar[bool] = False

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        region = region_mask(image, params["area"], rng)
        params["region"] = region.record
        altered = self._alter(image, region, params, rng)
        y0, y1, x0, x1 = region.box
        weight = region.hard.astype(np.float32) if self.hard_edges else region.soft
        weight = weight[y0:y1, x0:x1, None] * np.float32(params.get("opacity", 1.0))
        crop = image[y0:y1, x0:x1].astype(np.float32)
        out = image.copy()
        out[y0:y1, x0:x1] = from_255(crop + weight * (altered[y0:y1, x0:x1].astype(np.float32) - crop))
        return out

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


@register
class LocalWarp(StructureArtifact):
    """Melted shapes: a smooth random displacement plus a downward sag, `strength` x region diameter."""

    name = "local_warp"
    levels = {"area": AREA, "strength": (0.04, 0.06, 0.08, 0.10, 0.12)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        y0, y1, x0, x1 = region.box
        amplitude = params["strength"] * region.diameter
        coarse = rng.standard_normal((2, 5, 5)).astype(np.float32) * np.float32(amplitude)
        weight = region.soft[y0:y1, x0:x1]
        dx = cv2.resize(coarse[0], (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC) * weight
        dy = (cv2.resize(coarse[1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC) - amplitude / 2) * weight
        grid_x, grid_y = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        altered = image.copy()
        altered[y0:y1, x0:x1] = cv2.remap(image, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return altered


@register
class Duplication(StructureArtifact):
    """A duplicated part: neighbouring content (0.8 diameters away) Poisson-blended into the region.

    Poisson blending = the copied content plus a smooth membrane that fixes the seam colours; the
    membrane is solved (`cv2.seamlessClone`) on a copy reduced to `POISSON_SIDE` px and upsampled.
    """

    name = "duplication"
    levels = {"area": AREA, "opacity": (0.6, 0.7, 0.8, 0.9, 1.0)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        dx, dy = random_offset(rng, params, 0.8 * region.diameter)
        y0, y1, x0, x1 = region.box  # the Poisson solve only needs the region's box
        source = translate(image, dx, dy)[y0:y1, x0:x1]
        scale = min(1.0, POISSON_SIDE / max(y1 - y0, x1 - x0))
        size = (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale)))
        small_source = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
        small_target = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(region.hard[y0:y1, x0:x1].astype(np.uint8) * 255, size, interpolation=cv2.INTER_NEAREST)
        mask[[0, -1], :] = 0  # seamlessClone needs a one-pixel margin
        mask[:, [0, -1]] = 0
        x, y, w, h = cv2.boundingRect(mask)
        cloned = cv2.seamlessClone(small_source, small_target, mask, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
        membrane = cloned.astype(np.float32) - small_source.astype(np.float32)
        altered = image.copy()
        altered[y0:y1, x0:x1] = from_255(source + cv2.resize(membrane, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR))
        return altered


@register
class MirroredRegion(StructureArtifact):
    """A mirrored part: the region's content flipped left-right or up-down (recorded)."""

    name = "mirrored_region"
    levels = {"area": AREA, "opacity": (0.6, 0.7, 0.8, 0.9, 1.0)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        y0, y1, x0, x1 = region.box
        params["axis"] = "horizontal" if rng.random() < 0.5 else "vertical"
        altered = image.copy()
        crop = image[y0:y1, x0:x1]
        altered[y0:y1, x0:x1] = crop[:, ::-1] if params["axis"] == "horizontal" else crop[::-1]
        return altered


@register
class Omission(StructureArtifact):
    """A missing object: the region is filled by inpainting (Telea) from its surroundings."""

    name = "omission"
    levels = {"area": AREA, "opacity": (0.75, 0.8, 0.85, 0.9, 1.0)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        scale = min(1.0, INPAINT_SIDE / min(height, width))
        size = (round(width * scale), round(height * scale))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        hole = cv2.resize((region.soft > 0.05).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        filled = cv2.inpaint(small, cv2.dilate(hole, np.ones((3, 3), np.uint8)), 3, cv2.INPAINT_TELEA)
        return cv2.resize(filled, (width, height), interpolation=cv2.INTER_CUBIC)


@register
class TextureSmear(StructureArtifact):
    """Waxy skin / smeared texture: repeated bilateral filtering wipes out fine detail but keeps edges.

    Filtered on a copy of the region resampled to at most `SMEAR_SIDE` px across, so the look (and
    the cost) does not depend on the image size.
    """

    name = "texture_smear"
    levels = {"area": AREA, "sigma_color": (60, 75, 90, 105, 120), "iterations": (2, 2, 3, 3, 4)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        y0, y1, x0, x1 = region.box
        crop = image[y0:y1, x0:x1]
        scale = min(1.0, SMEAR_SIDE / region.diameter)
        work = cv2.resize(crop, (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale))), interpolation=cv2.INTER_AREA)
        for _ in range(params["iterations"]):
            work = cv2.bilateralFilter(work, 7, params["sigma_color"], 3)
        altered = image.copy()
        altered[y0:y1, x0:x1] = cv2.resize(work, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
        return altered


@register
class Fusion(StructureArtifact):
    """Fused parts: the region cross-fades into the adjacent region along a random direction."""

    name = "fusion"
    levels = {"area": AREA, "mix": (0.35, 0.45, 0.55, 0.65, 0.75)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        dx, dy = random_offset(rng, params, 0.6 * region.diameter)
        neighbour = translate(image, dx, dy).astype(np.float32)
        y0, y1, x0, x1 = region.box
        grid_x, grid_y = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        along = grid_x * dx + grid_y * dy  # the neighbour takes over progressively along the offset
        ramp = (along - along.min()) / max(float(np.ptp(along)), 1e-6) * np.float32(params["mix"] * 2)
        ramp = np.clip(ramp, 0, 1)[..., None]
        altered = image.astype(np.float32)
        altered[y0:y1, x0:x1] += ramp * (neighbour[y0:y1, x0:x1] - altered[y0:y1, x0:x1])
        return from_255(altered)


@register
class RepetitionTiling(StructureArtifact):
    """Repeated texture: a patch (`tile` x region diameter) from the region tiled across it."""

    name = "repetition_tiling"
    levels = {"area": AREA, "tile": (0.45, 0.38, 0.31, 0.24, 0.18)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        y0, y1, x0, x1 = region.box
        side = max(4, round(params["tile"] * region.diameter))
        cy = int(y0 + rng.random() * max(1, y1 - y0 - side))
        cx = int(x0 + rng.random() * max(1, x1 - x0 - side))
        params["source"] = [cy, cx]
        patch = image[cy : cy + side, cx : cx + side]
        reps = (-(-(y1 - y0) // patch.shape[0]), -(-(x1 - x0) // patch.shape[1]), 1)
        altered = image.copy()
        altered[y0:y1, x0:x1] = np.tile(patch, reps)[: y1 - y0, : x1 - x0]
        return altered


@register
class MisalignedPatch(StructureArtifact):
    """A seam: the region's content shifted by `shift` x region diameter and pasted with hard edges."""

    name = "misaligned_patch"
    hard_edges = True
    levels = {"area": AREA, "shift": (0.02, 0.035, 0.05, 0.065, 0.08)}

    def _alter(self, image: np.ndarray, region: Region, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        return translate(image, *random_offset(rng, params, max(2.0, params["shift"] * region.diameter)))
