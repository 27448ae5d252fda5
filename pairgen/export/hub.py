"""Talking to the Hub: repo id and token checks, repo creation, pushes, and readable failures.

The token comes from `huggingface_hub.get_token()` (HF_TOKEN, then the stored login) and is only
ever handed to huggingface_hub calls: it is never printed, logged or written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datasets import DatasetDict
from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import HFValidationError, HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from pairgen.export.errors import ExportError, HubError
from pairgen.export.plan import PlannedFile

REPO_TYPE = "dataset"
# HfHubHTTPError derives from the HTTP client's base error (httpx2's in huggingface_hub 2.x), which also
# covers refused connections, DNS failures and timeouts; offline mode (HF_HUB_OFFLINE) is a ConnectionError.
# OSError is left out: a full local disk must not be reported as an unreachable Hub.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    *(base for base in HfHubHTTPError.__bases__ if base is not OSError),
    ConnectionError,
    TimeoutError,
)
HTTP_HINTS = {
    401: "the token was rejected: check HF_TOKEN or run `hf auth login` again",
    403: "the token may not write to this namespace: use a token with write access",
    404: "repo or namespace not found: check the USER/NAME part of --repo-id",
}


def check_repo_id(repo_id: str) -> None:
    """Refuse anything but `NAMESPACE/NAME` with the Hub's naming rules, before any work is done."""
    if repo_id.count("/") != 1:
        raise ExportError(f"invalid --repo-id {repo_id!r}: expected USER/NAME (or ORG/NAME)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ExportError(f"invalid --repo-id {repo_id!r}: {exc}") from None


def resolve_token() -> str:
    token = get_token()
    if not token:
        raise ExportError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a dry run needs none)")
    return token


def has_token() -> bool:
    return bool(get_token())


@contextmanager
def hub_errors(action: str) -> Iterator[None]:
    """Turn Hub and network failures into one `HubError` line naming the endpoint."""
    endpoint = constants.ENDPOINT
    try:
        yield
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = HTTP_HINTS.get(status, str(exc).splitlines()[0])
        raise HubError(f"{action} on {endpoint} failed (HTTP {status}): {hint}") from None
    except TRANSPORT_ERRORS as exc:
        raise HubError(f"{action}: cannot reach the Hub at {endpoint} ({type(exc).__name__}: {exc}); check the network or HF_ENDPOINT") from None


def check_access(api: HfApi) -> None:
    """A read-only call that fails fast on a bad endpoint or token, before the shards are read."""
    with hub_errors("checking the token"):
        api.whoami()


def create_repo(api: HfApi, repo_id: str, private: bool) -> None:
    """Create the dataset repo, or reuse it (pushing again updates it)."""
    with hub_errors(f"creating dataset repo {repo_id}"):
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)


def commit_files(api: HfApi, repo_id: str, files: list[PlannedFile], message: str) -> None:
    """Upload planned files (copied or in-memory ones; not Parquet shards) in one commit."""
    operations = [
        CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.source) if isinstance(f.source, Path) else f.source)
        for f in files
        if f.source is not None
    ]
    with hub_errors(f"uploading {len(operations)} file(s) to {repo_id}"):
        api.create_commit(repo_id, operations=operations, commit_message=message, repo_type=REPO_TYPE)


def push_parquet(dataset: DatasetDict, repo_id: str, token: str, private: bool, num_shards: dict[str, int]) -> None:
    """`push_to_hub` with the shard counts of the plan (derived from --max-shard-size)."""
    with hub_errors(f"pushing Parquet shards to {repo_id}"):
        dataset.push_to_hub(repo_id, private=private, token=token, num_shards=num_shards, commit_message="Upload pairs (pairgen export)")
