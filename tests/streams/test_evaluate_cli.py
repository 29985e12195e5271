from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from streamrec.eval.registry import ABLATIONS, RECOMMENDERS
from streamrec.streams.commands.evaluate import eval_command
from tests.datasets import MOVIELENS, needs, require

DATA = Path(__file__).resolve().parents[1] / "data"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.callback()
    def main() -> None:
        """Keep `eval` a subcommand."""

    return app


def test_eval_on_amazon_sample_writes_the_three_files(tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _app(),
        [
            "eval",
            "--dataset",
            str(DATA / "amazon-2014.csv"),
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--max-length",
            "32",
            "--retrain-every",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"dataset", "protocol", "recommenders"}
    assert list(report["recommenders"]) == [n for n in RECOMMENDERS if n not in ABLATIONS]
    assert report["protocol"]["sentiment_auc"]["pooled"]["n_positive"] > 0  # the sample has rated reviews
    assert report["protocol"]["readers"]["pooled"]["encoder_sequences_per_review"] == 1.0
    assert report["dataset"]["duplicates_dropped"] == 1
    assert report["recommenders"]["hybrid"]["all"]["mae"] is not None
    assert (out / "report.md").read_text().startswith("# Prequential evaluation")
    assert (out / "hr_over_time.png").stat().st_size > 0
    assert "hybrid" in result.output
    assert list((tmp_path / "cache").glob("rows-*.npz"))
    # Every figure compared has its interval, which holds it.
    intervals = report["protocol"]["intervals"]["recommenders"]
    for name, slices in report["recommenders"].items():
        lo, hi = intervals[name]["all"]["hr@10"]
        assert lo <= slices["all"]["hr@10"] <= hi, name
    assert "Confidence intervals" in (out / "report.md").read_text()


def test_eval_over_several_seeds_reports_the_spread_of_each_figure(tmp_path):
    args = ["eval", "--dataset", str(DATA / "amazon-2014.csv"), "--recommenders", "popular,hybrid",
            "--cache-dir", str(tmp_path / "cache"), "--max-length", "32"]  # fmt: skip
    result = CliRunner().invoke(_app(), [*args, "--seeds", "3,4", "--out", str(tmp_path / "two")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    spread = report["protocol"]["seeds"]
    assert spread["seeds"] == [3, 4] and report["protocol"]["seed"] == 3
    hr = spread["recommenders"]["hybrid"]["all"]["hr@10"]
    assert hr["min"] <= hr["mean"] <= hr["max"] and len(hr["values"]) == 2
    # The first value is the run whose tables the report shows; the second, a run with seed 4 alone.
    assert hr["values"][0] == report["recommenders"]["hybrid"]["all"]["hr@10"]
    single = CliRunner().invoke(_app(), [*args, "--seed", "4", "--out", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    alone = json.loads((tmp_path / "one" / "report.json").read_text())
    assert hr["values"][1] == alone["recommenders"]["hybrid"]["all"]["hr@10"]


def test_eval_with_column_mapping_limit_and_subset(tmp_path):
    result = CliRunner().invoke(
        _app(),
        [
            "eval",
            "--dataset",
            str(DATA / "generic.csv"),
            "--format",
            "csv",
            "--columns",
            "user=customer,item=sku,rating=stars,text=comment,ts=when",
            "--limit",
            "2",
            "--recommenders",
            "popular,cf",
            "--k",
            "5",
            "--no-cache",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["recommenders"]) == ["popular", "cf"]
    assert report["dataset"]["n_interactions"] == 2
    assert "hr@5" in report["recommenders"]["cf"]["all"]


def test_eval_bad_row_is_a_clear_error_and_skip_bad_counts_it(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"user_id": "a", "item_id": "x", "ts": 1}\n'
        '{"user_id": "b"}\n'
        '{"user_id": "c", "item_id": "x", "ts": 2}\n'
    )
    args = ["eval", "--dataset", str(path), "--recommenders", "popular", "--out", str(tmp_path / "out")]
    failed = CliRunner().invoke(_app(), args)
    assert failed.exit_code == 2
    assert "log.jsonl:2:" in failed.output and "--skip-bad" in failed.output
    passed = CliRunner().invoke(_app(), [*args, "--skip-bad"])
    assert passed.exit_code == 0, passed.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["dataset"]["bad_rows_skipped"] == 1


def test_eval_help_and_unknown_recommender(tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(_app(), ["eval", "--help"]).output
    assert "--dataset" in help_text and "--skip-bad" in help_text and "prequential" in help_text.lower()
    result = runner.invoke(
        _app(),
        [
            "eval",
            "--dataset",
            str(DATA / "generic.jsonl"),
            "--format",
            "jsonl",
            "--columns",
            "user=who,item=what,ts=at",
            "--recommenders",
            "magic",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "magic" in result.output


@pytest.mark.broker
@needs(MOVIELENS)
def test_through_kafka_scores_the_running_pipeline(tmp_path, broker_settings, monkeypatch):
    bootstrap = broker_settings["kafka_bootstrap"]
    if broker_settings["kafka_fetch_max_wait_ms"] is not None:
        monkeypatch.setenv(
            "STREAMREC_KAFKA_FETCH_MAX_WAIT_MS", str(broker_settings["kafka_fetch_max_wait_ms"])
        )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _app(),
        [
            "eval",
            "--dataset",
            str(require(MOVIELENS)),
            "--limit",
            "400",
            "--out",
            str(out),
            "--recommenders",
            "popular",
            "--through-kafka",
            "--rate",
            "100",
            "--kafka-bootstrap",
            bootstrap,
            "--no-cache",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    pipeline = report["recommenders"]["pipeline"]
    assert set(pipeline) == {"all", "cold_items", "cold_users"}
    assert 0.0 <= pipeline["all"]["hr@10"] <= 1.0
    protocol = report["protocol"]["pipeline"]
    assert protocol["events"] == 400
    # Every user was answered, and each list scores the user's next event: with bursts of
    # events per user, events that came before their user's next list stay unscored.
    assert protocol["recommendations"] >= report["dataset"]["n_users"]
    scored = protocol["events"] - protocol["unscored_events"]
    assert 0 < scored <= protocol["recommendations"]
    assert "pipeline" in (out / "report.md").read_text()
