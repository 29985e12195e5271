from __future__ import annotations

import gzip
import json
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from streamrec.eval.adapters import HybridAdapter
from streamrec.eval.baselines import Popular, Random
from streamrec.eval.datasets import detect_format, load_dataset
from streamrec.eval.exposure import measure_exposure
from streamrec.eval.impressions import ImpressionsConfig, impression_metrics, run_impressions
from streamrec.eval.impressions_report import write_impressions_report
from streamrec.eval.interactions import Dataset, Impression, Interaction
from streamrec.eval.mind import HISTORY_STEP_S, load_mind
from streamrec.eval.registry import default_recommenders
from streamrec.model.errors import DatasetError
from streamrec.streams.commands.evaluate import eval_command
from tests.datasets import require
from tests.eval.test_prequential import HashEncoder

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "mind-tiny" / "behaviors.tsv"


def _at(clock: str) -> float:
    return (
        datetime.strptime(f"11/11/2019 {clock}", "%m/%d/%Y %I:%M:%S %p")
        .replace(tzinfo=timezone.utc)
        .timestamp()
    )


# -- the loader ------------------------------------------------------------------------------


def test_each_history_is_learned_once_just_before_its_users_first_impression():
    data = load_mind(TINY)
    history = [e for e in data.interactions if e.learn_only]
    # U1's history repeats in its three rows; U3's is empty.
    assert [(e.user, e.item) for e in history] == [("U1", "N1"), ("U1", "N2"), ("U2", "N2")]
    u1 = [e.ts for e in history if e.user == "U1"]
    assert u1 == sorted(u1) and u1[-1] < _at("9:00:00 AM") and _at("9:00:00 AM") - u1[0] <= 3 * HISTORY_STEP_S
    assert [e.ts for e in data.interactions] == sorted(e.ts for e in data.interactions)


def test_clicks_are_events_at_their_impressions_time_and_impressions_are_in_time_order():
    data = load_mind(TINY)
    clicks = [(e.user, e.item, e.ts) for e in data.interactions if not e.learn_only]
    assert clicks == [
        ("U3", "N5", _at("8:30:00 AM")),
        ("U1", "N3", _at("9:00:00 AM")),
        ("U2", "N6", _at("9:10:00 AM")),
        ("U1", "N6", _at("10:00:00 AM")),
        ("U1", "N4", _at("11:00:00 AM")),
    ]
    assert [i.id for i in data.impressions] == ["3", "1", "2", "4", "5"]
    first = data.impressions[1]
    assert first == Impression("U1", _at("9:00:00 AM"), ("N3", "N4", "N5"), ("N3",), "1")
    assert data.format == "mind" and data.name == "mind-tiny" and data.n_rows == 5


def test_item_texts_are_the_news_the_stream_names_and_item_times_their_first_sight():
    data = load_mind(TINY)
    assert sorted(data.item_texts) == [f"N{i}" for i in range(1, 9)]  # N9 is never shown
    assert data.item_texts["N3"] == "Council votes on new bridge. The vote is close. news"
    assert data.item_texts["N1"] == "Local club wins the cup. sports"
    assert data.item_times["N1"] == data.item_times["N2"] == _at("9:00:00 AM")  # U1's history, U1 first
    assert data.item_times["N3"] == data.item_times["N5"] == _at("8:30:00 AM")
    assert data.item_times["N7"] == _at("10:00:00 AM") and data.item_times["N8"] == _at("11:00:00 AM")


def test_limit_keeps_the_first_impressions_in_time_order(tmp_path):
    data = load_mind(TINY, limit=2)
    assert [(i.user, i.id) for i in data.impressions] == [("U3", "3"), ("U1", "1")]
    assert [(e.item, e.learn_only) for e in data.interactions] == [
        ("N5", False),
        ("N1", True),
        ("N2", True),
        ("N3", False),
    ]
    assert sorted(data.item_texts) == ["N1", "N2", "N3", "N4", "N5"] and data.limit == 2
    with pytest.raises(DatasetError, match="limit must be a positive number of impressions, got 0"):
        load_mind(TINY, limit=0)


def test_without_news_items_have_no_text_and_a_news_path_can_be_given(tmp_path):
    behaviors = tmp_path / "behaviors.tsv"
    shutil.copy(TINY, behaviors)
    assert load_mind(behaviors).item_texts == {}
    with gzip.open(tmp_path / "news.tsv.gz", "wt") as out:
        out.write((DATA / "mind-tiny" / "news.tsv").read_text())
    assert len(load_mind(behaviors).item_texts) == 8  # news.tsv.gz beside it
    assert len(load_mind(behaviors, news_path=DATA / "mind-tiny" / "news.tsv").item_texts) == 8


def test_detect_format_knows_behaviors_by_name_and_by_its_first_line(tmp_path):
    assert detect_format(TINY) == "mind"
    renamed = tmp_path / "log.tsv"
    shutil.copy(TINY, renamed)
    assert detect_format(renamed) == "mind"
    assert load_dataset(renamed).impressions[0].id == "3"
    assert detect_format(DATA / "generic.csv") == "csv"
    data = load_dataset(TINY, limit=1)
    assert data.format == "mind" and len(data.impressions) == 1 and data.item_texts


def test_a_bad_row_names_its_line_and_what_was_expected(tmp_path):
    path = tmp_path / "behaviors.tsv"
    rows = TINY.read_text().splitlines()
    rows[1] = rows[1].replace("N6-1", "N6-yes")
    rows[3] = rows[3].replace("10:00:00 AM", "10h00")
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(
        DatasetError, match=r"behaviors.tsv:2: an impression must be NEWS_ID-1 .* got 'N6-yes'"
    ):
        load_mind(path)
    data = load_mind(path, skip_bad=True)
    assert data.n_bad == 2 and len(data.impressions) == 3
    assert (
        "behaviors.tsv:4: time must be MM/DD/YYYY h:mm:ss AM/PM, got '11/11/2019 10h00'"
        in data.bad_examples[1]
    )


# -- the metrics -----------------------------------------------------------------------------


def test_metrics_match_a_hand_computation_on_one_impression():
    # Ranked: c (0.9, clicked), a (0.7), e (0.4, clicked), b (0.2), d (0.1).
    scores = [0.7, 0.2, 0.9, 0.1, 0.4]
    clicked = [False, False, True, False, True]
    m = impression_metrics(scores, clicked, ks=(5, 10))
    assert m is not None
    # Pairs (click, non-click) won: c beats a, b, d; e beats b, d: 5 of 6.
    assert m["auc"] == pytest.approx(5 / 6)
    # MIND's MRR: the mean of 1/rank over the clicked, ranks 1 and 3.
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@5"] == pytest.approx(dcg / ideal) and m["ndcg@10"] == pytest.approx(dcg / ideal)
    assert impression_metrics(scores, clicked, ks=(2,))["ndcg@2"] == pytest.approx(1 / ideal)


def _mind_reference(scores, clicked, k):
    """MIND's own reading: rank by score, gains 2^y - 1 discounted by log2(rank + 1)."""
    order = np.argsort(scores)[::-1]
    y = np.asarray(clicked, dtype=float)[order]
    rr = (y / (np.arange(len(y)) + 1)).sum() / y.sum()
    disc = np.log2(np.arange(len(y)) + 2)
    dcg = ((2**y - 1) / disc)[:k].sum()
    best = np.sort(np.asarray(clicked, dtype=float))[::-1]
    ideal = ((2**best - 1) / disc)[:k].sum()
    pos, neg = np.asarray(scores)[np.asarray(clicked)], np.asarray(scores)[~np.asarray(clicked)]
    auc = np.mean([[1.0 if p > n else 0.5 if p == n else 0.0 for n in neg] for p in pos])
    return auc, rr, dcg / ideal


def test_metrics_agree_with_mind_reading_of_its_definitions_without_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        scores = rng.normal(size=n)
        clicked = rng.random(n) < 0.2
        clicked[int(rng.integers(n))] = True
        if clicked.all():
            continue
        m = impression_metrics(scores, clicked, ks=(5,))
        auc, mrr, ndcg = _mind_reference(scores, clicked, 5)
        assert (m["auc"], m["mrr"], m["ndcg@5"]) == pytest.approx((auc, mrr, ndcg))


def test_ties_count_half_and_ranks_are_shared_over_a_tie():
    m = impression_metrics([1.0, 1.0, 1.0, 0.0], [True, False, False, False], ks=(1,))
    assert m["auc"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)  # first, second or third, each a third
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert impression_metrics([0.5, 0.1], [True, True]) is None  # no non-click: not scored


# -- the protocol ----------------------------------------------------------------------------


def _popular_stream(seed: int = 0) -> Dataset:
    """Users click, among ten items shown, one drawn in proportion to the items' popularity."""
    rng = np.random.default_rng(seed)
    items = [f"n{i}" for i in range(60)]
    weight = 1.0 / np.arange(1, 61) ** 1.2
    impressions, events = [], []
    for t in range(900):
        user = f"u{rng.integers(300)}"
        shown = rng.choice(60, size=10, replace=False)
        p = weight[shown] / weight[shown].sum()
        taken = items[int(shown[rng.choice(10, p=p)])]
        impressions.append(Impression(user, float(t), tuple(items[i] for i in shown), (taken,), str(t)))
        events.append(Interaction(user, taken, float(t)))
    return Dataset("popular-stream", Path("synthetic"), "mind", events, impressions=impressions)


def test_popular_beats_random_where_clicks_follow_popularity():
    result = run_impressions(_popular_stream(), [Popular(), Random(seed=1)], None, ImpressionsConfig(seed=2))
    popular, chance = result.recommenders["popular"], result.recommenders["random"]
    assert result.protocol["n_scored"] == 900
    bands = result.intervals["recommenders"]
    for metric in ("auc", "mrr", "ndcg@5", "ndcg@10"):
        assert bands["popular"][metric][0] > bands["random"][metric][1], metric
    assert popular["auc"] > 0.7 and abs(chance["auc"] - 0.5) < 0.05


def test_every_recommender_scores_the_fixture_and_the_hybrid_remembers_what_was_shown(tmp_path):
    data = load_mind(TINY)
    names = ["popular", "random", "text", "cf", "hybrid"]
    recs = default_recommenders(names, text_dim=HashEncoder.dim, seed=3)
    seen = []
    result = run_impressions(data, recs, HashEncoder(), progress=lambda *a: seen.append(a))
    assert result.protocol["n_scored"] == 5 and result.protocol["n_users_scored"] == 3
    assert result.protocol["n_learn_only"] == 3 and result.protocol["n_candidates_shown"] == 13
    assert list(result.recommenders) == names
    for values in result.recommenders.values():
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert set(result.intervals["ratios"]) == {"hybrid/popular", "hybrid/text"}
    assert ("impressions", 5, 5) in seen and any(phase == "encode" for phase, _, _ in seen)
    hybrid = recs[-1]
    assert isinstance(hybrid, HybridAdapter)
    # N8 was shown to U1 last and not clicked; N4 was clicked after two showings.
    assert "N8" in hybrid.rec.profile("U1").shown and "N4" not in hybrid.rec.profile("U1").shown
    paths = write_impressions_report(result, tmp_path)
    report = json.loads(paths["json"].read_text())
    assert report["exposure"]["buckets"][1]["pairs"] == 1
    md = paths["md"].read_text()
    assert "| recommender | AUC | MRR | nDCG@5 | nDCG@10 |" in md and "hybrid/popular" in md


class _Recorder(Popular):
    """Popular, noting when items enter and what the stream knows at each impression."""

    def __init__(self) -> None:
        super().__init__()
        self.entered: dict[str, float] = {}
        self.known_at: list[set[str]] = []

    def add_item(self, item, title, vector, ts):
        self.entered[item] = ts

    def score_items(self, user, positions):
        self.known_at.append(set(self._state().items))
        return super().score_items(user, positions)


def test_news_enter_at_their_first_sight_and_histories_before_their_users_first_impression():
    rec = _Recorder()
    run_impressions(load_mind(TINY), [rec], None)
    assert rec.entered["N8"] == _at("11:00:00 AM") and rec.entered["N3"] == _at("8:30:00 AM")
    assert rec.entered["N1"] < _at("9:00:00 AM")  # with U1's history, before its first impression
    assert rec.known_at[0] == {"N3", "N5"}  # at 8:30, only what that list shows


def test_exposure_counts_earlier_showings_without_a_click_per_user():
    out = measure_exposure(load_mind(TINY).impressions, rounds=100)
    counts = [(b["count"], b["pairs"], b["clicks"]) for b in out["buckets"]]
    # U1: N4 passed over at 9:00 (shown once before at 10:00), twice before at 11:00, clicked then.
    assert counts == [("0", 11, 4), ("1", 1, 0), ("2+", 1, 1)]
    assert out["buckets"][0]["click_rate"] == pytest.approx(4 / 11)
    assert out["buckets"][1]["odds_ratio"] == 0.0 and out["buckets"][2]["odds_ratio"] is None  # rate 1
    model = [b["model_odds_ratio"] for b in out["buckets"]]
    assert model[0] == 1.0 and 0.0 < model[2] < model[1] < 1.0
    assert out["n_users"] == 3 and out["n_pairs"] == 13


# -- the command -----------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.callback()
    def main() -> None:
        """Keep `eval` a subcommand."""

    return app


def test_the_command_runs_the_impressions_protocol_on_mind(tmp_path):
    out = tmp_path / "report"
    args = ["eval", "--dataset", str(TINY), "--protocol", "impressions", "--out", str(out)]
    result = CliRunner().invoke(_app(), [*args, "--recommenders", "popular,random,cf"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert list(report["recommenders"]) == ["popular", "random", "cf"]
    assert report["protocol"]["n_scored"] == 5
    assert (out / "report.md").read_text().startswith("# Impressions evaluation: mind-tiny")


def test_the_impressions_protocol_needs_a_dataset_with_impressions(tmp_path):
    args = [
        "eval",
        "--dataset",
        str(DATA / "amazon-2014.csv"),
        "--protocol",
        "impressions",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "logs the lists shown (MIND's behaviors.tsv), got format 'amazon-csv', without any" in said


# -- the real sample -------------------------------------------------------------------------


def test_the_mind_sample_reads_whole():
    data = load_mind(require(Path("mind-small-sample/behaviors.tsv")))
    assert len(data.impressions) == 5_000
    assert sum(len(i.clicked) for i in data.impressions) == 7_542
    assert sum(len(e.clicked) for e in data.impressions) == sum(not e.learn_only for e in data.interactions)
    assert sum(len(i.shown) for i in data.impressions) == 189_359
    assert len({i.user for i in data.impressions}) == 4_637
    assert len(data.item_texts) == len(data.item_times)  # every id the sample names has its news
