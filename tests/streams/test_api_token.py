"""The HTTP API with a token: every path but /healthz asks for it, over real HTTP (no broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from streamrec.model.events.schemas import ModelInfo, ReadableProfile, Recommendation
from streamrec.streams.roles.api.answers import Health, SimilarItems
from streamrec.streams.roles.api.http import create_api
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import Metrics

TOKEN = "s3cret-token"


class _Shop:
    """The state an API answers from, for one known user and nothing else."""

    def stored(self, user_id: str) -> bytes | None:
        return None

    def listable(self, item_ids: list[str]) -> bool:
        return True

    def recommend(self, user_id: str, k: int, tags: list[str], exclude: list[str]) -> Recommendation:
        return Recommendation(
            user_id=user_id, items=[], generated_at=0.0, model=ModelInfo(cf="-", encoder="-")
        )

    def profile(self, user_id: str) -> ReadableProfile | None:
        return None

    def similar(self, item_id: str, k: int) -> SimilarItems | None:
        return None

    def health(self) -> Health:
        return Health(ready=True, why="test")


async def _answers(
    token: str | None, requests: list[tuple[str, str, dict[str, str]]]
) -> list[httpx.Response]:
    runner = web.AppRunner(create_api(_Shop(), Metrics.create(), token=token))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            return [await client.request(method, path, headers=headers) for method, path, headers in requests]
    finally:
        await runner.cleanup()


PATHS = [
    "/v1/users/ann/recommendations",
    "/v1/users/ann/profile",
    "/v1/items/x/similar",
    "/openapi.json",
    "/docs",
]


def test_with_a_token_only_healthz_answers_without_it() -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    wrong = {"Authorization": "Bearer nope"}
    asked = [("GET", p, h) for p in PATHS for h in ({}, wrong, bearer)] + [("GET", "/healthz", {})]
    answers = asyncio.run(_answers(TOKEN, asked))
    for (_, path, headers), answer in zip(asked, answers, strict=True):
        if path == "/healthz" or headers == bearer:
            assert answer.status_code != 401, (path, answer.text)
        else:
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            body = answer.json()
            assert body["error"] == "unauthorized" and "Authorization: Bearer" in body["message"]
    spec = next(
        a for (_, p, h), a in zip(asked, answers, strict=True) if p == "/openapi.json" and h == bearer
    )
    document = spec.json()
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert "401" in document["paths"]["/v1/users/{user_id}/profile"]["get"]["responses"]


def test_without_a_token_the_api_is_open_and_405_says_what_is_allowed() -> None:
    open_answers = asyncio.run(
        _answers(None, [("GET", "/v1/users/ann/recommendations", {}), ("POST", "/v1/users/ann/profile", {})])
    )
    assert open_answers[0].status_code == 200
    refused = open_answers[1]
    assert refused.status_code == 405 and "GET" in refused.headers["allow"]
    assert (
        "securitySchemes"
        not in asyncio.run(_answers(None, [("GET", "/openapi.json", {})]))[0].json()["components"]
    )


def test_the_token_comes_from_the_environment_or_a_secrets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAMREC_API_TOKEN", raising=False)
    assert Settings().api_secret() is None
    secret = tmp_path / "token"
    secret.write_text(f"  {TOKEN}\n")
    assert Settings(api_token_file=secret).api_secret() == TOKEN
    monkeypatch.setenv("STREAMREC_API_TOKEN", "from-env")
    assert Settings(api_token_file=secret).api_secret() == "from-env"
    assert "from-env" not in repr(Settings())  # a secret prints masked
    monkeypatch.delenv("STREAMREC_API_TOKEN")
    with pytest.raises(ValueError, match="cannot be read"):
        Settings(api_token_file=tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="must not be empty"):
        Settings(api_token_file=tmp_path / "empty")
