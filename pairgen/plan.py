"""Planning a build: which positives (units), which negatives (with their pair keys), which shards.

The plan is computed on the driver from the config alone (cheap: no image is touched) and saved
as `plan.json` before any shard is built. From then on the plan, not the config, says what a shard
holds, so:
- a re-run rebuilds incomplete shards from the same unit specs (byte-identical output);
- adding a generator, collection or prompts adds units that go into *new* shards, and shards that
  already exist are never touched (the manifest records a new dataset version).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pairgen.config import BuildConfig
from pairgen.config_base import digest
from pairgen.corruptions import plan_erasure_negatives, plan_quality_negatives
from pairgen.generators import assign_generators, derive_seed
from pairgen.prompts import Prompt, load_prompts, plan_alignment_negatives, prompt_id
from pairgen.records import make_pair_key
from pairgen.shards import shard_name, write_bytes_atomic
from pairgen.sources import CollectionItem, list_collection, natural_pairs

PLAN_NAME = "plan.json"
NegativeKind = Literal["corruption", "generation", "text_alignment", "image_alignment", "image_swap", "natural", "erasure"]


@dataclass(frozen=True)
class NegativeSpec:
    """One planned negative of a unit. `spec` is JSON-able and part of the pair key; `location`
    (where a natural pair's worse image or an image swap's other image is read from) is not, so keys
    do not depend on paths."""

    key: str
    kind: NegativeKind
    spec: dict[str, Any]
    location: str | None = None


@dataclass(frozen=True)
class Unit:
    """One positive image and every negative built from it: the unit of work of a shard."""

    unit_id: str
    subset: str
    """Generator id (generated positives) or collection id (existing images)."""
    generated: bool
    prompt: str
    prompt_id: str
    source_id: str
    """prompt id (generated) or `collection/image` id: the source part of every pair key."""
    seed: int
    location: str | None = None
    """Where to load the positive from (collections); None when it is generated."""
    setting: str | None = None
    negatives: tuple[NegativeSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        negatives = tuple(NegativeSpec(**n) for n in data["negatives"])
        return cls(**{**data, "negatives": negatives})


@dataclass
class ShardPlan:
    name: str
    subset: str
    config_hash: str
    """The config that planned this shard; only that config may build it."""
    units: list[Unit] = field(default_factory=list)

    @property
    def planned_pairs(self) -> int:
        return sum(len(u.negatives) for u in self.units)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "subset": self.subset, "config_hash": self.config_hash, "units": [u.to_dict() for u in self.units]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardPlan:
        return cls(data["name"], data["subset"], data["config_hash"], [Unit.from_dict(u) for u in data["units"]])


@dataclass
class BuildPlan:
    shards: list[ShardPlan]
    new_shards: list[str]
    """Shards this config added to the plan (all of them on a first build)."""
    configs: dict[str, Any]
    """Resolved configs by config hash: every config that planned a shard here (provenance)."""
    stale_units: int = 0
    """Units already planned whose negatives the current config would plan differently (kept as planned)."""
    prompts_dropped: int = 0

    @property
    def units(self) -> int:
        return sum(len(s.units) for s in self.shards)

    @property
    def planned_pairs(self) -> int:
        return sum(s.planned_pairs for s in self.shards)


def _plan_negatives(
    config: BuildConfig, unit_id: str, subset: str, generated: bool, prompt: Prompt | None, pool: list[Prompt], progress: float
) -> list[tuple[NegativeKind, dict[str, Any]]]:
    """The negative specs of one unit, drawn from an rng seeded by the unit alone.

    `progress` (0..1, the unit's position in its subset) drives the alignment curriculum.
    """
    rng = np.random.default_rng(derive_seed(config.seed, unit_id, "negatives"))
    specs: list[tuple[NegativeKind, dict[str, Any]]] = []
    for spec in plan_quality_negatives(config.corruptions, rng, config.pairs.corruptions):
        specs.append(("corruption", spec.to_dict()))
    if generated:
        kinds = next(g.negatives.kinds for g in config.generators if g.id == subset)
        for _ in range(config.pairs.generation if kinds else 0):
            specs.append(("generation", {"kind": str(rng.choice(kinds)), "severity": int(rng.integers(1, 6))}))
    if prompt is not None and prompt.text:
        for perturbation in plan_alignment_negatives(config.alignment, prompt, pool, rng, progress=progress):
            # image-side negatives need a generator; a collection image gets the text-side pair instead
            side = perturbation.side if generated else "text"
            specs.append((f"{side}_alignment", {k: v for k, v in asdict(perturbation).items() if k != "side"}))
        for spec in plan_erasure_negatives(config.corruptions, rng, config.pairs.erasures):
            specs.append(("erasure", spec.to_dict()))
    return specs


def _make_unit(
    config: BuildConfig,
    *,
    subset: str,
    generated: bool,
    prompt: Prompt | None,
    source_id: str,
    seed: int,
    revision: str | None,
    pool: list[Prompt],
    progress: float,
    location: str | None = None,
    setting: str | None = None,
    other_images: list[tuple[NegativeKind, dict[str, Any], str]] = (),
) -> Unit:
    unit_id = digest([subset, source_id, seed], size=12)
    planned = [(kind, spec, None) for kind, spec in _plan_negatives(config, unit_id, subset, generated, prompt, pool, progress)]
    planned += list(other_images)
    negatives = []
    for kind, spec, negative_location in planned:
        key = make_pair_key(
            source_id=source_id,
            generator_id=subset if generated else None,
            generator_revision=revision,
            seed=seed,
            corruption={"kind": kind, **spec},
        )
        negatives.append(NegativeSpec(key=key, kind=kind, spec=spec, location=negative_location))
    return Unit(
        unit_id=unit_id,
        subset=subset,
        generated=generated,
        prompt=prompt.text if prompt else "",
        prompt_id=prompt.id if prompt else prompt_id(""),
        source_id=source_id,
        seed=seed,
        location=location,
        setting=setting,
        negatives=tuple(_dedupe(negatives)),
    )


def _dedupe(negatives: list[NegativeSpec]) -> Iterable[NegativeSpec]:
    """The same spec drawn twice for one unit is one pair, not two copies."""
    seen = set()
    for negative in negatives:
        if negative.key not in seen:
            seen.add(negative.key)
            yield negative


def derive_units(config: BuildConfig) -> tuple[list[Unit], int]:
    """Every unit the config defines, in a stable order (generators, then collections, in config order).

    Returns the units and the number of duplicate prompts dropped from the prompt sources.
    """
    units: list[Unit] = []
    prompts_dropped = 0
    prompt_set = None
    if config.generators and config.sources.prompts:
        prompt_set = load_prompts(config.sources.prompts)
        prompts_dropped = prompt_set.duplicates_dropped
    collections = [(c, list_collection(c)) for c in config.sources.images]
    pool = list(prompt_set.prompts) if prompt_set else []
    known = {p.id for p in pool}
    for _, items in collections:
        for item in items:
            if item.prompt and item.prompt_id not in known:
                known.add(item.prompt_id)
                pool.append(Prompt(id=item.prompt_id, text=item.prompt, category=None, meta={}))

    if prompt_set is not None:
        owner = assign_generators(config.generators, [p.id for p in prompt_set.prompts])
        for generator in config.generators:
            revision = generator.revision or "unpinned"
            mine = [p for p in prompt_set.prompts if owner[p.id] == generator.id]
            for position, prompt in enumerate(mine):
                for sample in range(config.pairs.samples_per_prompt):
                    units.append(
                        _make_unit(
                            config,
                            subset=generator.id,
                            generated=True,
                            prompt=prompt,
                            source_id=prompt.id,
                            seed=derive_seed(config.seed, generator.id, prompt.id, sample),
                            revision=revision,
                            pool=pool,
                            progress=position / len(mine),
                        )
                    )
    by_prompt = {p.id: p for p in pool}
    for collection, items in collections:
        naturals: dict[str, list[tuple[NegativeKind, dict[str, Any], str]]] = {}
        for better, worse, rule in natural_pairs(collection, items):
            spec = {"worse": worse.image_id, "better_setting": rule.better, "worse_setting": rule.worse, "severity": rule.severity, "aspect": rule.aspect}
            naturals.setdefault(better.image_id, []).append(("natural", spec, worse.location))
        for position, item in enumerate(items):
            swaps = [("image_swap", {"other": other.image_id}, other.location) for other in _swap_partners(config, item, items)]
            units.append(
                _make_unit(
                    config,
                    subset=collection.id,
                    generated=False,
                    prompt=by_prompt.get(item.prompt_id) if item.prompt else None,
                    source_id=item.image_id,
                    seed=derive_seed(config.seed, item.image_id),
                    revision=None,
                    pool=pool,
                    progress=position / len(items),
                    location=item.location,
                    setting=item.setting,
                    other_images=naturals.get(item.image_id, []) + swaps,
                )
            )
    return units, prompts_dropped


class PlanError(ValueError):
    """A saved plan that cannot be read or followed; the message says what to do."""


def _swap_partners(config: BuildConfig, item: CollectionItem, items: list[CollectionItem]) -> list[CollectionItem]:
    """Images made for other prompts, to be judged against this item's prompt (image-side alignment
    negatives without a generator). Drawn by rejection from an rng seeded by the item alone."""
    if not item.prompt or config.pairs.image_swaps == 0:
        return []
    rng = np.random.default_rng(derive_seed(config.seed, item.image_id, "image_swap"))
    partners: list[CollectionItem] = []
    for _ in range(32 * config.pairs.image_swaps):
        other = items[int(rng.integers(len(items)))]
        if other.prompt and other.prompt_id != item.prompt_id and other not in partners:
            partners.append(other)
            if len(partners) == config.pairs.image_swaps:
                break
    return partners


def mixed_order(units: list[Unit], seed: int) -> list[Unit]:
    """A subset's units in a seeded order that does not depend on how the source listed them.

    Why: a trainer reads a shard at a time (a shuffle buffer mixes within a shard or two, and a
    resampled stream draws shards with replacement), so every shard should be a sample of the whole
    subset. Collections list images grouped (AGIQA-3K by generator and setting), which in listing order
    left whole shards without a single natural pair and made a short run's data depend on which shards
    it happened to draw. The order is a digest of each unit id, so adding units never reorders others.
    """
    return sorted(units, key=lambda unit: derive_seed(seed, unit.unit_id, "shard_order"))


def load_plan(directory: Path) -> tuple[list[ShardPlan], dict[str, Any]]:
    """The saved shards and, by config hash, the resolved config that planned them."""
    path = directory / PLAN_NAME
    if not path.is_file():
        return [], {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [ShardPlan.from_dict(s) for s in data["shards"]], data["configs"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise PlanError(f"{path}: unreadable build plan ({exc}); move it away to re-plan from the config") from None


def save_plan(directory: Path, plan: BuildPlan) -> None:
    data = {"configs": plan.configs, "shards": [s.to_dict() for s in plan.shards]}
    write_bytes_atomic(directory / PLAN_NAME, (json.dumps(data, separators=(",", ":")) + "\n").encode("utf-8"))


def plan_build(config: BuildConfig, directory: Path) -> BuildPlan:
    """Extend the saved plan of `directory` with the units of `config` that it does not hold yet."""
    previous, configs = load_plan(directory)
    config_hash = config.config_hash()
    configs = {**configs, config_hash: config.model_dump(mode="json", exclude={"runtime"})}
    units, prompts_dropped = derive_units(config)
    planned = {u.unit_id: u for shard in previous for u in shard.units}
    stale = sum(1 for u in units if u.unit_id in planned and planned[u.unit_id] != u)
    fresh = [u for u in units if u.unit_id not in planned]
    shards = list(previous)
    next_index = 1 + max((int(s.name.rsplit("-", 1)[1].split(".")[0]) for s in previous), default=-1)
    new_names = []
    for subset in dict.fromkeys(u.subset for u in fresh):
        current: ShardPlan | None = None
        for unit in mixed_order([u for u in fresh if u.subset == subset], config.seed):
            if current is None or current.planned_pairs + len(unit.negatives) > config.output.pairs_per_shard and current.units:
                current = ShardPlan(shard_name(next_index, config.output.prefix), subset, config_hash)
                next_index += 1
                shards.append(current)
                new_names.append(current.name)
            current.units.append(unit)
    return BuildPlan(shards=shards, new_shards=new_names, configs=configs, stale_units=stale, prompts_dropped=prompts_dropped)
