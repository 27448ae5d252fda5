"""Corruption registry contract, determinism, bad input, structure artifacts, composition, config,
planner and the no-op filter, on real photos from skimage.data."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.metrics import structural_similarity

from pairgen.config_base import ConfigError, StrictModel, validate_config
from pairgen.corruptions import (
    CorruptionSpec,
    NoOpFilterConfig,
    QAStats,
    QualityCorruptionsConfig,
    apply_corruption,
    get_corruption,
    list_corruptions,
    make_quality_negative,
    plan_quality_negatives,
    ssim,
)
from pairgen.corruptions.regions import region_mask, saliency_map

KADID = {
    "gaussian_blur", "lens_blur", "motion_blur", "color_diffusion", "color_shift", "color_quantization",
    "saturation_hsv", "saturation_lab", "jpeg2000", "jpeg", "white_noise", "white_noise_ycbcr",
    "impulse_noise", "multiplicative_noise", "denoise", "brighten", "darken", "mean_shift", "jitter",
    "non_eccentricity_patch", "pixelate", "quantization", "color_block", "high_sharpen", "contrast_change",
}  # fmt: skip
IMAGENET_C = {
    "shot_noise", "defocus_blur", "glass_blur", "zoom_blur", "fog", "snow", "elastic_transform",
    "speckle_noise", "spatter", "saturate",
}  # fmt: skip
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry")


def load_photo(name: str, short_side: int) -> np.ndarray:
    """A real photo as uint8 RGB with the given short side (aspect kept)."""
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [load_photo(name, 256) for name in PHOTOS]


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return load_photo("coffee", 96)  # 96x144: small and not square


# --- registry contract -------------------------------------------------------------------------


def test_registry_covers_kadid_imagenet_c_eliq_structure_and_composition():
    names = set(list_corruptions())
    assert KADID <= names and len(KADID) == 25
    assert IMAGENET_C <= names
    assert {"eliq_jpeg_noise", "composite"} <= names
    structure = set(list_corruptions(family="aigc_structure"))
    assert len(structure) >= 7
    assert structure.isdisjoint(KADID | IMAGENET_C)
    assert set(list_corruptions(family="conventional")) | structure == names
    for name in names:
        corruption = get_corruption(name)
        assert corruption.name == name and corruption.aspect == "quality" and corruption.group


def test_unknown_name_lists_known_names():
    with pytest.raises((KeyError, ValueError)) as info:
        get_corruption("jpgg")
    assert "jpgg" in str(info.value) and "jpeg2000" in str(info.value) and "duplication" in str(info.value)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True, "3"])
def test_severity_outside_range_is_refused(severity, small):
    with pytest.raises((ValueError, TypeError), match=r"1\.\.5"):
        get_corruption("jpeg").parameters(severity)
    with pytest.raises((ValueError, TypeError), match=r"1\.\.5"):
        apply_corruption(small, "jpeg", severity, 0)


def test_parameters_are_json_and_follow_level_tables():
    for name in list_corruptions():
        corruption = get_corruption(name)
        levels = [corruption.parameters(s) for s in range(1, 6)]
        json.dumps(levels)
        assert len({json.dumps(p, sort_keys=True) for p in levels}) == 5, f"{name}: levels must differ"
    assert get_corruption("jpeg").parameters(5) == {"quality": 4}
    assert get_corruption("jpeg2000").parameters(1) == {"ratio": 16}


@pytest.mark.parametrize("name", list_corruptions())
def test_apply_contract(name, small):
    before = small.copy()
    out_a, params_a = apply_corruption(small, name, 5, seed=11)
    out_b, params_b = apply_corruption(small, name, 5, seed=11)
    assert out_a.dtype == np.uint8 and out_a.shape == small.shape
    np.testing.assert_array_equal(small, before)  # input untouched
    np.testing.assert_array_equal(out_a, out_b)  # deterministic for a seed
    assert params_a == params_b
    assert json.loads(json.dumps(params_a)) == params_a
    assert not np.array_equal(out_a, small), f"{name} at severity 5 left the image unchanged"
    corruption = get_corruption(name)
    np.testing.assert_array_equal(corruption.apply(small, 5, np.random.default_rng(11)), out_a)


def test_random_draws_are_recorded(small):
    angles = {apply_corruption(small, "motion_blur", 3, seed)[1]["angle"] for seed in range(5)}
    assert len(angles) == 5
    _, shift = apply_corruption(small, "mean_shift", 2, 0)
    assert abs(shift["shift"]) == shift["magnitude"] == 0.06


def test_pixel_sizes_scale_with_large_images():
    image = load_photo("astronaut", 768)
    _, params = apply_corruption(image, "lens_blur", 2, 0)
    assert params["pixel_scale"] == 2.0


@pytest.mark.parametrize(
    "image",
    [
        load_photo("camera", 64)[..., 0],  # grayscale
        np.dstack([load_photo("coffee", 64), np.full(load_photo("coffee", 64).shape[:2], 255, np.uint8)]),
        load_photo("coffee", 64).astype(np.uint16) * 257,
    ],
    ids=["gray", "rgba", "uint16"],
)
def test_convertible_inputs_are_accepted(image):
    out, _ = apply_corruption(image, "jpeg", 3, 0)
    assert out.dtype == np.uint8 and out.shape == image.shape[:2] + (3,)


def test_tiny_and_float_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 32x32"):
        apply_corruption(np.zeros((20, 64, 3), np.uint8), "jpeg", 1, 0)
    with pytest.raises(TypeError, match="float"):
        apply_corruption(np.zeros((64, 64, 3), np.float32), "jpeg", 1, 0)


# --- measured: severity means worse ------------------------------------------------------------


@pytest.mark.parametrize("name", list_corruptions(family="conventional"))
def test_median_ssim_strictly_decreases_with_severity(name, photos):
    """Same seed per photo at every severity (the same random draws), so only the level changes."""
    corruption = get_corruption(name)
    medians = [
        np.median([ssim(p, corruption.apply(p, severity, np.random.default_rng(i))) for i, p in enumerate(photos)])
        for severity in range(1, 6)
    ]
    assert all(a > b for a, b in zip(medians, medians[1:])), f"{name}: median SSIM by severity {np.round(medians, 4)}"


def test_fast_ssim_matches_skimage(photos):
    for i, name in enumerate(["jpeg", "white_noise", "saturation_lab"]):
        positive = photos[i]
        negative, _ = apply_corruption(positive, name, 3, i)
        reference = structural_similarity(
            positive, negative, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2
        )
        assert ssim(positive, negative) == pytest.approx(reference, abs=2e-3)


# --- structure artifacts -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ellipse", "saliency"])
@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_region_masks_cover_the_requested_share(kind, fraction, photos):
    for seed, photo in enumerate(photos[:4]):
        region = region_mask(photo, fraction, np.random.default_rng(seed), kind)
        assert region.record["kind"] == kind
        assert fraction * 0.8 <= region.hard.mean() <= fraction * 2.0
        assert 0 <= region.soft.min() and region.soft.max() <= 1
        assert 0 < region.soft[region.hard].mean() < 1  # feathered: not a hard cut-out
        y0, y1, x0, x1 = region.box
        assert region.soft.sum() == pytest.approx(region.soft[y0:y1, x0:x1].sum())


def test_saliency_region_holds_the_saliency_peak(photos):
    photo = photos[0]
    saliency = saliency_map(photo)
    peak_y, peak_x = np.unravel_index(np.argmax(saliency), saliency.shape)
    region = region_mask(photo, 0.1, np.random.default_rng(0), "saliency")
    scale = photo.shape[0] / saliency.shape[0]
    assert region.hard[min(photo.shape[0] - 1, int((peak_y + 0.5) * scale)), min(photo.shape[1] - 1, int((peak_x + 0.5) * scale))]


@pytest.mark.parametrize("name", list_corruptions(family="aigc_structure"))
def test_structure_artifacts_are_local_and_grow_with_severity(name, photos):
    changed = {1: [], 5: []}
    for seed, photo in enumerate(photos[:4]):
        for severity in (1, 5):
            out, params = apply_corruption(photo, name, severity, seed)
            region = params["region"]
            assert region["kind"] in ("ellipse", "saliency")
            diff = np.abs(out.astype(int) - photo.astype(int)).max(axis=2) > 2
            changed[severity].append(diff.mean())
            assert diff.mean() <= 0.4, f"{name} changed {diff.mean():.0%} of the image"
    assert min(changed[1]) > 0.005
    assert np.median(changed[5]) > np.median(changed[1])


# --- composition -------------------------------------------------------------------------------


def test_composite_record_lists_steps_from_distinct_groups(small):
    for seed in range(6):
        _, params = apply_corruption(small, "composite", 4, seed)
        steps = params["steps"]
        assert 1 <= len(steps) <= 3
        groups = [get_corruption(step["name"]).group for step in steps]
        assert len(set(groups)) == len(groups)
        assert max(step["severity"] for step in steps) == 4
        assert all(step["params"] == get_corruption(step["name"]).parameters(step["severity"]) | step["params"] for step in steps)


# --- config ------------------------------------------------------------------------------------


class Root(StrictModel):
    corruptions: QualityCorruptionsConfig = QualityCorruptionsConfig()


def config_problems(section: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_config(Root, {"corruptions": section})
    return info.value.problems


def test_config_errors_name_the_exact_entry():
    entries = [{"name": "jpeg"}, {"name": "fog"}, {"name": "snow", "severity": 7}]
    assert config_problems({"quality": entries}) == ["corruptions.quality[2].severity: must be within 1..5, got 7"]
    entries[2]["severity"] = [2, 9]
    assert config_problems({"quality": entries}) == ["corruptions.quality[2].severity[1]: must be within 1..5, got 9"]
    (unknown,) = config_problems({"quality": [{"name": "jpegg"}]})
    assert unknown.startswith("corruptions.quality[0].name: unknown corruption 'jpegg'; known: ") and "lens_blur" in unknown
    (extra,) = config_problems({"quality": [{"name": "jpeg", "quality": 30}]})
    assert extra == "corruptions.quality[0]: unknown key 'quality'; valid keys: name, severity, weight"
    (on_fail,) = config_problems({"qa": {"on_fail": "retry"}})
    assert on_fail.startswith("corruptions.qa.on_fail:")
    (weights,) = config_problems({"composition": {"severity_weights": [1, 1]}})
    assert weights.startswith("corruptions.composition.severity_weights: must be 5 non-negative weights")
    (repeated,) = config_problems({"erasure": [{"name": "content_erasure"}, {"name": "content_erasure", "severity": 5}]})
    assert repeated == "corruptions: erasure lists content_erasure more than once; merge the entries (use weight)"


def test_default_config_offers_every_single_corruption():
    names = {entry.name for entry in QualityCorruptionsConfig().quality}
    assert names == set(list_corruptions()) - {"composite"}


# --- planner and no-op filter ------------------------------------------------------------------


def test_planner_follows_weights_severities_and_is_seeded():
    config = QualityCorruptionsConfig.model_validate(
        {
            "quality": [
                {"name": "jpeg", "weight": 3, "severity": 2},
                {"name": "fog", "severity": [4, 5]},
                {"name": "duplication"},
            ],
            "composition": {"probability": 0.25, "max_steps": 2, "severity_weights": [0, 0, 1, 0, 0]},
        }
    )
    specs = plan_quality_negatives(config, np.random.default_rng(3), 800)
    assert specs == plan_quality_negatives(config, np.random.default_rng(3), 800)
    by_name = {name: [s for s in specs if s.name == name] for name in ("jpeg", "fog", "duplication", "composite")}
    assert {s.severity for s in by_name["jpeg"]} == {2}
    assert {s.severity for s in by_name["fog"]} == {4, 5}
    assert {s.severity for s in by_name["duplication"]} == {1, 2, 3, 4, 5}
    assert 0.18 < len(by_name["composite"]) / 800 < 0.32
    assert len(by_name["jpeg"]) > 2 * len(by_name["duplication"])
    for spec in by_name["composite"]:
        assert 1 <= len(spec.steps) <= 2 and spec.severity == 3
        assert {severity for _, severity in spec.steps} == {3}
        assert len({get_corruption(name).group for name, _ in spec.steps}) == len(spec.steps)
    json.dumps([s.to_dict() for s in specs])


def test_no_op_is_redrawn_at_the_next_severity(photos):
    smooth = cv2.GaussianBlur(photos[1], (0, 0), 3)  # nothing left for a 0.4 px blur to remove
    qa = NoOpFilterConfig()
    stats = QAStats()
    negative = make_quality_negative(smooth, CorruptionSpec("gaussian_blur", 1), qa, seed=0, stats=stats)
    assert negative is not None and negative.spec.severity > 1 and negative.requested.severity == 1
    assert not (negative.metrics["psnr"] >= qa.max_psnr and negative.metrics["ssim"] >= qa.max_ssim)
    assert stats.redrawn["gaussian_blur"] == negative.spec.severity - 1 and stats.accepted["gaussian_blur"] == 1


def test_no_op_is_dropped_and_counted(photos):
    smooth = cv2.GaussianBlur(photos[1], (0, 0), 3)
    stats = QAStats()
    drop = NoOpFilterConfig(on_fail="drop")
    assert make_quality_negative(smooth, CorruptionSpec("gaussian_blur", 1), drop, seed=0, stats=stats) is None
    never_enough = NoOpFilterConfig(max_psnr=1e-3, max_ssim=1e-3)  # everything counts as a no-op
    assert make_quality_negative(photos[0], CorruptionSpec("jpeg", 2), never_enough, seed=0, stats=stats) is None
    assert stats.dropped == {"gaussian_blur": 1, "jpeg": 1}
    assert stats.redrawn == {"jpeg": 3}
    merged = QAStats().merge(stats).merge(stats)
    assert merged.to_dict()["dropped"] == {"gaussian_blur": 2, "jpeg": 2}


def test_composite_spec_is_applied_and_recorded(photos):
    spec = CorruptionSpec("composite", 3, (("jpeg", 3), ("gaussian_blur", 2)))
    negative = make_quality_negative(photos[2], spec, NoOpFilterConfig(), seed=5)
    assert negative is not None
    assert [(s["name"], s["severity"]) for s in negative.params["steps"]] == [("jpeg", 3), ("gaussian_blur", 2)]
    assert negative.spec.to_dict() == {"name": "composite", "severity": 3, "steps": [{"name": "jpeg", "severity": 3}, {"name": "gaussian_blur", "severity": 2}]}


# --- gallery -----------------------------------------------------------------------------------


def test_gallery_renders_labelled_rows(tmp_path):
    from pairgen.gallery import HEADER_HEIGHT, LABEL_WIDTH, main

    out = tmp_path / "gallery.png"
    main(["--out", str(out), "--names", "jpeg,duplication,fog", "--work", "64", "--tile", "40", "--blocks", "1"])
    gallery = np.asarray(Image.open(out))
    assert gallery.shape[0] == HEADER_HEIGHT + 3 * (40 + 2)
    label_column = gallery[HEADER_HEIGHT:, :LABEL_WIDTH]
    assert (label_column < 128).any()  # names are written
    first_row = gallery[HEADER_HEIGHT : HEADER_HEIGHT + 40, LABEL_WIDTH:]
    tiles = [first_row[:, i * 42 : i * 42 + 40].astype(int) for i in range(6)]
    assert all(np.abs(tiles[0] - t).mean() > 0 for t in tiles[1:])  # every level differs from the original
    with pytest.raises((KeyError, ValueError), match="known"):
        main(["--out", str(out), "--names", "nope"])


def test_shot_noise_has_poisson_statistics():
    """The inverse-CDF table must give Poisson(value/255 * photons)/photons, not just 'some noise'."""
    flat = np.full((256, 256, 3), 100, np.uint8)
    photons = get_corruption("shot_noise").parameters(3)["photons"]
    out = apply_corruption(flat, "shot_noise", 3, 0)[0].astype(float) / 255
    rate = 100 / 255 * photons
    assert out.mean() == pytest.approx(rate / photons, abs=0.005)
    assert out.var() == pytest.approx(rate / photons**2, rel=0.05)


def test_every_corruption_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "corruptions.md").read_text(encoding="utf-8")
    missing = [name for name in list_corruptions() if f"`{name}`" not in doc]
    assert not missing, f"docs/corruptions.md lacks {missing}"


@pytest.mark.parametrize("name", list_corruptions())
def test_every_corruption_works_at_the_smallest_accepted_size(name):
    """32 px is the smallest image `as_rgb_uint8` accepts (tiny generators make such images)."""
    image = cv2.resize(data.astronaut(), (32, 32), interpolation=cv2.INTER_AREA)
    for severity in range(1, 6):
        out, _ = apply_corruption(image, name, severity, seed=severity)
        assert out.shape == image.shape and out.dtype == np.uint8
