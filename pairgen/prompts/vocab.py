"""Vocabularies for the prompt perturbation engine, loaded from the package's `data/*.json` files.

The vocabularies are the engine's whole world model: a noun the reader does not know is left alone,
so an unusual prompt yields "not applicable" rather than a garbled negative. Number agreement and
articles use `inflect` (offline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import inflect
import numpy as np

_INFLECT = inflect.engine()


@dataclass(frozen=True)
class Supercategory:
    """Sibling nouns that may replace each other, and the attribute values natural on all of them."""

    name: str
    nouns: tuple[str, ...]
    attributes: dict[str, tuple[str, ...]]
    countable: bool


@dataclass(frozen=True)
class NounForm:
    """One surface form of a known noun: `cats` -> NounForm('cat', 'pets', plural=True)."""

    noun: str
    supercategory: str
    plural: bool | None  # None when singular and plural are spelled the same ("sheep")


@dataclass(frozen=True)
class Vocabulary:
    supercategories: dict[str, Supercategory]
    categories: dict[str, tuple[str, ...]]  # built-in prompt category -> supercategories
    plurals: dict[str, str]
    nouns: dict[tuple[str, ...], NounForm]  # token tuple -> form, singular and plural
    attribute_family: dict[str, str]  # word -> family
    attribute_group: dict[str, frozenset[str]]  # word -> its near-synonym group (itself at least)
    family_values: dict[str, tuple[str, ...]]
    relations: dict[tuple[str, ...], tuple[str, ...]]  # asymmetric relation -> converse
    symmetric_relations: tuple[str, ...]
    numbers: dict[str, int]
    articles: frozenset[str]
    determiners: frozenset[str]
    agreement: dict[str, str]  # singular verb <-> plural verb, both directions
    boundary_words: frozenset[str]
    modifiers: frozenset[str]
    plural_governors: frozenset[str]
    location_prepositions: frozenset[str]
    removable_prepositions: frozenset[tuple[str, ...]]
    max_noun_tokens: int = field(default=1)

    def plural(self, noun: str) -> str:
        return self.plurals.get(noun) or _INFLECT.plural_noun(noun)

    def noun_form(self, noun: str, plural: bool) -> str:
        return self.plural(noun) if plural else noun

    def allowed_values(self, supercategory: str, family: str) -> tuple[str, ...]:
        """Values of `family` natural on nouns of `supercategory`; the whole family if none are listed."""
        return self.supercategories[supercategory].attributes.get(family) or self.family_values[family]

    def count_word(self, count: int, style: str, next_word: str) -> str:
        """The determiner for `count`: `a`/`an` (agreeing with `next_word`), a word ("two") or a digit."""
        if style == "digit":
            return str(count)
        if count == 1 and style == "article":
            return _INFLECT.a(next_word).split(" ", 1)[0]
        return _INFLECT.number_to_words(count)

    def article_for(self, next_word: str) -> str:
        return _INFLECT.a(next_word).split(" ", 1)[0]


def _read(name: str) -> dict[str, Any]:
    return json.loads(resources.files("pairgen.prompts").joinpath("data", name).read_text(encoding="utf-8"))


@cache
def load_vocabulary() -> Vocabulary:
    """Parse and cross-check the data files once per process."""
    objects, attributes = _read("objects.json"), _read("attributes.json")
    relations, grammar = _read("relations.json"), _read("grammar.json")
    plurals = dict(objects["plurals"])
    supercats = {
        name: Supercategory(
            name=name,
            nouns=tuple(spec["nouns"]),
            attributes={fam: tuple(vals) for fam, vals in spec["attributes"].items()},
            countable=spec.get("countable", True),
        )
        for name, spec in objects["supercategories"].items()
    }
    nouns: dict[tuple[str, ...], NounForm] = {}
    for sc in supercats.values():
        for noun in sc.nouns:
            plural = plurals.get(noun) or _INFLECT.plural_noun(noun)
            same = plural == noun
            for form, is_plural in ((noun, None if same else False), (plural, None if same else True)):
                key = tuple(form.split())
                if key in nouns and nouns[key].noun != noun:
                    raise ValueError(f"objects.json: noun form {form!r} belongs to two nouns")
                nouns[key] = NounForm(noun, sc.name, is_plural)
    family_of, group_of, family_values = {}, {}, {}
    for family, spec in attributes["families"].items():
        family_values[family] = tuple(spec["values"])
        for word in spec["values"]:
            if word in family_of:
                raise ValueError(f"attributes.json: {word!r} is in families {family_of[word]!r} and {family!r}")
            family_of[word] = family
            group_of[word] = frozenset([word])
        for group in spec["groups"]:
            for word in group:
                group_of[word] = frozenset(group)
    converse: dict[tuple[str, ...], tuple[str, ...]] = {}
    for a, b in relations["asymmetric"]:
        converse[tuple(a.split())] = tuple(b.split())
        converse[tuple(b.split())] = tuple(a.split())
    agreement = {}
    for singular, plural in grammar["agreement_verbs"]:
        agreement[singular], agreement[plural] = plural, singular
    return Vocabulary(
        supercategories=supercats,
        categories={cat: tuple(names) for cat, names in objects["categories"].items()},
        plurals=plurals,
        nouns=nouns,
        attribute_family=family_of,
        attribute_group=group_of,
        family_values=family_values,
        relations=converse,
        symmetric_relations=tuple(relations["symmetric"]),
        numbers=dict(grammar["numbers"]),
        articles=frozenset(grammar["articles"]),
        determiners=frozenset(grammar["other_determiners"]),
        agreement=agreement,
        boundary_words=frozenset(grammar["boundary_words"]),
        modifiers=frozenset(grammar["modifiers"]),
        plural_governors=frozenset(grammar["plural_governors"]),
        location_prepositions=frozenset(grammar["location_prepositions"]),
        removable_prepositions=frozenset(tuple(p.split()) for p in grammar["removable_prepositions"]),
        max_noun_tokens=max(len(k) for k in nouns),
    )


def sample_noun_phrase(
    vocab: Vocabulary,
    supercategory: str,
    rng: np.random.Generator,
    exclude: frozenset[str] = frozenset(),
    max_count: int = 1,
    attribute_probability: float = 0.5,
    family: str | None = None,
) -> tuple[str, str]:
    """A noun phrase such as `three small red cups` and its noun, as the built-in templates write it
    (object addition copies its objects from prompts of the pool, so from this sampler for the built-in set)."""
    sc = vocab.supercategories[supercategory]
    noun = _choice(rng, [n for n in sc.nouns if n not in exclude])
    count = int(rng.integers(1, max_count + 1)) if sc.countable else 1
    words = []
    families = sorted(sc.attributes)
    if family is None and families and rng.random() < attribute_probability:
        family = _choice(rng, families)
    if family is not None:
        words.append(_choice(rng, list(sc.attributes[family])))
    words.append(vocab.noun_form(noun, count > 1))
    head = " ".join(words)
    return f"{vocab.count_word(count, 'article', head)} {head}", noun


def _choice(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]
