"""Find a pipeline folder (local path or Hugging Face cache) and fail with instructions when it is not usable."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from pairgen.config_base import digest

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class ModelNotAvailableError(RuntimeError):
    """The model is neither a local folder nor in the Hugging Face cache, and cannot be downloaded."""


class MissingComponentError(RuntimeError):
    """A pipeline folder lacks a component listed in its model_index.json, or its safetensors weights."""


def _download_hint(model_id: str, revision: str | None) -> str:
    revision_flag = f" --revision {revision}" if revision else ""
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return (
        f"pre-download it on a machine with network access into the cache this job reads (HF_HOME={hf_home}):\n"
        f"    HF_HOME={hf_home} huggingface-cli download {model_id}{revision_flag}   (newer huggingface_hub: hf download ...)\n"
        "or point `model:` at a local pipeline folder (saved with save_pretrained)."
    )


def locate_pipeline(model: str, revision: str | None = None, variant: str | None = None) -> tuple[Path, str]:
    """Return (pipeline folder, resolved revision) for a local folder or a Hub id.

    A Hub revision is the cached commit hash. A local folder's revision is a digest of its content,
    so two runs on the same files record the same value.
    """
    folder = find_pipeline_folder(model, revision, variant)
    from_hub_cache = folder != Path(model).expanduser()
    if from_hub_cache and _COMMIT.match(folder.name):  # the cache's snapshot folder is named by its commit
        return folder, folder.name
    return folder, "sha-" + folder_digest(folder)


def find_pipeline_folder(model: str, revision: str | None = None, variant: str | None = None) -> Path:
    """The checked pipeline folder of a local folder or a Hub id, without resolving its revision
    (which hashes every weight file of a local folder).

    A Hub id is resolved through the Hugging Face cache (downloading only when the Hub is reachable
    and not disabled by HF_HUB_OFFLINE=1).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        check_components(path)
        return path
    if not _HUB_ID.match(model):
        raise ModelNotAvailableError(f"model {model!r} is neither an existing local folder nor a Hub id (org/name)")

    from diffusers import DiffusionPipeline
    from huggingface_hub import constants

    try:
        folder = Path(DiffusionPipeline.download(model, revision=revision, variant=variant, use_safetensors=True))
    except Exception as exc:  # diffusers/huggingface_hub raise several types (OSError, HTTP and cache errors)
        offline = "offline (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else "not reachable"
        raise ModelNotAvailableError(
            f"model {model!r}" + (f" at revision {revision!r}" if revision else "")
            + f" is not in the Hugging Face cache and the Hub is {offline} ({type(exc).__name__}: {exc}).\n"
            + _download_hint(model, revision)
        ) from exc
    check_components(folder)
    return folder


def check_components(folder: Path) -> None:
    """Every component named in model_index.json must be present, and model weights must be safetensors."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise MissingComponentError(f"{folder} is not a diffusers pipeline folder: model_index.json is missing")
    index = json.loads(index_file.read_text(encoding="utf-8"))
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue  # metadata, or an optional component saved as None (e.g. safety_checker)
        library, class_name = spec
        sub = folder / name
        if not sub.is_dir():
            raise MissingComponentError(
                f"model folder {folder} is missing component {name!r} ({library} {class_name}) listed in model_index.json"
            )
        has_config = (sub / "config.json").is_file()
        if has_config and not any(sub.glob("*.safetensors")):
            found = ", ".join(sorted(p.name for p in sub.iterdir())) or "nothing"
            raise MissingComponentError(
                f"component {name!r} in {folder} has no .safetensors weights (found: {found}); this toolkit "
                "loads safetensors only (no pickled .bin); convert the weights or pick a safetensors revision"
            )


def folder_digest(folder: Path) -> str:
    """A digest of every file's relative path and content (what a commit hash is for a Hub model)."""
    entries = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(file, "rb") as handle:
            entries.append([file.relative_to(folder).as_posix(), hashlib.file_digest(handle, "blake2b").hexdigest()])
    return digest(entries, size=12)
