"""Seeds derived from keys, so every image is reproducible from its pair key alone."""

from __future__ import annotations

from typing import Any

from pairgen.config_base import digest

SEED_BITS = 63


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from a digest of `parts` (e.g. base seed, prompt id, generator id, sample index).

    63 bits keep the value a valid non-negative int64 (torch, numpy and Arrow all accept it); the digest
    makes neighbouring keys give unrelated seeds, unlike `base_seed + index`.
    """
    return int(digest(list(parts), size=8), 16) >> (64 - SEED_BITS)
