"""`as_rgb_uint8`: what is converted, what is refused, and that messages say why."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from pairgen.images import as_rgb_uint8


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return data.chelsea()[:64, :80].copy()


def test_uint8_rgb_passes_through_without_copy(rgb):
    out = as_rgb_uint8(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert np.shares_memory(out, rgb)


@pytest.mark.parametrize("shape", [(64, 80), (64, 80, 1)])
def test_grayscale_becomes_three_equal_channels(shape):
    gray = data.camera()[:64, :80].reshape(shape)
    out = as_rgb_uint8(gray)
    assert out.shape == (64, 80, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray.reshape(64, 80))


def test_rgba_is_composited_onto_white(rgb):
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, :40] = 255
    out = as_rgb_uint8(np.dstack([rgb, alpha]))
    np.testing.assert_array_equal(out[:, :40], rgb[:, :40])
    assert (out[:, 40:] == 255).all()


def test_gray_alpha_is_composited(rgb):
    gray = rgb[..., 0]
    half = np.full(gray.shape, 128, np.uint8)
    out = as_rgb_uint8(np.dstack([gray, half]))
    expected = np.round(gray * (128 / 255) + 255 * (1 - 128 / 255))
    assert np.abs(out[..., 0].astype(int) - expected).max() <= 1


def test_16_bit_is_scaled(rgb):
    out = as_rgb_uint8(rgb.astype(np.uint16) * 257)
    np.testing.assert_array_equal(out, rgb)


def test_pil_image_is_accepted(rgb):
    np.testing.assert_array_equal(as_rgb_uint8(Image.fromarray(rgb).convert("L")), np.repeat(np.asarray(Image.fromarray(rgb).convert("L"))[..., None], 3, 2))


def test_bool_mask_becomes_black_and_white():
    mask = np.zeros((40, 40), bool)
    mask[10:20] = True
    out = as_rgb_uint8(mask)
    assert set(np.unique(out)) == {0, 255}


@pytest.mark.parametrize(
    ("image", "error", "words"),
    [
        (np.zeros((31, 64, 3), np.uint8), ValueError, ["31x64", "at least 32x32"]),
        (np.zeros((64, 64, 3), np.float32), TypeError, ["float", "uint8"]),
        (np.zeros((64, 64, 3), np.int32), TypeError, ["int32", "uint8 or uint16"]),
        (np.zeros((64, 64, 5), np.uint8), ValueError, ["got 5"]),
        (np.zeros((2, 64, 64, 3), np.uint8), ValueError, ["shape (2, 64, 64, 3)"]),
        ("not an image", TypeError, ["numpy array or PIL image", "str"]),
    ],
)
def test_refusals_say_why(image, error, words):
    with pytest.raises(error) as info:
        as_rgb_uint8(image, name="positive")
    message = str(info.value)
    assert message.startswith("positive:")
    for word in words:
        assert word in message
