"""The pair-building job's config: one validated model for `configs/*.yaml`.

Each section's model lives next to the code it configures (generators, corruptions, prompts,
collections); this module only assembles them. `config_hash` covers what changes the pairs, not
where or how fast they are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from pairgen.config_base import StrictModel, digest, load_config
from pairgen.corruptions.config import QualityCorruptionsConfig
from pairgen.generators.config import RUNTIME_FIELDS, GeneratorList
from pairgen.prompts.config import AlignmentConfig, PromptSourceConfig
from pairgen.sources.collections import ImageCollectionConfig


class OutputConfig(StrictModel):
    dir: Path = Path("out/pairs")
    """Dataset folder: shards, markers, manifest, resolved config, stats and preview."""
    prefix: str = Field(default="pairs", pattern=r"^[A-Za-z0-9_\-]+$")
    pairs_per_shard: int = Field(default=256, ge=1)
    """Planned pairs per shard (units are packed whole; the no-op filter may drop a few)."""
    preview_pairs: int = Field(default=24, ge=0)


class SourcesConfig(StrictModel):
    prompts: list[PromptSourceConfig] = Field(default_factory=list)
    """Prompts for the generators."""
    images: list[ImageCollectionConfig] = Field(default_factory=list)
    """Existing image collections used as positives (no generation needed)."""


class PairsConfig(StrictModel):
    """How many negatives of each kind one positive image yields (alignment: `alignment.negatives_per_prompt`)."""

    corruptions: int = Field(default=2, ge=0)
    """Conventional / AIGC-structure corruptions of the positive (mix in `corruptions`)."""
    generation: int = Field(default=1, ge=0)
    """Generation-level negatives (same model, prompt and seed; generated positives only). Quality pairs,
    except for kinds registered with aspect "alignment" (e.g. `low_guidance_alignment`)."""
    samples_per_prompt: int = Field(default=1, ge=1)
    """Positive images per prompt and generator (different seeds)."""
    image_swaps: int = Field(default=0, ge=0)
    """Collections: image-side alignment pairs without a generator, the image vs an image made for
    another prompt, both judged against this image's prompt (text-side pairs alone never teach the
    alignment score to look at the image)."""
    erasures: int = Field(default=0, ge=0)
    """Content-erasure alignment pairs per positive with a prompt: the image vs itself with its
    content made unrecognizable (`corruptions.erasure`), judged against its prompt."""


class RuntimeConfig(StrictModel):
    """How the job runs; never changes the pairs, so it is left out of the config hash."""

    cpu_workers: int = Field(default=2, ge=1)
    """Concurrent pair-construction workers (each takes one CPU)."""
    actors_per_generator: int = Field(default=1, ge=1)
    """Actors in each generator's pool (each takes `num_gpus` GPUs)."""
    cpus_per_cpu_generator: int = Field(default=1, ge=1)
    """CPUs (torch threads) per actor of a generator that runs on CPU (`num_gpus: 0`)."""
    max_retries: int = Field(default=3, ge=0)
    """Retries of a failed shard task / restarts of a dead actor before the job fails."""
    ray_address: str | None = None
    """None: connect to RAY_ADDRESS if set (a cluster job), else start a local Ray."""
    kill_worker_after_shards: int | None = Field(default=None, ge=0)
    """Testing only: one pair-construction worker exits (once per output folder) after this many shards."""


class BuildConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 0
    output: OutputConfig = Field(default_factory=OutputConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    generators: GeneratorList = Field(default_factory=list)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    corruptions: QualityCorruptionsConfig = Field(default_factory=QualityCorruptionsConfig)
    alignment: AlignmentConfig = Field(default_factory=AlignmentConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @model_validator(mode="after")
    def _has_positives(self) -> BuildConfig:
        if not self.sources.images and not (self.generators and self.sources.prompts):
            raise ValueError("nothing to build: give sources.images, or generators together with sources.prompts")
        subsets = [g.id for g in self.generators] + [c.id for c in self.sources.images]
        clashes = sorted({s for s in subsets if subsets.count(s) > 1})
        if clashes:
            raise ValueError(f"generator and collection ids share a namespace and must differ, repeated: {clashes}")
        return self

    def config_hash(self) -> str:
        """Digest of everything that defines the pairs: not `output`, `runtime`, nor generator speed settings."""
        exclude = {"output": True, "runtime": True, "generators": {"__all__": set(RUNTIME_FIELDS)}}
        return digest(self.model_dump(mode="json", exclude=exclude))


def load_build_config(path: str | Path, overrides: list[str] | None = None) -> BuildConfig:
    return load_config(BuildConfig, path, overrides)


def resolved_config(config: BuildConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")
