"""Text-to-image generators: config-driven diffusers pipelines, generation-level negatives, offline fixtures.

Adding a model is a `GeneratorConfig` entry (Hub id or folder plus its defaults); adding a
generation-level negative is one class registered in `GENERATION_NEGATIVES`.
"""

from pairgen.generators.config import (
    GenerationNegativesConfig,
    GeneratorConfig,
    GeneratorList,
    assign_generators,
)
from pairgen.generators.fixtures import build_tiny_pipelines
from pairgen.generators.generator import Generator
from pairgen.generators.loading import MissingComponentError, ModelNotAvailableError
from pairgen.generators.negatives import GENERATION_NEGATIVES, GenerationNegative, NotApplicableError, alignment_negative
from pairgen.generators.requests import GeneratedImage, GenerationRequest
from pairgen.generators.seeding import derive_seed

__all__ = [
    "GENERATION_NEGATIVES",
    "GeneratedImage",
    "GenerationNegative",
    "GenerationNegativesConfig",
    "GenerationRequest",
    "Generator",
    "GeneratorConfig",
    "GeneratorList",
    "MissingComponentError",
    "ModelNotAvailableError",
    "NotApplicableError",
    "alignment_negative",
    "assign_generators",
    "build_tiny_pipelines",
    "derive_seed",
]
