"""The built-in prompt set: written from this package's own vocabularies and templates.

`python -m pairgen.prompts.builtin` regenerates `data/builtin_prompts.csv` (fixed seed); a test
checks that the shipped file equals a fresh build. Templates are written so every perturbation type
has material: attributes on nouns, counts 1..5, asymmetric and symmetric relations, lists of objects.
Every slot is filled by `sample_noun_phrase`, the same sampler object addition uses, and both
directions of each relation are equally likely, so perturbed prompts read like built-in ones.
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
PER_CATEGORY = 48
ATTRIBUTE_PROBABILITY = 0.6

# `{supercategory}` is a noun phrase with `a`/`an`, `{supercategory#}` one with a count 1..5,
# `{supercategory:family}` one with an attribute of that family (pairs for attribute swaps);
# `{rel}` is a horizontal relation (left/right, in front of/behind), `{vrel}` a vertical one
# (above/below, on top of/underneath), `{sym}` a symmetric one (never flipped).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "objects": (
        "{kitchenware#:colour} and {kitchenware:colour} on {furniture}",
        "{kitchenware#:material} {rel} {kitchenware:material}",
        "{kitchenware#} {rel} {kitchenware} on {furniture}",
        "{kitchenware#} and {kitchenware} on {furniture}",
        "{kitchenware#} on {furniture}",
        "{decor#} {rel} {decor}",
        "{toys#} {vrel} {furniture}",
        "{stationery#} {sym} {gadgets}",
        "{instruments#} leaning against {furniture}",
        "{clothing#}, {clothing} and {clothing} hanging on {furniture}",
        "{stationery#} {vrel} {stationery}",
    ),
    "animals": (
        "{pets#:colour} {rel} {pets:colour}",
        "{pets#} {rel} {pets}",
        "{pets#} sleeping on {furniture}",
        "{farm_animals#} grazing in {landscapes}",
        "{birds#} {rel} {birds}",
        "{wild_animals#} and {wild_animals} in {landscapes}",
        "{sea_animals#} {sym} {sea_animals}",
        "{insects#} resting on {flowers}",
        "{pets#}, {pets} and {pets} {vrel} {furniture}",
    ),
    "people": (
        "{people#} wearing {clothing:colour} and {clothing:colour}",
        "{people#} wearing {clothing}",
        "{professions#} holding {kitchenware}",
        "{people#} and {people} {rel} {buildings}",
        "{professions#} standing {rel} {road_vehicles}",
        "{people#} playing {instruments} in {indoor_places}",
        "{professions#} {sym} {professions}",
        "{people#} wearing {clothing} and {clothing}",
    ),
    "food": (
        "{baked_goods#:shape} {vrel} {baked_goods:shape}",
        "{fruit#} in {kitchenware}",
        "{baked_goods#} {rel} {baked_goods}",
        "{dishes#} and {fruit} on {kitchenware}",
        "{vegetables#} {sym} {kitchenware}",
        "{baked_goods#} {vrel} {kitchenware}",
        "{fruit#}, {vegetables} and {baked_goods} on {furniture}",
    ),
    "vehicles": (
        "{road_vehicles#:colour} {rel} {road_vehicles:colour}",
        "{road_vehicles#} parked {rel} {buildings}",
        "{road_vehicles#} on {roads}",
        "{watercraft#} {sym} {watercraft} on {waters}",
        "{aircraft#} flying {rel} {buildings}",
        "{aircraft#} over {landscapes}",
        "{road_vehicles#} {rel} {road_vehicles}",
        "{road_vehicles#} and {road_vehicles} {sym} {buildings}",
    ),
    "indoor_scenes": (
        "{decor#:colour} {rel} {furniture:colour} in {indoor_places}",
        "{indoor_places} with {furniture#} and {decor}",
        "{furniture#} {rel} {decor} in {indoor_places}",
        "{decor#} {sym} {furniture} in {indoor_places}",
        "{pets#} sleeping {rel} {furniture} in {indoor_places}",
        "{decor#} {vrel} {furniture} in {indoor_places}",
    ),
    "natural_scenes": (
        "{buildings#:colour} and {buildings:colour} {sym} {trees}",
        "{trees#} {rel} {buildings} in {landscapes}",
        "{flowers#} {sym} {trees}",
        "{buildings#} {rel} {trees}",
        "{landscapes} with {trees#} and {buildings}",
        "{flowers#} in {kitchenware}",
    ),
    "art_styles": (
        "{artworks} of {pets#:colour} and {pets:colour}",
        "{artworks} of {pets#} {rel} {kitchenware}",
        "{artworks} of {fruit#} in {kitchenware}",
        "{artworks} of {people#} and {people} {rel} {buildings}",
        "{artworks} of {birds#} {vrel} {trees}",
        "{artworks} of {road_vehicles#}, {road_vehicles} and {road_vehicles}",
    ),
}

RELATIONS = {
    "rel": ("to the left of", "to the right of", "in front of", "behind"),
    "vrel": ("above", "below", "on top of", "underneath"),
    "sym": ("next to", "near", "beside"),
}
_SLOT = re.compile(r"\{(\w+?)(#?)(?::(\w+))?\}")


def render(template: str, vocab: Vocabulary, rng: np.random.Generator) -> str:
    """Fill a template; a noun appears at most once per prompt."""
    used: set[str] = set()

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
        while made < per_category:
            if attempt > 100 * per_category:
                raise RuntimeError(f"templates of {category!r} cannot make {per_category} distinct prompts")
            text = normalize_text(render(templates[attempt % len(templates)], vocab, rng))
            attempt += 1
            if text.casefold() not in seen:
                seen.add(text.casefold())
                rows.append((text, category))
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
