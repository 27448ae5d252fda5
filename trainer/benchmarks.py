"""Human-scored benchmarks behind one small interface: a registry of dataset adapters.

Every adapter turns a dataset's own layout into a `Benchmark`: image paths, prompts, a group per
image (the generator, for per-generator breakdowns) and one MOS column per `Dimension`. Each
dimension says which critic output (`quality` or `alignment`) it is compared with. Problems are
raised as `BenchmarkError` with the missing files or columns named.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

Target = Literal["quality", "alignment"]
TARGETS: tuple[str, ...] = ("quality", "alignment")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class BenchmarkError(ValueError):
    """A dataset that cannot be read as asked; the message names the missing files or columns."""


@dataclass(frozen=True)
class Dimension:
    """One human-score column and the critic output it is compared with."""

    name: str
    target: Target


@dataclass(frozen=True)
class Item:
    path: Path
    prompt: str
    group: str
    scores: dict[str, float]


@dataclass(frozen=True)
class Benchmark:
    name: str
    root: Path
    dimensions: tuple[Dimension, ...]
    items: tuple[Item, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def prompts(self) -> list[str]:
        return [item.prompt for item in self.items]

    @property
    def groups(self) -> list[str]:
        return [item.group for item in self.items]

    def mos(self, dimension: str) -> np.ndarray:
        return np.array([item.scores[dimension] for item in self.items], dtype=np.float64)

    def subset(self, indices: Sequence[int]) -> Benchmark:
        return replace(self, items=tuple(self.items[i] for i in indices))


# --- reading helpers -------------------------------------------------------------------------


def read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV file; a missing file or missing columns raise an error that names them."""
    if not path.is_file():
        raise BenchmarkError(f"file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in required if c not in columns]
        if missing:
            raise BenchmarkError(f"{path}: missing column(s) {missing}; found {columns}")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def parse_score(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BenchmarkError(f"{where}: not a number: {value!r}") from None


def check_images(paths: Sequence[Path], dataset: str) -> None:
    """Raise naming the missing image files (the first ten and how many in all)."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise BenchmarkError(f"{dataset}: {len(missing)} of {len(paths)} image(s) missing: {shown}")


def load_image(path: str | Path) -> np.ndarray:
    """An image file as a uint8 RGB array (H, W, 3)."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise BenchmarkError(f"cannot read image: {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _table_benchmark(
    name: str,
    root: Path,
    rows: list[dict[str, str]],
    where: Path,
    image_dir: Path,
    path_column: str,
    prompt_column: str | None,
    group_of: Callable[[dict[str, str]], str],
    dimensions: dict[str, tuple[str, Target]],
    notes: tuple[str, ...] = (),
) -> Benchmark:
    """A Benchmark from CSV rows: `dimensions` maps a dimension name to (column, target)."""
    items = []
    for line, row in enumerate(rows, start=2):
        scores = {dim: parse_score(row[col], f"{where}:{line}: column {col!r}") for dim, (col, _) in dimensions.items()}
        items.append(
            Item(
                path=image_dir / row[path_column],
                prompt=row[prompt_column] if prompt_column else "",
                group=group_of(row),
                scores=scores,
            )
        )
    if not items:
        raise BenchmarkError(f"{where}: no rows")
    check_images([item.path for item in items], name)
    dims = tuple(Dimension(dim, target) for dim, (_, target) in dimensions.items())
    return Benchmark(name=name, root=root, dimensions=dims, items=tuple(items), notes=notes)


# --- registry ---------------------------------------------------------------------------------

Adapter = Callable[..., Benchmark]
BENCHMARKS: dict[str, Adapter] = {}


def register_benchmark(name: str) -> Callable[[Adapter], Adapter]:
    def add(adapter: Adapter) -> Adapter:
        BENCHMARKS[name] = adapter
        return adapter

    return add


def load_benchmark(name: str, root: str | Path, **options: str) -> Benchmark:
    """Load benchmark `name` from `root`; unknown names or options list the valid ones."""
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
    check_options(BENCHMARKS[name], options, f"benchmark {name!r}", skip=("root",))
    root = Path(root)
    if not root.exists():
        raise BenchmarkError(f"benchmark root not found: {root}")
    return BENCHMARKS[name](root, **options)


def check_options(factory: Callable[..., object], options: dict[str, object], what: str, skip: Sequence[str] = ()) -> None:
    """Refuse options `factory` does not take, listing the valid ones (shared by every registry here)."""
    valid = [p for p in inspect.signature(factory).parameters if p not in skip]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise BenchmarkError(f"{what}: unknown option(s) {unknown}; valid options: {valid}")


@register_benchmark("agiqa3k")
def agiqa3k(root: Path, csv_name: str = "data.csv", images: str = "images") -> Benchmark:
    """AGIQA-3K layout: `data.csv` (name, prompt, mos_quality, mos_align); generator = name prefix."""
    rows = read_csv(root / csv_name, ["name", "prompt", "mos_quality", "mos_align"])
    return _table_benchmark(
        "agiqa3k",
        root,
        rows,
        root / csv_name,
        root / images,
        path_column="name",
        prompt_column="prompt",
        group_of=lambda row: row["name"].rsplit("_", 1)[0],
        dimensions={"mos_quality": ("mos_quality", "quality"), "mos_align": ("mos_align", "alignment")},
    )


@register_benchmark("koniq10k")
def koniq10k(root: Path, csv_name: str = "koniq10k_scores_and_distributions.csv", images: str = "1024x768") -> Benchmark:
    """KonIQ-10k: in-the-wild photos, quality only (`image_name`, `MOS`); no prompts, one group."""
    rows = read_csv(root / csv_name, ["image_name", "MOS"])
    return _table_benchmark(
        "koniq10k",
        root,
        rows,
        root / csv_name,
        root / images,
        path_column="image_name",
        prompt_column=None,
        group_of=lambda row: "all",
        dimensions={"mos": ("MOS", "quality")},
    )


@register_benchmark("csv")
def generic_csv(
    root: Path,
    csv_name: str = "data.csv",
    path_column: str = "path",
    prompt_column: str = "prompt",
    quality_column: str = "quality",
    alignment_column: str = "alignment",
    group_column: str = "",
) -> Benchmark:
    """Any CSV with image paths (relative to the CSV's folder), prompts and score columns.

    `root` is the CSV file or its folder. Score columns that are absent are skipped, but at least
    one of the quality/alignment columns must exist; an alignment column needs the prompt column.
    """
    csv_path = root if root.is_file() else root / csv_name
    rows = read_csv(csv_path, [path_column])
    columns = set(rows[0]) if rows else set()
    dimensions = {
        col: (col, target)
        for col, target in ((quality_column, "quality"), (alignment_column, "alignment"))
        if col in columns
    }
    if not dimensions:
        raise BenchmarkError(
            f"{csv_path}: no score column; expected {quality_column!r} and/or {alignment_column!r}, found {sorted(columns)}"
        )
    needed = ([prompt_column] if alignment_column in dimensions else []) + ([group_column] if group_column else [])
    read_csv(csv_path, needed)  # names any missing prompt/group column
    return _table_benchmark(
        "csv",
        csv_path.parent,
        rows,
        csv_path,
        csv_path.parent,
        path_column=path_column,
        prompt_column=prompt_column if prompt_column in columns else None,
        group_of=lambda row: row[group_column] if group_column else "all",
        dimensions=dimensions,
    )


AIGCIQA2023_DIMENSIONS: dict[str, Target] = {"quality": "quality", "authenticity": "quality", "correspondence": "alignment"}


def _read_mat_vector(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise BenchmarkError(f"file not found: {path}")
    arrays = [v for k, v in loadmat(path).items() if not k.startswith("__")]
    if len(arrays) != 1:
        raise BenchmarkError(f"{path}: expected one MOS array, found {len(arrays)}")
    return np.asarray(arrays[0], dtype=np.float64).reshape(-1)


@register_benchmark("aigciqa2023")
def aigciqa2023(root: Path, prompts: str = "", images: str = "Image/allimg", mos_dir: str = "DATA/MOS") -> Benchmark:
    """AIGCIQA2023: `DATA/MOS/mosz{1,2,3}.mat` (quality, authenticity, correspondence), image i = `{i}.png`.

    The release has no prompt table in a fixed format, so `prompts` names a CSV with `name, prompt`
    (and optionally `generator`) rows; without it correspondence is skipped (noted in the report).
    """
    mos = {
        dim: _read_mat_vector(root / mos_dir / f"mosz{i}.mat") for i, dim in enumerate(AIGCIQA2023_DIMENSIONS, start=1)
    }
    sizes = {dim: len(v) for dim, v in mos.items()}
    if len(set(sizes.values())) != 1:
        raise BenchmarkError(f"{root / mos_dir}: MOS files differ in length: {sizes}")
    names = [f"{i}.png" for i in range(len(mos["quality"]))]
    prompt_of: dict[str, str] = {}
    group_of: dict[str, str] = {}
    notes: tuple[str, ...] = ()
    if prompts:
        prompt_rows = read_csv(Path(prompts) if Path(prompts).is_absolute() else root / prompts, ["name", "prompt"])
        prompt_of = {row["name"]: row["prompt"] for row in prompt_rows}
        group_of = {row["name"]: row.get("generator", "all") or "all" for row in prompt_rows}
        missing = [n for n in names if n not in prompt_of]
        if missing:
            raise BenchmarkError(f"{prompts}: no prompt for {len(missing)} image(s): {missing[:10]}")
    else:
        mos.pop("correspondence")
        notes = ("correspondence skipped: no prompts file given (option prompts=FILE)",)
    rows = [{"name": n, "prompt": prompt_of.get(n, ""), **{d: str(v[i]) for d, v in mos.items()}} for i, n in enumerate(names)]
    return _table_benchmark(
        "aigciqa2023",
        root,
        rows,
        root / mos_dir,
        root / images,
        path_column="name",
        prompt_column="prompt",
        group_of=lambda row: group_of.get(row["name"], "all"),
        dimensions={dim: (dim, AIGCIQA2023_DIMENSIONS[dim]) for dim in mos},
        notes=notes,
    )


# --- prompt-disjoint split for supervised baselines ------------------------------------------


def prompt_fraction(prompt: str, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) per prompt (blake2b of salt + prompt)."""
    digest = hashlib.blake2b((salt + prompt).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def prompt_disjoint_split(prompts: Sequence[str], test_fraction: float = 0.3, salt: str = "") -> tuple[list[int], list[int]]:
    """(train, test) indices such that no prompt is in both: a prompt goes to test when its hash < fraction."""
    test = [i for i, p in enumerate(prompts) if prompt_fraction(p, salt) < test_fraction]
    test_set = set(test)
    return [i for i in range(len(prompts)) if i not in test_set], test
