"""The built-in prompt set and the vocabularies it is written from."""

from __future__ import annotations

import csv
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from pairgen.prompts import PERTURBATIONS, builtin_prompts, perturb
from pairgen.prompts.builtin import generate, to_csv
from pairgen.prompts.parse import parse
from pairgen.prompts.vocab import load_vocabulary

VOCAB = load_vocabulary()
BENCHMARK = Path("/work/shared/benchmarks/agiqa3k-pool/images.csv")


def test_shipped_file_is_the_generator_output():
    shipped = resources.files("pairgen.prompts").joinpath("data", "builtin_prompts.csv").read_text(encoding="utf-8")
    assert shipped == to_csv(generate()), "run `python -m pairgen.prompts.builtin` after editing templates or vocab"


def test_size_categories_and_uniqueness():
    prompts = builtin_prompts()
    assert len(prompts) >= 300 and len({p.id for p in prompts}) == len(prompts)
    assert set(Counter(p.category for p in prompts)) == set(VOCAB.categories)
    assert min(Counter(p.category for p in prompts).values()) >= 30


def test_every_perturbation_type_has_material():
    prompts = builtin_prompts()
    rng = np.random.default_rng(0)
    for kind in PERTURBATIONS:
        applicable = sum(bool(perturb(p, kind, rng, prompts)) for p in prompts)
        assert applicable >= 50, (kind, applicable)


def test_counts_span_1_to_5_and_relations_both_directions():
    phrases = [ph for p in builtin_prompts() for ph in parse(p.text).phrases]
    counts = Counter(ph.count for ph in phrases if ph.count)
    assert set(counts) == {1, 2, 3, 4, 5}
    relations = Counter(" ".join(t.lower for t in parse(p.text).tokens[r.start : r.end])
                        for p in builtin_prompts() for r in parse(p.text).relations)
    for phrase, converse in VOCAB.relations.items():
        if relations[" ".join(phrase)]:
            assert relations[" ".join(converse)] > 0


@pytest.mark.skipif(not BENCHMARK.is_file(), reason="benchmark prompts not available here")
def test_no_benchmark_prompt_is_copied():
    with BENCHMARK.open(encoding="utf-8") as f:
        benchmark = {" ".join(row["prompt"].lower().split()) for row in csv.DictReader(f)}
    assert not benchmark & {p.text.lower() for p in builtin_prompts()}


def test_vocabulary_invariants():
    attribute_words = set(VOCAB.attribute_family)
    noun_words = {w for key in VOCAB.nouns for w in key}
    assert not attribute_words & {" ".join(k) for k in VOCAB.nouns}  # an attribute is never a noun
    assert not VOCAB.modifiers & attribute_words
    seen: dict[str, str] = {}
    for name, sc in VOCAB.supercategories.items():
        for noun in sc.nouns:
            assert seen.setdefault(noun, name) == name, f"{noun} in {seen[noun]} and {name}"
        for family, values in sc.attributes.items():
            assert set(values) <= set(VOCAB.family_values[family]), (name, family)
            groups = {VOCAB.attribute_group[v] for v in values}
            assert len(groups) == len(values), f"{name}.{family} lists near-synonyms"
    for phrase, converse in VOCAB.relations.items():
        assert VOCAB.relations[converse] == phrase
    assert not {tuple(s.split()) for s in VOCAB.symmetric_relations} & set(VOCAB.relations)
    assert "dog" in noun_words and ("hot", "dog") in VOCAB.nouns  # longest match needs both


def test_no_hypernym_or_hyponym_within_a_supercategory():
    """A noun that contains a sibling as its head ('oak tree' / 'tree') would be a hyponym."""
    for sc in VOCAB.supercategories.values():
        for a in sc.nouns:
            for b in sc.nouns:
                assert a == b or not a.endswith(" " + b), (a, b)
