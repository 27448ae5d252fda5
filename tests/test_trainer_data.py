"""The pair loader and instruction data: batches, held-out split, bad shards, JSONL export."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import cv2
import numpy as np
import pytest

from pairgen.shards import ShardFormatError, iter_pairs, write_shard
from trainer.backbones import get_backbone
from trainer.config import DataConfig
from pairgen.records import PairRecord
from trainer.data import DatasetError, ErrorPolicy, PairBatcher, heldout_batches, is_heldout, train_batches
from trainer.instructions import conversations_for_pair, export_jsonl, iter_conversations
from trainer.synthetic import synthetic_pair, write_synthetic_shards


@pytest.fixture(scope="module")
def processor():
    return get_backbone("dual-encoder", image_size=32).processor


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_synthetic_shards(tmp_path_factory.mktemp("shards"), pairs=60, per_shard=20, size=48)


def data_config(shards, **kw) -> DataConfig:
    return DataConfig.model_validate({"shards": shards if isinstance(shards, list) else str(shards), "batch_size": 4, "heldout_percent": 25, **kw})


def batches(config, processor, n, seed=0):
    it = iter(train_batches(config, PairBatcher(processor, config.batch_size, ErrorPolicy(config.on_error == "skip")), seed=seed))
    return [next(it) for _ in range(n)]


def test_training_batches_hold_pos_then_neg_items(shards, processor):
    batch = batches(data_config(shards), processor, 1)[0]
    assert len(batch) == 4 and batch.inputs["pixel_values"].shape == (8, 3, 32, 32)
    assert batch.inputs["input_ids"].shape[0] == 8 and set(batch.aspect.tolist()) <= {0, 1}


def test_heldout_pairs_never_reach_training(shards, processor):
    config = data_config(shards)
    train_keys = {k for b in batches(config, processor, 30) for k in b.keys}
    held = {k for b in heldout_batches(config, PairBatcher(processor, 4, ErrorPolicy(False))) for k in b.keys}
    records = [p.record for p in iter_pairs(shards)]
    assert held and train_keys and not train_keys & held
    assert held == {r.key for r in records if is_heldout(r.split_group, 25)}
    # whole prompts are held out: no prompt has pairs on both sides
    assert not {r.prompt for r in records if r.key in held} & {r.prompt for r in records if r.key in train_keys}


def test_heldout_exclude_leaves_pairs_out_of_selection_but_not_into_training(shards, processor):
    config = data_config(shards, heldout_exclude=["swap_*"])
    train_keys = {k for b in batches(config, processor, 30) for k in b.keys}
    held = {k for b in heldout_batches(config, PairBatcher(processor, 4, ErrorPolicy(False))) for k in b.keys}
    records = [p.record for p in iter_pairs(shards)]
    heldout_records = [r for r in records if is_heldout(r.split_group, 25)]
    assert {r.corruption for r in heldout_records} > {"swap_prompt"}  # both kinds exist in the held-out split
    assert held == {r.key for r in heldout_records if r.corruption != "swap_prompt"}
    assert not train_keys & {r.key for r in heldout_records}
    assert not list(heldout_batches(data_config(shards, heldout_exclude=["*"]), PairBatcher(processor, 4, ErrorPolicy(False))))


def test_resampled_stream_is_deterministic_per_seed(shards, processor):
    config = data_config(shards)
    assert [b.keys for b in batches(config, processor, 3, seed=1)] == [b.keys for b in batches(config, processor, 3, seed=1)]
    assert [b.keys for b in batches(config, processor, 3, seed=1)] != [b.keys for b in batches(config, processor, 3, seed=2)]


def _copy_shard(src, dst, mutate):
    """Rewrite a shard through `mutate(name, data) -> (name, data) | None` and give it a marker."""
    dst.mkdir()
    with tarfile.open(src) as tar_in, tarfile.open(dst / "pairs-000000.tar", "w") as tar_out:
        for member in tar_in.getmembers():
            changed = mutate(member.name, tar_in.extractfile(member).read())
            if changed is not None:
                info = tarfile.TarInfo(changed[0])
                info.size = len(changed[1])
                tar_out.addfile(info, io.BytesIO(changed[1]))
    shutil.copy(src.with_name("pairs-000000.stats.json"), dst)  # the original marker: the tar no longer matches it
    return dst


def test_truncated_shard_raises_naming_it_or_skips_with_a_count(tmp_path, shards, processor):
    bad = tmp_path / "truncated"
    bad.mkdir()
    data = (shards / "pairs-000000.tar").read_bytes()
    (bad / "pairs-000000.tar").write_bytes(data[: len(data) // 2])
    shutil.copy(shards / "pairs-000000.stats.json", bad)
    with pytest.raises(ShardFormatError, match="pairs-000000.tar"):
        batches(data_config(bad, heldout_percent=1), processor, 3)
    skipped = batches(data_config(bad, heldout_percent=1, on_error="skip"), processor, 3)
    assert sum(b.skipped for b in skipped) >= 1


def test_missing_member_and_grey_image_are_named(tmp_path, shards, processor):
    missing = _copy_shard(shards / "pairs-000000.tar", tmp_path / "missing", lambda n, d: None if n.endswith("neg.png") else (n, d))
    with pytest.raises(ShardFormatError, match=r"missing member\(s\) \['neg.png'\]"):
        batches(data_config(missing, heldout_percent=1), processor, 1)

    def grey(name, data):
        if name.endswith("pos.png"):
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            return name, cv2.imencode(".png", image)[1].tobytes()
        return name, data

    grey_dir = _copy_shard(shards / "pairs-000000.tar", tmp_path / "grey", grey)
    with pytest.raises(ShardFormatError, match="expected an 8-bit RGB PNG"):
        batches(data_config(grey_dir, heldout_percent=1), processor, 1)
    with pytest.raises(DatasetError, match="every pair fails to decode"):
        batches(data_config(grey_dir, heldout_percent=1, on_error="skip"), processor, 1)
    mixed = [str(grey_dir / "pairs-000000.tar"), str(shards / "pairs-000001.tar")]
    skipped = batches(data_config(mixed, heldout_percent=1, on_error="skip"), processor, 10)
    assert sum(b.skipped for b in skipped) >= 1 and all(len(b) == 4 for b in skipped)


def test_empty_dataset_is_a_clear_error(tmp_path, processor):
    (tmp_path / "none").mkdir()
    with pytest.raises(DatasetError, match="no complete shards"):
        batches(data_config(tmp_path / "none"), processor, 1)
    write_shard(tmp_path / "none", "pairs-000000.tar", [])
    with pytest.raises(DatasetError, match="hold no pairs"):
        batches(data_config(tmp_path / "none"), processor, 1)


def test_all_pairs_heldout_is_an_error_not_a_hang(tmp_path, processor):
    import random

    rng = random.Random(0)
    samples = [synthetic_pair(i, rng, 32, 0.0) for i in range(40)]
    held = [s for s in samples if is_heldout(PairRecord.from_json_bytes(s["json"]).split_group, 50)]
    write_shard(tmp_path, "pairs-000000.tar", held)
    with pytest.raises(DatasetError, match="all .* pairs fall in the held-out split"):
        batches(data_config(tmp_path, heldout_percent=50), processor, 1)


def test_conversations_and_llava_jsonl_export(tmp_path, shards):
    pairs = list(iter_pairs(shards))[:20]
    conversations = list(iter_conversations(pairs, seed=0))
    assert len(conversations) == 40
    questions = " ".join(c.question for c in conversations)
    assert "visual quality" in questions and ("match" in questions or "fit" in questions)
    for conv, pair in zip(conversations[::2], pairs, strict=True):
        if pair.record.neg_prompt is None:  # pairwise: the answer names the position of the positive
            first_is_pos = conv.image_names[0] == "pos"
            assert conv.answer in (("The first image.", "Image 1.") if first_is_pos else ("The second image.", "Image 2."))
    path = export_jsonl(pairs, tmp_path / "export")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 40
    for row in rows:
        human, gpt = row["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"].count("<image>") == len(row["image"]) >= 1
        assert all((tmp_path / "export" / p).is_file() for p in row["image"])


def test_generation_level_alignment_negatives_are_not_called_mismatches(shards):
    """A low-guidance or older-model image was rendered from the same prompt: the pairwise question ranks
    it below its positive, but no single-image conversation answers that it does not match its prompt."""
    import dataclasses
    import random

    swap = next(p for p in iter_pairs(shards) if p.record.aspect == "alignment")
    generation = dataclasses.replace(
        swap, record=dataclasses.replace(swap.record, family="generation", corruption="low_guidance_alignment", neg_prompt=None)
    )
    rng = random.Random(0)
    shown = {family: {conversations_for_pair(pair, rng)[1].image_names[0] for _ in range(20)} for family, pair in (("prompt", swap), ("generation", generation))}
    assert shown == {"prompt": {"pos", "neg"}, "generation": {"pos"}}
    pairwise = conversations_for_pair(generation, rng)[0]  # both images, ranked on the one prompt
    assert sorted(pairwise.image_names) == ["neg", "pos"] and swap.record.prompt in pairwise.question
