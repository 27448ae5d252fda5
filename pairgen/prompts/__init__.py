"""Prompts for the alignment aspect: sources, a built-in set, and rule-based perturbations.

    from pairgen.prompts import load_prompts, PromptSourceConfig, perturb
    prompts = load_prompts([PromptSourceConfig(kind="builtin")]).prompts
    negative = perturb(prompts[0], "count_change", np.random.default_rng(0))  # or NotApplicable
"""

from pairgen.prompts.config import AlignmentConfig, CurriculumStage, PromptSourceConfig, plan_alignment_negatives
from pairgen.prompts.perturb import PERTURBATIONS, NotApplicable, Perturbation, PromptPerturbation, perturb, register
from pairgen.prompts.sources import (
    Prompt,
    PromptSet,
    PromptSourceError,
    PromptTooLongWarning,
    builtin_prompts,
    load_prompts,
    prompt_id,
)

__all__ = [
    "PERTURBATIONS",
    "AlignmentConfig",
    "CurriculumStage",
    "NotApplicable",
    "Perturbation",
    "Prompt",
    "PromptPerturbation",
    "PromptSet",
    "PromptSourceConfig",
    "PromptSourceError",
    "PromptTooLongWarning",
    "builtin_prompts",
    "load_prompts",
    "perturb",
    "plan_alignment_negatives",
    "prompt_id",
    "register",
]
