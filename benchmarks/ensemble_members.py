"""How much one head varies, and what averaging heads buys: every member of head-ensemble critics
(`head.ensemble: K`) scored on a human-scored benchmark, next to its ensemble and the sharpness floor.

    .venv/bin/python benchmarks/ensemble_members.py --benchmark agiqa3k --root ../shared/benchmarks/agiqa3k-dev \\
        out/train_ens/best out/train_ens_seed1/best [--json out.json]

Per checkpoint and MOS dimension: SRCC of each member (a single head, as a one-head run would give,
but all on the same batches), of the member mean (what the checkpoint scores), and the ensemble's
paired SRCC difference to the variance of the Laplacian, and the share of the ensemble's score
variance that lies between prompts next to the human scores' own (`trainer.metrics.prompt_share`;
`--uncentred` scores a centred critic's raw alignment). With several checkpoints (seeds), also the
mean of their scores. Evaluation only: nothing here feeds training or model selection.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.baselines import make_baseline
from trainer.benchmarks import BENCHMARKS, TARGETS, Benchmark, load_benchmark
from trainer.critic import Critic
from trainer.evaluate import BOOTSTRAP_UNITS, bootstrap_clusters, bootstrap_unit, prediction_for
from trainer.losses import ASPECT_INDEX, MEMBERS
from trainer.metrics import paired_srcc_difference, prompt_share, srcc, zscore
from trainer.score import predict

class MemberScorer:
    """A critic's mean scores plus each member's, as `member<k>.<aspect>` outputs."""

    def __init__(self, critic: Critic, checkpoint: str, centre: bool = True):
        if critic.config.head.ensemble == 1:
            raise SystemExit(f"{checkpoint}: not a head ensemble (critic.head.ensemble is 1)")
        self.critic = critic.eval()
        self.centre = centre

    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, np.ndarray]:
        out = self.critic.predict(images, prompts, centre=self.centre)
        scores = {aspect: out[aspect].numpy() for aspect in TARGETS}
        for k in range(out[MEMBERS].shape[1]):
            for aspect, index in ASPECT_INDEX.items():  # the members' last axis is in ASPECT_INDEX order
                scores[f"member{k}.{aspect}"] = out[MEMBERS][:, k, index].numpy()
        return scores


def summarise(benchmark: Benchmark, name: str, predictions: dict[str, np.ndarray], floor: dict[str, np.ndarray], n_boot: int, unit: str) -> dict[str, dict]:
    rows = {}
    for dim in benchmark.dimensions:
        mos = benchmark.mos(dim.name)
        members = [srcc(values, mos) for key, values in predictions.items() if key.endswith("." + dim.target)]
        ensemble = prediction_for(predictions, dim)
        versus = paired_srcc_difference(ensemble, prediction_for(floor, dim), mos, n_boot, clusters=bootstrap_clusters(benchmark, unit))
        rows[dim.name] = {
            "checkpoint": name,
            "members": members,
            "member_mean": statistics.fmean(members) if members else float("nan"),
            "member_sd": statistics.stdev(members) if len(members) > 1 else float("nan"),
            "ensemble": srcc(ensemble, mos),
            "vs_floor": versus,
            "prompt_share": prompt_share(ensemble, benchmark.prompts),
            "human_prompt_share": prompt_share(mos, benchmark.prompts),
        }
    return rows


def _share(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "—"


def markdown(rows: list[dict], floor: dict[str, float]) -> str:
    lines = [
        "| checkpoint | dimension | members (SRCC) | member mean ± sd | ensemble | Δ vs Laplacian [95% CI], p | prompt share (human) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        v = row["vs_floor"]
        members = " ".join(f"{m:.3f}" for m in row["members"]) or "—"
        spread = f"{row['member_mean']:.3f} ± {row['member_sd']:.3f}" if row["members"] else "—"
        lines.append(
            f"| {row['checkpoint']} | {row['dimension']} | {members} | {spread} | **{row['ensemble']:.3f}** | "
            f"{v['delta']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}], {v['p_not_above']:.3f} | "
            f"{_share(row['prompt_share'])} ({_share(row['human_prompt_share'])}) |"
        )
    lines.append("")
    lines.append("Laplacian floor: " + ", ".join(f"{dim} {value:.3f}" for dim, value in floor.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="head-ensemble critic checkpoint folders (e.g. one per seed)")
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--root", required=True)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--bootstrap-unit", choices=BOOTSTRAP_UNITS, default=BOOTSTRAP_UNITS[0], help="as in trainer.evaluate")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--uncentred", action="store_true", help="score a centred critic's raw alignment (no reference images)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    benchmark = load_benchmark(args.benchmark, args.root)
    unit = bootstrap_unit(benchmark, args.bootstrap_unit)
    paths = [item.path for item in benchmark.items]
    floor = predict(make_baseline("laplacian"), paths, benchmark.prompts, args.batch_size)
    per_checkpoint = {}
    for checkpoint in args.checkpoints:
        per_checkpoint[checkpoint] = predict(MemberScorer(Critic.from_pretrained(checkpoint), checkpoint, centre=not args.uncentred), paths, benchmark.prompts, args.batch_size, desc=checkpoint)
    rows = []
    for checkpoint, predictions in per_checkpoint.items():
        rows += [{"dimension": dim, **row} for dim, row in summarise(benchmark, checkpoint, predictions, floor, args.bootstrap, unit).items()]
    if len(per_checkpoint) > 1:  # the seeds' scores averaged (z-scored first: each run has its own scale)
        combined = {aspect: np.mean([zscore(p[aspect]) for p in per_checkpoint.values()], axis=0) for aspect in TARGETS}
        rows += [{"dimension": dim, **row} for dim, row in summarise(benchmark, "mean of the checkpoints", combined, floor, args.bootstrap, unit).items()]
    floor_srcc = {dim.name: srcc(prediction_for(floor, dim), benchmark.mos(dim.name)) for dim in benchmark.dimensions}
    print(markdown(rows, floor_srcc) + f" (paired bootstrap over {unit}s)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "floor": floor_srcc, "bootstrap_unit": unit}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
