"""An item's text and display title, made from its fields: markup cleaned, parts joined."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

from streamrec.eval.rows import text_of

__all__ = ["catalog_text", "clean_markup"]

#: Length of a display title made from a description's first sentence.
MAX_TITLE_CHARS = 80

_TITLE_KEYS = ("movie_title", "title", "name", "item_name")
# Tags, whole or cut off at either end (Amazon titles are often `<span class="..."`).
_MARKUP = re.compile(r"<[A-Za-z/!][^<>]*>|<[A-Za-z/!][^<>]*$|^[^<>]*[\"']\s*/?>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def clean_markup(value: Any) -> str:
    """Text without HTML tags (whole or cut off) and entities, whitespace collapsed.

    >>> clean_markup('<span class="a-size-medium a-color-secondary"')
    ''
    >>> clean_markup("Arts, Music &amp; <i>Photography</i>")
    'Arts, Music & Photography'
    """
    text = _MARKUP.sub(" ", str(value))
    return " ".join(html.unescape(text).split())


def catalog_text(fields: Mapping[str, Any]) -> str:
    """`Title (year). genre, genre` from whatever item fields there are.

    >>> catalog_text({"movie_title": "Toy Story", "release_year": "1995", "class": "Animation Comedy"})
    'Toy Story (1995). Animation, Comedy'
    """
    title = title_field(fields)
    year = next((str(fields[k]).strip() for k in ("release_year", "year") if text_of(fields.get(k))), "")
    genre_keys = ("class", "genre", "genres", "categories")
    genres = next((str(fields[k]).strip() for k in genre_keys if text_of(fields.get(k))), "")
    text = title or " ".join(str(v).strip() for v in fields.values() if text_of(v))
    if year and year not in text:
        text = f"{text} ({year})"
    names = [g for g in re.split(r"[|\s]+", genres) if g and g != "(no"]
    if names:
        text = f"{text}. " + ", ".join(names)
    return text.strip()


def title_field(fields: Mapping[str, Any]) -> str:
    return next((str(fields[k]).strip() for k in _TITLE_KEYS if text_of(fields.get(k))), "")


def catalog_entry(title: str, description: str, tags: Iterable[str], fallback: str = "") -> tuple[str, str]:
    """The text (title, description, tags) and the display title: `title`, else the description's
    first sentence, else `fallback`."""
    text = _joined([title, description, ", ".join(dict.fromkeys(t for t in tags if t))])
    return text, title or _first_sentence(description) or fallback


def _joined(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        if part:
            out = part if not out else f"{out}{' ' if out[-1] in '.!?:;' else '. '}{part}"
    return out


def _first_sentence(text: str) -> str:
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".")
    if len(sentence) <= MAX_TITLE_CHARS:
        return sentence
    cut = sentence[: MAX_TITLE_CHARS - 1]
    space = cut.rfind(" ")
    if space > MAX_TITLE_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def described(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(part for part in (clean_markup(v) for v in value if v is not None) if part)
    return clean_markup(value)


def tag_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        # Amazon 2014 metadata nests category paths: one level is flattened.
        raw = [v for part in value for v in (part if isinstance(part, list | tuple) else [part])]
    else:
        text = str(value)
        raw = text.split("|") if "|" in text else text.split(",")
    return [tag for tag in (clean_markup(v) for v in raw if v is not None) if tag]
