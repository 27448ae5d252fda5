"""Perturbations: exact outputs on curated prompts, and properties over generated prompts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collections import Counter

from pairgen.prompts import PERTURBATIONS, NotApplicable, Perturbation, Prompt, builtin_prompts, perturb
from pairgen.prompts.parse import parse
from pairgen.prompts.perturb import _pool_index, _removals, _shape
from pairgen.prompts.vocab import load_vocabulary

VOCAB = load_vocabulary()


def removals_of(text: str):
    parsed = parse(text)
    return _removals(parsed, _shape(parsed, VOCAB)[0], VOCAB)


POOL = [Prompt.from_text("a castle in a forest", "natural_scenes"), Prompt.from_text("a blue cup", "objects")]
# Object addition/removal only moves between shapes of the pool; these pairs of shapes differ by one object.
OAR_POOL = [
    Prompt.from_text(text)
    for text in (
        "a cup on a table", "a plate and a wooden bottle on a sofa",  # K on F <-> K and K on F
        "a rabbit and a hamster", "a cat, a white guinea pig and a dog",  # P and P <-> P, P and P
        "a jar next to a bowl", "three spoons",  # K rel K <-> K
        "a lamp between a bed and a sofa", "a cat is sleeping",
    )
]


def run(kind: str, text: str, seed: int = 0, category: str | None = None):
    pool = OAR_POOL if kind == "object_add_remove" else POOL
    return perturb(Prompt.from_text(text, category), kind, np.random.default_rng(seed), pool)


def span(start, end, old, new, type_):
    return {"type": type_, "span": [start, end], "old": old, "new": new}


CURATED = [
    ("whole_swap", "a red cup on a table", "a castle in a forest", [span(0, 20, "a red cup on a table", "a castle in a forest", "prompt")]),
    ("object_replace", "two cats sleeping on a sofa", "two cats sleeping on a cabinet", [span(23, 27, "sofa", "cabinet", "object")]),
    ("object_replace", "An apple in a bowl", "An apple in a jar", [span(14, 18, "bowl", "jar", "object")]),
    ("attribute_replace", "a round clock above a bed", "an oval clock above a bed",
     [span(0, 1, "a", "an", "article"), span(2, 7, "round", "oval", "attribute")]),
    ("attribute_replace", "a small fluffy cat", "a small striped cat", [span(8, 14, "fluffy", "striped", "attribute")]),
    ("count_change", "a dog is sleeping", "five dogs are sleeping",
     [span(0, 5, "a dog", "five dogs", "count"), span(6, 8, "is", "are", "agreement")]),
    ("count_change", "three red apples and a pear in a bowl", "five red apples and a pear in a bowl",
     [span(0, 16, "three red apples", "five red apples", "count")]),
    ("count_change", "2 teapots on a shelf", "5 teapots on a shelf", [span(0, 9, "2 teapots", "5 teapots", "count")]),
    ("relation_flip", "A lamp above a bed", "A lamp below a bed", [span(7, 12, "above", "below", "relation")]),
    ("relation_flip", "a cat to the left of a dog", "a cat to the right of a dog",
     [span(6, 20, "to the left of", "to the right of", "relation")]),
    ("attribute_swap", "a red cup and a blue plate", "a blue cup and a red plate",
     [span(2, 5, "red", "blue", "attribute_swap"), span(16, 20, "blue", "red", "attribute_swap")]),
    ("attribute_swap", "an orange cat and a white dog", "a white cat and an orange dog",
     [span(0, 2, "an", "a", "article"), span(3, 9, "orange", "white", "attribute_swap"),
      span(18, 19, "a", "an", "article"), span(20, 25, "white", "orange", "attribute_swap")]),
    # the added chunk is copied from a pool prompt of the negative's shape, at the same position
    ("object_add_remove", "a teapot on a table", "a teapot and a wooden bottle on a table",
     [span(8, 8, "", " and a wooden bottle", "object_add")]),
    ("object_add_remove", "A cat and a dog", "A cat, a white guinea pig and a dog", [span(5, 5, "", ", a white guinea pig", "object_add")]),
    ("object_add_remove", "two cups", "two cups on a table", [span(8, 8, "", " on a table", "object_add")]),
]


@pytest.mark.parametrize("kind,text,expected,diff", CURATED)
def test_curated_exact_outputs(kind, text, expected, diff):
    result = run(kind, text, category="objects" if kind == "whole_swap" else None)
    assert isinstance(result, Perturbation)
    assert (result.new_text, result.diff, result.kind) == (expected, diff, kind)
    assert result.difficulty == ("easy" if kind == "whole_swap" else "hard")


def test_every_registered_type_has_a_curated_example():
    assert {case[0] for case in CURATED} == set(PERTURBATIONS)


@pytest.mark.parametrize(
    "text,removed",
    [
        ("a cat, a dog and a rabbit in a kitchen", {"a cat and a rabbit in a kitchen"}),  # places never; the middle item
        ("a cat, a dog, and a rabbit", set()),  # 'a cat, and a rabbit' would be wrong
        ("a cat, a dog, a hamster, and a rabbit", {"a cat, a hamster, and a rabbit", "a cat, a dog, and a rabbit"}),
        ("A cat and a dog on a sofa", {"A cat on a sofa", "A cat and a dog"}),  # never the first conjunct
        ("a teapot on a table", {"a teapot"}),
        ("a lamp between a bed and a sofa", set()),
    ],
)
def test_object_removal_candidates(text, removed):
    """Removals delete one chunk (`, X`, ` and X`, ` preposition X`) and leave a fluent prompt."""
    got = {text[: r.span[0]] + text[r.span[1] :] for r in removals_of(text)}
    assert got == removed


def test_object_removal_outputs():
    results = [run("object_add_remove", "a cup next to a bowl", seed) for seed in range(20)]
    assert {r.new_text for r in results if r} == {"a cup"}  # 'a cup' has the shape of 'three spoons'
    assert any(not r for r in results)  # 2 edges share the 1 prompt of shape K: half the draws are kept back


@pytest.mark.parametrize(
    "kind,text",
    [
        ("relation_flip", "a cat next to a dog"),  # symmetric relations are never flipped
        ("relation_flip", "a cat near a dog beside a tree"),
        ("relation_flip", "a cat and a dog"),
        ("attribute_replace", "a cat on a sofa"),  # no attribute
        ("attribute_swap", "a red cup and a plate"),  # only one attribute
        ("attribute_swap", "a red cup and a red plate"),  # same value: swapping changes nothing
        ("count_change", "the cat on the sofa"),  # no stated count
        ("count_change", "a cat sits on the sofa"),  # 'sits' would need agreement the engine cannot do
        ("count_change", "a forest"),  # places are never counted
        ("object_replace", "a sunset over the sea"),  # no known noun
        ("object_add_remove", "a sunset over the sea"),
        ("object_add_remove", "a cat is sleeping"),  # 'and a dog is' would need 'are'
        ("object_add_remove", "a cat"),  # its shape is not in the pool: nothing to balance it against
        ("object_add_remove", "a cup next to a bowl on a table"),  # neither 'a cup next to a bowl' nor 'a cup on a table' + 1 object
    ],
)
def test_not_applicable_when_the_element_is_missing(kind, text):
    result = run(kind, text, category="objects")
    assert isinstance(result, NotApplicable) and not result and result.kind == kind and result.reason


def test_whole_swap_needs_a_prompt_of_another_category():
    cup = Prompt.from_text("a red cup", "objects")
    rng = np.random.default_rng(0)
    assert isinstance(perturb(cup, "whole_swap", rng, [cup, Prompt.from_text("a blue plate", "objects")]), NotApplicable)
    assert isinstance(perturb(cup, "whole_swap", rng, None), NotApplicable)


def test_between_keeps_both_conjuncts():
    for seed in range(10):  # no conjunct can go, and no shape of the pool is one object longer
        assert isinstance(run("object_add_remove", "a lamp between a bed and a sofa", seed), NotApplicable)


def test_object_add_remove_is_balanced_on_the_builtin_set():
    """Along every edge between two shapes the flow is affordable by both shapes, and over the
    built-in set additions and removals are equally common (neither side is 'the longer one')."""
    prompts = builtin_prompts()
    index = _pool_index(prompts, VOCAB)
    used: dict = {}
    for (long, short, _), flow in index.flow.items():
        assert flow > 0 and index.counts[long] > 0 and index.counts[short] > 0
        used[long] = used.get(long, 0) + flow
        used[short] = used.get(short, 0) + flow
    assert all(total <= index.counts[shape] + 1e-9 for shape, total in used.items())
    kinds = Counter()
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for prompt in prompts:
            result = perturb(prompt, "object_add_remove", rng, prompts)
            if result:
                kinds[result.diff[0]["type"]] += 1
    assert kinds["object_add"] + kinds["object_remove"] > 0.8 * 3 * len(prompts)
    assert abs(kinds["object_add"] - kinds["object_remove"]) < 0.06 * sum(kinds.values()), kinds


def test_an_addition_is_fixed_by_the_prompt_like_a_removal():
    """Repeated draws give one addition per edge, so deduplicated negatives do not favour additions."""
    texts = {run("object_add_remove", "a teapot on a table", seed).new_text for seed in range(30)}
    assert texts == {"a teapot and a wooden bottle on a table", "a teapot"}


def test_unknown_kind_is_an_error():
    with pytest.raises(KeyError, match="unknown perturbation 'typo'; known: attribute_replace"):
        run("typo", "a cat")


def test_object_replacement_stays_among_siblings_and_avoids_present_nouns():
    seen = set()
    for seed in range(60):
        result = run("object_replace", "a cat and a dog", seed)
        (edit,) = result.diff
        seen.add(edit["new"])
    assert seen == set(VOCAB.supercategories["pets"].nouns) - {"cat", "dog"}


# --- property tests over prompts built from the vocabularies -----------------------------------

COUNTABLE = sorted(name for name, sc in VOCAB.supercategories.items() if sc.countable)
RELATIONS = sorted(" ".join(r) for r in VOCAB.relations) + list(VOCAB.symmetric_relations[:3])


@st.composite
def noun_phrases(draw):
    sc = VOCAB.supercategories[draw(st.sampled_from(COUNTABLE))]
    noun = draw(st.sampled_from(sc.nouns))
    count = draw(st.integers(1, 5))
    words = []
    if sc.attributes and draw(st.booleans()):
        family = draw(st.sampled_from(sorted(sc.attributes)))
        words.append(draw(st.sampled_from(sc.attributes[family])))
    words.append(VOCAB.noun_form(noun, count > 1))
    head = " ".join(words)
    style = draw(st.sampled_from(["article", "word"])) if count == 1 else "word"
    return f"{VOCAB.count_word(count, style, head)} {head}"


@st.composite
def prompts(draw):
    first, second = draw(noun_phrases()), draw(noun_phrases())
    shape = draw(st.sampled_from(["relation", "and", "single", "list"]))
    if shape == "relation":
        text = f"{first} {draw(st.sampled_from(RELATIONS))} {second}"
    elif shape == "and":
        text = f"{first} and {second}"
    elif shape == "list":
        text = f"{first}, {second} and {draw(noun_phrases())}"
    else:
        text = first
    return text[0].upper() + text[1:] if draw(st.booleans()) else text


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@SETTINGS
@given(prompts(), st.sampled_from(sorted(PERTURBATIONS)), st.integers(0, 2**32 - 1))
def test_a_perturbation_changes_the_prompt_and_its_diff_rebuilds_it(text, kind, seed):
    result = run(kind, text, seed, category="animals")
    if not result:
        return
    assert " ".join(result.new_text.lower().split()) != " ".join(text.lower().split())
    rebuilt, cursor = "", 0
    for entry in result.diff:
        start, end = entry["span"]
        assert text[start:end] == entry["old"] and start >= cursor
        rebuilt += text[cursor:start] + entry["new"]
        cursor = end
    assert rebuilt + text[cursor:] == result.new_text
    if kind != "whole_swap":  # a swapped-in prompt keeps its own case
        assert result.new_text[:1].isupper() == text[:1].isupper()


def _agreement_holds(text: str) -> bool:
    """Every counted phrase agrees: a/an/one/1 with a singular noun, 2..5 with a plural one,
    and a/an agree with the next word."""
    parsed = parse(text)
    for phrase in parsed.phrases:
        det = parsed.tokens[phrase.determiner].lower if phrase.determiner is not None else None
        if det is None or (det not in VOCAB.numbers and det not in VOCAB.articles and not det.isdigit()):
            continue
        if phrase.count is None:  # the reader refuses a count that disagrees with the noun
            return False
        if det in VOCAB.articles and det != VOCAB.article_for(parsed.tokens[phrase.determiner + 1].text):
            return False
    return True


@SETTINGS
@given(prompts(), st.integers(0, 2**32 - 1))
def test_count_change_keeps_agreement_and_stays_within_1_to_5(text, seed):
    assert _agreement_holds(text)
    result = run("count_change", text, seed)
    assert result, text  # every generated phrase states a count
    assert _agreement_holds(result.new_text), result.new_text
    before = sorted(p.count for p in parse(text).phrases)
    after = sorted(p.count for p in parse(result.new_text).phrases)
    assert before != after and all(1 <= c <= 5 for c in after)


@SETTINGS
@given(prompts(), st.integers(0, 2**32 - 1))
def test_relation_flip_is_an_involution(text, seed):
    once = run("relation_flip", text, seed)
    has_asymmetric = bool(parse(text).relations)
    assert bool(once) == has_asymmetric
    if once:
        twice = run("relation_flip", once.new_text, seed)
        assert twice.new_text == text


@SETTINGS
@given(noun_phrases(), st.sampled_from(sorted(PERTURBATIONS)), st.integers(0, 2**32 - 1))
def test_not_applicable_without_the_element(phrase, kind, seed):
    """A single noun phrase has no relation and nothing to swap attributes with; without an
    attribute there is nothing to replace."""
    result = run(kind, phrase, seed, category="animals")
    if kind in ("relation_flip", "attribute_swap"):
        assert isinstance(result, NotApplicable)
    if kind == "attribute_replace":
        assert bool(result) == bool(parse(phrase).phrases[0].attributes)


@SETTINGS
@given(prompts(), st.sampled_from(sorted(PERTURBATIONS)), st.integers(0, 2**32 - 1))
def test_deterministic_for_a_given_rng(text, kind, seed):
    assert run(kind, text, seed) == run(kind, text, seed)


@SETTINGS
@given(st.lists(prompts(), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_object_add_remove_moves_between_pool_shapes(texts, seed):
    """With a pool holding some prompts and their one-object-shorter forms: a negative has one
    object more or less, agrees, has a shape of the pool, and the removal undoes the addition."""
    shorter = [t[: r.span[0]] + t[r.span[1] :] for t in texts for r in removals_of(t)]
    pool = [Prompt.from_text(t) for t in texts + shorter]
    shapes = {_shape(parse(p.text), VOCAB)[0] for p in pool}
    rng = np.random.default_rng(seed)
    for prompt in pool:
        result = perturb(prompt, "object_add_remove", rng, pool)
        if not result:
            continue
        new = result.new_text
        assert _shape(parse(new), VOCAB)[0] in shapes and _agreement_holds(new), new
        assert new[:1].isupper() == prompt.text[:1].isupper()
        (entry,) = result.diff
        before, after = parse(prompt.text).nouns(), parse(new).nouns()
        if entry["type"] == "object_add":
            assert before < after and len(after) == len(before) + 1
            back = {new[: r.span[0]] + new[r.span[1] :] for r in removals_of(new)}
            assert prompt.text in back, (prompt.text, new)
        else:
            assert after < before and len(before) == len(after) + 1
