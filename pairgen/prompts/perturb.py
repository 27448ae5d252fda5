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

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from pairgen.prompts.parse import NounPhrase, ParsedPrompt, follower_kind, parse
from pairgen.prompts.sources import Prompt, normalize_text
from pairgen.prompts.vocab import Vocabulary, load_vocabulary

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


# --- object addition and removal ----------------------------------------------------------------
#
# A removal deletes a chunk (`, a dog`, ` and a dog`, ` on a table`) from a prompt; an addition
# inserts one. The text alone would tell the two apart if added chunks, or the prompts they are
# added to, looked different from removed ones, so both are tied to the pool (the prompt set):
#
# - a prompt's *shape* is its token sequence with each noun phrase written as its supercategory and
#   each spatial relation as `<rel>` ('three red cups to the left of a bowl on a table' ->
#   `<kitchenware> <rel> <kitchenware> on <furniture>`);
# - an edit is made only if the negative's shape is the shape of some pool prompt, so the negative
#   reads like a prompt of the set (no chains the set never writes);
# - an added chunk is copied from a pool prompt of the negative's shape, from the same position, so
#   added relations and objects are distributed like removed ones;
# - each edge `long shape <-> short shape` gets a flow f used in both directions: a prompt of shape s
#   takes it with probability f / N(s) (N: pool prompts of that shape), so removals along an edge are
#   as many as additions (detailed balance); the rest is "not applicable". Which side of a pair is
#   the original is then not given away by length, shape or content.

_Shape = tuple[str, ...]
_NOT_SPATIAL = {"and", "with", "between", "among"}  # symmetric words that join rather than place
_Edge = tuple[_Shape, _Shape, int]  # (long shape, short shape, symbols of the short one before the chunk)


def _shape(parsed: ParsedPrompt, vocab: Vocabulary) -> tuple[_Shape, tuple[int, ...]]:
    """The shape of a prompt and the character end of each of its symbols."""
    tokens = parsed.tokens
    phrase_at = {p.start: p for p in parsed.phrases}
    relation_at = {r.start: r.end for r in parsed.relations}
    symmetric = [tuple(r.split()) for r in vocab.symmetric_relations if r not in _NOT_SPATIAL]
    symbols, ends, i = [], [], 0
    while i < len(tokens):
        if i in phrase_at:
            end, symbol = phrase_at[i].noun_end, f"<{phrase_at[i].form.supercategory}>"
        elif i in relation_at:
            end, symbol = relation_at[i], "<rel>"
        else:
            words = tuple(t.lower for t in tokens[i:])
            match = max((len(r) for r in symmetric if words[: len(r)] == r), default=0)
            end, symbol = (i + match, "<rel>") if match else (i + 1, tokens[i].lower)
        symbols.append(symbol)
        ends.append(tokens[end - 1].end)
        i = end
    return tuple(symbols), tuple(ends)


def _removal_spans(parsed: ParsedPrompt, vocab: Vocabulary) -> list[tuple[int, int]]:
    """Character spans whose deletion removes one countable object and leaves a fluent prompt:
    a later conjunct (` and a dog` of a two-item list, `, a dog` from the middle of a longer one;
    never after `between`) or a `preposition + object` that is not a list item."""
    spans = []
    countable = lambda p: vocab.supercategories[p.form.supercategory].countable  # noqa: E731
    for c in parsed.coordinations:
        if follower_kind(parsed, parsed.phrases[c.items[-1]].noun_end, vocab) != "free":
            continue
        items = [parsed.phrases[i] for i in c.items]
        if len(items) == 2:
            removable = [1]
        elif c.final_separator == " and " or len(items) >= 4:
            removable = list(range(1, len(items) - 1))
        else:
            removable = []
        for k in removable:
            if countable(items[k]):
                spans.append((parsed.tokens[items[k - 1].noun_end - 1].end, parsed.tokens[items[k].noun_end - 1].end))
    in_lists = {i for c in parsed.coordinations for i in c.items}
    for index, phrase in enumerate(parsed.phrases):
        if index > 0 and index not in in_lists and phrase.preposition is not None and countable(phrase):
            spans.append((parsed.tokens[phrase.preposition - 1].end, parsed.tokens[phrase.noun_end - 1].end))
    return spans


@dataclass(frozen=True)
class _Removal:
    span: tuple[int, int]
    edge: _Edge
    nouns: frozenset[str]  # nouns of the removed chunk


def _removals(parsed: ParsedPrompt, long_shape: _Shape, vocab: Vocabulary) -> list[_Removal]:
    """Every removal of `parsed` (whose shape is `long_shape`) that takes away exactly one object."""
    text = parsed.text
    found = []
    for a, b in _removal_spans(parsed, vocab):
        short = parse(text[:a] + text[b:])
        short_shape, short_ends = _shape(short, vocab)
        if len(short.nouns()) != len(parsed.nouns()) - 1:
            continue
        k = sum(end <= a for end in short_ends)
        chunk_nouns = frozenset(p.form.noun for p in parsed.phrases if a <= parsed.tokens[p.start].start < b)
        found.append(_Removal((a, b), (long_shape, short_shape, k), chunk_nouns))
    return found


@dataclass
class _PoolIndex:
    """Shapes of a pool, the chunks removable along each edge, and the flow of each edge."""

    counts: Counter
    chunks: dict[_Edge, list[tuple[str, frozenset[str]]]]
    flow: dict[_Edge, float]
    longer: dict[_Shape, list[_Edge]]  # short shape -> its edges with a flow (additions)


def _build_index(pool: list[Prompt], vocab: Vocabulary) -> _PoolIndex:
    counts: Counter = Counter()
    chunks: dict[_Edge, list[tuple[str, frozenset[str]]]] = {}
    for prompt in pool:
        parsed = parse(prompt.text)
        shape = _shape(parsed, vocab)[0]
        counts[shape] += 1
        for removal in _removals(parsed, shape, vocab):
            a, b = removal.span
            chunks.setdefault(removal.edge, []).append((prompt.text[a:b], removal.nouns))
    edges = sorted(e for e in chunks if counts[e[1]] > 0)
    # Water-filling: each round gives every open edge the largest equal share both its shapes can
    # still afford (residual / open edges there), so no shape is over-used and flows stay spread out.
    residual = {s: float(n) for s, n in counts.items()}
    flow = dict.fromkeys(edges, 0.0)
    open_edges = list(edges)
    for _ in range(50):
        if not open_edges:
            break
        degree: Counter = Counter()
        for long, short, _k in open_edges:
            degree[long] += 1
            degree[short] += 1
        shares = {e: min(residual[e[0]] / degree[e[0]], residual[e[1]] / degree[e[1]]) for e in open_edges}
        for e, share in shares.items():
            flow[e] += share
            residual[e[0]] -= share
            residual[e[1]] -= share
        open_edges = [e for e in open_edges if residual[e[0]] > 1e-9 and residual[e[1]] > 1e-9]
    longer: dict[_Shape, list[_Edge]] = {}
    for e, f in flow.items():
        if f > 0:
            longer.setdefault(e[1], []).append(e)
    return _PoolIndex(counts, chunks, flow, longer)


_INDEX_CACHE: dict[int, tuple[list[Prompt], int, _PoolIndex]] = {}


def _pool_index(pool: list[Prompt] | None, vocab: Vocabulary) -> _PoolIndex:
    """The index of `pool` (the built-in set when there is none), built once per pool list."""
    if not pool:
        from pairgen.prompts.sources import builtin_prompts

        key = 0
        if key not in _INDEX_CACHE:
            prompts = builtin_prompts()
            _INDEX_CACHE[key] = (prompts, len(prompts), _build_index(prompts, vocab))
        return _INDEX_CACHE[key][2]
    cached = _INDEX_CACHE.get(id(pool))
    if cached is None or cached[0] is not pool or cached[1] != len(pool):
        if len(_INDEX_CACHE) > 8:
            _INDEX_CACHE.clear()
        cached = (pool, len(pool), _build_index(pool, vocab))
        _INDEX_CACHE[id(pool)] = cached
    return cached[2]


@register
class ObjectAddRemove(PromptPerturbation):
    """An object added or removed: a later conjunct (`A and B`, `A, B and C`) or a `preposition +
    object` ('a cup on a table' <-> 'a cup').

    Both directions along the same edges between prompt shapes of the pool, balanced so that as many
    pairs go from the long shape to the short one as back, with added chunks copied from pool prompts
    of the negative's shape (see the comment above `_shape`). A prompt whose shape has no such edge,
    or whose draw falls outside the edges' flows, gets "not applicable"."""

    name, difficulty = "object_add_remove", "hard"
    TRIES: ClassVar[int] = 8  # chunks tried for an addition before giving up

    def edits(self, parsed, prompt, rng, pool):
        vocab = load_vocabulary()
        index = _pool_index(pool, vocab)
        shape, ends = _shape(parsed, vocab)
        n = index.counts.get(shape, 0)
        if n == 0:
            return "no prompt of this shape in the pool to balance additions against removals"
        by_edge: dict[_Edge, list[_Removal]] = {}
        for removal in _removals(parsed, shape, vocab):
            by_edge.setdefault(removal.edge, []).append(removal)
        edges = [e for e in by_edge if index.flow.get(e, 0.0) > 0]
        edges += index.longer.get(shape, [])
        if not edges:
            return "no object this prompt can lose or gain within the shapes of the pool"
        u, cumulative = rng.random(), 0.0
        for edge in edges:  # edge e is taken with probability flow(e) / N(shape)
            cumulative += index.flow[edge] / n
            if u < cumulative:
                break
        else:
            return "not drawn: kept for the balance of additions and removals"
        if edge in by_edge:
            a, b = _pick(rng, by_edge[edge]).span
            return [Edit(a, b, "", "object_remove")]
        long_shape, _, k = edge
        at = ends[k - 1]
        present = parsed.nouns()
        candidates = index.chunks[edge]
        # The chunk is fixed by the prompt and edge (as a removal is): drawing several negatives of
        # one prompt must not give additions more distinct pairs than removals.
        digest = hashlib.sha256(repr((normalize_text(parsed.text), edge)).encode()).digest()
        chunk_rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        for _ in range(self.TRIES):
            chunk, nouns = _pick(chunk_rng, candidates)
            if nouns & present:
                continue
            new_text = parsed.text[:at] + chunk + parsed.text[at:]
            if _shape(parse(new_text), vocab)[0] == long_shape:
                return [Edit(at, at, chunk, "object_add")]
        return "no chunk of the pool fits this prompt"
