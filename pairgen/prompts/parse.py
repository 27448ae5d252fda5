"""A small rule-based reader of prompts: tokens, noun phrases, relations and coordinations.

No parser library is needed: prompts for image generators are short noun-phrase lists, and the
reader only claims what the vocabularies name. Anything it cannot read with confidence is left out,
which makes a perturbation "not applicable" instead of producing a garbled prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pairgen.prompts.vocab import NounForm, Vocabulary, load_vocabulary

_TOKEN = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*|\S")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def is_word(self) -> bool:
        return self.text[0].isalnum()


@dataclass(frozen=True)
class NounPhrase:
    """`[determiner] [attribute | modifier]* noun`, by token index (`noun_end` exclusive)."""

    start: int
    determiner: int | None
    count: int | None  # 1..5 when the determiner states it, else None
    count_style: str | None  # "article" (a/an), "word" (one..five) or "digit"
    attributes: tuple[int, ...]  # token indices of known attribute words
    noun_start: int
    noun_end: int
    form: NounForm
    preposition: int | None = None  # first token of a removable preposition right before the phrase

    @property
    def plural(self) -> bool | None:
        """Grammatical number: from the noun form, else from the count, else unknown."""
        if self.form.plural is not None:
            return self.form.plural
        return None if self.count is None else self.count > 1


@dataclass(frozen=True)
class Relation:
    start: int  # token indices, end exclusive
    end: int
    converse: tuple[str, ...]


@dataclass(frozen=True)
class Coordination:
    """`NP, NP and NP`: noun phrases (indices into `ParsedPrompt.phrases`) and the final separator."""

    items: tuple[int, ...]
    final_separator: str  # " and " or ", and "


@dataclass(frozen=True)
class ParsedPrompt:
    text: str
    tokens: tuple[Token, ...]
    phrases: tuple[NounPhrase, ...]
    relations: tuple[Relation, ...]
    coordinations: tuple[Coordination, ...]

    def follower(self, index: int) -> Token | None:
        return self.tokens[index] if index < len(self.tokens) else None

    def char_span(self, start: int, end: int) -> tuple[int, int]:
        """Character span of tokens `start..end-1` (an empty span at a token boundary if start == end)."""
        if start == end:
            pos = self.tokens[start].start if start < len(self.tokens) else len(self.text)
            return pos, pos
        return self.tokens[start].start, self.tokens[end - 1].end

    def slice(self, start: int, end: int) -> str:
        a, b = self.char_span(start, end)
        return self.text[a:b]

    def nouns(self) -> set[str]:
        return {p.form.noun for p in self.phrases}


def follower_kind(parsed: ParsedPrompt, index: int, vocab: Vocabulary) -> str:
    """What follows a phrase ending before token `index`: 'free' (no agreement needed), 'verb' (an
    agreement verb we can inflect) or 'blocked' (a word that might need agreement we cannot do)."""
    token = parsed.follower(index)
    if token is None or not token.is_word:
        return "free"
    word = token.lower
    if word in vocab.agreement:
        return "verb"
    if word in vocab.boundary_words or word.endswith("ing"):
        return "free"
    return "blocked"


def tokenize(text: str) -> tuple[Token, ...]:
    return tuple(Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text))


def _find_nouns(tokens: tuple[Token, ...], vocab: Vocabulary) -> list[tuple[int, int, NounForm]]:
    """Known nouns, longest match first ('hot dog' before 'dog'), left to right, non-overlapping."""
    found, i = [], 0
    while i < len(tokens):
        for length in range(min(vocab.max_noun_tokens, len(tokens) - i), 0, -1):
            form = vocab.nouns.get(tuple(t.lower for t in tokens[i : i + length]))
            if form is not None:
                found.append((i, i + length, form))
                i += length
                break
        else:
            i += 1
    return found


def _count_of(token: Token, vocab: Vocabulary) -> tuple[int | None, str | None]:
    word = token.lower
    if word in vocab.articles:
        return 1, "article"
    if word in vocab.numbers:
        return vocab.numbers[word], "word"
    if word.isdigit() and 1 <= int(word) <= 5:
        return int(word), "digit"
    return None, None


def _read_phrase(tokens, start, end, form, floor, vocab) -> NounPhrase:
    """Walk left from the noun over attributes and known modifiers to an optional determiner."""
    j, attributes = start - 1, []
    while j >= floor and (tokens[j].lower in vocab.attribute_family or tokens[j].lower in vocab.modifiers):
        if tokens[j].lower in vocab.attribute_family:
            attributes.append(j)
        j -= 1
    determiner = count = style = None
    if j >= floor and (tokens[j].lower in vocab.determiners or _count_of(tokens[j], vocab)[0] is not None):
        determiner = j
        count, style = _count_of(tokens[j], vocab)
        # "a cats" or "three cat": the input disagrees with itself, so its count is not trusted
        if count is not None and form.plural is not None and form.plural != (count > 1):
            count = style = None
    first = determiner if determiner is not None else j + 1
    preposition = next(
        (first - n for n in (4, 3, 2, 1)
         if first - n >= floor and tuple(t.lower for t in tokens[first - n : first]) in vocab.removable_prepositions),
        None,
    )
    return NounPhrase(first, determiner, count, style, tuple(sorted(attributes)), start, end, form, preposition)


def _find_relations(tokens: tuple[Token, ...], vocab: Vocabulary) -> list[Relation]:
    longest = max(len(k) for k in vocab.relations)
    found, i = [], 0
    while i < len(tokens) - 1:  # a relation needs something after it
        for length in range(min(longest, len(tokens) - 1 - i), 0, -1):
            converse = vocab.relations.get(tuple(t.lower for t in tokens[i : i + length]))
            if converse is not None:
                found.append(Relation(i, i + length, converse))
                i += length
                break
        else:
            i += 1
    return found


def _separator(tokens: tuple[Token, ...], a: NounPhrase, b: NounPhrase) -> str | None:
    words = tuple(t.lower for t in tokens[a.noun_end : b.start])
    return {(",",): ",", ("and",): " and ", (",", "and"): ", and "}.get(words)


def _find_coordinations(tokens, phrases: list[NounPhrase], vocab: Vocabulary) -> list[Coordination]:
    """`A and B`, `A, B and C`, `A, B, and C`: commas between all but the last pair, `and` last."""
    found, i = [], 0
    while i < len(phrases) - 1:
        items, seps, k = [i], [], i
        while k + 1 < len(phrases) and (sep := _separator(tokens, phrases[k], phrases[k + 1])) is not None:
            items.append(k + 1)
            seps.append(sep)
            k += 1
            if sep != ",":
                break
        before = tokens[phrases[i].start - 1].lower if phrases[i].start > 0 else ""
        if len(items) >= 2 and seps[-1] != "," and before not in vocab.plural_governors:
            found.append(Coordination(tuple(items), seps[-1]))
        i = k + 1 if len(items) >= 2 else i + 1
    return found


@lru_cache(maxsize=8192)
def parse(text: str) -> ParsedPrompt:
    vocab = load_vocabulary()
    tokens = tokenize(text)
    phrases, floor = [], 0
    for start, end, form in _find_nouns(tokens, vocab):
        phrases.append(_read_phrase(tokens, start, end, form, floor, vocab))
        floor = end
    relations = _find_relations(tokens, vocab)
    coordinations = _find_coordinations(tokens, phrases, vocab)
    return ParsedPrompt(text, tokens, tuple(phrases), tuple(relations), tuple(coordinations))
