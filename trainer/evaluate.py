"""Agreement with people: evaluate a critic and baselines on a human-scored benchmark.

    python -m trainer.evaluate --checkpoint CKPT --benchmark agiqa3k --root ../shared/benchmarks/agiqa3k-dev
    python -m trainer.evaluate --baselines-only --benchmark agiqa3k --root ... --clip-agiqa out/clip_agiqa

Writes `report.json`, `report.md`, `predictions.csv` and one `scatter_<method>.png` per method to
`--out`: SRCC, KRCC and PLCC (after a four-parameter logistic fit) per MOS dimension with bootstrap
intervals, a per-generator breakdown, and with `--pairs DIR` the pairwise accuracy on held-out
synthetic pairs by family and corruption. Supervised baselines are scored only on images whose
prompts they were not trained on; their rows are reported on that held-out part, next to every
other method on the same images.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.benchmarks import BENCHMARKS, Benchmark, BenchmarkError, Dimension, load_benchmark
from trainer.metrics import METRICS, bootstrap_ci, correlations, logistic_mapped, paired_srcc_difference, pairwise_accuracy
from trainer.score import Scorer, UsageError, load_critic, parse_options, predict, to_numpy

DEFAULT_BASELINES = ("laplacian", "brisque", "cosine")
DEFAULT_REFERENCE = "laplacian"
MIN_GROUP_SIZE = 5  # correlations on fewer images say nothing
BOOTSTRAP_UNITS = ("prompt", "image")
"""What `--bootstrap-unit` can resample (`bootstrap_unit`, `bootstrap_clusters`); the first is the default."""


@dataclass
class Method:
    name: str
    scorer: Scorer
    supervised: bool = False
    note: str = ""

    @property
    def train_prompts(self) -> set[str]:
        return set(getattr(self.scorer, "train_prompts", ()))


# --- predictions and metrics -----------------------------------------------------------------


def method_predictions(method: Method, benchmark: Benchmark, batch_size: int) -> dict[str, np.ndarray]:
    """All outputs of a method on the benchmark; NaN where a supervised method saw the prompt in training."""
    allowed = [i for i, p in enumerate(benchmark.prompts) if p not in method.train_prompts]
    if not allowed:
        raise BenchmarkError(f"{method.name}: every prompt of {benchmark.name} was in its training data; nothing to evaluate")
    part = benchmark.subset(allowed)
    scores = predict(method.scorer, [i.path for i in part.items], part.prompts, batch_size, desc=method.name)
    full = {}
    for key, values in scores.items():
        full[key] = np.full(len(benchmark), np.nan)
        full[key][allowed] = values
    return full


def prediction_for(predictions: dict[str, np.ndarray], dimension: Dimension) -> np.ndarray | None:
    """The output compared with a dimension: one named after it, else its target (quality/alignment)."""
    return predictions.get(dimension.name, predictions.get(dimension.target))


def bootstrap_clusters(part: Benchmark, unit: str) -> list[str] | None:
    """What the bootstrap resamples for `unit` "prompt": the images' prompts (whole prompts drawn with
    replacement, `trainer.metrics.Resampler`); for "image", None (images one by one)."""
    return part.prompts if unit == "prompt" else None


def bootstrap_unit(benchmark: Benchmark, requested: str) -> str:
    """The unit to resample: "prompt" when requested and every image has a prompt (KonIQ-10k has
    none), else "image"."""
    return "prompt" if requested == "prompt" and all(benchmark.prompts) else "image"


def dimension_result(pred: np.ndarray, mos: np.ndarray, part: Benchmark, n_boot: int, unit: str) -> dict[str, Any]:
    """Overall correlations with bootstrap intervals, and correlations per group (generator)."""
    groups = part.groups
    ci95 = bootstrap_ci(pred, mos, n_boot, clusters=bootstrap_clusters(part, unit))
    result: dict[str, Any] = {"n": len(mos), **correlations(pred, mos), "ci95": ci95}
    per_group = {}
    for group in sorted(set(groups)):
        idx = np.array([g == group for g in groups])
        if idx.sum() >= MIN_GROUP_SIZE:
            per_group[group] = {"n": int(idx.sum()), **correlations(pred[idx], mos[idx])}
    result["per_group"] = per_group
    return result


def subsets_of(benchmark: Benchmark, methods: Sequence[Method]) -> dict[str, tuple[str, list[int]]]:
    """`all` images, plus `heldout` (prompts no supervised method trained on) when there is one."""
    subsets = {"all": (f"all {len(benchmark)} images", list(range(len(benchmark))))}
    seen = set().union(*(m.train_prompts for m in methods))
    if seen:
        idx = [i for i, p in enumerate(benchmark.prompts) if p not in seen]
        prompts = len({benchmark.prompts[i] for i in idx})
        subsets["heldout"] = (f"prompt-disjoint held-out part: {len(idx)} images, {prompts} prompts", idx)
    return subsets


def versus_reference(
    part: Benchmark, idx: list[int], predictions: dict[str, dict[str, np.ndarray]], methods: Sequence[str], reference: str, n_boot: int,
    unit: str,
) -> dict[str, dict[str, Any]]:
    """Per method and dimension: SRCC minus the reference method's, paired on the images both scored."""
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        for dim in part.dimensions:
            pred, ref = prediction_for(predictions[method], dim), prediction_for(predictions[reference], dim)
            if pred is None or ref is None:
                continue
            keep = np.flatnonzero(np.isfinite(pred[idx]) & np.isfinite(ref[idx]))
            scored = part.subset(keep)
            result = paired_srcc_difference(pred[idx][keep], ref[idx][keep], scored.mos(dim.name), n_boot, clusters=bootstrap_clusters(scored, unit))
            out.setdefault(method, {})[dim.name] = {"n": len(keep), **result}
    return out


def evaluate_benchmark(
    benchmark: Benchmark, predictions: dict[str, dict[str, np.ndarray]], methods: Sequence[Method], n_boot: int, reference: str,
    unit: str,
) -> dict[str, Any]:
    """Per subset, method and dimension: the metrics, on the images the method could score, and with a
    `reference` method (the sharpness floor) every other method's paired SRCC difference to it.

    An image a method returns no finite score for (BRISQUE on a blank image) is left out of that
    method's numbers and counted in `n_unscored`, which the Markdown report repeats.
    """
    subsets = {}
    for subset, (description, idx) in subsets_of(benchmark, methods).items():
        part = benchmark.subset(idx)
        results: dict[str, dict[str, Any]] = {}
        for method in methods:
            if method.train_prompts & set(part.prompts):
                continue  # a supervised method is never scored on what it was trained on
            for dim in benchmark.dimensions:
                pred = prediction_for(predictions[method.name], dim)
                if pred is None:
                    continue
                keep = np.flatnonzero(np.isfinite(pred[idx]))
                scored = part.subset(keep)
                result = dimension_result(pred[idx][keep], scored.mos(dim.name), scored, n_boot, unit)
                result["n_unscored"] = len(idx) - len(keep)
                results.setdefault(method.name, {})[dim.name] = result
        subsets[subset] = {"description": description, "n": len(idx), "results": results}
        if reference in results:
            others = [name for name in results if name != reference]
            subsets[subset]["versus"] = {"reference": reference, "results": versus_reference(part, idx, predictions, others, reference, n_boot, unit)}
    return subsets


# --- pairwise accuracy on synthetic pairs ----------------------------------------------------


def batched(iterable: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_pairs(pairs: Iterable[Any], methods: Sequence[Method], batch_size: int) -> tuple[list[Any], dict[str, np.ndarray]]:
    """Records, and per method the margin score(pos) - score(neg) on each pair's own aspect (NaN if not predicted).

    The negative is scored with its own `neg_prompt` when it has one (text-side alignment
    negatives: the same image under a perturbed prompt), as in training.
    """
    records, margins = [], defaultdict(list)
    for batch in batched(pairs, batch_size):
        records += [pair.record for pair in batch]
        images = [pair.pos for pair in batch] + [pair.neg for pair in batch]
        prompts = [pair.record.prompt for pair in batch] + [pair.record.neg_text for pair in batch]
        for method in methods:
            scores = method.scorer.score(images, prompts)
            for i, pair in enumerate(batch):
                aspect = pair.record.aspect
                values = to_numpy(scores[aspect]) if aspect in scores else None
                margins[method.name].append(values[i] - values[len(batch) + i] if values is not None else np.nan)
    return records, {name: np.asarray(values) for name, values in margins.items()}


def pairwise_report(records: Sequence[Any], margins: dict[str, np.ndarray]) -> dict[str, Any]:
    """Accuracy per method overall and by aspect, family and (family, corruption)."""
    keys = {
        "aspect": [r.aspect for r in records],
        "family": [f"{r.aspect}/{r.family}" for r in records],
        "corruption": [f"{r.aspect}/{r.family}/{r.corruption}" for r in records],
    }
    report: dict[str, Any] = {"n_pairs": len(records), "methods": {}}
    for name, margin in margins.items():
        scored = ~np.isnan(margin)
        entry: dict[str, Any] = {"overall": _accuracy(margin[scored])}
        for level, labels in keys.items():
            entry[level] = {
                label: _accuracy(margin[[l == label and s for l, s in zip(labels, scored)]])
                for label in sorted(set(labels))
                if any(l == label and s for l, s in zip(labels, scored))
            }
        report["methods"][name] = entry
    return report


def _accuracy(margin: np.ndarray) -> dict[str, float]:
    return {"n": int(len(margin)), "accuracy": pairwise_accuracy(margin, np.zeros_like(margin))}


# --- reports ---------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.3f}"


def json_safe(value: Any) -> Any:
    """NaN (an undefined correlation) as null, so the report is strict JSON."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def markdown_report(report: dict[str, Any]) -> str:
    """The human-readable report: headline tables per subset, per-generator SRCC, pairs, notes."""
    bench = report["benchmark"]
    lines = [f"# Evaluation on {bench['name']} ({bench['root']})", ""]
    lines += [f"- {note}" for note in bench["notes"] + [m["note"] for m in report["methods"].values() if m["note"]]]
    lines += [f"- command: `{report['command']}`"]
    lines += [f"- 95% intervals and p: {report['bootstrap']['resamples']} bootstrap resamples of {report['bootstrap']['unit']}s", ""]
    dims = [d["name"] for d in bench["dimensions"]]
    for subset in report["subsets"].values():
        lines += [f"## {subset['description']}", ""]
        header = "| method | " + " | ".join(f"{d} SRCC [95% CI] | {d} KRCC | {d} PLCC" for d in dims) + " |"
        lines += [header, "|" + "---|" * (1 + 3 * len(dims))]
        for method, per_dim in subset["results"].items():
            cells = []
            for d in dims:
                r = per_dim.get(d)
                if r is None:
                    cells += ["–", "–", "–"]
                else:
                    lo, hi = r["ci95"]["srcc"]
                    cells += [f"{_fmt(r['srcc'])} [{_fmt(lo)}, {_fmt(hi)}]", _fmt(r["krcc"]), _fmt(r["plcc"])]
            label = method + (" (supervised)" if report["methods"][method]["supervised"] else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        unscored = [
            f"- {method} {d}: {r['n_unscored']} image(s) without a finite score, left out of its numbers"
            for method, per_dim in subset["results"].items()
            for d, r in per_dim.items()
            if r["n_unscored"]
        ]
        lines += [""] + unscored if unscored else []
        lines += _versus_markdown(subset.get("versus"), dims)
        lines += ["", "SRCC per generator:", ""]
        groups = sorted({g for per_dim in subset["results"].values() for r in per_dim.values() for g in r["per_group"]})
        columns = [(m, d) for m, per_dim in subset["results"].items() for d in per_dim]
        lines += ["| generator | n | " + " | ".join(f"{m} {d}" for m, d in columns) + " |", "|" + "---|" * (2 + len(columns))]
        for group in groups:
            cells = [subset["results"][m][d]["per_group"].get(group) for m, d in columns]
            n = next((c["n"] for c in cells if c), 0)
            lines.append(f"| {group} | {n} | " + " | ".join(_fmt(c["srcc"]) if c else "–" for c in cells) + " |")
        lines.append("")
    if report.get("pairs"):
        lines += _pairs_markdown(report["pairs"])
    lines += [f"![{name}]({file})" for name, file in report["plots"].items()]
    return "\n".join(lines) + "\n"


def _signed(value: float) -> str:
    return _fmt(value) if not np.isfinite(value) else f"{value:+.3f}"


def _versus_markdown(versus: dict[str, Any] | None, dims: list[str]) -> list[str]:
    if not versus or not versus["results"]:
        return []
    reference = versus["reference"]
    lines = ["", f"SRCC minus {reference}'s on the same images (paired bootstrap; p = share of resamples not above {reference}):", ""]
    lines += ["| method | " + " | ".join(f"{d} ΔSRCC [95% CI] | p" for d in dims) + " |", "|" + "---|" * (1 + 2 * len(dims))]
    for method, per_dim in versus["results"].items():
        cells = []
        for d in dims:
            r = per_dim.get(d)
            cells += ["–", "–"] if r is None else [f"{_signed(r['delta'])} [{_signed(r['ci95'][0])}, {_signed(r['ci95'][1])}]", _fmt(r["p_not_above"])]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _pairs_markdown(pairs: dict[str, Any]) -> list[str]:
    methods = list(pairs["methods"])
    lines = [f"## Pairwise accuracy on {pairs['n_pairs']} synthetic pairs ({pairs['source']})", ""]
    lines += ["| group | n | " + " | ".join(methods) + " |", "|" + "---|" * (2 + len(methods))]
    rows = ["overall"] + [(level, label) for level in ("aspect", "family", "corruption") for label in
                          sorted({l for m in methods for l in pairs["methods"][m][level]})]
    for row in rows:
        cells = [pairs["methods"][m]["overall"] if row == "overall" else pairs["methods"][m][row[0]].get(row[1]) for m in methods]
        n = max((c["n"] for c in cells if c), default=0)
        label = row if row == "overall" else row[1]
        lines.append(f"| {label} | {n} | " + " | ".join(_fmt(c["accuracy"]) if c and c["n"] else "–" for c in cells) + " |")
    return lines + [""]


def scatter_plots(benchmark: Benchmark, predictions: dict[str, dict[str, np.ndarray]], out: Path) -> dict[str, str]:
    """One PNG per method: prediction vs MOS per dimension, with the fitted logistic curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    for method, preds in predictions.items():
        dims = [(d, prediction_for(preds, d)) for d in benchmark.dimensions]
        dims = [(d, p) for d, p in dims if p is not None]
        if not dims:
            continue
        fig, axes = plt.subplots(1, len(dims), figsize=(4.5 * len(dims), 4), squeeze=False)
        for ax, (dim, pred) in zip(axes[0], dims):
            keep = np.isfinite(pred)
            x, y = pred[keep], benchmark.mos(dim.name)[keep]
            ax.scatter(x, y, s=8, alpha=0.5)
            order = np.argsort(x)
            mapped, fitted = logistic_mapped(x, y)
            if fitted:
                ax.plot(x[order], mapped[order], color="red", lw=1.5, label="4-parameter logistic")
                ax.legend(loc="lower right", fontsize=8)
            ax.set(xlabel=f"{method} score", ylabel=dim.name, title=f"{method} vs {dim.name} (n={keep.sum()})")
        fig.tight_layout()
        name = f"scatter_{method}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files[method] = name
    return files


def write_predictions(benchmark: Benchmark, predictions: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    columns = [(m, k) for m, preds in predictions.items() for k in preds]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "group", *[d.name for d in benchmark.dimensions], *[f"{m}.{k}" for m, k in columns]])
        for i, item in enumerate(benchmark.items):
            values = [predictions[m][k][i] for m, k in columns]
            writer.writerow([item.path, item.group, *[item.scores[d.name] for d in benchmark.dimensions], *values])


# --- CLI -------------------------------------------------------------------------------------


def find_pair_shards(directory: str) -> list[Path]:
    """Complete shards of a pair folder, checked before any scoring starts."""
    from pairgen.shards import list_shards

    if not Path(directory).is_dir():
        raise UsageError(f"pair shard folder not found: {directory}")
    shards = list_shards(directory)
    if not shards:
        raise UsageError(f"no complete pair shards (with completion markers or a manifest) in {directory}")
    return shards


def build_methods(args: argparse.Namespace) -> list[Method]:
    from trainer.baselines import SUPERVISED, available_baselines, make_baseline

    names = [n for n in args.baselines.split(",") if n] if args.baselines else []
    unknown = [n for n in names if n not in available_baselines()]
    if unknown:
        raise UsageError(f"unknown baseline(s) {unknown}; choose from {sorted(available_baselines())}")
    options: dict[str, dict[str, str]] = defaultdict(dict)
    for key, value in parse_options(args.baseline_option).items():
        if "." not in key:
            raise UsageError(f"--baseline-option expects NAME.KEY=VALUE, got {key}={value}")
        name, option = key.split(".", 1)
        options[name][option] = value
    if args.clip_agiqa:
        options["clip_agiqa"]["checkpoint"] = args.clip_agiqa
        names += [] if "clip_agiqa" in names else ["clip_agiqa"]
    methods = []
    if args.checkpoint:
        methods.append(Method("critic", load_critic(args.checkpoint), note="label-free critic: never trained on human scores"))
    for name in names:
        scorer = make_baseline(name, **options.get(name, {}))
        methods.append(Method(name, scorer, supervised=name in SUPERVISED, note=getattr(scorer, "note", "")))
    if not methods:
        raise UsageError("nothing to evaluate: give --checkpoint, or --baselines-only with at least one baseline")
    return methods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="critic checkpoint folder")
    source.add_argument("--baselines-only", action="store_true", help="report baselines without a critic")
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--root", required=True, help="benchmark folder (or CSV file for --benchmark csv)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="benchmark adapter option")
    parser.add_argument("--baselines", default=",".join(DEFAULT_BASELINES), help="comma-separated; empty for none")
    parser.add_argument("--baseline-option", action="append", default=[], metavar="NAME.KEY=VALUE")
    parser.add_argument("--clip-agiqa", metavar="CKPT", help="add the supervised CLIP-AGIQA baseline from this checkpoint")
    parser.add_argument("--pairs", metavar="DIR", help="held-out pair shards for pairwise accuracy")
    parser.add_argument("--out", default="out/eval", help="report folder")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument(
        "--bootstrap-unit", choices=BOOTSTRAP_UNITS, default=BOOTSTRAP_UNITS[0],
        help="resample whole prompts (default; images when the benchmark has none) or single images",
    )
    parser.add_argument("--reference", help=f"method every other is compared with, paired (default: {DEFAULT_REFERENCE}, the sharpness floor, when evaluated)")
    parser.add_argument("--batch-size", type=int, default=16)
    return parser


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.bootstrap < 1 or args.batch_size < 1:
        raise UsageError("--bootstrap and --batch-size must be at least 1")
    benchmark = load_benchmark(args.benchmark, args.root, **parse_options(args.option))
    pair_shards = find_pair_shards(args.pairs) if args.pairs else []
    methods = build_methods(args)
    names = [m.name for m in methods]
    if args.reference is not None and args.reference not in names:
        raise UsageError(f"--reference {args.reference!r} is not among the evaluated methods {names}")
    reference = args.reference or (DEFAULT_REFERENCE if DEFAULT_REFERENCE in names else "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    predictions = {m.name: method_predictions(m, benchmark, args.batch_size) for m in methods}
    unit = bootstrap_unit(benchmark, args.bootstrap_unit)
    report: dict[str, Any] = {
        "benchmark": {
            "name": benchmark.name,
            "root": str(benchmark.root),
            "n_images": len(benchmark),
            "dimensions": [{"name": d.name, "target": d.target} for d in benchmark.dimensions],
            "notes": list(benchmark.notes),
        },
        "methods": {m.name: {"supervised": m.supervised, "note": m.note} for m in methods},
        "metrics": list(METRICS),
        "plcc_fit": "four-parameter logistic (VQEG) on z-scored predictions",
        "bootstrap": {"resamples": args.bootstrap, "level": 0.95, "unit": unit},
        "subsets": evaluate_benchmark(benchmark, predictions, methods, args.bootstrap, reference, unit),
        "command": "python -m trainer.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    if args.pairs:
        from pairgen.shards import iter_pairs

        records, margins = score_pairs(iter_pairs(pair_shards), methods, args.batch_size)
        report["pairs"] = {"source": args.pairs, **pairwise_report(records, margins)}
    report["plots"] = scatter_plots(benchmark, predictions, out)
    write_predictions(benchmark, predictions, out / "predictions.csv")
    (out / "report.json").write_text(json.dumps(json_safe(report), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown_report(report), encoding="utf-8")
    print(f"wrote {out / 'report.md'} and {out / 'report.json'}", file=sys.stderr)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(argv)
    except (UsageError, BenchmarkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
