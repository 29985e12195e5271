from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import pytest

from streamrec.eval.datasets import detect_format, load_dataset, parse_columns
from streamrec.model.errors import DatasetError
from tests.datasets import MOVIELENS, require

DATA = Path(__file__).resolve().parents[1] / "data"


def _pairs(dataset):
    return [(e.user, e.item) for e in dataset.interactions]


def test_movielens_u_data_with_titles_and_genres():
    data = load_dataset(DATA / "ml-tiny" / "u.data")
    assert data.format == "movielens"
    assert data.name == "ml-tiny"
    # Ordered by time; the exact repeat of row 2 is dropped and counted.
    assert _pairs(data) == [("3", "30"), ("1", "10"), ("2", "10"), ("1", "20")]
    assert data.n_duplicates == 1
    assert data.n_rows == 5
    assert data.interactions[1].rating == 4.0
    assert data.interactions[1].ts == 881250949.0
    assert data.interactions[1].line == 1
    assert data.item_texts["10"] == "Toy Story (1995). Animation, Children's, Comedy"
    assert data.item_texts["20"] == "GoldenEye (1995). Action, Adventure, Thriller"


def test_recbole_atomic_files_with_item_file():
    data = load_dataset(DATA / "recbole-tiny" / "recbole-tiny.inter")
    assert data.format == "recbole"
    assert _pairs(data) == [("2", "10"), ("1", "20"), ("1", "10")]
    assert [e.line for e in data.interactions] == [3, 4, 2]
    assert data.item_texts == {
        "10": "Toy Story (1995). Animation, Comedy",
        "20": "GoldenEye (1995). Action, Thriller",
    }


def test_amazon_csv_2014_multiline_quotes_and_duplicates():
    data = load_dataset(DATA / "amazon-2014.csv")
    assert data.format == "amazon-csv"
    assert _pairs(data) == [("A2", "B01"), ("A1", "B01"), ("A1", "B02")]
    assert data.n_duplicates == 1
    first_ann = data.interactions[1]
    assert first_ann.rating == 5.0
    assert first_ann.text == "Love them. Great strings,\nbright tone."
    assert first_ann.line == 2  # the row starts on line 2 and spans two lines
    assert data.interactions[2].line == 5


def test_amazon_jsonl_2018_missing_review_text_and_blank_lines():
    data = load_dataset(DATA / "amazon-2018.jsonl")
    assert data.format == "amazon-jsonl"
    assert _pairs(data) == [("A2", "B01"), ("A1", "B01"), ("A1", "B02")]
    assert data.interactions[0].text == "Meh"
    assert data.interactions[2].line == 4


def test_goodreads_dates_and_zero_rating():
    data = load_dataset(DATA / "goodreads.jsonl")
    assert data.format == "goodreads"
    assert _pairs(data) == [("u2", "101"), ("u1", "101"), ("u1", "102")]
    assert data.interactions[0].rating is None  # Goodreads writes 0 for "not rated"
    assert data.interactions[1].ts == pytest.approx(1502829571.0)
    assert data.interactions[2].text is None  # empty review text


def test_generic_csv_with_column_mapping():
    columns = parse_columns("user=customer,item=sku,rating=stars,text=comment,ts=when")
    data = load_dataset(DATA / "generic.csv", columns=columns)
    assert data.format == "csv"
    assert _pairs(data) == [("c2", "p2"), ("c1", "p1"), ("c1", "p3")]
    assert data.interactions[0].rating is None and data.interactions[0].text is None
    assert data.interactions[1].text == "nice"


def test_generic_jsonl_with_mapping_and_milliseconds():
    data = load_dataset(
        DATA / "generic.jsonl", format="jsonl", columns={"user": "who", "item": "what", "ts": "at"}
    )
    assert _pairs(data) == [("c2", "p2"), ("c1", "p1")]
    assert data.interactions[0].ts == 1614589200.0


def test_generic_csv_without_mapping_names_what_is_missing():
    with pytest.raises(DatasetError, match="must name user and item.*customer"):
        load_dataset(DATA / "generic.csv")


def test_generic_csv_guesses_common_names_and_keeps_file_order_without_time(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id\nb,x\na,y\n")
    data = load_dataset(path)
    assert _pairs(data) == [("b", "x"), ("a", "y")]


@pytest.mark.parametrize("wrap", ["gzip", "zip"])
def test_gzip_and_zip_read_transparently(tmp_path, wrap):
    source = DATA / "amazon-2014.csv"
    if wrap == "gzip":
        path = tmp_path / "reviews.csv.gz"
        with open(source, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        path = tmp_path / "reviews.csv.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.write(source, "Musical_instruments_reviews.csv")
    assert detect_format(path) == "amazon-csv"
    data = load_dataset(path)
    assert _pairs(data) == [("A2", "B01"), ("A1", "B01"), ("A1", "B02")]
    assert data.n_duplicates == 1


def test_gzipped_u_data_finds_its_item_file(tmp_path):
    for name in ("u.data", "u.item"):
        with open(DATA / "ml-tiny" / name, "rb") as src, gzip.open(tmp_path / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    data = load_dataset(tmp_path / "u.data.gz")
    assert data.format == "movielens"
    assert data.item_texts["30"] == "Four Rooms (1995). Thriller"


def test_zip_with_several_files_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "user_id,item_id\n1,2\n")
        archive.writestr("b.csv", "user_id,item_id\n1,2\n")
    with pytest.raises(DatasetError, match="exactly one data file"):
        load_dataset(path)


BAD_JSONL = (
    '{"reviewerID": "A1", "asin": "B1", "overall": 5, "unixReviewTime": 10}\n'
    "{not json\n"
    '{"reviewerID": "A2", "asin": "B1", "overall": "five", "unixReviewTime": 11}\n'
    '{"reviewerID": "A3", "overall": 4, "unixReviewTime": 12}\n'
    '{"reviewerID": "A4", "asin": "B2", "overall": 4, "unixReviewTime": "yesterday"}\n'
    "[1, 2]\n"
    '{"reviewerID": "A5", "asin": "B2", "overall": 3, "unixReviewTime": 13}\n'
)


def test_bad_row_error_names_its_line(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text(BAD_JSONL)
    with pytest.raises(DatasetError, match=r"reviews\.json:2: .*JSON.*--skip-bad"):
        load_dataset(path)


def test_skip_bad_skips_and_counts(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text(BAD_JSONL)
    data = load_dataset(path, skip_bad=True)
    assert _pairs(data) == [("A1", "B1"), ("A5", "B2")]
    assert data.n_bad == 5
    assert data.summary()["bad_rows_skipped"] == 5
    lines = [message.split("reviews.json:")[1].split(":")[0] for message in data.bad_examples]
    assert lines == ["2", "3", "4", "5", "6"]
    assert "rating must be a number" in data.bad_examples[1]
    assert "'asin' (item) must be present" in data.bad_examples[2]


def test_csv_row_with_wrong_field_count_names_its_line(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t10\t4\t881250949\n2\t10\n")
    with pytest.raises(DatasetError, match=r"u\.data:2: row must have 4 fields, got 2"):
        load_dataset(path)
    assert load_dataset(path, skip_bad=True).n_bad == 1


def test_limit_keeps_the_first_events_in_time_order():
    data = load_dataset(DATA / "ml-tiny" / "u.data", limit=2)
    assert _pairs(data) == [("3", "30"), ("1", "10")]
    assert data.summary()["limit"] == 2


def test_ties_in_time_are_shuffled_reproducibly(tmp_path):
    path = tmp_path / "ties.csv"
    path.write_text("user_id,item_id,ts\n" + "".join(f"u{i},i{i},5\n" for i in range(20)))
    one = _pairs(load_dataset(path))
    assert one == _pairs(load_dataset(path))
    assert one != _pairs(load_dataset(path, tie_seed=None))
    assert sorted(one) == sorted(_pairs(load_dataset(path, tie_seed=None)))


def test_parse_columns_rejects_unknown_roles_and_malformed_entries():
    with pytest.raises(DatasetError, match="role must be one of"):
        parse_columns("customer=c1")
    with pytest.raises(DatasetError, match="ROLE=COLUMN"):
        parse_columns("user")


def test_unknown_format_and_missing_file():
    with pytest.raises(DatasetError, match="format must be one of"):
        load_dataset(DATA / "generic.csv", format="parquet")
    with pytest.raises(DatasetError, match="readable file"):
        load_dataset(DATA / "nope.csv")


def test_real_movielens_first_rows_when_available():
    data = load_dataset(require(MOVIELENS), limit=1000)
    assert len(data.interactions) == 1000
    assert len(data.item_texts) == 1682
    assert all(a.ts <= b.ts for a, b in zip(data.interactions, data.interactions[1:]))
