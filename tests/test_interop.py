"""The same shards load unchanged with webdataset, `datasets` and Ray Data: same keys, same pixels."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pairgen.shards import iter_pairs, list_shards


@pytest.fixture
def reference(shard_dir):
    return {p.record.key: p for p in iter_pairs(shard_dir)}


def _rgb(value) -> np.ndarray:
    if isinstance(value, (bytes, bytearray)):
        value = Image.open(io.BytesIO(value))
    return np.asarray(value.convert("RGB"))


def test_plain_webdataset(shard_dir, reference):
    import webdataset as wds

    urls = [str(p) for p in list_shards(shard_dir)]
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8")
    seen = {s["__key__"]: s for s in dataset}
    assert seen.keys() == reference.keys()
    for key, sample in seen.items():
        np.testing.assert_array_equal(sample["pos.png"], reference[key].pos)
        np.testing.assert_array_equal(sample["neg.png"], reference[key].neg)
        assert sample["json"]["key"] == key


def test_hf_datasets_webdataset_builder(shard_dir, reference, tmp_path):
    import datasets

    files = [str(p) for p in list_shards(shard_dir)]
    dataset = datasets.load_dataset("webdataset", data_files={"train": files}, split="train", cache_dir=str(tmp_path / "hf"))
    assert len(dataset) == len(reference)
    for row in dataset:
        expected = reference[row["__key__"]]
        np.testing.assert_array_equal(_rgb(row["pos.png"]), expected.pos)
        np.testing.assert_array_equal(_rgb(row["neg.png"]), expected.neg)
        record = row["json"] if isinstance(row["json"], dict) else json.loads(row["json"])
        assert record["key"] == row["__key__"] and record["corruption"] == expected.record.corruption


def test_ray_data_read_webdataset(shard_dir, reference):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        files = [str(p) for p in list_shards(shard_dir)]
        rows = ray.data.read_webdataset(files, decoder=None).take_all()
    finally:
        ray.shutdown()
    assert {r["__key__"] for r in rows} == reference.keys()
    for row in rows:
        expected = reference[row["__key__"]]
        np.testing.assert_array_equal(_rgb(row["pos.png"]), expected.pos)
        np.testing.assert_array_equal(_rgb(row["neg.png"]), expected.neg)
        assert json.loads(row["json"])["key"] == row["__key__"]
