from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from streamrec.eval.base import StreamRecommender
from streamrec.eval.catalog_entries import MAX_TEXT_CHARS
from streamrec.eval.catalogs import detect_catalog_format, load_catalog, parse_item_columns
from streamrec.eval.datasets import load_dataset
from streamrec.eval.interactions import Dataset, Interaction
from streamrec.eval.item_texts import clean_markup
from streamrec.eval.prequential import PrequentialConfig
from streamrec.eval.protocol import run_prequential
from streamrec.eval.registry import default_recommenders
from streamrec.model.errors import DatasetError
from streamrec.streams.commands.evaluate import eval_command
from tests.datasets import require
from tests.eval.test_prequential import HashEncoder

DATA = Path(__file__).resolve().parents[1] / "data"
MAGAZINES = Path("amazon-2018-magazine-subscriptions")


# -- formats ---------------------------------------------------------------------------------


def test_amazon_meta_cleans_html_titles_and_keeps_the_richest_duplicate():
    catalog = load_catalog(DATA / "amazon-meta.jsonl")
    assert catalog.format == "amazon-meta"
    assert (catalog.n_rows, catalog.n_duplicates, catalog.n_bad) == (5, 1, 0)
    # B01's title is markup alone: its display title is the description's first sentence.
    assert catalog.titles["B01"] == "Written by and for musicians"
    assert catalog.texts["B01"] == (
        "Written by and for musicians. Covers a variety of styles, with transcriptions for guitar. "
        "Magazine Subscriptions, Arts, Music & Photography, Music"
    )
    assert catalog.titles["B02"] == "Drum & Bass Monthly"
    assert catalog.texts["B02"] == "Drum & Bass Monthly. Grooves every month. Magazine Subscriptions, Music"
    # No title, no description: the brand names it, its categories describe it.
    assert catalog.titles["B03"] == "Hearst"
    assert catalog.texts["B03"] == "Magazine Subscriptions, Fitness"
    assert catalog.described == {"B01", "B02", "B09"}
    assert catalog.items == {"B01", "B02", "B03", "B09"}


def test_a_long_first_sentence_is_cut_into_a_short_display_title(tmp_path):
    path = tmp_path / "meta_Garden.json"
    long = "word " * 30
    path.write_text(f'{{"asin": "G1", "title": "", "description": ["{long}. Second."]}}\n')
    title = load_catalog(path).titles["G1"]
    assert title.endswith("…") and len(title) <= 80 and "  " not in title


def test_long_texts_are_cut(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": "a", "title": "A", "description": "%s"}\n' % ("x" * 5000))
    assert len(load_catalog(path).texts["a"]) == MAX_TEXT_CHARS


def test_mind_news_title_abstract_and_categories():
    catalog = load_catalog(DATA / "mind-news.tsv")
    assert catalog.format == "mind-news"
    assert catalog.texts == {
        "N1": "A long putt. She holed it from forty feet. sports, golf",
        "N2": '"Quoted" says the mayor. news',  # a bare quote is no csv quoting
        "N3": "Ten habits & a tip. lifestyle",
    }
    assert catalog.titles["N2"] == '"Quoted" says the mayor'
    assert catalog.described == {"N1"}


def test_recbole_item_file_reads_as_the_dataset_loader_does():
    catalog = load_catalog(DATA / "recbole-tiny" / "recbole-tiny.item")
    assert catalog.format == "recbole-item"
    assert catalog.texts == load_dataset(DATA / "recbole-tiny" / "recbole-tiny.inter").item_texts
    assert catalog.titles == {"10": "Toy Story", "20": "GoldenEye"}


def test_generic_csv_with_a_column_mapping():
    columns = parse_item_columns("item=sku,title=name,text=about,tags=labels")
    catalog = load_catalog(DATA / "items.csv", columns=columns)
    assert catalog.format == "csv"
    assert catalog.texts == {
        "p1": "Nylon strings. Warm tone, long life. strings, guitar",
        "p2": "Snare drum. A bright snare. drums",
        "p3": "Capo. guitar, accessories",
    }
    assert catalog.titles["p3"] == "Capo"


def test_generic_jsonl_guesses_common_names_and_reads_lists(tmp_path):
    path = tmp_path / "books.jsonl"
    path.write_text(
        '{"book_id": 7, "title": "Dune", "description": ["Sand.", "", "Worms."], "genres": ["sf", "sf"]}\n'
    )
    catalog = load_catalog(path)
    assert catalog.format == "jsonl"
    assert catalog.texts == {"7": "Dune. Sand. Worms. sf"}


def test_a_mapping_that_names_no_item_column_says_what_is_missing():
    with pytest.raises(DatasetError, match=r"must name item .*'sku'"):
        load_catalog(DATA / "items.csv", columns={"title": "name"}, format="csv")
    with pytest.raises(DatasetError, match="role must be one of item, title, text, tags"):
        parse_item_columns("user=who")
    with pytest.raises(DatasetError, match="ROLE=COLUMN"):
        parse_item_columns("item")


# -- detection and files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("amazon-meta.jsonl", "amazon-meta"),
        ("mind-news.tsv", "mind-news"),
        ("recbole-tiny/recbole-tiny.item", "recbole-item"),
        ("items.csv", "csv"),
    ],
)
def test_formats_are_detected_from_name_and_first_row(name, expected):
    assert detect_catalog_format(DATA / name) == expected


def test_news_rows_are_detected_whatever_the_file_is_called(tmp_path):
    path = tmp_path / "catalog.tsv"
    shutil.copy(DATA / "mind-news.tsv", path)
    assert detect_catalog_format(path) == "mind-news"


def test_a_review_file_is_no_catalog():
    with pytest.raises(DatasetError, match="must describe items, got a review row"):
        load_catalog(DATA / "amazon-2018.jsonl")


@pytest.mark.parametrize("wrap", ["gzip", "zip"])
def test_gzip_and_zip_catalogs(tmp_path, wrap):
    source = DATA / "amazon-meta.jsonl"
    if wrap == "gzip":
        path = tmp_path / "meta_Magazines.json.gz"
        with open(source, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        path = tmp_path / "meta.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.write(source, "meta_Magazines.json")
    catalog = load_catalog(path)
    assert catalog.format == "amazon-meta"
    assert catalog.texts == load_catalog(source).texts


def test_bad_row_names_its_line_unless_skipped(tmp_path):
    path = tmp_path / "meta_Magazines.json"
    lines = (DATA / "amazon-meta.jsonl").read_text().splitlines()
    path.write_text("\n".join([lines[0], '{"title": "no id"}', "{not json", *lines[1:]]) + "\n")
    with pytest.raises(
        DatasetError, match=r"meta_Magazines\.json:2: id must be a string.*'asin'.*--skip-bad"
    ):
        load_catalog(path)
    catalog = load_catalog(path, skip_bad=True)
    assert catalog.n_bad == 2
    assert [m.split("meta_Magazines.json:")[1].split(":")[0] for m in catalog.bad_examples] == ["2", "3"]
    assert catalog.items == {"B01", "B02", "B03", "B09"}


def test_unknown_format_and_missing_file():
    with pytest.raises(DatasetError, match="format must be one of"):
        load_catalog(DATA / "items.csv", format="xml")
    with pytest.raises(DatasetError, match="readable file"):
        load_catalog(DATA / "nope.csv")


def test_markup_cleaning():
    assert clean_markup('<span class="a-size-medium a-color-secondary"') == ""
    assert clean_markup(' Magazines" />') == ""
    assert clean_markup("Tom &amp; Jerry<br />Cartoons") == "Tom & Jerry Cartoons"
    assert clean_markup("3 < 4 and 5 > 2") == "3 < 4 and 5 > 2"


# -- merged into a dataset -------------------------------------------------------------------


def test_catalog_scope_interacted_keeps_the_items_taken_and_all_keeps_every_one():
    reviews = DATA / "amazon-2018.jsonl"
    data = load_dataset(reviews, items=DATA / "amazon-meta.jsonl")
    assert set(data.item_texts) == {"B01", "B02"}
    assert data.item_titles == {"B01": "Written by and for musicians", "B02": "Drum & Bass Monthly"}
    summary = data.summary()
    assert summary["catalog"] == str(DATA / "amazon-meta.jsonl")
    assert summary["n_catalog_items_taken"] == 2
    assert data.catalog_counts == {"items": 4, "rows": 5, "duplicates": 1, "bad_rows_skipped": 0}

    every = load_dataset(reviews, items=DATA / "amazon-meta.jsonl", catalog_scope="all")
    assert set(every.item_texts) == {"B01", "B02", "B03", "B09"}
    assert every.summary()["n_catalog_items_taken"] == 2
    assert load_dataset(reviews).summary()["catalog"] is None
    with pytest.raises(DatasetError, match="catalog_scope must be one of interacted, all"):
        load_dataset(reviews, items=DATA / "amazon-meta.jsonl", catalog_scope="some")


def test_the_catalog_wins_over_what_the_format_read(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text("item_id,title\n10,Toy Story (director's cut)\n")
    data = load_dataset(DATA / "recbole-tiny" / "recbole-tiny.inter", items=path)
    assert data.item_texts == {"10": "Toy Story (director's cut)", "20": "GoldenEye (1995). Action, Thriller"}
    assert data.item_titles == {"10": "Toy Story (director's cut)"}


# -- the protocol ----------------------------------------------------------------------------


class Watcher(StreamRecommender):
    """Records, at each event it learns, which items the stream knows and with what text."""

    name = "watcher"

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, str] = {}
        self.added: list[tuple[str, str, float, bool]] = []
        self.known: list[tuple[float, set[str]]] = []

    def start(self, state, catalog):
        super().start(state, catalog)
        self.started = {item: title for item, (title, _) in catalog.items()}

    def add_item(self, item, title, vector, ts):
        self.added.append((item, title, ts, vector is not None))

    def learn(self, event, vector):
        state = self._state()
        self.known.append((event.ts, {i for i in ("late", "soon", "never") if i in state.pos}))

    def scores(self, user):
        return np.zeros(self._state().n_items)


def test_a_timed_catalog_item_enters_when_the_stream_reaches_its_time():
    events = [
        Interaction("u1", "a", 100.0),
        Interaction("u2", "b", 200.0),
        Interaction("u1", "soon", 300.0),  # taken before its catalog time: it enters just before
        Interaction("u2", "a", 400.0),
        Interaction("u3", "late", 500.0),
    ]
    data = Dataset(
        "timed",
        Path("timed"),
        "csv",
        events,
        item_texts={"a": "an amp", "late": "a late night guitar show", "soon": "soon", "never": "never"},
        item_titles={"late": "Late Show"},
        item_times={"late": 250.0, "soon": 1000.0, "never": 10_000.0},
    )
    encoder = HashEncoder()
    watcher = Watcher()
    text, hybrid = default_recommenders(["text", "hybrid"], text_dim=encoder.dim)
    result = run_prequential(
        data, [watcher, text, hybrid], encoder, PrequentialConfig(ks=(2,), n_negatives=2)
    )

    # Untimed items enter before the stream, with their display title or else their text.
    assert watcher.started == {"a": "an amp"}
    assert watcher.added == [("late", "Late Show", 250.0, True), ("soon", "soon", 300.0, True)]
    assert watcher.known == [
        (100.0, set()),
        (200.0, set()),
        (300.0, {"late", "soon"}),
        (400.0, {"late", "soon"}),
        (500.0, {"late", "soon"}),
    ]
    assert result.protocol["n_items_known_at_end"] == 4  # a, b, late, soon: never's time never comes
    state = watcher._state()
    late = state.pos["late"]
    expected = encoder.encode(["a late night guitar show"])[0]
    assert state.has_text[late] and np.allclose(state.text_matrix[late], expected)
    assert text.has[late] and np.allclose(text.matrix[late], expected)
    assert "late" in hybrid.rec.item_texts.items()
    assert "never" not in state.pos and "never" not in hybrid.rec.item_texts.items()


# -- the command -----------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.callback()
    def main() -> None:
        """Keep `eval` a subcommand."""

    return app


def test_the_command_reads_a_catalog_and_says_what_it_found(tmp_path):
    args = ["eval", "--dataset", str(DATA / "amazon-2018.jsonl"), "--out", str(tmp_path / "report")]
    args += ["--items", str(DATA / "amazon-meta.jsonl"), "--recommenders", "popular"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert (
        "4 items read, 2 of them taken by the interactions, 0 taken items without catalog text"
        in " ".join(result.output.split())
    )


def test_the_command_refuses_a_bad_catalog_naming_its_option(tmp_path):
    bad = tmp_path / "meta_Bad.json"
    bad.write_text('{"asin": "B1", "title": "A title"}\n{"title": "no id"}\n')
    args = ["eval", "--dataset", str(DATA / "amazon-2018.jsonl"), "--out", str(tmp_path / "report")]
    runner = CliRunner(env={"COLUMNS": "300"})
    result = runner.invoke(_app(), [*args, "--items", str(bad)])
    assert result.exit_code == 2
    assert "Invalid value for --items" in result.output and "meta_Bad.json:2: id must be" in result.output
    result = runner.invoke(_app(), [*args, "--items", str(bad), "--item-columns", "who=x"])
    assert result.exit_code == 2 and "--item-columns" in result.output


# -- the real catalog ------------------------------------------------------------------------


def test_the_magazine_catalog_describes_the_reviewed_magazines():
    meta = require(MAGAZINES / "meta_Magazine_Subscriptions.json.gz")
    reviews = require(MAGAZINES / "Magazine_Subscriptions_5.json.gz")
    catalog = load_catalog(meta)
    assert catalog.format == "amazon-meta"
    assert (catalog.n_rows, catalog.n_rows - catalog.n_duplicates) == (3385, 2320)
    data = load_dataset(reviews, items=catalog)
    taken = {e.item for e in data.interactions}
    assert len(taken) == 157
    assert len(taken & catalog.items) == 151
    assert len(taken & catalog.described) == 145
    assert data.summary()["n_catalog_items_taken"] == 151
    assert all("<" not in title and ">" not in title for title in catalog.titles.values())
    assert all(data.item_titles[i] for i in taken & catalog.items)
