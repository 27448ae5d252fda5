"""The shard format: round trips, byte reproducibility, atomicity, refusal of unsafe members."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import make_pairs
from pairgen.records import PairRecord, RecordError, make_pair_key
from pairgen.shards import (
    ShardFormatError,
    is_complete,
    iter_pairs,
    list_shards,
    load_manifest,
    marker_path,
    shard_name,
    write_shard,
)
from pairgen.validate import main as validate_main
from pairgen.validate import validate_dataset


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_record_json_round_trip_and_key_is_pure(photos):
    raw = make_pairs(photos, 1)[0]
    record = PairRecord.from_json_bytes(raw["json"])
    assert PairRecord.from_json_bytes(record.to_json_bytes()) == record
    spec = {"name": "gaussian_blur", "severity": 3}
    same = make_pair_key(source_id=record.prompt_id, generator_id=None, generator_revision=None, seed=record.seed, corruption=spec)
    other = make_pair_key(source_id=record.prompt_id, generator_id=None, generator_revision=None, seed=record.seed, corruption={**spec, "severity": 4})
    assert same == record.key != other
    assert "." not in record.key and len(record.key) == 32


def test_record_schema_errors_name_the_field(photos):
    data = json.loads(make_pairs(photos, 1)[0]["json"])
    with pytest.raises(RecordError, match=r"severity: must be within 1\.\.5, got 9"):
        PairRecord.from_dict({**data, "severity": 9})
    with pytest.raises(RecordError, match=r"aspect: input should be 'quality' or 'alignment', got 'beauty'"):
        PairRecord.from_dict({**data, "aspect": "beauty"})
    with pytest.raises(RecordError, match=r"unknown field\(s\) \['colour'\]"):
        PairRecord.from_dict({**data, "colour": "red"})
    with pytest.raises(RecordError, match="family: 'prompt' negatives belong to aspect 'alignment'"):
        PairRecord.from_dict({**data, "family": "prompt"})


def test_round_trip_images_and_records(shard_dir, photos):
    pairs = list(iter_pairs(shard_dir))
    assert len(pairs) == 8
    assert len({p.record.key for p in pairs}) == 8
    for pair in pairs:
        name = pair.record.prompt_id.rsplit("-", 1)[0]
        np.testing.assert_array_equal(pair.pos, photos[name])  # lossless
        assert pair.neg.shape == pair.pos.shape and not np.array_equal(pair.neg, pair.pos)


def test_same_pairs_give_byte_identical_shards_in_any_order(tmp_path, photos):
    samples = make_pairs(photos, 6)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_shard(tmp_path / "a", shard_name(0), samples)
    second = write_shard(tmp_path / "b", shard_name(0), list(reversed(samples)))
    assert first.sha256 == second.sha256 == sha256(tmp_path / "b" / shard_name(0))
    assert (tmp_path / "a" / "pairs-000000.stats.json").read_bytes() == (tmp_path / "b" / "pairs-000000.stats.json").read_bytes()
    with tarfile.open(tmp_path / "a" / shard_name(0)) as tar:
        infos = tar.getmembers()
    assert {(i.mtime, i.uid, i.gid, i.uname) for i in infos} == {(946684800, 0, 0, "eliq")}
    assert [i.name for i in infos] == sorted(i.name for i in infos)


def test_empty_shard_gets_a_marker(tmp_path):
    stats = write_shard(tmp_path, shard_name(3), [])
    assert stats.nsamples == 0 and marker_path(tmp_path / shard_name(3)).is_file()
    assert is_complete(tmp_path / shard_name(3))


def test_crash_mid_shard_leaves_no_final_file_and_readers_ignore_tmp(tmp_path, photos):
    samples = make_pairs(photos, 4)

    def crashing():
        yield from samples[:2]
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        write_shard(tmp_path, shard_name(0), crashing())
    assert not (tmp_path / shard_name(0)).exists()
    assert not marker_path(tmp_path / shard_name(0)).exists()
    # a hard kill leaves the temporary file behind: readers and the validator must ignore it
    write_shard(tmp_path, shard_name(1), samples)
    (tmp_path / "pairs-000000.tar.tmp").write_bytes(b"partial garbage")
    assert [p.name for p in list_shards(tmp_path)] == [shard_name(1)]
    assert len(list(iter_pairs(tmp_path))) == 4
    report = validate_dataset(tmp_path)
    assert report.ok, report.problems
    assert report.ignored == ["pairs-000000.tar.tmp"]


def test_write_error_mid_shard_is_reported_with_the_shard_name(tmp_path, photos, monkeypatch):
    import webdataset as wds

    calls = {"n": 0}
    original = wds.TarWriter.write

    def failing_write(self, obj):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return original(self, obj)

    monkeypatch.setattr(wds.TarWriter, "write", failing_write)
    with pytest.raises(OSError, match=r"writing shard .*pairs-000000\.tar failed: No space left on device"):
        write_shard(tmp_path, shard_name(0), make_pairs(photos, 3))
    assert list(tmp_path.iterdir()) == []


def test_duplicate_keys_refused(tmp_path, photos):
    samples = make_pairs(photos, 2)
    with pytest.raises(ShardFormatError, match="duplicate key"):
        write_shard(tmp_path, shard_name(0), samples + samples[:1])


def _tar_with(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("bad_name", ["../0123456789abcdef0123456789abcdef.json", "/etc/0123456789abcdef0123456789abcdef.json"])
def test_member_with_a_path_is_refused(tmp_path, photos, bad_name):
    raw = make_pairs(photos, 1)[0]
    shard = tmp_path / shard_name(0)
    _tar_with(shard, {f"{raw['__key__']}.json": raw["json"], bad_name: b"{}"})
    with pytest.raises(ShardFormatError, match="is a path; only flat"):
        list(iter_pairs([shard]))
    # give it a matching marker so the validator gets as far as the members
    from pairgen.shards.writer import ShardStats, file_digests

    size, digest256, md5 = file_digests(shard)
    marker_path(shard).write_bytes(ShardStats(shard.name, 1, size, digest256, md5).to_json_bytes())
    report = validate_dataset(tmp_path)
    assert any("is a path" in p and shard.name in p for p in report.problems), report.problems


def test_reader_refuses_missing_member_and_other_decoders(tmp_path, photos):
    raw = make_pairs(photos, 1)[0]
    shard = tmp_path / shard_name(0)
    _tar_with(shard, {f"{raw['__key__']}.json": raw["json"], f"{raw['__key__']}.pos.png": raw["pos.png"]})
    with pytest.raises(ShardFormatError, match=r"missing member\(s\) \['neg.png'\]"):
        list(iter_pairs([shard]))
    _tar_with(shard, {f"{raw['__key__']}.pyd": b"cos\nsystem\n(S'echo pwned'\ntR.", f"{raw['__key__']}.json": raw["json"]})
    with pytest.raises(ShardFormatError, match="has suffix 'pyd'"):
        list(iter_pairs([shard]))


def test_reader_refuses_pipe_urls():
    with pytest.raises(ValueError, match="only local shard files"):
        list(iter_pairs(["pipe:echo hi"]))


def test_validator_passes_and_then_names_an_altered_shard(shard_dir, capsys):
    assert validate_main([str(shard_dir)]) == 0
    assert "2 shard(s), 8 pair(s): OK" in capsys.readouterr().out
    shard = shard_dir / shard_name(1)
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert validate_main([str(shard_dir)]) == 1
    out = capsys.readouterr().out
    assert "pairs-000001.tar: content does not match its marker" in out
    assert "manifest.json: lists pairs-000001.tar, which is missing or invalid" in out


def test_validator_names_the_key_of_a_bad_record(tmp_path, photos):
    from pairgen.shards.writer import Sample

    raw: Sample = make_pairs(photos, 1)[0]
    record = json.loads(raw["json"])
    record["severity"] = 7
    raw = {**raw, "json": json.dumps(record).encode()}
    write_shard(tmp_path, shard_name(0), [raw])
    report = validate_dataset(tmp_path)
    assert not report.ok
    assert f"pairs-000000.tar: sample {raw['__key__']}: record {raw['__key__']}: severity: must be within 1..5, got 7" in report.problems


def test_validator_reports_shard_without_marker(shard_dir):
    marker_path(shard_dir / shard_name(0)).unlink()
    report = validate_dataset(shard_dir)
    assert "pairs-000000.tar: no completion marker pairs-000000.stats.json (incomplete shard; re-run the job to rebuild it)" in report.problems


def test_manifest_is_a_wids_index(shard_dir):
    import wids

    manifest = load_manifest(shard_dir)
    assert manifest["__kind__"] == "wids-shard-index-v1" and manifest["nsamples"] == 8
    dataset = wids.ShardListDataset(str(shard_dir / "manifest.json"), cache_dir=str(shard_dir / "cache"), transformations=[])
    assert len(dataset) == 8
    keys = {dataset[i]["__key__"] for i in range(len(dataset))}
    assert keys == {p.record.key for p in iter_pairs(shard_dir)}
