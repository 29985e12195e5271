"""The HTTP API fuzzed from its own document: schemathesis reads `/openapi.json` and sends what the
document allows and what it does not, checking that nothing fails (5xx), that every answer has a
documented status, content type and body, that what the document allows is accepted and what it
does not is refused, and that every 4xx is an `ApiError`. Once on the session worker (all roles, a
real broker, a small catalog), once on an API that asks for its token (no broker needed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from aiohttp import web
from hypothesis import settings
from schemathesis import BaseSchema, Case, CheckContext, Response

from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.roles.api.answers import ApiError
from streamrec.streams.roles.api.http import create_api
from streamrec.streams.stack import WorkerProcess
from streamrec.streams.telemetry import Metrics
from tests.conftest import wait_for
from tests.streams.test_api_token import TOKEN, _Shop
from tests.streams.test_pipeline import _catalog

#: Cases generated per operation and phase (schemathesis's coverage phase adds its own): the file
#: takes about 40 s alone on two cores, the worker's start included.
EXAMPLES = 100
BEARER = {"Authorization": f"Bearer {TOKEN}"}

#: Cases sent, per API and operation, and when each API's first and last were (printed at the end).
SENT: Counter[tuple[str, str]] = Counter()
SPAN: dict[str, tuple[float, float]] = {}


def _sent(api: str, case: Case) -> None:
    SENT[api, case.operation.label] += 1
    now = time.perf_counter()
    SPAN[api] = (SPAN.get(api, (now, now))[0], now)


def api_error_on_4xx(ctx: CheckContext, response: Response, case: Case) -> None:
    """A request refused says why, as an `ApiError` (`error`, `message`), whatever refused it."""
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
            ok = isinstance(body, dict) and set(body) == set(ApiError.model_fields)
            ApiError.model_validate(body)
        except ValueError:  # not JSON, or not an ApiError (pydantic's ValidationError is one)
            ok = False
        assert ok, f"a {response.status_code} must be an ApiError, got {response.text[:200]!r}"


@contextlib.contextmanager
def _serve(app: web.Application) -> Iterator[str]:
    """`app` served on a free port by a thread of its own; its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for api, (first, last) in sorted(SPAN.items()):
            cases = {op: n for (a, op), n in SENT.items() if a == api}
            total = f"{len(cases)} operations, {sum(cases.values())} cases in {last - first:.1f} s"
            print(f"\napi fuzz, {api}: {total} {cases}")


@pytest.fixture(scope="module")
def worker_api(worker: WorkerProcess, producer: Replayer, topics: Topics, vectors: Collector) -> BaseSchema:
    """The session worker's document, once its API is ready and a few items are on sale (so that
    lists are not empty and their items are checked against the document too)."""
    with httpx.Client(base_url=worker.api_url, timeout=10) as client:
        wait_for(lambda: client.get("/healthz").status_code == 200, 60, what="the API to be ready")
    titles = {"flute": "Concert flute, silver", "piccolo": "Piccolo in C", "fife": "Wooden fife"}
    _catalog(vectors, producer, topics, uuid.uuid4().hex[:6], titles)
    return schemathesis.openapi.from_url(f"{worker.api_url}/openapi.json")


@pytest.fixture(scope="module")
def token_api() -> Iterator[BaseSchema]:
    """The document of an API that asks for its token, read with it."""
    with _serve(create_api(_Shop(), Metrics.create(), token=TOKEN)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", headers=BEARER)


worker_schema = schemathesis.pytest.from_fixture("worker_api")
token_schema = schemathesis.pytest.from_fixture("token_api")
#: The same cases on every run (a failure is one a rerun shows again); STREAMREC_FUZZ_SEED=random
#: draws new ones.
FUZZ: dict[str, Any] = {
    "max_examples": EXAMPLES,
    "deadline": None,
    "database": None,
    "derandomize": os.environ.get("STREAMREC_FUZZ_SEED") != "random",
}


@pytest.mark.broker
@worker_schema.parametrize()
@settings(**FUZZ)
def test_the_worker_api_answers_as_its_document_says(case: Case) -> None:
    _sent("worker", case)
    case.call_and_validate(additional_checks=[api_error_on_4xx])


@pytest.mark.slow  # no broker, but several seconds
@token_schema.parametrize()
@settings(**FUZZ)
def test_an_api_with_a_token_answers_as_its_document_says(case: Case) -> None:
    _sent("token", case)
    case.call_and_validate(headers=BEARER, additional_checks=[api_error_on_4xx])
