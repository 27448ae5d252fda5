"""The built-in prompt set: written from this package's own vocabularies and templates.

`python -m pairgen.prompts.builtin` regenerates `data/builtin_prompts.csv` (fixed seed); a test
checks that the shipped file equals a fresh build. Templates are written so every perturbation type
has material: attributes on nouns, counts 1..5, asymmetric and symmetric relations, lists of objects.
Every slot is filled by `sample_noun_phrase`, both directions of each relation are equally likely,
and each template's optional `[...]` object is written in exactly half of its prompts, so object
addition and removal (which move between the shapes of the pool) are balanced against each other.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from importlib import resources
from pathlib import Path

import numpy as np

from pairgen.prompts.sources import BUILTIN_FILE, normalize_text
from pairgen.prompts.vocab import Vocabulary, load_vocabulary, sample_noun_phrase

SEED = 20260404
PER_CATEGORY = 64
ATTRIBUTE_PROBABILITY = 0.6

# `{supercategory}` is a noun phrase with `a`/`an`, `{supercategory#}` one with a count 1..5,
# `{supercategory:family}` one with an attribute of that family (pairs for attribute swaps);
# `{rel}` is a horizontal relation (left/right, in front of/behind), `{vrel}` a vertical one
# (above/below, on top of/underneath), `{sym}` a symmetric one (never flipped). `[...]` is an
# optional object (a later conjunct or a `relation + object`): each template writes it in half of
# its prompts, so a prompt with that object and the same prompt without it are equally common and
# object addition and removal can be balanced against each other (`ObjectAddRemove`).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "objects": (
        "{kitchenware#:colour} and {kitchenware:colour}[ on {furniture}]",
        "{kitchenware#:material} {rel} {kitchenware:material}[ on {furniture}]",
        "{kitchenware#} {rel} {kitchenware}[ on {furniture}]",
        "{kitchenware#}[ and {kitchenware}] on {furniture}",
        "{kitchenware#} on {furniture}[ {sym} {decor}]",
        "{decor#}[ and {decor}] {rel} {furniture}",
        "{toys#}[ and {toys}] {vrel} {furniture}",
        "{stationery#}[ and {stationery}] {sym} {gadgets}",
        "{instruments#}[ and {instruments}] leaning against {furniture}",
        "{clothing#}[, {clothing}] and {clothing} hanging on {furniture}",
        "{stationery#} {vrel} {stationery}[ on {furniture}]",
    ),
    "animals": (
        "{pets#:colour} {rel} {pets:colour}[ on {furniture}]",
        "{pets#} {rel} {pets}[ on {furniture}]",
        "{pets#}[ and {pets}] sleeping on {furniture}",
        "{farm_animals#}[ and {farm_animals}] grazing in {landscapes}",
        "{birds#} {rel} {birds}[ in {trees}]",
        "{wild_animals#}[ and {wild_animals}] in {landscapes}",
        "{sea_animals#}[ and {sea_animals}] {sym} {sea_animals}",
        "{insects#}[ and {insects}] resting on {flowers}",
        "{pets#}[, {pets}] and {pets} {vrel} {furniture}",
    ),
    "people": (
        "{people#} wearing {clothing:colour} and {clothing:colour}[ {rel} {buildings}]",
        "{people#} wearing {clothing}[ and {clothing}]",
        "{professions#} holding {kitchenware}[ and {kitchenware}]",
        "{people#}[ and {people}] {rel} {buildings}",
        "{professions#}[ and {professions}] standing {rel} {road_vehicles}",
        "{people#}[ and {people}] playing {instruments} in {indoor_places}",
        "{professions#}[ and {professions}] {sym} {road_vehicles}",
        "{people#} sitting on {furniture}[ {sym} {decor}]",
    ),
    "food": (
        "{baked_goods#:shape} {vrel} {baked_goods:shape}[ on {kitchenware}]",
        "{fruit#}[ and {fruit}] in {kitchenware}",
        "{baked_goods#} {rel} {baked_goods}[ on {furniture}]",
        "{dishes#}[ and {fruit}] on {kitchenware}",
        "{vegetables#}[ and {vegetables}] {sym} {kitchenware}",
        "{baked_goods#} {vrel} {kitchenware}[ on {furniture}]",
        "{fruit#}[, {vegetables}] and {baked_goods} on {furniture}",
    ),
    "vehicles": (
        "{road_vehicles#:colour}[ and {road_vehicles}] {rel} {road_vehicles:colour}",
        "{road_vehicles#}[ and {road_vehicles}] parked {rel} {buildings}",
        "{road_vehicles#}[ and {road_vehicles}] on {roads}",
        "{watercraft#}[ {sym} {watercraft}] on {waters}",
        "{aircraft#}[ and {aircraft}] flying {rel} {buildings}",
        "{aircraft#}[ and {aircraft}] over {landscapes}",
        "{road_vehicles#} {rel} {road_vehicles}[ near {buildings}]",
        "{road_vehicles#}[ and {road_vehicles}] {sym} {buildings}",
    ),
    "indoor_scenes": (
        "{decor#:colour}[ and {decor}] {rel} {furniture:colour} in {indoor_places}",
        "{indoor_places} with {furniture#}[ and {decor}]",
        "{furniture#}[ and {furniture}] {rel} {decor} in {indoor_places}",
        "{decor#}[ {sym} {furniture}] in {indoor_places}",
        "{pets#}[ and {pets}] sleeping {rel} {furniture} in {indoor_places}",
        "{decor#}[ and {decor}] {vrel} {furniture} in {indoor_places}",
    ),
    "natural_scenes": (
        "{buildings#:colour} and {buildings:colour}[ {sym} {trees}]",
        "{trees#}[ {rel} {buildings}] in {landscapes}",
        "{flowers#}[ and {flowers}] {sym} {trees}",
        "{buildings#}[ and {buildings}] {rel} {trees}",
        "{landscapes} with {trees#}[ and {buildings}]",
        "{flowers#} in {kitchenware}[ on {furniture}]",
    ),
    "art_styles": (
        "{artworks} of {pets#:colour} and {pets:colour}[ on {furniture}]",
        "{artworks} of {pets#}[ and {pets}] {rel} {kitchenware}",
        "{artworks} of {fruit#}[ and {fruit}] in {kitchenware}",
        "{artworks} of {people#}[ and {people}] {rel} {buildings}",
        "{artworks} of {birds#}[ and {birds}] {vrel} {trees}",
        "{artworks} of {road_vehicles#}[, {road_vehicles}] and {road_vehicles}",
    ),
}

RELATIONS = {
    "rel": ("to the left of", "to the right of", "in front of", "behind"),
    "vrel": ("above", "below", "on top of", "underneath"),
    "sym": ("next to", "near", "beside"),
}
_SLOT = re.compile(r"\{(\w+?)(#?)(?::(\w+))?\}")
_OPTIONAL = re.compile(r"\[([^\]]*)\]")


def render(template: str, vocab: Vocabulary, rng: np.random.Generator, optional: bool = True) -> str:
    """Fill a template, with or without its `[optional]` part; a noun appears at most once per prompt."""
    used: set[str] = set()
    template = _OPTIONAL.sub(lambda m: m.group(1) if optional else "", template)

    def fill(match: re.Match) -> str:
        name, counted, family = match.group(1), match.group(2) == "#", match.group(3)
        if name in RELATIONS:
            options = RELATIONS[name]
            return options[int(rng.integers(len(options)))]
        phrase, noun = sample_noun_phrase(
            vocab, name, rng, exclude=frozenset(used), max_count=5 if counted else 1,
            attribute_probability=ATTRIBUTE_PROBABILITY, family=family,
        )
        used.add(noun)
        return phrase

    return _SLOT.sub(fill, template)


def generate(seed: int = SEED, per_category: int = PER_CATEGORY) -> list[tuple[str, str]]:
    """(prompt, category) rows: templates of each category in turn until `per_category` unique prompts."""
    vocab, rng = load_vocabulary(), np.random.default_rng(seed)
    rows, seen = [], set()
    for category, templates in TEMPLATES.items():
        made, attempt = 0, 0
        with_optional = np.zeros((len(templates), 2), dtype=int)  # prompts made without / with the optional part
        while made < per_category:
            if attempt > 100 * per_category:
                raise RuntimeError(f"templates of {category!r} cannot make {per_category} distinct prompts")
            t = attempt % len(templates)
            optional = bool(_OPTIONAL.search(templates[t])) and with_optional[t, 1] <= with_optional[t, 0]
            text = normalize_text(render(templates[t], vocab, rng, optional))
            attempt += 1
            if text.casefold() not in seen:
                seen.add(text.casefold())
                rows.append((text, category))
                with_optional[t, int(optional)] += 1
                made += 1
    return rows


def to_csv(rows: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prompt", "category"])
    writer.writerows(rows)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the built-in prompt set.")
    default = Path(str(resources.files("pairgen.prompts").joinpath("data", BUILTIN_FILE)))
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args(argv)
    rows = generate()
    args.out.write_text(to_csv(rows), encoding="utf-8")
    print(f"wrote {len(rows)} prompts to {args.out}")


if __name__ == "__main__":
    main()
