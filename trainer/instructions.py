"""Instruction-tuning conversations derived from pair records, and their JSONL export.

Each pair yields one pairwise question (which of two images is better, images in random order) and a
single-image question (good/poor, or match yes/no) about the positive or the negative. Text-side
alignment pairs (same image, a perturbed `neg_prompt`) ask which of two prompts the image matches,
since both images would be identical. Wording is drawn from several templates so the model learns
the task rather than one sentence. Export follows the LLaVA/ShareGPT layout: `{"id", "image":
[paths], "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairgen.shards import encode_png, iter_pairs

PAIRWISE = {
    "quality": [
        "Which image has better visual quality?",
        "Compare the two images. Which one has better visual quality?",
        "Looking at technical quality only (sharpness, noise, artifacts), which image is better?",
    ],
    "alignment": [
        "Which image better matches the prompt '{prompt}'?",
        "The prompt was '{prompt}'. Which image follows it more faithfully?",
        "Which of the two images is a better depiction of '{prompt}'?",
    ],
}
PAIRWISE_ANSWERS = [("The first image.", "The second image."), ("Image 1.", "Image 2.")]
PROMPT_CHOICE = [
    "Which prompt does this image match better: A) '{a}' or B) '{b}'?",
    "Does this image better fit '{a}' (A) or '{b}' (B)?",
]
SINGLE = {
    "quality": [
        ("Is the visual quality of this image good or poor?", "Good.", "Poor."),
        ("Rate the visual quality of this image as good or poor.", "Good.", "Poor."),
    ],
    "alignment": [
        ("Does this image match the prompt '{prompt}'?", "Yes.", "No."),
        ("Is this image a faithful depiction of '{prompt}'? Answer yes or no.", "Yes.", "No."),
    ],
}


@dataclass(frozen=True)
class Conversation:
    """One question/answer turn about `images` (in the order the question refers to them)."""

    id: str
    images: list[np.ndarray]
    image_names: list[str]
    question: str
    answer: str

    def to_llava(self, image_paths: list[str]) -> dict:
        placeholders = "<image>\n" * len(image_paths)
        return {
            "id": self.id,
            "image": image_paths,
            "conversations": [
                {"from": "human", "value": placeholders + self.question},
                {"from": "gpt", "value": self.answer},
            ],
        }


def conversations_for_pair(pair, rng: random.Random) -> list[Conversation]:
    """A pairwise and a single-image conversation for one decoded `Pair`."""
    record = pair.record
    key, aspect = record.key, record.aspect
    images = {"pos": pair.pos, "neg": pair.neg}
    out = []
    if aspect == "alignment" and record.neg_prompt is not None:
        pos_first = rng.random() < 0.5
        a, b = (record.prompt, record.neg_prompt) if pos_first else (record.neg_prompt, record.prompt)
        question = rng.choice(PROMPT_CHOICE).format(a=a, b=b)
        out.append(Conversation(f"{key}-pair", [pair.pos], ["pos"], question, "A." if pos_first else "B."))
    else:
        order = ["pos", "neg"] if rng.random() < 0.5 else ["neg", "pos"]
        answers = rng.choice(PAIRWISE_ANSWERS)
        question = rng.choice(PAIRWISE[aspect]).format(prompt=record.prompt)
        answer = answers[order.index("pos")]
        out.append(Conversation(f"{key}-pair", [images[n] for n in order], order, question, answer))
    # A generation-level alignment negative (lower guidance, an older model) was rendered from the same
    # prompt: worse than its positive, not a mismatch on its own, so only the positive gets asked about.
    which = rng.choice(["pos"] if aspect == "alignment" and record.family == "generation" else ["pos", "neg"])
    question, good, bad = rng.choice(SINGLE[aspect])
    prompt = record.neg_text if which == "neg" else record.prompt
    out.append(
        Conversation(f"{key}-{which}", [images[which]], [which], question.format(prompt=prompt), good if which == "pos" else bad)
    )
    return out


def iter_conversations(pairs: Iterable, seed: int = 0) -> Iterator[Conversation]:
    rng = random.Random(seed)
    for pair in pairs:
        yield from conversations_for_pair(pair, rng)


def export_jsonl(pairs: Iterable, out_dir: str | Path, seed: int = 0) -> Path:
    """Write `conversations.jsonl` and the images it refers to (`images/{key}.{pos|neg}.png`)."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    path = out_dir / "conversations.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for conv in iter_conversations(pairs, seed):
            key = conv.id.split("-")[0]
            paths = []
            for name, image in zip(conv.image_names, conv.images, strict=True):
                relative = f"images/{key}.{name}.png"
                if not (out_dir / relative).exists():
                    (out_dir / relative).write_bytes(encode_png(image))
                paths.append(relative)
            handle.write(json.dumps(conv.to_llava(paths), ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export instruction conversations from pair shards as LLaVA-style JSONL.")
    parser.add_argument("--shards", required=True, help="shard folder or shard file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(export_jsonl(iter_pairs(args.shards), args.out, args.seed))


if __name__ == "__main__":
    main()
