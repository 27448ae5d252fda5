"""Config for prompt sources (`sources.prompts`) and alignment negatives (`alignment`).

One `PromptSourceConfig` model with a `kind` and optional fields checked per kind (rather than a
union of models), so a mistake is reported at the field: `sources.prompts[1].column: ...`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from pairgen.config_base import StrictModel
from pairgen.prompts.perturb import PERTURBATIONS, Difficulty, Perturbation, perturb
from pairgen.prompts.sources import DEFAULT_COLUMN, Prompt, normalize_text
from pairgen.prompts.vocab import load_vocabulary

SourceKind = Literal["builtin", "text", "jsonl", "csv", "hf"]

# field -> kinds that use it; a field set for another kind is an error, not silently ignored
_USED_BY: dict[str, tuple[str, ...]] = {
    "path": ("text", "jsonl", "csv", "hf"),
    "name": ("hf",),
    "split": ("hf",),
    "column": ("jsonl", "csv", "hf"),
    "category_column": ("jsonl", "csv", "hf"),
    "categories": ("builtin",),
}
_REQUIRED_BY: dict[str, tuple[str, ...]] = {"path": ("text", "jsonl", "csv")}


class PromptSourceConfig(StrictModel):
    """One prompt source. `path`: a file (text, jsonl, csv) or, for hf, a local dataset folder;
    `name`: a Hugging Face Hub dataset. `column` defaults to `prompt`; `split` to `train`."""

    kind: SourceKind
    path: str | None = None
    name: str | None = None
    split: str | None = None
    column: str | None = None
    category_column: str | None = None
    categories: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(default=256, ge=8, le=512)
    too_long: Literal["truncate", "error"] = "truncate"

    @field_validator("path", "name", "split", "column", "category_column", "categories")
    @classmethod
    def _check_used_by_kind(cls, value, info: ValidationInfo):
        kind = info.data.get("kind")
        if kind is None:  # kind itself is invalid; that error is enough
            return value
        if value is not None and kind not in _USED_BY[info.field_name]:
            users = ", ".join(_USED_BY[info.field_name])
            raise ValueError(f"not used by kind {kind!r} (only by: {users})")
        if value is None and kind in _REQUIRED_BY.get(info.field_name, ()):
            raise ValueError(f"required for kind {kind!r}: the prompt file to read")
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("name")
    @classmethod
    def _hf_needs_one_location(cls, value, info: ValidationInfo):
        if info.data.get("kind") == "hf" and (value is None) == (info.data.get("path") is None):
            raise ValueError("kind 'hf' needs exactly one of name (a Hub dataset) or path (a local dataset)")
        return value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value):
        known = sorted(load_vocabulary().categories)
        for category in value or []:
            if category not in known:
                raise ValueError(f"unknown built-in category {category!r}; valid: {', '.join(known)}")
        return value

    @property
    def text_column(self) -> str:
        return self.column or DEFAULT_COLUMN

    @property
    def hf_split(self) -> str:
        return self.split or "train"


class CurriculumStage(StrictModel):
    """Up to `until` (fraction of the prompt stream, 0..1], hard negatives get `hard_share`."""

    until: float = Field(gt=0.0, le=1.0)
    hard_share: float = Field(ge=0.0, le=1.0)


DEFAULT_MIX = {
    "whole_swap": 1.0,
    "object_replace": 1.0,
    "attribute_replace": 1.0,
    "count_change": 1.0,
    "relation_flip": 1.0,
    "attribute_swap": 1.0,
    # An equal share again: additions and removals are balanced between the pool's prompt shapes, and
    # the text-only probes (MiniLM embedding included) no longer tell original from negative (docs/prompts.md).
    "object_add_remove": 1.0,
}


class AlignmentConfig(StrictModel):
    """How alignment negatives are drawn: `hard_share` picks the severity (whole swap = easy, the
    rest hard), then `mix` weighs the types within it; `text_side_share` is the fraction used
    text-side (same image, perturbed prompt) rather than image-side (image of the perturbed prompt)."""

    negatives_per_prompt: int = Field(default=2, ge=0, le=16)
    """0: no prompt perturbations; alignment pairs then come only from image swaps, erasures and natural pairs."""
    text_side_share: float = Field(default=0.5, ge=0.0, le=1.0)
    hard_share: float = Field(default=0.8, ge=0.0, le=1.0)
    curriculum: list[CurriculumStage] = Field(default_factory=list)
    mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))

    @field_validator("mix")
    @classmethod
    def _known_types(cls, mix: dict[str, float]) -> dict[str, float]:
        for kind, share in mix.items():
            if kind not in PERTURBATIONS:
                raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(sorted(PERTURBATIONS))}")
            if share < 0:
                raise ValueError(f"share of {kind!r} must be >= 0, got {share}")
        if not any(share > 0 for share in mix.values()):
            raise ValueError("at least one perturbation needs a share > 0")
        return mix

    @field_validator("curriculum")
    @classmethod
    def _ascending(cls, stages: list[CurriculumStage]) -> list[CurriculumStage]:
        ends = [s.until for s in stages]
        if ends and (ends != sorted(set(ends)) or ends[-1] != 1.0):
            raise ValueError(f"stages need strictly increasing `until` ending at 1.0, got {ends}")
        return stages

    @model_validator(mode="after")
    def _severity_has_types(self) -> AlignmentConfig:
        for difficulty, wanted in (("hard", self.max_hard_share()), ("easy", 1 - self.min_hard_share())):
            if wanted > 0 and not self.types(difficulty):
                raise ValueError(f"{difficulty} negatives are requested but no {difficulty} type has a share > 0 in mix")
        return self

    def max_hard_share(self) -> float:
        return max([self.hard_share] + [s.hard_share for s in self.curriculum])

    def min_hard_share(self) -> float:
        return min([self.hard_share] + [s.hard_share for s in self.curriculum])

    def types(self, difficulty: Difficulty) -> dict[str, float]:
        return {k: v for k, v in self.mix.items() if v > 0 and PERTURBATIONS[k].difficulty == difficulty}

    def hard_share_at(self, progress: float | None) -> float:
        """The hard share for a position in the prompt stream; `hard_share` without a curriculum."""
        if progress is None or not self.curriculum:
            return self.hard_share
        return next(s.hard_share for s in self.curriculum if progress <= s.until)


def _draw(
    config: AlignmentConfig,
    difficulty: Difficulty,
    prompt: Prompt,
    pool: list[Prompt] | None,
    rng: np.random.Generator,
    seen: set[str],
) -> Perturbation | None:
    """Pick a type of `difficulty` by the mix; if it does not apply, try the next one by the mix."""
    remaining = config.types(difficulty)
    while remaining:
        kinds = sorted(remaining)
        weights = np.array([remaining[k] for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        result = perturb(prompt, kind, rng, pool)
        if result and normalize_text(result.new_text) not in seen:
            return result
        del remaining[kind]
    return None


def plan_alignment_negatives(
    config: AlignmentConfig,
    prompt: Prompt,
    pool: list[Prompt] | None,
    rng: np.random.Generator,
    n: int | None = None,
    progress: float | None = None,
) -> list[Perturbation]:
    """Up to `n` (default `negatives_per_prompt`) distinct negatives for `prompt`, each with a side.

    Fewer are returned only when no type of either severity applies any more."""
    hard_share, chosen, seen = config.hard_share_at(progress), [], {normalize_text(prompt.text)}
    for _ in range(config.negatives_per_prompt if n is None else n):
        first: Difficulty = "hard" if rng.random() < hard_share else "easy"
        second: Difficulty = "easy" if first == "hard" else "hard"
        result = _draw(config, first, prompt, pool, rng, seen) or _draw(config, second, prompt, pool, rng, seen)
        if result is None:
            break
        side = "text" if rng.random() < config.text_side_share else "image"
        chosen.append(dataclasses.replace(result, side=side))
        seen.add(normalize_text(result.new_text))
    return chosen
