"""The pair record: one (positive, negative) pair and everything needed to reproduce it.

A record is stored as `{key}.json` next to `{key}.pos.png` and `{key}.neg.png` in a shard. It is the
contract between the pair builder, the trainer and the Hub export, so its fields only ever grow
(bump `SCHEMA_VERSION` when they do).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import TypeAdapter, ValidationError

from pairgen import __version__
from pairgen.config_base import SEVERITY_MAX, SEVERITY_MIN, digest, format_validation_error

SCHEMA_VERSION = 1

Aspect = Literal["quality", "alignment"]
Family = Literal["conventional", "aigc_structure", "generation", "prompt"]
ASPECTS: tuple[str, ...] = get_args(Aspect)
FAMILIES: tuple[str, ...] = get_args(Family)
KEY_LENGTH = 32  # hex characters of the key digest


def make_pair_key(
    *,
    source_id: str,
    generator_id: str | None,
    generator_revision: str | None,
    seed: int,
    corruption: dict[str, Any],
) -> str:
    """A key that is a pure function of what defines the pair.

    `source_id` is the prompt id (generated positives) or the image id (collections); `corruption`
    is the JSON-able spec of the negative (name, severity, and anything else that selects it, e.g. a
    perturbed prompt). Hex only, so the key never contains the dots that webdataset splits on.
    """
    return digest(
        {
            "source": source_id,
            "generator": generator_id,
            "revision": generator_revision,
            "seed": seed,
            "corruption": corruption,
        },
        size=KEY_LENGTH // 2,
    )


@dataclass(frozen=True)
class PairRecord:
    """One ranked pair: `pos` is better than `neg` on `aspect`.

    Sizes are `(width, height)`. `generator` holds the positive's provenance (model id, resolved
    revision, scheduler, steps, guidance, resolution) or None for images from a collection;
    `neg_generator` is set when the negative is a separate generation (generation-level and
    image-side alignment negatives, natural pairs from a collection).
    """

    key: str
    aspect: Aspect
    family: Family
    corruption: str
    severity: int
    params: dict[str, Any]
    prompt: str
    prompt_id: str
    source: str
    seed: int
    pos_size: tuple[int, int]
    neg_size: tuple[int, int]
    config_hash: str
    generator: dict[str, Any] | None = None
    neg_generator: dict[str, Any] | None = None
    neg_prompt: str | None = None
    toolkit_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _semantic_problems(self)
        if problems:
            raise RecordError(problems, key=self.key)

    @property
    def neg_text(self) -> str:
        """The prompt the negative is judged against: the perturbed prompt of a text-side alignment
        pair, else the pair's prompt. Every scorer of pairs must use it."""
        return self.neg_prompt if self.neg_prompt is not None else self.prompt

    @property
    def split_group(self) -> str:
        """What a train/validation split must keep together: the prompt, or for a pair without one
        (a collection image) the source image, so no prompt or image straddles two splits."""
        if self.prompt:
            return self.prompt_id
        return str(self.extra.get("image") or self.extra.get("unit") or self.key)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["pos_size"] = list(self.pos_size)
        data["neg_size"] = list(self.neg_size)
        return data

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, UTF-8): identical records give identical bytes."""
        # allow_nan=False: NaN/Infinity are not JSON, and other-language readers of the schema refuse them
        return (json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, indent=1, allow_nan=False) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> PairRecord:
        """Validate a decoded JSON object against the schema (types, enums, ranges, unknown fields)."""
        if not isinstance(data, dict):
            raise RecordError([f"<root>: expected a JSON object, got {type(data).__name__}"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecordError([f"unknown field(s) {unknown}; valid fields: {sorted(known)}"], key=data.get("key"))
        try:
            return _ADAPTER.validate_python(data, strict=False)
        except ValidationError as exc:
            # __post_init__ runs inside pydantic: unwrap its RecordError rather than nesting messages
            semantic = [
                problem
                for item in exc.errors()
                if isinstance(item.get("ctx", {}).get("error"), RecordError)
                for problem in item["ctx"]["error"].problems
            ]
            raise RecordError(semantic or format_validation_error(exc), key=data.get("key")) from None

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> PairRecord:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordError([f"not valid UTF-8 JSON: {exc}"]) from None
        return cls.from_dict(data)


class RecordError(ValueError):
    """A record that does not match the schema; names the key (when known) and each problem."""

    def __init__(self, problems: list[str], key: str | None = None):
        self.problems = problems
        self.key = key
        where = f"record {key}" if key else "record"
        super().__init__(f"{where}: " + "; ".join(problems))


def _semantic_problems(record: PairRecord) -> list[str]:
    problems = []
    if len(record.key) != KEY_LENGTH or any(c not in "0123456789abcdef" for c in record.key):
        problems.append(f"key: expected {KEY_LENGTH} lowercase hex characters, got {record.key!r}")
    if record.aspect not in ASPECTS:
        problems.append(f"aspect: must be one of {list(ASPECTS)}, got {record.aspect!r}")
    if record.family not in FAMILIES:
        problems.append(f"family: must be one of {list(FAMILIES)}, got {record.family!r}")
    if not SEVERITY_MIN <= record.severity <= SEVERITY_MAX:
        problems.append(f"severity: must be within {SEVERITY_MIN}..{SEVERITY_MAX}, got {record.severity}")
    for name in ("pos_size", "neg_size"):
        size = getattr(record, name)
        if len(size) != 2 or min(size) < 1:
            problems.append(f"{name}: expected (width, height) with positive values, got {size!r}")
    if record.aspect == "quality" and record.family == "prompt":
        problems.append("family: 'prompt' negatives belong to aspect 'alignment', not 'quality'")
    return problems


_ADAPTER = TypeAdapter(PairRecord)


def record_json_schema() -> dict[str, Any]:
    """The JSON schema of `{key}.json`, for documentation and other-language readers."""
    return _ADAPTER.json_schema()
