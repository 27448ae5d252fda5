"""Alignment config: mix, severity, curriculum, and the negative planner."""

from __future__ import annotations

import numpy as np
import pytest

from pairgen.config_base import ConfigError, StrictModel, validate_config
from pairgen.prompts import PERTURBATIONS, AlignmentConfig, Prompt, plan_alignment_negatives

POOL = [Prompt.from_text("a castle in a forest", "natural_scenes"), Prompt.from_text("two owls above a barn", "animals")]
PROMPT = Prompt.from_text("a red cup to the left of three blue plates", "objects")


class _Top(StrictModel):
    alignment: AlignmentConfig


@pytest.mark.parametrize(
    "alignment,expected",
    [
        ({"mix": {"colour_swap": 1.0}}, "alignment.mix: unknown perturbation 'colour_swap'; known: attribute_replace"),
        ({"mix": {"relation_flip": -1.0}}, "alignment.mix: share of 'relation_flip' must be >= 0"),
        ({"hard_share": 1.5}, "alignment.hard_share: input should be less than or equal to 1"),
        ({"mix": {"whole_swap": 1.0}}, "alignment: hard negatives are requested but no hard type"),
        ({"curriculum": [{"until": 0.5, "hard_share": 0.2}]}, "alignment.curriculum: stages need strictly increasing"),
        ({"negatives_per_prompt": 17}, "alignment.negatives_per_prompt: input should be less than or equal to 16"),
    ],
)
def test_config_errors(alignment, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(_Top, {"alignment": alignment})
    assert any(line.startswith(expected) for line in info.value.problems), info.value.problems


def test_defaults_cover_every_type():
    assert set(AlignmentConfig().mix) == set(PERTURBATIONS)


def test_plan_is_deterministic_distinct_and_sided():
    config = AlignmentConfig(negatives_per_prompt=4, text_side_share=0.5)
    first = plan_alignment_negatives(config, PROMPT, POOL, np.random.default_rng(7))
    again = plan_alignment_negatives(config, PROMPT, POOL, np.random.default_rng(7))
    assert first == again and len(first) == 4
    assert len({p.new_text for p in first} | {PROMPT.text}) == 5
    assert all(p.side in ("text", "image") for p in first)


def test_severity_share_and_mix_are_respected():
    hard_only = AlignmentConfig(hard_share=1.0, negatives_per_prompt=3)
    easy_only = AlignmentConfig(hard_share=0.0, negatives_per_prompt=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert all(p.difficulty == "hard" for p in plan_alignment_negatives(hard_only, PROMPT, POOL, rng))
        assert [p.kind for p in plan_alignment_negatives(easy_only, PROMPT, POOL, rng)] == ["whole_swap"]
    relations_only = AlignmentConfig(hard_share=1.0, mix={"relation_flip": 1.0})
    assert [p.kind for p in plan_alignment_negatives(relations_only, PROMPT, POOL, rng, n=1)] == ["relation_flip"]


def test_not_applicable_types_are_skipped_for_the_next_by_mix():
    config = AlignmentConfig(hard_share=1.0, mix={"relation_flip": 100.0, "count_change": 1.0})
    plain = Prompt.from_text("two cats on a sofa")  # no relation to flip
    (only,) = plan_alignment_negatives(config, plain, POOL, np.random.default_rng(0), n=1)
    assert only.kind == "count_change"
    nothing = Prompt.from_text("a sunset")  # nothing applies, not even a swap without a pool
    assert plan_alignment_negatives(AlignmentConfig(), nothing, None, np.random.default_rng(0)) == []


def test_curriculum_ramps_the_hard_share():
    config = AlignmentConfig(
        curriculum=[{"until": 0.5, "hard_share": 0.0}, {"until": 1.0, "hard_share": 1.0}], negatives_per_prompt=2
    )
    assert config.hard_share_at(0.2) == 0.0 and config.hard_share_at(0.9) == 1.0
    assert config.hard_share_at(None) == config.hard_share
    rng = np.random.default_rng(1)
    early = plan_alignment_negatives(config, PROMPT, POOL, rng, n=1, progress=0.1)
    late = plan_alignment_negatives(config, PROMPT, POOL, rng, progress=0.9)
    assert {p.difficulty for p in early} == {"easy"} and {p.difficulty for p in late} == {"hard"}
