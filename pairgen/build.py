"""The two stages of building a shard, as plain callables over a `ShardPlan`.

1. `ShardGenerator` (one per generator, GPU): every image a generated shard needs — positives,
   generation-level negatives (same model, prompt and seed) and image-side alignment negatives.
2. `ShardBuilder` (CPU): corruption negatives with the no-op filter, pair records, PNG encoding,
   and the atomic shard write.

`pipelines/build_pairs.py` runs them as Ray Data stages; `run_in_process` runs them in one
process (benchmarks, debugging). Neither stage knows about Ray.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pairgen.config import BuildConfig
from pairgen.corruptions import CorruptionSpec, get_corruption, is_noop, make_quality_negative
from pairgen.generators import GenerationRequest, Generator, GeneratorConfig, NotApplicableError, alignment_negative, derive_seed
from pairgen.plan import NegativeSpec, ShardPlan, Unit
from pairgen.records import PairRecord
from pairgen.shards import ShardStats, encode_pair, write_shard
from pairgen.sources import load_image

class Generated(NamedTuple):
    image: np.ndarray
    provenance: dict[str, Any]


GeneratedImages = dict[str, Generated]
"""Images of one shard by name: `pos/{unit_id}` for positives, `neg/{key}` for generated negatives."""


def pack_generated(images: GeneratedImages) -> bytes:
    """Generated images and their provenance as one `.npz` blob (no pickle) to pass between stages."""
    buffer = io.BytesIO()
    arrays = {f"image:{name}": item.image for name, item in images.items()}
    provenance = json.dumps({name: item.provenance for name, item in images.items()}).encode("utf-8")
    np.savez(buffer, provenance=np.frombuffer(provenance, np.uint8), **arrays)
    return buffer.getvalue()


def unpack_generated(blob: bytes) -> GeneratedImages:
    if not blob:
        return {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        provenance = json.loads(archive["provenance"].tobytes().decode("utf-8"))
        return {name: Generated(archive[f"image:{name}"], provenance[name]) for name in provenance}


def positive_name(unit: Unit) -> str:
    return f"pos/{unit.unit_id}"


def negative_name(negative: NegativeSpec) -> str:
    return f"neg/{negative.key}"


class ShardGenerator:
    """Generates every image a shard of one generator needs, batched across its units."""

    def __init__(self, config: GeneratorConfig):
        self.generator = Generator.from_config(config)

    def __call__(self, shard: ShardPlan) -> GeneratedImages:
        positives = {u.unit_id: GenerationRequest(prompt=u.prompt, prompt_id=u.prompt_id, seed=u.seed) for u in shard.units}
        names = [positive_name(u) for u in shard.units]
        requests = list(positives.values())
        deferred: list[tuple[Unit, NegativeSpec]] = []  # SDEdit needs the positive image first
        for unit in shard.units:
            for negative in unit.negatives:
                if negative.kind == "generation" and negative.spec["kind"] == "sdedit":
                    deferred.append((unit, negative))
                    continue
                request = self._negative_request(positives[unit.unit_id], negative, None)
                if request is not None:
                    names.append(negative_name(negative))
                    requests.append(request)
        images = {name: Generated(g.image, g.provenance) for name, g in zip(names, self.generator.generate(requests))}
        second = []
        for unit, negative in deferred:
            request = self._negative_request(positives[unit.unit_id], negative, images[positive_name(unit)].image)
            if request is not None:
                second.append((negative_name(negative), request))
        if second:
            outputs = self.generator.generate([request for _, request in second])
            images.update({name: Generated(g.image, g.provenance) for (name, _), g in zip(second, outputs)})
        return images

    def _negative_request(self, positive: GenerationRequest, negative: NegativeSpec, image: np.ndarray | None) -> GenerationRequest | None:
        if negative.kind == "generation":
            try:
                return self.generator.negative(negative.spec["kind"], positive, negative.spec["severity"], image)
            except NotApplicableError:
                return None  # e.g. fewer steps than a 1-step model has; counted as a drop by the builder
        if negative.kind == "image_alignment":
            return alignment_negative(positive, negative.spec["new_text"], negative.spec)
        return None


@dataclass
class ShardResult:
    """What building one shard produced: its marker stats, drops by reason, and time per stage."""

    stats: ShardStats
    drops: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stats": dataclasses.asdict(self.stats), "drops": self.drops, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardResult:
        return cls(ShardStats(**data["stats"]), data["drops"], data["seconds"])


class ShardBuilder:
    """Builds the pairs of one shard and writes it atomically to the dataset folder."""

    def __init__(self, config: BuildConfig, directory: Path):
        self.config = config
        self.directory = Path(directory)
        self.config_hash = config.config_hash()
        self.max_side = {c.id: c.max_side for c in config.sources.images}

    def __call__(self, shard: ShardPlan, generated: GeneratedImages | None = None) -> ShardResult:
        generated = generated or {}
        drops: Counter = Counter()
        samples = []
        for unit in shard.units:
            if unit.generated:
                positive = generated[positive_name(unit)]
                pos_image, provenance = positive.image, positive.provenance
            else:
                pos_image, provenance = self._load(unit.location, unit), None
            for negative in unit.negatives:
                built = self._negative(unit, negative, pos_image, provenance, generated)
                if isinstance(built, str):
                    drops[built] += 1
                    continue
                record, neg_image = built
                samples.append(encode_pair(record, pos_image, neg_image))
        stats = self.write(shard.name, samples, dict(drops))
        return ShardResult(stats=stats, drops=dict(sorted(drops.items())))

    def write(self, name: str, samples: list, drops: dict[str, int]) -> ShardStats:
        """The atomic shard write (a seam for fault-injection tests)."""
        return write_shard(self.directory, name, samples, dropped=drops)

    def _load(self, location: str, unit: Unit) -> np.ndarray:
        """A collection image, downscaled as its collection's config says."""
        return load_image(location, self.max_side.get(unit.subset))

    def _record(self, unit: Unit, negative: NegativeSpec, pos: np.ndarray, neg: np.ndarray, **fields: Any) -> PairRecord:
        return PairRecord(
            key=negative.key,
            prompt=unit.prompt,
            prompt_id=unit.prompt_id,
            source=f"{'generator' if unit.generated else 'collection'}:{unit.subset}",
            seed=unit.seed,
            pos_size=(pos.shape[1], pos.shape[0]),
            neg_size=(neg.shape[1], neg.shape[0]),
            config_hash=self.config_hash,
            extra={"unit": unit.unit_id, **({"image": unit.source_id} if not unit.generated else {})},
            **fields,
        )

    def _negative(
        self, unit: Unit, negative: NegativeSpec, pos: np.ndarray, provenance: dict | None, generated: GeneratedImages
    ) -> tuple[PairRecord, np.ndarray] | str:
        """The record and negative image of one planned negative, or the reason it was dropped."""
        qa = self.config.corruptions.qa
        if negative.kind in ("corruption", "erasure"):
            spec = CorruptionSpec.from_dict(negative.spec)
            result = make_quality_negative(pos, spec, qa, seed=derive_seed(negative.key))
            if result is None:
                return f"noop:{spec.name}"
            aspect, name = ("quality", spec.name) if negative.kind == "corruption" else ("alignment", f"erasure:{spec.name}")
            record = self._record(
                unit, negative, pos, result.image, aspect=aspect, family=get_corruption(spec.name).family,
                corruption=name, severity=result.spec.severity, params={**result.params, "qa": result.metrics},
                generator=provenance,
            )
            return record, result.image
        if negative.kind in ("text_alignment", "image_alignment"):
            spec = negative.spec
            if negative.kind == "text_alignment":
                neg_image, neg_generator, neg_prompt = pos, None, spec["new_text"]
            else:
                if negative_name(negative) not in generated:
                    return f"not_applicable:{spec['kind']}"
                neg = generated[negative_name(negative)]
                neg_image, neg_generator, neg_prompt = neg.image, neg.provenance, None
            record = self._record(
                unit, negative, pos, neg_image, aspect="alignment", family="prompt", corruption=f"{negative.kind.split('_')[0]}:{spec['kind']}",
                severity=_ALIGNMENT_SEVERITY[spec["difficulty"]], params=spec, generator=provenance,
                neg_generator=neg_generator, neg_prompt=neg_prompt,
            )
            return record, neg_image
        if negative.kind == "generation":
            name = negative_name(negative)
            if name not in generated:
                return f"not_applicable:{negative.spec['kind']}"
            neg, kind = generated[name], negative.spec["kind"]
            if is_noop(pos, neg.image, qa)[0]:
                return f"noop:{kind}"
            degradation = neg.provenance["degradation"]  # what the generator did, aspect included
            record = self._record(
                unit, negative, pos, neg.image, aspect=degradation["aspect"], family="generation", corruption=kind,
                severity=negative.spec["severity"], params=degradation,
                generator=provenance, neg_generator=neg.provenance,
            )
            return record, neg.image
        if negative.kind == "image_swap":
            neg_image = self._load(negative.location, unit)
            record = self._record(
                unit, negative, pos, neg_image, aspect="alignment", family="prompt", corruption="image_swap",
                severity=_ALIGNMENT_SEVERITY["easy"], params=negative.spec,
                neg_generator={"collection": unit.subset, "image": negative.spec["other"]},
            )
            return record, neg_image
        if negative.kind == "natural":
            spec = negative.spec
            neg_image = self._load(negative.location, unit)
            record = self._record(
                unit, negative, pos, neg_image, aspect=spec.get("aspect", "quality"), family="generation",
                corruption=f"natural:{spec['worse_setting']}", severity=spec["severity"], params=spec,
                generator={"collection": unit.subset, "setting": unit.setting, "image": unit.source_id},
                neg_generator={"collection": unit.subset, "setting": spec["worse_setting"], "image": spec["worse"]},
            )
            return record, neg_image
        raise ValueError(f"unit {unit.unit_id}: unknown negative kind {negative.kind!r}")


_ALIGNMENT_SEVERITY = {"easy": 2, "hard": 4}
"""Alignment pairs have no pixel severity; easy (whole-prompt swap) vs hard (one-element edits)."""


def run_in_process(config: BuildConfig, shards: list[ShardPlan], directory: Path, on_result: Callable[[ShardResult], None] | None = None) -> list[ShardResult]:
    """Both stages in this process, one shard at a time (no Ray): the baseline of bench_pipeline."""
    generators = {g.id: ShardGenerator(g) for g in config.generators if any(s.subset == g.id for s in shards)}
    builder = ShardBuilder(config, directory)
    results = []
    for shard in shards:
        started = time.perf_counter()
        generated = generators[shard.subset](shard) if shard.subset in generators else None
        middle = time.perf_counter()
        result = builder(shard, generated)
        result.seconds = {"generate": middle - started, "build": time.perf_counter() - middle}
        results.append(result)
        if on_result:
            on_result(result)
    return results
