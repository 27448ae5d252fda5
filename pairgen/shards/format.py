"""Names, members and encodings of the pair shard format (see docs/shard-format.md).

A shard is a WebDataset tar `{prefix}-{index:06d}.tar` holding, per pair, `{key}.json`,
`{key}.neg.png` and `{key}.pos.png`. `{prefix}-{index:06d}.stats.json`, written last, marks it
complete.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

MEMBERS = ("json", "neg.png", "pos.png")  # the order webdataset's TarWriter writes them (sorted)
TAR_MTIME = 946684800  # 2000-01-01T00:00:00Z: fixed so the same pairs give the same bytes
TAR_USER = "eliq"
PNG_COMPRESSION = 3  # zlib level: lossless at every level; 3 balances size and encode time
SHARD_PATTERN = re.compile(r"^(?P<prefix>[A-Za-z0-9_\-]+)-(?P<index>\d{6})\.tar$")
KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")
TMP_SUFFIX = ".tmp"
MANIFEST_NAME = "manifest.json"
RESOLVED_CONFIG_NAME = "config.resolved.yaml"


class ShardFormatError(ValueError):
    """A shard, sample or member that does not follow the format; the message names which."""


def shard_name(index: int, prefix: str = "pairs") -> str:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", prefix):
        raise ValueError(f"shard prefix: only letters, digits, '_' and '-' are allowed, got {prefix!r}")
    if not 0 <= index <= 999_999:
        raise ValueError(f"shard index: must be within 0..999999, got {index}")
    return f"{prefix}-{index:06d}.tar"


def marker_path(shard_path: Path) -> Path:
    """`pairs-000003.tar` -> `pairs-000003.stats.json`, the completion marker."""
    return shard_path.with_name(shard_path.name.removesuffix(".tar") + ".stats.json")


def check_member_name(name: str, where: str) -> tuple[str, str]:
    """Split a tar member name into (key, member) and refuse anything outside the format.

    Paths (`../x`, `/etc/x`, `dir/x`) are refused outright: a shard never holds folders, and a reader
    that trusted them could be made to look outside the sample.
    """
    if name.startswith("/") or "/" in name or "\\" in name or ".." in name.split("."):
        raise ShardFormatError(f"{where}: member {name!r} is a path; only flat '{{key}}.{{member}}' names are allowed")
    key, _, member = name.partition(".")
    if not KEY_PATTERN.match(key):
        raise ShardFormatError(f"{where}: member {name!r} does not start with a 32-character hex key")
    if member not in MEMBERS:
        raise ShardFormatError(f"{where}: member {name!r} has suffix {member!r}; expected one of {list(MEMBERS)}")
    return key, member


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 RGB array: a quality dataset must not add codec artifacts."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB array of shape (H, W, 3), got {image.dtype} {image.shape}")
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    return buffer.tobytes()


def decode_png(data: bytes, where: str) -> np.ndarray:
    """PNG bytes -> uint8 RGB array; anything else (JPEG, 16-bit, grey, RGBA) is a format error."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ShardFormatError(f"{where}: not a PNG file")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ShardFormatError(f"{where}: PNG data could not be decoded (truncated or corrupt)")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ShardFormatError(f"{where}: expected an 8-bit RGB PNG, got {image.dtype} with shape {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
