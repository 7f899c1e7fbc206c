import gzip

import pandas as pd
import pytest

from trainwright.data.sources import load_source, read_table
from trainwright.errors import TrainwrightError

FRAME = pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": ["x", "y", "z"], "y": [0, 1, 0]})


@pytest.mark.parametrize(
    "suffix, write",
    [
        (".csv", lambda f, p: f.to_csv(p, index=False)),
        (".tsv", lambda f, p: f.to_csv(p, sep="\t", index=False)),
        (".parquet", lambda f, p: f.to_parquet(p)),
        (".jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
        (".ndjson", lambda f, p: f.to_json(p, orient="records", lines=True)),
    ],
)
def test_read_table_by_suffix(tmp_path, suffix, write):
    path = tmp_path / f"houses{suffix}"
    write(FRAME, path)
    frame = read_table(path)
    assert frame.columns.tolist() == ["a", "b", "y"]
    assert frame["a"].tolist() == [1.5, 2.5, 3.5] and frame["b"].tolist() == ["x", "y", "z"]


def test_read_compressed_csv_and_display_name(tmp_path):
    path = tmp_path / "houses.csv.gz"
    with gzip.open(path, "wt") as file:
        FRAME.to_csv(file, index=False)
    frame, target, name = load_source(str(path))
    assert frame.shape == (3, 3) and target is None and name == "houses"


def test_load_source_builtin():
    frame, target, name = load_source("iris")
    assert frame.shape == (150, 5) and target == "species" and name == "iris"


def _error(path) -> str:
    with pytest.raises(TrainwrightError) as error:
        read_table(path)
    return str(error.value)


def test_missing_file(tmp_path):
    assert "does not exist" in _error(tmp_path / "nope.csv")


def test_directory(tmp_path):
    assert "is a directory" in _error(tmp_path)


def test_unknown_suffix(tmp_path):
    (tmp_path / "data.xlsx").write_text("a,b\n1,2\n")
    message = _error(tmp_path / "data.xlsx")
    assert "'.xlsx'" in message and ".csv" in message and ".parquet" in message


def test_corrupt_parquet(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    assert "cannot read" in _error(tmp_path / "bad.parquet")


def test_corrupt_jsonl(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    assert "cannot read" in _error(tmp_path / "bad.jsonl")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert "is empty" in _error(tmp_path / "empty.csv")


def test_header_without_rows(tmp_path):
    (tmp_path / "header.csv").write_text("a,b,y\n")
    assert "has a header but no rows" in _error(tmp_path / "header.csv")


def test_unknown_builtin_name():
    with pytest.raises(TrainwrightError, match="neither a built-in data set .*digits.* nor an existing file"):
        load_source("mnistt")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_a_byte_order_mark_says_the_encoding(tmp_path, encoding):
    frame = pd.DataFrame({"naïve": ["café", "crème", "ñandú"], "y": [0, 1, 0]})
    data = frame.to_csv(index=False).encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # the big-endian codec writes no mark of its own
    (tmp_path / "t.csv").write_bytes(data)
    assert read_table(tmp_path / "t.csv").to_dict("list") == frame.to_dict("list")


def test_data_encoding_reads_latin1_and_a_utf8_error_names_it(tmp_path):
    frame = pd.DataFrame({"city": ["Zürich", "Genève", "Düsseldorf"], "y": [0, 1, 0]})
    frame.to_csv(tmp_path / "t.csv", index=False, encoding="latin-1")
    assert read_table(tmp_path / "t.csv", encoding="latin-1")["city"].tolist() == frame["city"].tolist()
    with pytest.raises(TrainwrightError, match="codec can't decode .*; if the file is not UTF-8, set data.encoding"):
        read_table(tmp_path / "t.csv")


def test_a_semicolon_csv_says_how_to_read_it_and_data_delimiter_reads_it(tmp_path):
    from helpers import penguins_like

    from trainwright.config import DataConfig
    from trainwright.data.tabular import prepare_tabular

    path = tmp_path / "survey.csv"
    penguins_like().to_csv(path, sep=";", index=False)
    with pytest.raises(TrainwrightError, match=r"another delimiter .* set data.delimiter: ';'"):
        prepare_tabular(DataConfig(source=str(path), target="species"))
    data = prepare_tabular(DataConfig(source=str(path), target="species", delimiter=";"))
    assert data.preprocessor.feature_columns[:2] == ["island", "bill_length_mm"]
    with pytest.raises(TrainwrightError, match="data.delimiter applies to CSV and TSV files"):
        FRAME.to_parquet(tmp_path / "t.parquet")
        read_table(tmp_path / "t.parquet", delimiter=";")
