"""Text data: cleaning with counts, a tokenizer trained on the training split only, padding, folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwright.config import DataConfig, TokenizerConfig
from trainwright.data.prepare import load_preprocessor, prepare_data
from trainwright.data.text import build_tokenizer
from trainwright.data.text_sources import load_texts
from trainwright.errors import TrainwrightError
from trainwright.rundir import RunDir


def reviews(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good, bad = ["great", "lovely", "superb"], ["awful", "boring", "dull"]
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        texts.append(f"the film was {rng.choice(good if positive else bad)} and {rng.choice(['long', 'short'])}")
        labels.append("pos" if positive else "neg")
    return pd.DataFrame({"review": texts, "sentiment": labels})


def test_cleaning_counts_empty_nul_and_long_texts(tmp_path):
    table = reviews()
    table.loc[[0, 1], "review"] = ["   ", ""]
    table.loc[2, "review"] = "great\x00 film"
    table.loc[3, "review"] = "dull " * 100
    table.to_csv(tmp_path / "reviews.csv", index=False)
    data = prepare_data(DataConfig(source=str(tmp_path / "reviews.csv"), text_column="review", target="sentiment", max_chars=50))
    counts = {a["action"]: a["count"] for a in data.summary["cleaning"]}
    assert counts["empty_texts"] == 2 and counts["nul_bytes"] == 1 and counts["capped_length"] == 1
    assert data.summary["rows"] == {"raw": 80, "after_cleaning": 78}
    assert "dropped 2 empty or whitespace-only texts" in data.report_lines()
    assert data.x_train.dtype == data.x_test.dtype == __import__("torch").int64


def test_tokenizer_is_fitted_on_training_texts_only():
    tok = build_tokenizer(TokenizerConfig(kind="wordpiece", vocab_size=100), ["the cat sat", "the dog sat"])
    assert "zebra" not in tok.get_vocab()
    assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[UNK]") == 1
    char = build_tokenizer(TokenizerConfig(kind="char"), ["ab", "ba"])
    assert len(char.encode("abz").ids) == 3 and char.encode("abz").ids[-1] == 1  # z was never seen: [UNK]
    bpe = build_tokenizer(TokenizerConfig(kind="bpe", vocab_size=60), ["lower lowest low", "newer newest"])
    assert bpe.encode("lowest").tokens


def test_the_default_tokenizer_is_the_same_on_every_training():
    texts = [f"the {w} sat on the {v} mat" for w in ("cat", "dog", "cow", "hen") for v in ("red", "blue", "green")]
    assert len({build_tokenizer(TokenizerConfig(vocab_size=60), texts).to_str() for _ in range(3)}) == 1


def test_padding_truncation_and_saved_tokenizer(tmp_path):
    cfg = DataConfig(source="word-order", tokenizer={"kind": "char", "max_length": 12})
    data = prepare_data(cfg)
    assert data.x_train.shape[1] == 12 and data.summary["tokens"]["truncated"] > 0
    pre = data.preprocessor
    RunDir(tmp_path).write_files(pre.files())
    assert (tmp_path / "tokenizer.json").is_file() and not list(tmp_path.glob("*.pkl"))
    again = load_preprocessor(tmp_path)
    _, ids = again.inputs(pd.DataFrame({"text": ["red cat", "blue dog ran home then we saw it"]}))
    assert ids.shape == (2, 12)
    assert (ids[0, 7:] == 0).all() and (ids[1] != 0).all()  # short text padded with id 0; long one cut
    assert ids.tolist() == pre.encode(["red cat", "blue dog ran home then we saw it"]).tolist()


def test_invalid_utf8_in_a_table_is_replaced_and_counted(tmp_path):
    data = reviews().to_csv(index=False).encode("utf-8").replace(b"superb", b"sup\xffrb")
    (tmp_path / "reviews.csv").write_bytes(data)
    data = prepare_data(DataConfig(source=str(tmp_path / "reviews.csv"), text_column="review", target="sentiment"))
    counts = {a["action"]: a["count"] for a in data.summary["cleaning"]}
    assert counts["replacement_characters"] == reviews()["review"].str.contains("superb").sum() > 0


def test_folder_of_txt_files_per_class_reports_invalid_utf8(tmp_path):
    for label, words in (("pos", "good fine nice"), ("neg", "bad poor sad")):
        (tmp_path / "texts" / label).mkdir(parents=True)
        for i in range(12):
            (tmp_path / "texts" / label / f"{i}.txt").write_text(f"{words} {i}", encoding="utf-8")
    (tmp_path / "texts" / "pos" / "broken.txt").write_bytes(b"good \xff\xfe fine")
    data = prepare_data(DataConfig(source=str(tmp_path / "texts")))
    counts = {a["action"]: a["count"] for a in data.summary["cleaning"]}
    assert counts["invalid_utf8"] == 1 and data.summary["kind"] == "folder"
    assert sorted(data.preprocessor.classes) == ["neg", "pos"]


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        (pd.DataFrame({"review": [1.5, 2.0] * 20, "sentiment": ["a", "b"] * 20}), "holds numbers, not text"),
        (pd.DataFrame({"review": ["  ", ""] * 20, "sentiment": ["a", "b"] * 20}), "no non-empty texts"),
        (pd.DataFrame({"other": ["x"] * 4, "sentiment": ["a", "b"] * 2}), "text column 'review' is not in"),
    ],
)
def test_bad_text_input_is_one_clear_error(tmp_path, table, fragment):
    table.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(TrainwrightError, match=fragment):
        prepare_data(DataConfig(source=str(tmp_path / "t.csv"), text_column="review", target="sentiment"))


def test_builtin_text_sets():
    order = prepare_data(DataConfig(source="word-order"))
    texts = order.texts["train"]
    assert all(t.split().count("red") == 1 and t.split().count("blue") == 1 for t in texts)  # same words in both classes
    docs = prepare_data(DataConfig(source="python-docs"))
    assert docs.task == "multiclass" and len(docs.preprocessor.classes) == 5 and docs.summary["rows"]["after_cleaning"] > 500


def test_data_classes_and_train_fraction_apply_to_text_and_its_balance_is_per_split():
    docs = prepare_data(DataConfig(source="python-docs", classes=["files", "network"], train_fraction=0.5))
    full = prepare_data(DataConfig(source="python-docs", classes=["files", "network"]))
    assert docs.task == "binary" and docs.preprocessor.classes == ["files", "network"]
    assert set(docs.summary["class_balance"]) == {"all", "train", "val", "test"}
    assert len(docs.y_train) == round(0.5 * len(full.y_train)) and len(docs.y_test) == len(full.y_test)
    assert docs.summary["subset"]["classes"] == ["files", "network"]


def test_table_column_keys_are_refused_for_text():
    with pytest.raises(TrainwrightError, match="data.drop_columns selects table columns"):
        prepare_data(DataConfig(source="word-order", drop_columns=["text"]))


def test_txt_files_in_utf16_with_a_mark_or_in_the_configured_encoding(tmp_path):
    for label, words, encoding in (("pos", "très bien", "utf-16"), ("neg", "mauvais à pleurer", "latin-1")):
        (tmp_path / "texts" / label).mkdir(parents=True)
        for i in range(12):
            (tmp_path / "texts" / label / f"{i}.txt").write_bytes(f"{words} {i}".encode(encoding))
    cfg = DataConfig(source=str(tmp_path / "texts"), encoding="latin-1")  # the UTF-16 files carry a mark
    texts = set(load_texts(cfg).frame["text"])
    assert {"très bien 0", "mauvais à pleurer 0"} <= texts
    counts = {a["action"]: a["count"] for a in prepare_data(cfg).summary["cleaning"]}
    assert counts["invalid_utf8"] == 0 and counts["replacement_characters"] == 0
