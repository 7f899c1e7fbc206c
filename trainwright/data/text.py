"""Text data, from ``data.source`` to token ids: load, clean, split, tokenize (fit on train only).

A Hugging Face ``tokenizers`` vocabulary (WordPiece or BPE, or one token per character) is
trained on the training texts only, so the validation and test texts are tokenized as new text
would be. Every text becomes ``length`` int64 ids: longer texts are cut, shorter ones padded with
id 0 (``[PAD]``); the models derive their padding mask from ``ids != 0``. The tokenizer is saved
in the run directory as ``tokenizer.json`` (the library's own JSON format, no pickle).

Example:
    >>> data = prepare_text(DataConfig(source="word-order"))
    >>> data.x_train.dtype, data.task
    (torch.int64, 'binary')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from trainwright.config import DataConfig, TokenizerConfig
from trainwright.data.split import Split, SplitData, split_rows, subset_facts, subset_notes, train_subset
from trainwright.data.target import (
    LabelKind,
    Task,
    class_list,
    coerce_labels,
    decode_class_indices,
    encode_class_column,
    encode_labels,
    label_kind,
    resolve_task,
    selected_rows,
)
from trainwright.data.text_sources import CleanTexts, RawTexts, clean_texts, load_texts
from trainwright.errors import TrainwrightError

__all__ = ["TextData", "TextPreprocessor", "TextRows", "build_tokenizer", "load_text", "prepare_text"]

FORMAT = 1  # version of preprocessor.json for text
PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1


def build_tokenizer(cfg: TokenizerConfig, texts: list[str]) -> Tokenizer:
    """A tokenizer trained on ``texts`` (the training split): [PAD] is id 0, [UNK] id 1.

    Example:
        >>> tok = build_tokenizer(TokenizerConfig(kind="char"), ["ab", "ba"])
        >>> tok.encode("abc").ids
        [2, 3, 1]
    """
    steps = [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    if cfg.lowercase:
        steps.insert(1, normalizers.Lowercase())
    specials = [PAD, UNK]
    if cfg.kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, special_tokens=specials, show_progress=False)
        tokenizer.pre_tokenizer, tokenizer.decoder = pre_tokenizers.Whitespace(), decoders.WordPiece()
    elif cfg.kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=specials, show_progress=False)
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    else:  # one token per character, spaces included; the most frequent characters up to vocab_size
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(vocab_size=cfg.vocab_size, special_tokens=specials, show_progress=False)
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


class TextPreprocessor:
    """The tokenizer, the padded length and the classes of a text model.

    ``inputs(data)`` turns a table with the text column (or a frame) into its rows and their
    int64 (N, length) token ids, exactly as in training.

    Example:
        >>> pre = TextPreprocessor.load(Path("runs/reviews-lstm-20260101-120000"))
        >>> frame, ids = pre.inputs("new_reviews.csv")
        >>> ids.shape
        (3, 64)
    """

    modality = "text"

    def __init__(self, *, target: str, task: Task, classes: list, label_kind: LabelKind, text_column: str,
                 tokenizer: Tokenizer, length: int, max_chars: int, kind: str) -> None:
        self.target, self.task, self.classes, self.label_kind = target, task, list(classes), label_kind
        self.text_column, self.tokenizer, self.length, self.max_chars, self.kind = text_column, tokenizer, length, max_chars, kind
        tokenizer.enable_truncation(length)
        tokenizer.enable_padding(pad_id=0, pad_token=PAD, length=length)

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def input_shape(self) -> tuple[int]:
        return (self.length,)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> int64 (N, length) ids, padded with 0."""
        texts = [t.replace("\x00", "")[: self.max_chars] for t in texts]
        return np.array([e.ids for e in self.tokenizer.encode_batch(texts)], dtype=np.int64).reshape(
            len(texts), self.length
        )

    def encode_target(self, y: pd.Series) -> np.ndarray:
        return encode_class_column(y, self.classes, self.label_kind, self.target)

    def decode_target(self, values: np.ndarray) -> np.ndarray:
        return decode_class_indices(values, self.classes)

    def inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, np.ndarray]:
        """(the rows, their token ids); an empty text is predicted from padding alone."""
        from trainwright.data.sources import read_table

        frame = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else read_table(data)
        if self.text_column not in frame.columns:
            raise TrainwrightError(
                f"the data have no text column {self.text_column!r}, which the model was trained with; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )
        texts = [v if isinstance(v, str) else "" for v in frame[self.text_column]]
        return frame, self.encode(texts)

    def facts(self) -> dict:
        return {
            "format": FORMAT,
            "modality": "text",
            "target": self.target,
            "task": self.task,
            "classes": self.classes,
            "label_kind": self.label_kind,
            "text_column": self.text_column,
            "tokenizer": self.kind,
            "vocab_size": self.vocab_size,
            "length": self.length,
            "max_chars": self.max_chars,
        }

    def files(self) -> dict[str, str | bytes]:
        """What a run directory keeps: ``tokenizer.json`` (the trained vocabulary) and ``preprocessor.json``."""
        return {"tokenizer.json": self.tokenizer.to_str(), "preprocessor.json": json.dumps(self.facts(), indent=2) + "\n"}

    @classmethod
    def load(cls, directory: Path) -> TextPreprocessor:
        try:
            facts = json.loads((Path(directory) / "preprocessor.json").read_text(encoding="utf-8"))
            tokenizer = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
            return cls(
                target=facts["target"],
                task=facts["task"],
                classes=facts["classes"],
                label_kind=facts["label_kind"],
                text_column=facts["text_column"],
                tokenizer=tokenizer,
                length=int(facts["length"]),
                max_chars=int(facts["max_chars"]),
                kind=facts["tokenizer"],
            )
        except Exception as error:  # noqa: BLE001 - json, KeyError, or the tokenizers library's own errors
            raise TrainwrightError(
                f"{directory} is not a trainwright run (or is damaged): its text preprocessor is unreadable "
                f"({type(error).__name__}: {error})"
            ) from None


@dataclass(frozen=True)
class TextData(SplitData):
    """x: int64 (N, length) token ids, 0 = padding; y: int64 (N,) class indices."""

    preprocessor: TextPreprocessor
    task: Task
    texts: dict  # split -> list[str], the cleaned texts (for the TF-IDF and bag-of-words baselines)

    def report_lines(self) -> list[str]:
        s = self.summary
        lines = [f"{self.name}: {s['rows']['raw']} texts from {s['kind']}; target {s['target']!r} ({self.task})"]
        lines += [action["message"] for action in s["cleaning"] if action["count"]]
        t = s["tokens"]
        lines.append(
            f"tokenizer: {t['kind']}, vocabulary {t['vocab_size']} (trained on the training split), "
            f"{t['length']} tokens per text (median {t['median']}, {t['truncated']} texts cut)"
        )
        counts = s["class_balance"]["all"]
        lines.append(f"classes ({len(counts)}): " + ", ".join(f"{k} {v}" for k, v in list(counts.items())[:10]))
        split = s["split"]
        if split["held_out"]:
            lines.append(
                f"split {split['fractions']} ({'stratified' if split['stratified'] else 'shuffled'}, seed {split['seed']}): "
                f"train {split['train']}, val {split['val']}, test {split['test']} texts"
            )
        return lines + s["notes"]


@dataclass(frozen=True, eq=False)
class TextRows:
    """Texts loaded and cleaned, not yet split: ``prepare(split)`` trains the tokenizer on ``split.train`` only."""

    cfg: DataConfig
    raw: RawTexts
    cleaned: CleanTexts
    texts: list[str]  # cleaned, data.classes applied
    labels: np.ndarray  # (N,) original labels
    classes: list
    task: Task
    label_kind: LabelKind

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def strata(self) -> np.ndarray:
        return self.labels

    def split(self) -> Split:
        """The configured split (``data.split``, then ``data.train_fraction``)."""
        return train_subset(
            split_rows(len(self.texts), self.labels, self.cfg.split), self.labels, self.cfg.train_fraction, self.cfg.split.seed
        )

    def prepare(self, split: Split) -> TextData:
        import torch  # lazy, a heavy dependency: predicting from an export uses this module without torch

        cfg, raw, classes = self.cfg, self.raw, self.classes
        texts = {part: [self.texts[i] for i in getattr(split, part)] for part in ("train", "val", "test")}
        tokenizer = build_tokenizer(cfg.tokenizer, texts["train"])
        lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts["train"])])
        length = int(min(cfg.tokenizer.max_length, max(2, lengths.max())))  # pad to the longest training text, at most max_length
        pre = TextPreprocessor(
            target=raw.target,
            task=self.task,
            classes=classes,
            label_kind=self.label_kind,
            text_column=raw.text_column,
            tokenizer=tokenizer,
            length=length,
            max_chars=cfg.max_chars,
            kind=cfg.tokenizer.kind,
        )
        y_all = torch.from_numpy(encode_labels(self.labels, classes, raw.target))
        xs = {part: torch.from_numpy(pre.encode(texts[part])) for part in texts}
        ys = {part: y_all[getattr(split, part)] for part in texts}
        before = len(self.cleaned.texts)
        summary = {
            "source": cfg.source,
            "name": raw.name,
            "modality": "text",
            "kind": raw.kind,
            "target": raw.target,
            "task": self.task,
            "text_column": raw.text_column,
            "rows": {"raw": len(raw.frame), "after_cleaning": before},
            "cleaning": self.cleaned.actions,
            "tokens": {
                "kind": cfg.tokenizer.kind,
                "vocab_size": pre.vocab_size,
                "length": length,
                "median": int(np.median(lengths)),
                "truncated": int((lengths > length).sum()),
            },
            "classes": [c.item() if isinstance(c, np.generic) else c for c in classes],
            # Per split, as tables and images have it: diagnosis reads the training split's shares.
            "class_balance": {part: _counts(y.numpy(), classes) for part, y in (("all", y_all), *ys.items())},
            "split": split.facts(cfg.split),
            "notes": subset_notes(cfg, before, len(self.texts)) + list(split.notes),
            **subset_facts(cfg, before, len(self.texts)),
        }
        return TextData(
            xs["train"],
            ys["train"],
            xs["val"],
            ys["val"],
            xs["test"],
            ys["test"],
            pre,
            self.task,
            raw.name,
            split.held_out,
            summary,
            texts,
        )


def load_text(cfg: DataConfig) -> TextRows:
    """Load and clean the texts ``cfg.source`` names, keep ``data.classes``, settle the task and classes."""
    for key in ("features", "drop_columns"):
        if getattr(cfg, key):
            raise TrainwrightError(
                f"data.{key} selects table columns; a text source reads only data.text_column and data.target: remove data.{key}"
            )
    raw = load_texts(cfg)
    cleaned = clean_texts(raw, cfg.max_chars)
    texts, labels = cleaned.texts, cleaned.labels
    if cfg.classes is not None:
        keep = np.flatnonzero(selected_rows(coerce_labels(labels, label_kind(labels), raw.target), cfg.classes, raw.target))
        texts, labels = [texts[i] for i in keep], labels.iloc[keep].reset_index(drop=True)
    task = resolve_task(labels, cfg.task, raw.target)
    if task == "regression":
        raise TrainwrightError(
            f"text models classify; {raw.target!r} looks like a quantity. Set data.task: multiclass if its values are classes"
        )
    kind = label_kind(labels)
    coerced = coerce_labels(labels, kind, raw.target)
    return TextRows(cfg, raw, cleaned, texts, coerced, class_list(coerced), task, kind)


def prepare_text(cfg: DataConfig) -> TextData:
    """Load, clean, split and tokenize ``cfg.source`` (the tokenizer sees the training texts only)."""
    rows = load_text(cfg)
    return rows.prepare(rows.split())


def _counts(indices: np.ndarray, classes: list) -> dict[str, int]:
    return {str(label): int(count) for label, count in zip(classes, np.bincount(indices, minlength=len(classes)))}
