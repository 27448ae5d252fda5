"""Prompt sources: formats, ids, duplicates, and the bad-input errors (issue 4)."""

from __future__ import annotations

import json
import warnings

import pytest

from pairgen.config_base import ConfigError, StrictModel, validate_config
from pairgen.prompts import Prompt, PromptSourceConfig, PromptSourceError, PromptTooLongWarning, load_prompts
from pairgen.prompts.sources import count_tokens, prompt_id


def _text(tmp_path, content: str | bytes, name="p.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def test_text_file_skips_blanks_and_counts_duplicates(tmp_path):
    path = _text(tmp_path, "a red cup\n\n   \nA  red cup\nthree cats on a sofa\n")
    result = load_prompts([PromptSourceConfig(kind="text", path=path)])
    assert [p.text for p in result.prompts] == ["a red cup", "three cats on a sofa"]
    assert result.duplicates_dropped == 1
    assert result.prompts[0].meta["source"].endswith("p.txt:line 1")


def test_ids_are_stable_and_ignore_spacing_and_case():
    assert prompt_id("A red  cup") == prompt_id("a red cup") != prompt_id("a blue cup")
    assert len(prompt_id("x")) == 16
    assert Prompt.from_text(" a\tred cup ").id == prompt_id("a red cup")


def test_duplicates_across_sources_keep_the_first(tmp_path):
    text = _text(tmp_path, "a cat\na dog\n")
    jsonl = _text(tmp_path, json.dumps({"prompt": "A dog", "cat": "animals"}) + "\n", "p.jsonl")
    result = load_prompts(
        [PromptSourceConfig(kind="text", path=text), PromptSourceConfig(kind="jsonl", path=jsonl, category_column="cat")]
    )
    assert [(p.text, p.category) for p in result.prompts] == [("a cat", None), ("a dog", None)]
    assert result.duplicates_dropped == 1


def test_jsonl_and_csv_columns(tmp_path):
    jsonl = _text(tmp_path, '{"caption": "a red cup", "kind": "objects"}\n\n{"caption": "a cat"}\n', "p.jsonl")
    csv_path = _text(tmp_path, 'id,text\n1,"a cup, a plate and a bowl"\n2,\n3,two dogs\n', "p.csv")
    got = load_prompts(
        [
            PromptSourceConfig(kind="jsonl", path=jsonl, column="caption", category_column="kind"),
            PromptSourceConfig(kind="csv", path=csv_path, column="text"),
        ]
    )
    assert [(p.text, p.category) for p in got.prompts] == [
        ("a red cup", "objects"),
        ("a cat", None),
        ("a cup, a plate and a bowl", None),
        ("two dogs", None),
    ]


def test_hf_dataset_from_local_data_and_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"prompt": ["a red cup", "two cats", "a red cup"], "topic": ["objects", "animals", "objects"]}
    files = tmp_path / "hub_like"
    files.mkdir()
    (files / "train.jsonl").write_text("".join(json.dumps({k: rows[k][i] for k in rows}) + "\n" for i in range(3)))
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict(rows).save_to_disk(str(saved))
    for location in (files, saved):
        got = load_prompts([PromptSourceConfig(kind="hf", path=str(location), category_column="topic")])
        assert [(p.text, p.category) for p in got.prompts] == [("a red cup", "objects"), ("two cats", "animals")]
        assert got.duplicates_dropped == 1
    with pytest.raises(PromptSourceError, match=r"no column 'caption'; columns present: prompt, topic"):
        load_prompts([PromptSourceConfig(kind="hf", path=str(saved), column="caption")])


def test_limit_and_builtin_categories():
    got = load_prompts([PromptSourceConfig(kind="builtin", categories=["food"], limit=5)])
    assert len(got.prompts) == 5 and {p.category for p in got.prompts} == {"food"}


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_prompt_file_is_an_error_naming_the_file(tmp_path, content):
    path = _text(tmp_path, content)
    with pytest.raises(PromptSourceError, match=r"p\.txt: the prompt file is empty; expected at least one prompt"):
        load_prompts([PromptSourceConfig(kind="text", path=path)])


@pytest.mark.parametrize("kind,name", [("text", "p.txt"), ("csv", "p.csv"), ("jsonl", "p.jsonl")])
def test_non_utf8_bytes_report_the_line(tmp_path, kind, name):
    lines = {"text": b"a cat\na dog\nan \xff owl\n", "csv": b"prompt\na cat\nan \xfe owl\n", "jsonl": b'{"prompt": "a"}\n\n\xc3(\n'}
    path = _text(tmp_path, lines[kind], name)
    expected_line = {"text": 3, "csv": 3, "jsonl": 3}[kind]
    with pytest.raises(PromptSourceError, match=rf"{name}: line {expected_line}: not UTF-8 text"):
        load_prompts([PromptSourceConfig(kind=kind, path=path)])


def test_missing_csv_column_lists_the_columns_present(tmp_path):
    path = _text(tmp_path, "caption,style\na cat,photo\n", "p.csv")
    with pytest.raises(PromptSourceError, match=r"p\.csv: no column 'prompt'; columns present: caption, style"):
        load_prompts([PromptSourceConfig(kind="csv", path=path)])


def test_jsonl_errors_name_file_and_line(tmp_path):
    bad_json = _text(tmp_path, '{"prompt": "a cat"}\n{oops\n', "a.jsonl")
    with pytest.raises(PromptSourceError, match=r"a\.jsonl:line 2: not valid JSON"):
        load_prompts([PromptSourceConfig(kind="jsonl", path=bad_json)])
    no_key = _text(tmp_path, '{"text": "a cat", "id": 1}\n', "b.jsonl")
    with pytest.raises(PromptSourceError, match=r"b\.jsonl:line 1: no key 'prompt'; present: text, id"):
        load_prompts([PromptSourceConfig(kind="jsonl", path=no_key)])


def test_missing_file(tmp_path):
    with pytest.raises(PromptSourceError, match="nope.txt: prompt file not found"):
        load_prompts([PromptSourceConfig(kind="text", path=str(tmp_path / "nope.txt"))])


def test_too_long_prompt_is_truncated_with_a_warning_or_refused(tmp_path):
    long_prompt = " ".join(["a small red cup"] * 30)  # 120 words
    path = _text(tmp_path, f"a cat\n{long_prompt}\n")
    with pytest.warns(PromptTooLongWarning, match=r"p\.txt:line 2: prompt has \d+ tokens, more than max_tokens=32"):
        got = load_prompts([PromptSourceConfig(kind="text", path=path, max_tokens=32)])
    assert got.truncated == 1
    cut = got.prompts[1].text
    assert count_tokens(cut) <= 32 < count_tokens(cut + " cup") and long_prompt.startswith(cut)
    with pytest.raises(PromptSourceError, match=r"p\.txt:line 2: prompt has \d+ tokens, more than max_tokens=32"):
        load_prompts([PromptSourceConfig(kind="text", path=path, max_tokens=32, too_long="error")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default limit (256) leaves this prompt alone
        assert load_prompts([PromptSourceConfig(kind="text", path=path)]).prompts[1].text == long_prompt


class _Sources(StrictModel):
    prompts: list[PromptSourceConfig]


class _Top(StrictModel):
    sources: _Sources


@pytest.mark.parametrize(
    "entry,expected",
    [
        ({"kind": "text", "path": "p.txt", "column": "x"}, "sources.prompts[1].column: not used by kind 'text'"),
        ({"kind": "csv"}, "sources.prompts[1].path: required for kind 'csv'"),
        ({"kind": "hf"}, "sources.prompts[1].name: kind 'hf' needs exactly one of name"),
        ({"kind": "builtin", "categories": ["cars"]}, "sources.prompts[1].categories: unknown built-in category 'cars'"),
        ({"kind": "parquet", "path": "x"}, "sources.prompts[1].kind: input should be"),
        ({"kind": "csv", "path": "p.csv", "colum": "x"}, "sources.prompts[1]: unknown key 'colum' (did you mean 'column'?)"),
    ],
)
def test_config_errors_point_at_the_field(entry, expected):
    data = {"sources": {"prompts": [{"kind": "builtin"}, entry]}}
    with pytest.raises(ConfigError) as info:
        validate_config(_Top, data)
    assert any(line.startswith(expected) for line in info.value.problems), info.value.problems
