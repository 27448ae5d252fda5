"""Validated configuration: strict pydantic models, YAML loading, `key.sub=value` overrides.

Every config section in the toolkit is a `StrictModel`. Problems are reported as one line per issue,
`dotted.path[index].field: what is wrong, got VALUE`, so a user can fix a YAML file without reading
a traceback. Unknown keys list the valid ones (and the closest match).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

SEVERITY_MIN, SEVERITY_MAX = 1, 5


class ConfigError(ValueError):
    """A configuration problem. `problems` holds one `path: message` line per issue."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        header = f"invalid config {source}" if source else "invalid config"
        super().__init__(header + ":\n  " + "\n  ".join(problems))


def _check_severity(value: int) -> int:
    if not SEVERITY_MIN <= value <= SEVERITY_MAX:
        raise ValueError(f"must be within {SEVERITY_MIN}..{SEVERITY_MAX}, got {value}")
    return value


Severity = Annotated[int, AfterValidator(_check_severity)]
"""A corruption severity: 1 (barely visible) .. 5 (strongest). Severity always means 'worse'."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors that list the valid keys."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            valid = set(cls.model_fields)
            valid |= {f.alias for f in cls.model_fields.values() if f.alias}
            unknown = sorted(str(k) for k in data if k not in valid)
            if unknown:
                hints = []
                for key in unknown:
                    close = difflib.get_close_matches(key, sorted(valid), n=1)
                    hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown key {keys}; valid keys: {valid}",
                    {"keys": ", ".join(hints), "valid": ", ".join(sorted(valid))},
                )
        return data


def format_location(loc: tuple[Any, ...]) -> str:
    """`('corruptions', 'quality', 2, 'severity')` -> `corruptions.quality[2].severity`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "<root>"


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SCALAR_TAGS = {"int", "str", "float", "bool", "none", "dict", "list", "tuple"}


def _is_union_tag(part: Any) -> bool:
    """pydantic adds the branch type (`int`, `list[int]`, `function-after[...]`) to union locations."""
    return isinstance(part, str) and (part in _SCALAR_TAGS or bool(re.search(r"[\[\](), ]", part)))


def format_validation_error(error: ValidationError) -> list[str]:
    """One readable line per pydantic error."""
    lines, seen_paths = [], set()
    for item in error.errors(include_url=False):
        path = format_location(tuple(p for p in item["loc"] if not _is_union_tag(p)))
        if path in seen_paths:  # one line per path: the first branch of a union is enough
            continue
        seen_paths.add(path)
        kind, msg = item["type"], item["msg"]
        if kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind == "unknown_key":
            pass
        elif kind == "missing":
            msg = "required key is missing"
        else:
            msg = f"{msg[0].lower()}{msg[1:]}, got {_short_repr(item.get('input'))}"
        lines.append(f"{path}: {msg}")
    return lines


_OVERRIDE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*|\[\d+\]|\d+")


def _parse_override_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for dotted in path.split("."):
        tokens = _OVERRIDE_PATH.findall(dotted)
        if not dotted or "".join(tokens) != dotted:
            raise ConfigError([f"override {path!r}: cannot parse path segment {dotted!r}"])
        for token in tokens:
            parts.append(int(token.strip("[]")) if token[0] in "[0123456789" else token)
    return parts


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b[0].c=value` overrides (values parsed as YAML) to a raw config mapping in place."""
    for override in overrides:
        if "=" not in override:
            raise ConfigError([f"override {override!r}: expected KEY=VALUE, e.g. output.pairs_per_shard=128"])
        path_text, value_text = override.split("=", 1)
        path = _parse_override_path(path_text.strip())
        try:
            value = yaml.safe_load(value_text)
        except yaml.YAMLError as exc:
            raise ConfigError([f"override {override!r}: value is not valid YAML ({exc})"]) from None
        node: Any = data
        for depth, part in enumerate(path):
            where = format_location(tuple(path[: depth + 1]))
            last = depth == len(path) - 1
            if isinstance(part, int):
                if not isinstance(node, list) or not 0 <= part < len(node):
                    size = len(node) if isinstance(node, list) else "not a list"
                    raise ConfigError([f"override {override!r}: {where} does not exist (list length: {size})"])
            elif not isinstance(node, dict):
                raise ConfigError([f"override {override!r}: {format_location(tuple(path[:depth]))} is not a mapping"])
            if last:
                node[part] = value
            else:
                if isinstance(node, dict) and node.get(part) is None:
                    node[part] = [] if isinstance(path[depth + 1], int) else {}
                node = node[part]
    return data


M = TypeVar("M", bound=BaseModel)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file (and line for syntax errors)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"config file not found: {path}"], source=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text ({exc.reason} at byte {exc.start})"], source=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"YAML syntax error at {where}{problem}"], source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"top level must be a mapping of keys, got {type(data).__name__}"], source=str(path))
    return data


def validate_config(model: type[M], data: dict[str, Any], source: str | None = None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), source=source) from None


def load_config(model: type[M], path: str | Path, overrides: list[str] | None = None) -> M:
    """Load YAML `path` into `model`, applying `key.sub=value` overrides first."""
    data = apply_overrides(read_yaml_mapping(path), overrides or [])
    return validate_config(model, data, source=str(path))


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (defaults filled in), saved next to every output."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every digest in the toolkit."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any, size: int = 16) -> str:
    """A hex digest (2*size characters) of a JSON-able value."""
    return hashlib.blake2b(canonical_json(value).encode("utf-8"), digest_size=size).hexdigest()
