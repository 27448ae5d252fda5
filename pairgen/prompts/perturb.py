"""Rule-based prompt perturbations: negatives for the prompt-image alignment aspect.

Each perturbation type is one registered class that turns a parsed prompt into text edits, or
returns `NotApplicable` when the prompt lacks what it needs: a negative is never a garbled prompt.
Shared steps (case, article agreement `a`/`an`, applying edits, the structured diff) live here once.

Text-only bias: every hard type draws its new words from the same per-supercategory value lists the
built-in prompts are written from, keeps grammar correct, and (count change, object add/remove)
chooses its direction so that neither side of a pair is recognisably "the edited one"; see
`docs/prompts.md` and `python -m pairgen.prompts.bias_check`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from pairgen.prompts.parse import NounPhrase, ParsedPrompt, follower_kind, parse
from pairgen.prompts.sources import Prompt, normalize_text
from pairgen.prompts.vocab import Vocabulary, load_vocabulary, sample_noun_phrase

Difficulty = Literal["easy", "hard"]


@dataclass(frozen=True)
class Perturbation:
    """A perturbed prompt. `diff` entries are `{type, span: [start, end], old, new}` with `span` in
    characters of the original text, sorted by position."""

    new_text: str
    diff: list[dict]
    kind: str
    difficulty: Difficulty
    side: Literal["text", "image"] | None = None  # set by the alignment planner


@dataclass(frozen=True)
class NotApplicable:
    """The prompt has nothing this perturbation can change (e.g. no spatial relation to flip)."""

    kind: str
    reason: str

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class Edit:
    start: int  # characters, end exclusive; start == end inserts
    end: int
    new: str
    type: str


class PromptPerturbation(ABC):
    """One perturbation type. Subclasses set `name` and `difficulty` and implement `edits`."""

    name: ClassVar[str]
    difficulty: ClassVar[Difficulty]

    @abstractmethod
    def edits(
        self, parsed: ParsedPrompt, prompt: Prompt, rng: np.random.Generator, pool: list[Prompt] | None
    ) -> list[Edit] | str:
        """The edits that make the negative, or a reason why there are none."""


PERTURBATIONS: dict[str, PromptPerturbation] = {}


def register(cls: type[PromptPerturbation]) -> type[PromptPerturbation]:
    if cls.name in PERTURBATIONS:
        raise ValueError(f"perturbation {cls.name!r} registered twice")
    PERTURBATIONS[cls.name] = cls()
    return cls


def perturb(
    prompt: Prompt, kind: str, rng: np.random.Generator, pool: list[Prompt] | None = None
) -> Perturbation | NotApplicable:
    """Apply perturbation `kind` to `prompt`. Deterministic for a given `rng` state."""
    if kind not in PERTURBATIONS:
        raise KeyError(f"unknown perturbation {kind!r}; known: {', '.join(sorted(PERTURBATIONS))}")
    perturbation = PERTURBATIONS[kind]
    parsed = parse(prompt.text)
    edits = perturbation.edits(parsed, prompt, rng, pool)
    if isinstance(edits, str):
        return NotApplicable(kind, edits)
    new_text, diff = apply_edits(parsed, edits, load_vocabulary())
    if normalize_text(new_text) == normalize_text(prompt.text):
        return NotApplicable(kind, "the edit would not change the prompt")
    return Perturbation(new_text, diff, kind, perturbation.difficulty)


def match_case(old: str, new: str) -> str:
    """Keep a capitalised first letter ('A cat' -> 'Two cats')."""
    if old[:1].isupper() and new:
        return new[0].upper() + new[1:]
    return new


def token_edit(parsed: ParsedPrompt, start: int, end: int, new: str, type_: str) -> Edit:
    """Replace tokens `start..end-1`, keeping the case of the first letter."""
    a, b = parsed.char_span(start, end)
    return Edit(a, b, match_case(parsed.text[a:b], new), type_)


def _article_edits(parsed: ParsedPrompt, edits: list[Edit], vocab: Vocabulary) -> list[Edit]:
    """`a`/`an` before an edited word must agree with the new word ('a pear' -> 'an apple')."""
    starts = {t.start: i for i, t in enumerate(parsed.tokens)}
    covered = [(e.start, e.end) for e in edits]
    extra = []
    for edit in edits:
        index = starts.get(edit.start)
        if index is None or index == 0 or not edit.new or edit.start == edit.end:
            continue
        article = parsed.tokens[index - 1]
        if article.lower not in vocab.articles or any(a <= article.start < b for a, b in covered):
            continue
        wanted = vocab.article_for(edit.new.split()[0])
        if wanted != article.lower:
            extra.append(token_edit(parsed, index - 1, index, wanted, "article"))
    return extra


def apply_edits(parsed: ParsedPrompt, edits: list[Edit], vocab: Vocabulary) -> tuple[str, list[dict]]:
    """Apply non-overlapping edits (plus article agreement) and describe them as a diff."""
    edits = sorted(edits + _article_edits(parsed, edits, vocab), key=lambda e: (e.start, e.end))
    for left, right in zip(edits, edits[1:]):
        if right.start < left.end:
            raise ValueError(f"overlapping edits {left} and {right}")
    pieces, cursor, diff = [], 0, []
    for e in edits:
        pieces += [parsed.text[cursor : e.start], e.new]
        cursor = e.end
        diff.append({"type": e.type, "span": [e.start, e.end], "old": parsed.text[e.start : e.end], "new": e.new})
    pieces.append(parsed.text[cursor:])
    return "".join(pieces), diff


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


@register
class WholeSwap(PromptPerturbation):
    """The whole prompt replaced by a prompt of another category from the pool (easy)."""

    name, difficulty = "whole_swap", "easy"

    def edits(self, parsed, prompt, rng, pool):
        def eligible(other: Prompt) -> bool:  # ids are digests of the normalized text
            return other.id != prompt.id and (prompt.category is None or other.category != prompt.category)

        pool = pool or []
        # Rejection sampling keeps a draw O(1) on large pools (a scan per prompt made planning quadratic);
        # the scan only runs when most of the pool is ineligible.
        for _ in range(32 if pool else 0):
            other = _pick(rng, pool)
            if eligible(other):
                return [Edit(0, len(parsed.text), other.text, "prompt")]
        candidates = [p for p in pool if eligible(p)]
        if not candidates:
            return "no prompt of another category in the pool"
        return [Edit(0, len(parsed.text), _pick(rng, candidates).text, "prompt")]


@register
class ObjectReplace(PromptPerturbation):
    """A noun replaced by a sibling of its supercategory (never a synonym, hypernym or hyponym)."""

    name, difficulty = "object_replace", "hard"

    def edits(self, parsed, prompt, rng, pool):
        vocab, present = load_vocabulary(), parsed.nouns()
        options = []
        for phrase in parsed.phrases:
            if phrase.plural is None:
                continue
            siblings = [n for n in vocab.supercategories[phrase.form.supercategory].nouns if n not in present]
            options += [(phrase, noun) for noun in siblings]
        if not options:
            return "no known noun with a sibling to replace it"
        phrase, noun = _pick(rng, options)
        new = vocab.noun_form(noun, phrase.plural)
        return [token_edit(parsed, phrase.noun_start, phrase.noun_end, new, "object")]


def _attribute_options(parsed: ParsedPrompt, phrase: NounPhrase, index: int, vocab: Vocabulary) -> list[str]:
    """Values that may replace the attribute at token `index`: same family, natural on this noun,
    not a near-synonym of the old value, not already on the phrase."""
    word = parsed.tokens[index].lower
    family = vocab.attribute_family[word]
    on_phrase = {parsed.tokens[i].lower for i in phrase.attributes}
    blocked = set(vocab.attribute_group[word]) | on_phrase
    return [v for v in vocab.allowed_values(phrase.form.supercategory, family) if v not in blocked]


@register
class AttributeReplace(PromptPerturbation):
    """One colour, material, shape, size or texture word replaced by another of its family."""

    name, difficulty = "attribute_replace", "hard"

    def edits(self, parsed, prompt, rng, pool):
        vocab = load_vocabulary()
        options = [
            (index, value)
            for phrase in parsed.phrases
            for index in phrase.attributes
            for value in _attribute_options(parsed, phrase, index, vocab)
        ]
        if not options:
            return "no attribute of a known noun"
        index, value = _pick(rng, options)
        return [token_edit(parsed, index, index + 1, value, "attribute")]


@register
class CountChange(PromptPerturbation):
    """A stated count (a/an, one..five, 1..5) changed to another count in 1..5, with agreement.

    A phrase with a number above one is changed when there is one (`a X` is the default wording,
    a number the deliberate count), the new count is uniform over the other four, and a count moving
    to 1 is written with `a`/`an`. On a prompt set whose counted phrases are uniform over 1..5 this
    makes (original, negative) counts exchangeable: neither side is recognisably the edited one."""

    name, difficulty = "count_change", "hard"

    def edits(self, parsed, prompt, rng, pool):
        vocab = load_vocabulary()
        phrases = [
            p
            for p in parsed.phrases
            if p.count is not None
            and vocab.supercategories[p.form.supercategory].countable
            and follower_kind(parsed, p.noun_end, vocab) != "blocked"
        ]
        if not phrases:
            return "no counted noun phrase whose number can change"
        phrase = _pick(rng, [p for p in phrases if p.count > 1] or phrases)
        count = _pick(rng, [n for n in range(1, 6) if n != phrase.count])
        return self.recount(parsed, phrase, count, vocab)

    @staticmethod
    def recount(parsed: ParsedPrompt, phrase: NounPhrase, count: int, vocab: Vocabulary) -> list[Edit]:
        style = "digit" if phrase.count_style == "digit" else ("article" if count == 1 else "word")
        middle = parsed.slice(phrase.determiner + 1, phrase.noun_start)
        noun = vocab.noun_form(phrase.form.noun, count > 1)
        rest = f"{middle} {noun}" if middle else noun
        new = f"{vocab.count_word(count, style, rest.split()[0])} {rest}"
        edits = [token_edit(parsed, phrase.determiner, phrase.noun_end, new, "count")]
        verb = parsed.follower(phrase.noun_end)
        if follower_kind(parsed, phrase.noun_end, vocab) == "verb" and (count > 1) != (phrase.count > 1):
            edits.append(token_edit(parsed, phrase.noun_end, phrase.noun_end + 1, vocab.agreement[verb.lower], "agreement"))
        return edits


@register
class RelationFlip(PromptPerturbation):
    """An asymmetric spatial relation replaced by its converse (left/right, above/below, in front
    of/behind, on top of/underneath). Symmetric relations are not in the table, so never flipped."""

    name, difficulty = "relation_flip", "hard"

    def edits(self, parsed, prompt, rng, pool):
        if not parsed.relations:
            return "no asymmetric spatial relation"
        relation = _pick(rng, list(parsed.relations))
        return [token_edit(parsed, relation.start, relation.end, " ".join(relation.converse), "relation")]


@register
class AttributeSwap(PromptPerturbation):
    """Two objects exchange attributes of one family ('a red cup and a blue plate' ->
    'a blue cup and a red plate'); only values natural on both nouns are swapped."""

    name, difficulty = "attribute_swap", "hard"

    def edits(self, parsed, prompt, rng, pool):
        vocab, tokens = load_vocabulary(), parsed.tokens
        options = []
        for i, first in enumerate(parsed.phrases):
            for second in parsed.phrases[i + 1 :]:
                for a in first.attributes:
                    for b in second.attributes:
                        wa, wb = tokens[a].lower, tokens[b].lower
                        if (
                            vocab.attribute_family[wa] == vocab.attribute_family[wb]
                            and wb not in vocab.attribute_group[wa]
                            and wb in vocab.allowed_values(first.form.supercategory, vocab.attribute_family[wb])
                            and wa in vocab.allowed_values(second.form.supercategory, vocab.attribute_family[wa])
                        ):
                            options.append((a, b))
        if not options:
            return "no two objects with different attributes of one family"
        a, b = _pick(rng, options)
        return [
            token_edit(parsed, a, a + 1, tokens[b].lower, "attribute_swap"),
            token_edit(parsed, b, b + 1, tokens[a].lower, "attribute_swap"),
        ]


@register
class ObjectAddRemove(PromptPerturbation):
    """An object added (`and a dog`) or removed: a conjunct of `A, B and C`, or a trailing
    `preposition + object` ('a cup on a table' -> 'a cup').

    One type with both directions: an added object always lengthens the prompt and a removed one
    always shortens it, so either direction alone is given away by length. When both are possible
    each is taken with probability 1/2."""

    name, difficulty = "object_add_remove", "hard"

    def edits(self, parsed, prompt, rng, pool):
        vocab = load_vocabulary()
        removals = self._removals(parsed, vocab)
        anchors = [p for p in parsed.phrases if self._can_anchor(parsed, p, vocab)]
        if removals and (not anchors or rng.random() < 0.5):
            return [_pick(rng, removals)]
        if anchors:
            return [self._add(parsed, _pick(rng, anchors), rng, vocab)]
        return "no object to add to or remove from"

    @staticmethod
    def _can_anchor(parsed: ParsedPrompt, phrase: NounPhrase, vocab: Vocabulary) -> bool:
        """An object can follow a countable phrase that is not a later conjunct, not the object of
        a location preposition ('on a table and a chair' would move the subject onto both) and not
        the subject of an agreeing verb ('a cat is ...' would need 'are')."""
        sc = vocab.supercategories[phrase.form.supercategory]
        siblings = set(sc.nouns) - parsed.nouns()
        before = parsed.tokens[phrase.start - 1].lower if phrase.start > 0 else ""
        return (
            sc.countable
            and bool(siblings)
            and before not in {"and", ","} | vocab.location_prepositions
            and follower_kind(parsed, phrase.noun_end, vocab) == "free"
        )

    @staticmethod
    def _add(parsed: ParsedPrompt, anchor: NounPhrase, rng: np.random.Generator, vocab: Vocabulary) -> Edit:
        new_phrase, _ = sample_noun_phrase(vocab, anchor.form.supercategory, rng, exclude=frozenset(parsed.nouns()))
        follower = parsed.follower(anchor.noun_end)
        joiner = ", " if follower is not None and follower.lower in {"and", ","} else " and "
        at = parsed.tokens[anchor.noun_end - 1].end
        return Edit(at, at, joiner + new_phrase, "object_add")

    def _removals(self, parsed: ParsedPrompt, vocab: Vocabulary) -> list[Edit]:
        edits = [
            self._remove_conjunct(parsed, c, item)
            for c in parsed.coordinations
            if follower_kind(parsed, parsed.phrases[c.items[-1]].noun_end, vocab) == "free"
            for item in c.items
        ]
        in_lists = {i for c in parsed.coordinations for i in c.items}
        for index, phrase in enumerate(parsed.phrases):
            if (
                index > 0
                and index not in in_lists
                and phrase.preposition is not None
                and vocab.supercategories[phrase.form.supercategory].countable
            ):
                start = parsed.tokens[phrase.preposition - 1].end  # with the space before it
                edits.append(Edit(start, parsed.tokens[phrase.noun_end - 1].end, "", "object_remove"))
        return edits

    @staticmethod
    def _remove_conjunct(parsed: ParsedPrompt, coordination, item: int) -> Edit:
        kept = [parsed.slice(parsed.phrases[i].start, parsed.phrases[i].noun_end) for i in coordination.items if i != item]
        text = kept[0] if len(kept) == 1 else ", ".join(kept[:-1]) + coordination.final_separator + kept[-1]
        first, last = parsed.phrases[coordination.items[0]], parsed.phrases[coordination.items[-1]]
        start, end = parsed.char_span(first.start, last.noun_end)
        return Edit(start, end, match_case(parsed.text[start:end], text), "object_remove")
