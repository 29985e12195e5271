"""The encoder benchmark runs end to end on real reviews and reports every figure."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import pytest

from streamrec.model.errors import DatasetError
from streamrec.streams.bench.encoder import bench_encoder, load_review_texts

REVIEWS_ZIP = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/amazon-musical-instruments-2014/Musical_instruments_reviews.csv.zip"
)


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    if not REVIEWS_ZIP.is_file():
        pytest.skip(f"dataset not found at {REVIEWS_ZIP}")
    return load_review_texts(str(REVIEWS_ZIP), 64)


def test_load_review_texts_reads_the_zip(reviews: list[str]) -> None:
    assert len(reviews) == 64
    assert all(text.strip() for text in reviews)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".zip"])
def test_load_review_texts_formats_skip_empty(tmp_path: Path, suffix: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([["asin", "reviewText"], ["a", "Good strings"], ["b", "  "], ["c", "Bad, noisy\ncable"]])
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("reviews.csv", buffer.getvalue())
    elif suffix == ".csv.gz":
        path.write_bytes(gzip.compress(buffer.getvalue().encode()))
    else:
        path.write_text(buffer.getvalue())
    assert load_review_texts(str(path), 10) == ["Good strings", "Bad, noisy\ncable"]
    assert load_review_texts(str(path), 1) == ["Good strings"]


def test_load_review_texts_names_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("asin,title\na,Strings\n")
    with pytest.raises(DatasetError, match="reviewText"):
        load_review_texts(str(path), 5)


def test_bench_encoder_reports_positive_figures(reviews: list[str]) -> None:
    messages: list[str] = []
    result = bench_encoder(reviews, device="cpu", max_length=128, progress=messages.append)
    assert set(result) == {
        "device", "model", "texts", "texts_per_s", "baseline_texts_per_s", "ratio",
        "sentence_transformers_texts_per_s", "dtype", "max_length",
    }  # fmt: skip
    assert result["device"] == "cpu"
    assert result["texts"] == len(reviews)
    assert result["max_length"] == 128
    assert result["texts_per_s"] > 0 and result["baseline_texts_per_s"] > 0 and result["ratio"] > 0
    assert (
        result["sentence_transformers_texts_per_s"] is None or result["sentence_transformers_texts_per_s"] > 0
    )
    assert any("warming up" in message for message in messages)
