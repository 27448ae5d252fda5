"""Export to disk / Hub layout: lossless round trip, card counts, refusals, readable CLI errors (all offline)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import datasets
import numpy as np
import pytest
import yaml
from skimage import data as photos

from pairgen.export import (
    FEATURES,
    ExportError,
    ExportOptions,
    record_from_row,
    run_export,
    split_of,
    summarize,
)
from pairgen.export.plan import parse_size
from pairgen.prompts import prompt_id
from pairgen.records import PairRecord, make_pair_key
from pairgen.shards import build_manifest, encode_pair, encode_png, iter_pairs, list_shards, write_manifest, write_shard
from pairgen.shards.reader import shard_urls

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "pipelines" / "export_hub.py"
FRACTION = 0.5
PROMPTS = ["a red bicycle", "a cat on a sofa", "two cups of coffee", "a rocket at dawn", "an astronaut portrait", "a stained tissue slide"]
GENERATOR = {"model_id": "tiny/sd", "revision": "0123abcd", "scheduler": "PNDM", "steps": 2, "guidance": 7.5}
CONFIG = {"name": "export-test", "shards": {"per_shard": 10}, "corruptions": {"quality": ["gaussian_blur"]}}


def _photo(index: int, size: tuple[int, int]) -> np.ndarray:
    sources = [photos.astronaut, photos.chelsea, photos.coffee, photos.rocket, photos.immunohistochemistry]
    return cv2.resize(sources[index % len(sources)](), size, interpolation=cv2.INTER_AREA)


def _pair(index: int) -> tuple[PairRecord, np.ndarray, np.ndarray]:
    """Pair `index`: prompts repeat (so the split must keep them together), every family and severity occurs."""
    family = ["conventional", "aigc_structure", "generation", "prompt"][index % 4]
    aspect = "alignment" if family == "prompt" or index % 5 == 0 else "quality"
    prompt = "" if index == 7 else PROMPTS[index % len(PROMPTS)]  # index 7: a collection image without prompt
    size = (40 + 8 * (index % 3), 32)
    pos = _photo(index, size)
    neg = cv2.GaussianBlur(pos, (5, 5), 1 + index % 3) if family != "generation" else _photo(index + 1, size)
    corruption = {"conventional": "gaussian_blur", "aigc_structure": "hand_warp", "generation": "low_steps", "prompt": "swap_object"}[family]
    fields = dict(
        aspect=aspect,
        family=family,
        corruption=corruption,
        severity=1 + index % 5,
        params={"sigma": 1.0 + index % 3, "kernel": [5, 5]},
        prompt=prompt,
        prompt_id=f"p{index % len(PROMPTS)}" if prompt else prompt_id(""),  # what the job records without a prompt
        source="generated" if prompt else "collection",
        seed=1000 + index,
        pos_size=size,
        neg_size=size,
        config_hash="c0ffee",
        generator=None if not prompt else {**GENERATOR, "revision": "0123abcd" if index % 2 else "fedc9876"},
        neg_generator={**GENERATOR, "steps": 1} if family == "generation" else None,
        neg_prompt="a blue bicycle" if family == "prompt" else None,
        extra={"note": "ünïcode | pipe"} if index == 3 else ({} if prompt else {"image": f"photos/img{index}"}),
    )
    key = make_pair_key(source_id=fields["prompt_id"], generator_id="tiny/sd", generator_revision="r", seed=fields["seed"], corruption={"name": corruption, "i": index})
    return PairRecord(key=key, **fields), pos, neg


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory) -> Path:
    """Two shards of 12 pairs, a manifest, the resolved config, job stats and a preview image."""
    directory = tmp_path_factory.mktemp("pairs")
    pairs = [_pair(i) for i in range(24)]
    stats = [write_shard(directory, f"pairs-{s:06d}.tar", [encode_pair(*p) for p in pairs[s * 12 : (s + 1) * 12]]) for s in range(2)]
    write_manifest(directory, build_manifest(name="export-test", shard_stats=stats, config=CONFIG, config_hash="c0ffee"))
    (directory / "config.resolved.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    (directory / "stats.json").write_text(json.dumps({"pairs": 24}), encoding="utf-8")
    (directory / "preview.png").write_bytes(encode_png(_photo(0, (64, 32))))
    return directory


@pytest.fixture(scope="session")
def raw_samples(shard_dir) -> dict[str, dict]:
    """The shards' samples as stored (PNG bytes), by key, read with plain tarfile as an independent check."""
    import tarfile

    samples: dict[str, dict] = {}
    for url in shard_urls(shard_dir):
        with tarfile.open(url) as tar:
            for member in tar:
                key, _, suffix = member.name.partition(".")
                samples.setdefault(key, {})[suffix] = tar.extractfile(member).read()
    return samples


@pytest.fixture(scope="session")
def disk_export(shard_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "hub-layout"
    # 20kB per shard forces several Parquet shards per split
    run_export(ExportOptions(shards=shard_dir, to_disk=out, validation_fraction=FRACTION, max_shard_size="20kB", tmp_dir=tmp_path_factory.mktemp("tmp")))
    return out


@pytest.fixture(scope="session")
def loaded(disk_export, tmp_path_factory) -> datasets.DatasetDict:
    loaded = datasets.load_dataset(str(disk_export), cache_dir=str(tmp_path_factory.mktemp("hf-cache")))
    return loaded.cast_column("positive", datasets.Image(decode=False)).cast_column("negative", datasets.Image(decode=False))


def test_fixture_covers_both_splits_and_shared_prompts(shard_dir):
    records = [pair.record for pair in iter_pairs(shard_dir)]
    assert {split_of(r, FRACTION) for r in records} == {"train", "validation"}
    assert max(Counter(r.prompt for r in records if r.prompt).values()) > 1


def test_to_disk_round_trip_is_lossless(loaded, raw_samples):
    seen = set()
    for split, dataset in loaded.items():
        for row in dataset:
            stored = raw_samples[row["key"]]
            record = record_from_row(row)
            assert record == PairRecord.from_json_bytes(stored["json"])
            assert row["positive"]["bytes"] == stored["pos.png"]
            assert row["negative"]["bytes"] == stored["neg.png"]
            assert split_of(record, FRACTION) == split
            seen.add(row["key"])
    assert seen == set(raw_samples)
    assert sum(len(d) for d in loaded.values()) == len(raw_samples)


def test_no_prompt_in_both_splits(loaded):
    groups = {split: {row["prompt"] or json.loads(row["extra"])["image"] for row in loaded[split]} for split in loaded}
    assert groups["train"] and groups["validation"]
    assert not groups["train"] & groups["validation"]


def test_layout_matches_the_hub_naming(disk_export, shard_dir):
    files = sorted(str(p.relative_to(disk_export)) for p in disk_export.rglob("*") if p.is_file())
    parquet = [f for f in files if f.startswith("data/")]
    assert set(files) - set(parquet) == {"README.md", "preview.png"}
    for split in ("train", "validation"):
        names = [f for f in parquet if f.startswith(f"data/{split}-")]
        assert len(names) > 1, "max_shard_size=20kB should give several shards"
        assert names == [f"data/{split}-{i:05d}-of-{len(names):05d}.parquet" for i in range(len(names))]
    assert (disk_export / "preview.png").read_bytes() == (shard_dir / "preview.png").read_bytes()
    assert not list(disk_export.parent.glob(".hub-layout.partial-*"))


def _card(directory: Path) -> tuple[dict, str]:
    text = (directory / "README.md").read_text(encoding="utf-8")
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def _card_table(body: str, name: str) -> dict[str, list[int]]:
    section = body.split(f"### Pairs per {name}\n", 1)[1].strip().split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines()[2:] if line.startswith("|")]
    return {cells[0].strip(): [int(c) for c in cells[1:]] for cells in rows}


@pytest.mark.parametrize("name", ["aspect", "family", "severity", "corruption"])
def test_card_counts_match_the_data(disk_export, loaded, name):
    _, body = _card(disk_export)
    table = _card_table(body, name)
    expected = {split: Counter(str(v) for v in loaded[split][name]) for split in ("train", "validation")}
    assert table == {
        value: [expected["train"][value], expected["validation"][value], expected["train"][value] + expected["validation"][value]]
        for value in set(expected["train"]) | set(expected["validation"])
    }


def test_card_metadata_and_provenance(disk_export, loaded):
    meta, body = _card(disk_export)
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}, {"split": "validation", "path": "data/validation-*"}]}
    ]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {s: len(d) for s, d in loaded.items()}
    assert datasets.Features._from_yaml_list(meta["dataset_info"]["features"]) == FEATURES
    assert meta["license"] == "other"
    assert "![preview](preview.png)" in body
    for text in ('"revision": "0123abcd"', '"revision": "fedc9876"', "generation | low_steps", "per_shard: 10", "c0ffee"):
        assert text in body
    assert "hand_warp" in body.split("## Corruption families", 1)[1].split("##", 1)[0]


def test_webdataset_to_disk_keeps_the_tars(shard_dir, raw_samples, tmp_path):
    out = tmp_path / "wds"
    run_export(ExportOptions(shards=shard_dir, to_disk=out, format="webdataset"))
    for shard in list_shards(shard_dir):
        assert (out / shard.name).read_bytes() == shard.read_bytes()
    assert {p.name for p in out.iterdir()} == {"README.md", "manifest.json", "config.resolved.yaml", "stats.json", "preview.png", "pairs-000000.tar", "pairs-000001.tar"}
    meta, _ = _card(out)
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "*.tar"}]
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert sorted(row["__key__"] for row in loaded["train"]) == sorted(raw_samples)


def test_dry_run_lists_files_and_writes_nothing(shard_dir, tmp_path, capsys):
    out = tmp_path / "never"
    plan = run_export(ExportOptions(shards=shard_dir, to_disk=out, validation_fraction=FRACTION, max_shard_size="20kB", dry_run=True))
    assert not out.exists() and not list(tmp_path.iterdir())
    paths = [f.path for f in plan.files]
    assert paths[0] == "README.md" and "preview.png" in paths
    assert {p.split("-")[0] for p in paths if p.startswith("data/")} == {"data/train", "data/validation"}
    assert plan.card.startswith("---\n")


def test_summary_counts_every_pair(shard_dir):
    summary = summarize(shard_dir, FRACTION)
    assert summary.rows == 24
    assert sum(summary.total_counts("aspect").values()) == 24
    assert summarize(shard_dir, 0.0).nonempty_splits() == ["train"]


def test_features_cover_every_record_field():
    flattened = {"pos_size": {"pos_width", "pos_height"}, "neg_size": {"neg_width", "neg_height"}}
    columns = set()
    for field in dataclasses.fields(PairRecord):
        columns |= flattened.get(field.name, {field.name})
    assert columns | {"positive", "negative"} == set(FEATURES)


def test_split_is_deterministic_by_prompt():
    record, _, _ = _pair(1)
    same_prompt = dataclasses.replace(record, key="f" * 32, seed=5, severity=5)
    assert {split_of(r, 0.5) for r in (record, same_prompt)} in ({"train"}, {"validation"})
    assert split_of(record, 0.0) == "train"


@pytest.mark.parametrize("size", ["lots", "0", "1.5GB", -3])
def test_bad_max_shard_size(size):
    with pytest.raises(ExportError, match="max shard size"):
        parse_size(size)


def test_corrupt_shards_are_refused_before_writing(shard_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(shard_dir, broken)
    tar = broken / "pairs-000001.tar"
    data = bytearray(tar.read_bytes())
    data[2000] ^= 0xFF
    tar.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="refusing to export.*pairs-000001.tar"):
        run_export(ExportOptions(shards=broken, to_disk=out, tmp_dir=tmp_path / "tmp"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_occupied_output_folder_is_refused(shard_dir, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        run_export(ExportOptions(shards=shard_dir, to_disk=tmp_path))


def _cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    clean |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1", **env}
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, env=clean, timeout=120)


def _assert_one_line_error(result: subprocess.CompletedProcess, code: int, pattern: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), result.stderr


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "user/bad name", "user/x--y", "user/.hidden"])
def test_invalid_repo_id_is_refused(shard_dir, repo_id):
    with pytest.raises(ExportError, match="invalid --repo-id"):
        run_export(ExportOptions(shards=shard_dir, repo_id=repo_id, dry_run=True))


def test_cli_invalid_repo_id(shard_dir, tmp_path):
    result = _cli(["--shards", str(shard_dir), "--repo-id", "a/b/c"], tmp_path, HF_TOKEN="hf_unused")
    _assert_one_line_error(result, 2, r"invalid --repo-id 'a/b/c': expected USER/NAME")


def test_cli_no_token(shard_dir, tmp_path):
    result = _cli(["--shards", str(shard_dir), "--repo-id", "user/pairs"], tmp_path)
    _assert_one_line_error(result, 2, r"no Hugging Face token.*HF_TOKEN")


def test_cli_unreachable_endpoint_keeps_the_token_secret(shard_dir, tmp_path):
    secret = "hf_SECRETtoken0123456789"
    result = _cli(["--shards", str(shard_dir), "--repo-id", "user/pairs"], tmp_path, HF_TOKEN=secret, HF_ENDPOINT="http://127.0.0.1:9")
    _assert_one_line_error(result, 1, r"cannot reach the Hub at http://127\.0\.0\.1:9")
    assert secret not in result.stdout + result.stderr
    assert not any(secret.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def _load_cli():
    spec = importlib.util.spec_from_file_location("export_hub", CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_dry_run_needs_no_network_or_token(shard_dir, monkeypatch, capsys):
    monkeypatch.setattr("pairgen.export.hub.get_token", lambda: None)
    monkeypatch.setattr("pairgen.export.export.HfApi", None)  # any Hub client use would fail
    code = _load_cli().main(["--shards", str(shard_dir), "--repo-id", "user/pairs", "--format", "webdataset", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "token: none" in out and "would write 7 file(s) to hf://datasets/user/pairs" in out
    assert re.search(r"pairs-000000\.tar\s+\d", out) and "--- README.md ---" in out

class FakeHub:
    """Stands in for HfApi and DatasetDict.push_to_hub, recording what the export asks of the Hub."""

    def __init__(self):
        self.calls: list[tuple] = []

    def api(self, token=None):
        hub = self

        class Api:
            def whoami(self):
                hub.calls.append(("whoami", token))

            def create_repo(self, repo_id, **kwargs):
                hub.calls.append(("create_repo", repo_id, kwargs["private"]))

            def create_commit(self, repo_id, operations, **kwargs):
                hub.calls.append(("commit", repo_id, {op.path_in_repo: op.path_or_fileobj for op in operations}))

        return Api()

    def push_to_hub(self, dataset, repo_id, **kwargs):
        self.calls.append(("push", repo_id, {split: len(d) for split, d in dataset.items()}, kwargs["num_shards"], kwargs["token"]))


@pytest.fixture
def fake_hub(monkeypatch) -> FakeHub:
    hub = FakeHub()
    monkeypatch.setattr("pairgen.export.export.HfApi", hub.api)
    monkeypatch.setattr("pairgen.export.hub.get_token", lambda: "hf_fake")
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo_id, **kw: hub.push_to_hub(self, repo_id, **kw))
    return hub


def test_parquet_push_sequence(shard_dir, fake_hub, tmp_path):
    plan = run_export(ExportOptions(shards=shard_dir, repo_id="user/pairs", private=True, validation_fraction=FRACTION, tmp_dir=tmp_path))
    rows = {split: plan.summary.splits[split].rows for split in ("train", "validation")}
    assert fake_hub.calls[:3] == [
        ("whoami", "hf_fake"),
        ("create_repo", "user/pairs", True),
        ("push", "user/pairs", rows, plan.num_shards, "hf_fake"),
    ]
    (_, repo, files), = fake_hub.calls[3:]
    assert files == {"README.md": plan.card.encode(), "preview.png": str(shard_dir / "preview.png")}
    assert "load_dataset(\"user/pairs\")" in plan.card


def test_webdataset_push_commits_the_tars_with_the_card(shard_dir, fake_hub):
    plan = run_export(ExportOptions(shards=shard_dir, repo_id="user/pairs-wds", format="webdataset"))
    assert [c[0] for c in fake_hub.calls] == ["whoami", "create_repo", "commit"]
    files = fake_hub.calls[-1][2]
    assert files["README.md"] == plan.card.encode()
    assert {name: files[name] for name in ("pairs-000000.tar", "pairs-000001.tar")} == {s.name: str(s) for s in list_shards(shard_dir)}


def test_push_refuses_corrupt_shards_before_creating_the_repo(shard_dir, fake_hub, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(shard_dir, broken)
    (broken / "pairs-000000.stats.json").unlink()
    with pytest.raises(ExportError, match="refusing to export"):
        run_export(ExportOptions(shards=broken, repo_id="user/pairs"))
    assert [c[0] for c in fake_hub.calls] == ["whoami"]


def test_missing_preview_is_rendered_from_the_pairs(shard_dir, tmp_path):
    folder = tmp_path / "no-preview"
    shutil.copytree(shard_dir, folder)
    (folder / "preview.png").unlink()
    plan = run_export(ExportOptions(shards=folder, to_disk=tmp_path / "out", dry_run=True))
    (preview,) = [f for f in plan.files if f.path == "preview.png"]
    sheet = cv2.imdecode(np.frombuffer(preview.source, np.uint8), cv2.IMREAD_COLOR)
    assert sheet.shape[0] > 100 and sheet.shape[1] > 300  # a contact sheet of several pairs, not a placeholder
    assert not (folder / "preview.png").exists()
