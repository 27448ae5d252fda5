"""Per-step metrics: a CSV (always), TensorBoard (when installed) and the end-of-run PNG."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

COLUMNS = [
    "step", "stage", "kind", "loss", "loss_quality", "loss_alignment", "accuracy", "lr", "pairs_per_s", "skipped",
    "heldout_accuracy", "heldout_accuracy_quality", "heldout_accuracy_alignment", "heldout_loss", "heldout_pairs",
]


class MetricsLog:
    """Appends one row per step to `metrics.csv`; on resume, rows after the resumed step are dropped
    so the file matches the model's history."""

    def __init__(self, output: Path, resume_step: int = 0):
        self.path = output / "metrics.csv"
        rows = read_metrics(self.path) if resume_step and self.path.is_file() else []
        rows = [row for row in rows if int(row["step"]) <= resume_step]
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.tensorboard = _tensorboard(output / "tensorboard")

    def log(self, metrics: dict[str, Any]) -> None:
        unknown = set(metrics) - set(COLUMNS)
        if unknown:
            raise KeyError(f"metrics {sorted(unknown)} have no CSV column")
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=COLUMNS).writerow(metrics)
        if self.tensorboard is not None:
            for name, value in metrics.items():
                if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.tensorboard.add_scalar(name, value, metrics["step"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _tensorboard(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(directory))


def read_metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plot_metrics(csv_path: Path, png_path: Path) -> Path:
    """Training loss (raw and smoothed) and held-out pairwise accuracy over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(csv_path)
    steps = [int(r["step"]) for r in rows if r["loss"]]
    loss = [float(r["loss"]) for r in rows if r["loss"]]
    evals = [(int(r["step"]), float(r["heldout_accuracy"])) for r in rows if r["heldout_accuracy"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(steps, loss, alpha=0.35, label="train loss")
    if loss:
        window = max(1, len(loss) // 20)
        smooth = [sum(loss[max(0, i - window + 1) : i + 1]) / len(loss[max(0, i - window + 1) : i + 1]) for i in range(len(loss))]
        top.plot(steps, smooth, label=f"moving mean ({window})")
    top.set_ylabel("loss")
    top.legend()
    if evals:
        bottom.plot(*zip(*evals, strict=True), marker="o", label="held-out pairwise accuracy")
    bottom.axhline(0.5, color="grey", linestyle="--", label="chance")
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("step")
    bottom.set_ylabel("accuracy")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
