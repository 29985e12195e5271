"""`streamrec opinions` on a shop's own CSV, with its columns mapped and an aspects file tried."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from streamrec.streams.commands.opinions import opinions_command

DATA = Path(__file__).resolve().parents[1] / "data"

#: A shop's export: its own column names, HTML entities in the text, mixed reviews.
CSV = """customer,sku,stars,comment,when
c1,amp1,5,"Lovely warm tone, but the tuners slip. Shipping took a month.",2021-03-01T10:00:00Z
c2,amp1,4,"The tone is fairly &#34;bright&#34; &amp; clear. Great price for the quality.",2021-03-02T10:00:00Z
c3,amp1,1,"Broke after two days. The seller never answered my emails.",2021-03-03T10:00:00Z
c1,pick9,5,"Warm tone, and a bargain. The picks feel great in the hand.",2021-03-04T10:00:00Z
c4,pick9,2,"Tinny sound and the paint chipped at once.",2021-03-05T10:00:00Z
"""


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("opinions")(opinions_command)

    @app.callback()
    def main() -> None:
        """Keep `opinions` a subcommand."""

    return app


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["opinions", *args])
    return result.exit_code, result.output


def test_a_csv_with_its_columns_mapped_gives_reviews_items_and_a_page(tmp_path: Path) -> None:
    data = tmp_path / "shop.csv"
    data.write_text(CSV, encoding="utf-8")
    aspects = tmp_path / "aspects.json"
    aspects.write_text(json.dumps([
        {"name": "sound", "phrases": ["warm tone", "tinny sound", "bright and clear"],
         "labels": {"en": "sound"}},
        {"name": "value", "phrases": ["great price", "a bargain", "too expensive"]},
    ]))  # fmt: skip
    out = tmp_path / "out"
    code, output = _run(
        "--dataset", str(data), "--format", "csv", "--columns",
        "user=customer,item=sku,rating=stars,text=comment,ts=when",
        "--aspects", str(aspects), "--max-length", "64", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    reviews = [json.loads(line) for line in (out / "reviews.jsonl").read_text().splitlines()]
    assert [(r["user_id"], r["item_id"], r["rating"]) for r in reviews][:2] == [
        ("c1", "amp1", 5.0),
        ("c2", "amp1", 4.0),
    ]
    for review in reviews:
        assert -1.0 <= review["polarity"] <= 1.0
        assert "&#34;" not in review["text"]
        for opinion in review["opinions"]:
            assert review["text"][opinion["start"] : opinion["end"]] == opinion["text"]
            assert opinion["aspect"] in ("sound", "value") and -1.0 <= opinion["polarity"] <= 1.0
    said = {(r["user_id"], o["aspect"]) for r in reviews for o in r["opinions"]}
    assert {("c1", "sound"), ("c4", "sound")} <= said
    items = json.loads((out / "items.json").read_text())
    assert set(items) == {"amp1", "pick9"} and items["amp1"]["reviews"] == 3
    sound = items["pick9"]["aspects"]["sound"]
    # Reviewers, not clauses; each quote is a reviewer's own words.
    assert sound["reviewers"] == 2 and sound["praising"] + sound["not_praising"] == 2
    assert all(
        q is None or any(q in r["text"] for r in reviews) for q in (sound["praise"], sound["criticism"])
    )
    page = (out / "items.html").read_text()
    assert "What reviewers say" in page and "pick9" in page
    assert "1.00 encoder sequences per review" in output


def test_bad_input_says_what_was_expected(tmp_path: Path) -> None:
    bad = tmp_path / "aspects.json"
    bad.write_text('[{"name": "sound"}]')
    code, output = _run(
        "--dataset", str(DATA / "amazon-2014.csv"), "--aspects", str(bad), "--out", str(tmp_path)
    )
    assert code != 0 and "phrases" in output
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("customer,sku,stars,when\nc1,p1,4,2021-03-01T10:00:00Z\n")
    code, output = _run("--dataset", str(ratings), "--format", "csv", "--columns",
                        "user=customer,item=sku,rating=stars,ts=when", "--out", str(tmp_path))  # fmt: skip
    assert code != 0 and "no review text" in output
