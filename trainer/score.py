"""Score images or folders with a critic checkpoint (or a baseline) and write CSV or JSONL.

    python -m trainer.score --checkpoint CKPT PATH... [--prompt TEXT | --prompts FILE] [-o scores.csv]

`--prompts FILE` is a CSV with `path` (or `name`) and `prompt` columns; a row matches an image by
its path as given, its path relative to the folder it was found in, or its file name. Without a
prompt, only quality is written (alignment needs a prompt). A checkpoint with `reference_images`
writes alignment relative to the prompt's mean over its reference images (0 = typical for the
prompt; docs/critic.md), so alignment values compare across prompts.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from trainer.benchmarks import IMAGE_SUFFIXES, TARGETS, BenchmarkError, load_image, read_csv


class Scorer(Protocol):
    """Anything that scores a batch: `Critic`, every baseline. Keys it does not predict are absent."""

    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> Mapping[str, Any]: ...


class UsageError(Exception):
    """A user error: the CLIs print it as one line and exit 2."""


def to_numpy(values: Any) -> np.ndarray:
    """A Tensor or array-like of scores as a float64 1-D array."""
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def predict(
    scorer: Scorer,
    paths: Sequence[Path],
    prompts: Sequence[str],
    batch_size: int = 16,
    desc: str | None = None,
) -> dict[str, np.ndarray]:
    """Every output of `scorer` for every image, read and scored in batches (progress bar on stderr)."""
    outputs: dict[str, list[np.ndarray]] = {}
    with tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, disable=desc is None) as bar:
        for start in range(0, len(paths), batch_size):
            batch = [load_image(p) for p in paths[start : start + batch_size]]
            result = scorer.score(batch, list(prompts[start : start + batch_size]))
            for key, values in result.items():
                outputs.setdefault(key, []).append(to_numpy(values))
            bar.update(len(batch))
    return {key: np.concatenate(chunks) for key, chunks in outputs.items()}


def load_critic(checkpoint: str | Path) -> Scorer:
    """A trained critic (`trainer.critic.Critic`, imported here: baselines-only runs never need it)."""
    from trainer.critic import Critic

    if not Path(checkpoint).exists():
        raise UsageError(f"checkpoint not found: {checkpoint}")
    try:
        return Critic.from_pretrained(checkpoint)
    except (FileNotFoundError, ValueError) as exc:  # not a checkpoint, invalid config, mismatched weights
        raise UsageError(f"cannot load critic checkpoint {checkpoint}: {exc}".splitlines()[0]) from None


def find_images(inputs: Sequence[str]) -> list[tuple[Path, str]]:
    """(path, key) per image: files as given, folders searched recursively; keys are relative paths."""
    found: list[tuple[Path, str]] = []
    missing = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(p, str(p.relative_to(path))) for p in files]
        elif path.is_file():
            found.append((path, path.name))
        else:
            missing.append(text)
    if missing:
        raise UsageError(f"not found: {', '.join(missing)}")
    if not found:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {', '.join(inputs)}")
    return found


def prompts_for(images: list[tuple[Path, str]], prompt: str | None, prompts_file: str | None) -> list[str] | None:
    """One prompt per image, or None when no prompt was given; an image without a row is an error."""
    if prompt is not None:
        return [prompt] * len(images)
    if prompts_file is None:
        return None
    path = Path(prompts_file)
    rows = read_csv(path, ["prompt"])
    column = "path" if rows and "path" in rows[0] else "name"
    if rows and column not in rows[0]:
        raise UsageError(f"{path}: needs a 'path' or 'name' column next to 'prompt'")
    table = {row[column]: row["prompt"] for row in rows}
    result, unmatched = [], []
    for file, key in images:
        match = next((table[k] for k in (str(file), key, file.name) if k in table), None)
        if match is None:
            unmatched.append(str(file))
        result.append(match or "")
    if unmatched:
        raise UsageError(f"{path}: no prompt for {len(unmatched)} image(s): {', '.join(unmatched[:5])}")
    return result


def write_scores(rows: list[dict[str, Any]], output: str | None, fmt: str) -> None:
    handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    finally:
        if output:
            handle.close()


def build_parser() -> argparse.ArgumentParser:
    from trainer.baselines import available_baselines

    parser = argparse.ArgumentParser(prog="python -m trainer.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="critic checkpoint folder")
    source.add_argument("--baseline", choices=sorted(available_baselines()), help="score with a baseline instead of a critic")
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--prompt", help="one prompt for every image")
    text.add_argument("--prompts", metavar="FILE", help="CSV with path (or name) and prompt columns")
    parser.add_argument("-o", "--output", help="output file (default: stdout); .jsonl implies JSONL")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="output format (default: from --output, else csv)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="baseline option")
    return parser


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` strings as a dict; a malformed one is a usage error."""
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise UsageError(f"expected KEY=VALUE, got {', '.join(bad)}")
    return dict(p.split("=", 1) for p in pairs)


def run(argv: Sequence[str] | None = None) -> int:
    from trainer.baselines import make_baseline

    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    images = find_images(args.paths)
    prompts = prompts_for(images, args.prompt, args.prompts)
    if args.checkpoint:
        scorer = load_critic(args.checkpoint)
    else:
        scorer = make_baseline(args.baseline, **parse_options(args.option))
    scores = predict(scorer, [p for p, _ in images], prompts or [""] * len(images), args.batch_size, desc="scoring")
    columns = [t for t in TARGETS if t in scores and (t != "alignment" or prompts is not None)]
    if not columns:
        raise UsageError("this scorer predicts alignment only; give --prompt or --prompts")
    rows = [
        {"path": str(path), **({"prompt": prompts[i]} if prompts else {}), **{c: float(scores[c][i]) for c in columns}}
        for i, (path, _) in enumerate(images)
    ]
    fmt = args.format or ("jsonl" if args.output and args.output.endswith(".jsonl") else "csv")
    write_scores(rows, args.output, fmt)
    print(f"scored {len(rows)} image(s): {', '.join(columns)}" + (f" -> {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except (UsageError, BenchmarkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
