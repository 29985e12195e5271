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
from tests.datasets import AMAZON, require


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    reviews_zip = require(AMAZON)
    return load_review_texts(str(reviews_zip), 64)


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


def test_bench_encoder_times_encoders_that_agree_on_the_same_texts(reviews: list[str]) -> None:
    messages: list[str] = []
    result = bench_encoder(reviews, device="cpu", max_length=128, progress=messages.append)
    assert set(result) == {
        "device", "model", "texts", "texts_per_s", "baseline_texts_per_s", "ratio",
        "sentence_transformers_texts_per_s", "min_cosine_to_baseline", "dtype", "max_length",
        "texts_read_past_max_length", "backend",
    }  # fmt: skip
    assert (result["device"], result["texts"], result["max_length"]) == ("cpu", len(reviews), 128)
    # streamrec's batching and pooling compute the baseline's vectors (float32 or bf16 on this CPU).
    assert result["min_cosine_to_baseline"] > (0.9999 if result["dtype"] == "float32" else 0.99)
    assert result["ratio"] == pytest.approx(result["texts_per_s"] / result["baseline_texts_per_s"])
    # Each figure is the rate of a pass it reported: texts over the seconds that pass took.
    passes = {m.split()[2]: float(m.split()[3]) for m in messages if m.startswith("pass 1:")}
    assert passes["streamrec"] == pytest.approx(result["texts_per_s"], rel=0.05)
    assert passes["baseline"] == pytest.approx(result["baseline_texts_per_s"], rel=0.05)
    assert any("warming up" in message for message in messages)
